// Package s3op tells which S3 operation a request is, as S3 reads it, and the
// policy action AWS asks for it ("s3:GetObject", "s3:ListBucket", …).
//
// A request's operation follows from its method, from what it addresses (the
// service, a bucket or an object), from its query and from whether it copies.
// S3 reads the query by precedence: a sub-resource (acl, policy, uploads,
// uploadId, …) selects the operation first; without one, a bucket GET is a
// listing and reads the listing parameters. Classify reads the raw query once,
// the same bytes that go upstream, and refuses what S3 would not read one way
// only: a parameter S3 reads once given twice, and two sub-resources at once.
// It knows nothing of proxies, hooks or caches.
package s3op

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"
)

// Level is what a request addresses.
type Level int

// The levels of a request.
const (
	Service Level = iota // no bucket: ListBuckets
	Bucket               // a bucket, no key
	Object               // a key in a bucket
)

// Op is the operation a request is.
type Op struct {
	// Name is the operation's name as S3's API reference names it
	// ("GetObject", "ListObjectsV2", "GetBucketAcl", …), "Unknown" for a
	// combination of method and sub-resource that S3 does not define.
	Name string
	// Action is the policy action AWS asks for the operation, the version's
	// action when the request names a version (s3:GetObjectVersion for a
	// GetObject with versionId); "" when Name is "Unknown".
	Action string
	// SubResource is the sub-resource that selected the operation ("acl",
	// "uploads", "uploadId", …); "" for none.
	SubResource string
	// Lists reports a listing (ListObjects, ListObjectsV2, ListObjectVersions,
	// ListMultipartUploads), which reads Prefix.
	Lists bool
	// Prefix is the listing's prefix parameter, decoded; "" without one.
	Prefix string
	// Versioned reports a versionId parameter.
	Versioned bool
	// Unknown is the first query parameter S3 does not define (decoded
	// name), "" when there is none. A caller that decides by the operation
	// cannot know what an upstream makes of it.
	Unknown string
	// Headers are the x-amz-* headers a presigner hoisted into the query,
	// by their lower-case names; an upstream reads them as headers.
	Headers []string
}

