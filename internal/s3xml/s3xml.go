// Package s3xml reads and writes S3's XML documents where a proxy must:
// the error document (written, and read back from an upstream to cut out
// elements that must not reach the client), the DeleteObjects document read
// strictly so that no upstream can read another key from it, the
// ListAllMyBucketsResult, and the streaming rewriter of an element's text in
// a document that may be long and slow (the Location of a completed
// multipart upload). It knows nothing of proxies: the caller passes the
// bounds and the rewriting.
package s3xml

// Namespace is the XML namespace of S3's documents.
const Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"
