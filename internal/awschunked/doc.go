// Package awschunked reads and writes aws-chunked bodies (Content-Encoding:
// aws-chunked), the framing of SigV4 streaming uploads: signed chunks
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]), each carrying a signature
// chained from the request's, and unsigned chunks with a checksum trailer
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
//
// A Reader decodes a body while it streams, with constant memory, and
// verifies what the body carries: chunk signatures (Chain, from a Signer),
// the decoded length, the trailer's checksum (Checksums: the ten S3 knows)
// and signature. It returns io.EOF only once all of it verified, and an
// *s3err.Error with S3's code otherwise. An Encoder frames a verified payload
// again for another party, its chunks signed with another key, and writes the
// final chunk only once the payload verified. The package knows nothing of
// proxies: the caller passes keys, lengths and trailers.
package awschunked