// Error is a query S3 refuses: an HTTP status, S3's code and message, and the
// argument at fault.
type Error struct {
	Status        int
	Code, Message string
	ArgumentName  string
	ArgumentValue string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// def is an operation of the tables: its name and action, the action when a
// version is named ("" when it is the same) and whether it is a listing.
type def struct {
	name, action, versioned string
	lists                   bool
}

// byMethod maps HTTP methods to operations; HEAD is read as GET where it has
// no entry of its own.
type byMethod map[string]def

const (
	get, head, put, post, del = http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete
)

// objectOps are the operations on an object, by sub-resource ("" for none)
// and method. The HTTP bindings are those of S3's API (the AWS SDKs'
// serializers); the actions those AWS's documentation names for each
// operation.
var objectOps = map[string]byMethod{
	"": {
		get:  {"GetObject", "s3:GetObject", "s3:GetObjectVersion", false},
		head: {"HeadObject", "s3:GetObject", "s3:GetObjectVersion", false},
		put:  {"PutObject", "s3:PutObject", "", false},
		del:  {"DeleteObject", "s3:DeleteObject", "s3:DeleteObjectVersion", false},
	},
	"acl": {
		get: {"GetObjectAcl", "s3:GetObjectAcl", "s3:GetObjectVersionAcl", false},
		put: {"PutObjectAcl", "s3:PutObjectAcl", "s3:PutObjectVersionAcl", false},
	},
	"annotation": {
		get: {"ListObjectAnnotations", "s3:ListObjectAnnotations", "", false}, // GetObjectAnnotation with annotationName
		put: {"PutObjectAnnotation", "s3:PutObjectAnnotation", "", false},
		del: {"DeleteObjectAnnotation", "s3:DeleteObjectAnnotation", "", false},
	},
	"attributes":   {get: {"GetObjectAttributes", "s3:GetObjectAttributes", "s3:GetObjectVersionAttributes", false}},
	"encryption":   {put: {"UpdateObjectEncryption", "s3:UpdateObjectEncryption", "", false}},
	"legal-hold":   {get: {"GetObjectLegalHold", "s3:GetObjectLegalHold", "", false}, put: {"PutObjectLegalHold", "s3:PutObjectLegalHold", "", false}},
	"retention":    {get: {"GetObjectRetention", "s3:GetObjectRetention", "", false}, put: {"PutObjectRetention", "s3:PutObjectRetention", "", false}},
	"renameObject": {put: {"RenameObject", "s3:PutObject", "", false}},
	"restore":      {post: {"RestoreObject", "s3:RestoreObject", "", false}},
	"select":       {post: {"SelectObjectContent", "s3:GetObject", "", false}},
	"tagging": {
		get: {"GetObjectTagging", "s3:GetObjectTagging", "s3:GetObjectVersionTagging", false},
		put: {"PutObjectTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging", false},
		del: {"DeleteObjectTagging", "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging", false},
	},
	"torrent": {get: {"GetObjectTorrent", "s3:GetObjectTorrent", "s3:GetObjectVersionTorrent", false}},
	"uploads": {post: {"CreateMultipartUpload", "s3:PutObject", "", false}},
	"uploadId": {
		get:  {"ListParts", "s3:ListMultipartUploadParts", "", false},
		put:  {"UploadPart", "s3:PutObject", "", false},
		post: {"CompleteMultipartUpload", "s3:PutObject", "", false},
		del:  {"AbortMultipartUpload", "s3:AbortMultipartUpload", "", false},
	},
}

// bucketOps are the operations on a bucket, by sub-resource ("" for none) and
// method.
var bucketOps = map[string]byMethod{
	"": {
		get:  {"ListObjects", "s3:ListBucket", "", true}, // ListObjectsV2 with list-type=2
		head: {"HeadBucket", "s3:ListBucket", "", false},
		put:  {"CreateBucket", "s3:CreateBucket", "", false},
		del:  {"DeleteBucket", "s3:DeleteBucket", "", false},
	},
	"abac":       {get: {"GetBucketAbac", "s3:GetBucketABAC", "", false}, put: {"PutBucketAbac", "s3:PutBucketABAC", "", false}},
	"accelerate": {get: {"GetBucketAccelerate", "s3:GetAccelerateConfiguration", "", false}, put: {"PutBucketAccelerate", "s3:PutAccelerateConfiguration", "", false}},
	"acl":        {get: {"GetBucketAcl", "s3:GetBucketAcl", "", false}, put: {"PutBucketAcl", "s3:PutBucketAcl", "", false}},
	"analytics": {
		get: {"ListBucketAnalyticsConfigurations", "s3:GetAnalyticsConfiguration", "", false}, // Get… with id
		put: {"PutBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration", "", false},
		del: {"DeleteBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration", "", false},
	},
	"cors": {
		get: {"GetBucketCors", "s3:GetBucketCORS", "", false},
		put: {"PutBucketCors", "s3:PutBucketCORS", "", false},
		del: {"DeleteBucketCors", "s3:PutBucketCORS", "", false},
	},
	"delete": {post: {"DeleteObjects", "s3:DeleteObject", "", false}},
	"encryption": {
		get: {"GetBucketEncryption", "s3:GetEncryptionConfiguration", "", false},
		put: {"PutBucketEncryption", "s3:PutEncryptionConfiguration", "", false},
		del: {"DeleteBucketEncryption", "s3:PutEncryptionConfiguration", "", false},
	},
	"intelligent-tiering": {
		get: {"ListBucketIntelligentTieringConfigurations", "s3:GetIntelligentTieringConfiguration", "", false},
		put: {"PutBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration", "", false},
		del: {"DeleteBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration", "", false},
	},
	"inventory": {
		get: {"ListBucketInventoryConfigurations", "s3:GetInventoryConfiguration", "", false},
		put: {"PutBucketInventoryConfiguration", "s3:PutInventoryConfiguration", "", false},
		del: {"DeleteBucketInventoryConfiguration", "s3:PutInventoryConfiguration", "", false},
	},
	"lifecycle": {
		get: {"GetBucketLifecycle", "s3:GetLifecycleConfiguration", "", false},
		put: {"PutBucketLifecycle", "s3:PutLifecycleConfiguration", "", false},
		del: {"DeleteBucketLifecycle", "s3:PutLifecycleConfiguration", "", false},
	},
	"location": {get: {"GetBucketLocation", "s3:GetBucketLocation", "", false}},
	"logging":  {get: {"GetBucketLogging", "s3:GetBucketLogging", "", false}, put: {"PutBucketLogging", "s3:PutBucketLogging", "", false}},
	"metadataAnnotationTable": {
		put: {"UpdateBucketMetadataAnnotationTableConfiguration", "s3:UpdateBucketMetadataAnnotationTableConfiguration", "", false},
	},
	"metadataConfiguration": {
		get:  {"GetBucketMetadataConfiguration", "s3:GetBucketMetadataTableConfiguration", "", false},
		post: {"CreateBucketMetadataConfiguration", "s3:CreateBucketMetadataTableConfiguration", "", false},
		del:  {"DeleteBucketMetadataConfiguration", "s3:DeleteBucketMetadataTableConfiguration", "", false},
	},
	"metadataInventoryTable": {
		put: {"UpdateBucketMetadataInventoryTableConfiguration", "s3:UpdateBucketMetadataInventoryTableConfiguration", "", false},
	},
	"metadataJournalTable": {
		put: {"UpdateBucketMetadataJournalTableConfiguration", "s3:UpdateBucketMetadataJournalTableConfiguration", "", false},
	},
	"metadataTable": {
		get:  {"GetBucketMetadataTableConfiguration", "s3:GetBucketMetadataTableConfiguration", "", false},
		post: {"CreateBucketMetadataTableConfiguration", "s3:CreateBucketMetadataTableConfiguration", "", false},
		del:  {"DeleteBucketMetadataTableConfiguration", "s3:DeleteBucketMetadataTableConfiguration", "", false},
	},
	"metrics": {
		get: {"ListBucketMetricsConfigurations", "s3:GetMetricsConfiguration", "", false},
		put: {"PutBucketMetricsConfiguration", "s3:PutMetricsConfiguration", "", false},
		del: {"DeleteBucketMetricsConfiguration", "s3:PutMetricsConfiguration", "", false},
	},
	"notification": {
		get: {"GetBucketNotification", "s3:GetBucketNotification", "", false},
		put: {"PutBucketNotification", "s3:PutBucketNotification", "", false},
	},
	"object-lock": {
		get: {"GetBucketObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration", "", false},
		put: {"PutBucketObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration", "", false},
	},
	"ownershipControls": {
		get: {"GetBucketOwnershipControls", "s3:GetBucketOwnershipControls", "", false},
		put: {"PutBucketOwnershipControls", "s3:PutBucketOwnershipControls", "", false},
		del: {"DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls", "", false},
	},
	"policy": {
		get: {"GetBucketPolicy", "s3:GetBucketPolicy", "", false},
		put: {"PutBucketPolicy", "s3:PutBucketPolicy", "", false},
		del: {"DeleteBucketPolicy", "s3:DeleteBucketPolicy", "", false},
	},
	"policyStatus": {get: {"GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", "", false}},
	// IBM Cloud Object Storage's Immutable Object Storage: a bucket's
	// retention policy. IAM names no action for it; these are the proxy's.
	"protection": {
		get: {"GetBucketProtectionConfiguration", "s3:GetBucketProtectionConfiguration", "", false},
		put: {"PutBucketProtectionConfiguration", "s3:PutBucketProtectionConfiguration", "", false},
	},
	"publicAccessBlock": {
		get: {"GetBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock", "", false},
		put: {"PutBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock", "", false},
		del: {"DeleteBucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock", "", false},
	},
	"replication": {
		get: {"GetBucketReplication", "s3:GetReplicationConfiguration", "", false},
		put: {"PutBucketReplication", "s3:PutReplicationConfiguration", "", false},
		del: {"DeleteBucketReplication", "s3:PutReplicationConfiguration", "", false},
	},
	"requestPayment": {
		get: {"GetBucketRequestPayment", "s3:GetBucketRequestPayment", "", false},
		put: {"PutBucketRequestPayment", "s3:PutBucketRequestPayment", "", false},
	},
	"session": {get: {"CreateSession", "s3express:CreateSession", "", false}},
	"tagging": {
		get: {"GetBucketTagging", "s3:GetBucketTagging", "", false},
		put: {"PutBucketTagging", "s3:PutBucketTagging", "", false},
		del: {"DeleteBucketTagging", "s3:PutBucketTagging", "", false},
	},
	"uploads":    {get: {"ListMultipartUploads", "s3:ListBucketMultipartUploads", "", true}},
	"versioning": {get: {"GetBucketVersioning", "s3:GetBucketVersioning", "", false}, put: {"PutBucketVersioning", "s3:PutBucketVersioning", "", false}},
	"versions":   {get: {"ListObjectVersions", "s3:ListBucketVersions", "", true}},
	"website": {
		get: {"GetBucketWebsite", "s3:GetBucketWebsite", "", false},
		put: {"PutBucketWebsite", "s3:PutBucketWebsite", "", false},
		del: {"DeleteBucketWebsite", "s3:DeleteBucketWebsite", "", false},
	},
}

// params are the query parameters S3 defines besides the sub-resources, each
// read once: those of listings, parts, object reads and configurations, and
// the x-id the AWS SDKs add.
var params = map[string]bool{
	"prefix": true, "delimiter": true, "marker": true, "max-keys": true, "encoding-type": true, "list-type": true,
	"continuation-token": true, "fetch-owner": true, "start-after": true, "key-marker": true,
	"version-id-marker": true, "upload-id-marker": true, "max-uploads": true,
	"max-parts": true, "part-number-marker": true, "partNumber": true, "versionId": true,
	"response-cache-control": true, "response-content-disposition": true, "response-content-encoding": true,
	"response-content-language": true, "response-content-type": true, "response-expires": true,
	"id": true, "select-type": true, "annotationName": true, "annotation-prefix": true, "max-annotation-results": true,
	"bucket-region": true, "max-buckets": true, "max-directory-buckets": true,
	"x-id": true,
}

// presignParams are the parameters of a query signature (SigV4 and SigV2),
// which authentication reads and which never go upstream; names in any case.
var presignParams = [...]string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
	"X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId", "Signature", "Expires",
}

// IsPresignParam reports whether a decoded query parameter name is one of a
// query signature's, in any case.
func IsPresignParam(name string) bool {
	for _, p := range presignParams {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

// DecodeName decodes the raw name of a query parameter; one that does not
// decode is taken as it is.
func DecodeName(raw string) string {
	if strings.ContainsAny(raw, "%+") {
		if dec, err := url.QueryUnescape(raw); err == nil {
			return dec
		}
	}
	return raw
}

// maxSeen bounds the parameters whose names Classify remembers to find
// duplicates without allocating; a query with more is checked with a map.
const maxSeen = 16

// one is the operation of a GET that names one configuration (id) or one
// annotation (annotationName), by sub-resource; without the name the GET
// lists them.
var one = map[string]struct {
	param string
	op    def
}{
	"analytics":           {"id", def{"GetBucketAnalyticsConfiguration", "s3:GetAnalyticsConfiguration", "", false}},
	"intelligent-tiering": {"id", def{"GetBucketIntelligentTieringConfiguration", "s3:GetIntelligentTieringConfiguration", "", false}},
	"inventory":           {"id", def{"GetBucketInventoryConfiguration", "s3:GetInventoryConfiguration", "", false}},
	"metrics":             {"id", def{"GetBucketMetricsConfiguration", "s3:GetMetricsConfiguration", "", false}},
	"annotation":          {"annotationName", def{"GetObjectAnnotation", "s3:GetObjectAnnotation", "", false}},
}

// Classify names the operation of a request: its method, the level it
// addresses, its raw query as the client sent it and whether it carries a
// copy source (x-amz-copy-source). It returns an *Error for a known
// parameter given twice, two sub-resources at once, or a prefix that does not
// decode.
func Classify(method string, level Level, rawQuery string, copying bool) (Op, error) {
	if level == Service {
		return Op{Name: "ListBuckets", Action: "s3:ListAllMyBuckets"}, nil
	}
	var (
		op       Op
		selector string
		listType string
		seen     names
	)
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(part, "=")
		name := DecodeName(rawName)
		switch {
		case IsPresignParam(name):
			continue // the signature's own; authentication reads them
		case len(name) > len(amzPrefix) && strings.EqualFold(name[:len(amzPrefix)], amzPrefix):
			name = strings.ToLower(name) // a header: named in any case
			op.Headers = append(op.Headers, name)
		case isSelector(level, name):
			if selector != "" && selector != name {
				return Op{}, conflicting(selector, name)
			}
			selector = name
		case params[name]:
		default:
			if op.Unknown == "" {
				op.Unknown = cmp.Or(name, "(a parameter without a name)")
			}
			continue // S3 reads nothing of it
		}
		if seen.add(name) {
			return Op{}, duplicate(name)
		}
		switch name {
		case "prefix":
			v, err := decodeValue(name, rawValue)
			if err != nil {
				return Op{}, err
			}
			op.Prefix = v
		case "list-type":
			listType = rawValue
		case "versionId":
			op.Versioned = true
		}
	}
	op.SubResource = selector
	d, ok := lookup(level, selector, method)
	if !ok {
		op.Name, op.Prefix = "Unknown", ""
		return op, nil
	}
	if o, ok := one[selector]; ok && (method == get || method == head) && seen.has(o.param) {
		d = o.op
	}
	op.Name, op.Action, op.Lists = d.name, d.action, d.lists
	if op.Versioned && d.versioned != "" {
		op.Action = d.versioned
	}
	if !op.Lists {
		op.Prefix = ""
	}
	switch {
	case copying && op.Name == "PutObject":
		op.Name = "CopyObject"
	case copying && op.Name == "UploadPart":
		op.Name = "UploadPartCopy"
	case op.Name == "ListObjects" && listType == "2":
		op.Name = "ListObjectsV2"
	}
	return op, nil
}

// amzPrefix starts the names of headers a presigner hoists into the query.
const amzPrefix = "x-amz-"

// names is a set of parameter names: the first maxSeen in an array, the rest
// in a map, so that an ordinary query finds its duplicates without
// allocating.
type names struct {
	inline [maxSeen]string
	n      int
	more   map[string]bool
}

// add adds name and reports whether it was there already.
func (s *names) add(name string) bool {
	if s.has(name) {
		return true
	}
	if s.n < maxSeen {
		s.inline[s.n] = name
		s.n++
		return false
	}
	if s.more == nil {
		s.more = map[string]bool{}
	}
	s.more[name] = true
	return false
}

func (s *names) has(name string) bool {
	for _, v := range s.inline[:s.n] {
		if v == name {
			return true
		}
	}
	return s.more[name]
}

// isSelector reports whether name is a sub-resource at level.
func isSelector(level Level, name string) bool {
	if level == Object {
		_, ok := objectOps[name]
		return ok && name != ""
	}
	_, ok := bucketOps[name]
	return ok && name != ""
}

// lookup finds the operation of a sub-resource and method at level; HEAD is
// read as GET where it has no entry of its own.
func lookup(level Level, selector, method string) (def, bool) {
	table := bucketOps
	if level == Object {
		table = objectOps
	}
	ops := table[selector]
	d, ok := ops[method]
	if !ok && method == head {
		d, ok = ops[get]
	}
	return d, ok
}

// decodeValue decodes a parameter's raw value as S3 does ('+' is a space).
func decodeValue(name, raw string) (string, error) {
	if !strings.ContainsAny(raw, "%+") {
		return raw, nil
	}
	v, err := url.QueryUnescape(raw)
	if err != nil {
		return "", &Error{Status: http.StatusBadRequest, Code: "InvalidArgument",
			Message: "The value of the query parameter " + name + " is not validly encoded.", ArgumentName: name}
	}
	return v, nil
}

func duplicate(name string) error {
	return &Error{Status: http.StatusBadRequest, Code: "InvalidArgument",
		Message: "The query parameter " + name + " may be given once.", ArgumentName: name}
}

func conflicting(a, b string) error {
	return &Error{Status: http.StatusBadRequest, Code: "InvalidArgument",
		Message: "Conflicting query string parameters: " + a + ", " + b, ArgumentName: "ResourceType", ArgumentValue: a}
}
