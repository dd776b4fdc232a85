package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Request-level authorization (WithRequestAuthorizer): beside the pinned
// token + bucket authorizer, a hook that sees the whole request as an S3
// action on a resource, and says for how long and for what its answer holds.

// AccessRequest describes a client request to a RequestAuthorizeFunc. It is
// the hook's own copy.
type AccessRequest struct {
	Action string // as AWS names it in policies: "s3:GetObject", "s3:PutObject", "s3:ListBucket", …
	Method string
	Bucket string
	Key    string // "" for bucket operations
	// SourceBucket and SourceKey are the object a copy reads; the copy is
	// asked about twice: s3:GetObject on the source, then its own action.
	SourceBucket, SourceKey string
	// Prefix is the prefix of a listing (ListObjects, ListObjectsV2,
	// ListObjectVersions, ListMultipartUploads).
	Prefix string
	// ClientIP is the client's address: the connection's, or the last one
	// X-Forwarded-For names before a proxy of WithTrustedProxies.
	ClientIP  string
	Presigned bool
	Token     string // the client's access key id, as AuthorizeFunc gets it
}

// Scope is what a Decision holds for, and so how it may be reused.
type Scope int

const (
	// ScopeRequest: this request only; the hook is asked again next time.
	ScopeRequest Scope = iota
	// ScopeKey: this token, action, bucket and key (or listing prefix).
	ScopeKey
	// ScopeBucket: this token and action on any key of the bucket.
	ScopeBucket
)

// Decision is a RequestAuthorizeFunc's answer.
type Decision struct {
	Allow bool
	Scope Scope         // default ScopeRequest: not reused
	TTL   time.Duration // how long a reused answer holds; 0: WithAuthCacheTTL
}

// RequestAuthorizeFunc decides whether a client request may go on. A denied
// request is answered 403 AccessDenied. It must be safe for concurrent use.
type RequestAuthorizeFunc func(ctx context.Context, r AccessRequest) (Decision, error)

// decisionKey keys cached decisions: a token digest, the action, the bucket
// and the key (or listing prefix); bucketWide for ScopeBucket answers.
type decisionKey struct {
	token          [sha256.Size]byte
	action, bucket string
	object         string
	bucketWide     bool
}

// decisions caches the request authorizer's answers by their scope.
type decisions struct {
	f     RequestAuthorizeFunc
	cache *loadingCache[decisionKey, Decision]
}

func newDecisions(cfg *config) *decisions {
	if cfg.requestAuth == nil {
		return nil
	}
	c := newLoadingCache[decisionKey, Decision]("request-authorization", cfg.authCacheTTL, cfg.authCacheCap, cfg)
	c.place = func(k decisionKey, d Decision) (decisionKey, time.Duration, bool) {
		ttl := d.TTL
		if ttl <= 0 {
			ttl = cfg.authCacheTTL
		}
		switch d.Scope {
		case ScopeBucket:
			k.object, k.bucketWide = "", true
		case ScopeKey:
		default:
			return k, 0, false
		}
		return k, ttl, true
	}
	return &decisions{f: cfg.requestAuth, cache: c}
}

func (d *decisions) sweep() {
	if d != nil {
		d.cache.sweep()
	}
}

// allowed asks for r, from the cache when an answer holds for it.
func (d *decisions) allowed(ctx context.Context, r AccessRequest) (bool, error) {
	k := decisionKey{token: sha256.Sum256([]byte(r.Token)), action: r.Action, bucket: r.Bucket, object: r.Key}
	if r.Prefix != "" {
		k.object = "prefix:" + r.Prefix
	}
	if dec, hit := d.cache.lookup(decisionKey{token: k.token, action: k.action, bucket: k.bucket, bucketWide: true}); hit {
		return dec.Allow, nil
	}
	if dec, hit := d.cache.lookup(k); hit {
		return dec.Allow, nil
	}
	k.bucket, k.object = strings.Clone(k.bucket), strings.Clone(k.object) // kept in the cache: not slices of the request
	sf := string(k.token[:]) + "\x00" + k.action + "\x00" + k.bucket + "\x00" + k.object
	dec, err := d.cache.load(ctx, k, sf, func(ctx context.Context) (Decision, error) { return d.f(ctx, r) })
	if err != nil {
		return false, hookError("request authorization", err)
	}
	return dec.Allow, nil
}

// authorizeRequest asks the request authorizer (WithRequestAuthorizer) about
// the request's action, and for a copy about reading its source first; a
// DeleteObjects request is asked about every key it names. As AWS does, it
// asks about more than the operation's own action where the request carries
// more: a version (s3:GetObjectVersion…, versionedActions), an ACL, tags or an
// object-lock setting on a write (alsoAsked). A key with dot segments is
// asked about again as a hop that resolves them would read it (dotResolutions).
func (p *Proxy) authorizeRequest(x *exchange) error {
	if p.decisions == nil || x.who.anonymous {
		return nil
	}
	r := x.in
	base := AccessRequest{
		Method: r.Method, Bucket: x.req.bucket, Key: x.req.key, Token: x.who.token,
		ClientIP: p.clientIP(r), Presigned: isPresigned(r),
	}
	op := operationName(r, x.req)
	ask := func(a AccessRequest) error {
		ok, err := p.decisions.allowed(r.Context(), a)
		if err != nil {
			return err
		}
		if !ok {
			return errAccessDenied
		}
		return nil
	}
	// askKey asks about a, then about a for every other key a's key may
	// become on an upstream (or a hop) that resolves dot segments.
	askKey := func(a AccessRequest) error {
		if err := ask(a); err != nil {
			return err
		}
		alts, err := dotResolutions(a.Key)
		if err != nil {
			return err
		}
		for _, k := range alts {
			b := a
			if b.SourceKey == b.Key && b.SourceBucket == b.Bucket {
				b.SourceKey = k
			}
			b.Key = k
			if err := ask(b); err != nil {
				return err
			}
		}
		return nil
	}
	if x.req.copyBucket != "" {
		src := base
		src.Action, src.Bucket, src.Key = "s3:GetObject", x.req.copyBucket, x.req.copyKey
		if x.req.copyVersioned {
			src.Action = "s3:GetObjectVersion"
		}
		src.SourceBucket, src.SourceKey = x.req.copyBucket, x.req.copyKey
		if err := askKey(src); err != nil {
			return err
		}
		base.SourceBucket, base.SourceKey = x.req.copyBucket, x.req.copyKey
	}
	base.Action = actionOf(op)
	if a, ok := versionedActions[base.Action]; ok && r.URL.RawQuery != "" && r.URL.Query().Has("versionId") {
		base.Action = a
	}
	switch op {
	case "ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads":
		base.Prefix = r.URL.Query().Get("prefix")
	case "DeleteObjects":
		objects, err := x.body.deleteKeys()
		if err != nil {
			return err
		}
		for _, o := range objects {
			one := base
			one.Action, one.Key = "s3:DeleteObject", o.key
			if o.versioned {
				one.Action = "s3:DeleteObjectVersion"
			}
			if err := askKey(one); err != nil {
				return err
			}
		}
		return nil
	}
	if err := askKey(base); err != nil {
		return err
	}
	for _, action := range alsoAsked(op, x.carries) {
		also := base
		also.Action = action
		if err := askKey(also); err != nil {
			return err
		}
	}
	return nil
}

// versionedActions are the actions AWS asks for instead of an object
// operation's own when the request names a version (versionId).
var versionedActions = map[string]string{
	"s3:GetObject": "s3:GetObjectVersion", "s3:DeleteObject": "s3:DeleteObjectVersion",
	"s3:GetObjectTagging": "s3:GetObjectVersionTagging", "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
	"s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging", "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
	"s3:PutObjectAcl": "s3:PutObjectVersionAcl", "s3:GetObjectAttributes": "s3:GetObjectVersionAttributes",
}

// alsoAsked are the actions AWS requires of a write besides its own, by
// what it carries (carries reports a header, or a POST form's field, by the
// start of its lower-case name): an ACL needs s3:PutObjectAcl, tags
// s3:PutObjectTagging, an object-lock retention s3:PutObjectRetention and a
// legal hold s3:PutObjectLegalHold; a bucket created with an ACL needs
// s3:PutBucketAcl, with object lock s3:PutBucketObjectLockConfiguration and
// s3:PutBucketVersioning.
func alsoAsked(op string, carries func(prefix string) bool) []string {
	var also []string
	switch op {
	case "PutObject", "CopyObject", "CreateMultipartUpload", "PostObject":
		if carries("x-amz-acl") || carries("x-amz-grant-") || op == "PostObject" && carries("acl") {
			also = append(also, "s3:PutObjectAcl")
		}
		if carries("x-amz-tagging") || op == "PostObject" && carries("tagging") {
			also = append(also, "s3:PutObjectTagging")
		}
		if carries("x-amz-object-lock-mode") || carries("x-amz-object-lock-retain-until-date") {
			also = append(also, "s3:PutObjectRetention")
		}
		if carries("x-amz-object-lock-legal-hold") {
			also = append(also, "s3:PutObjectLegalHold")
		}
	case "CreateBucket":
		if carries("x-amz-acl") || carries("x-amz-grant-") {
			also = append(also, "s3:PutBucketAcl")
		}
		if carries("x-amz-bucket-object-lock-enabled") {
			also = append(also, "s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning")
		}
	}
	return also
}

// carries reports whether the request has a header, or its POST Object form
// a field, whose lower-case name starts with prefix. The directive headers
// (x-amz-tagging-directive) say where tags come from, not tags: they do not
// count as x-amz-tagging.
func (x *exchange) carries(prefix string) bool {
	const directive = "-directive"
	match := func(name string) bool { // case-insensitive, without allocating
		return len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) &&
			!(len(name) >= len(directive) && strings.EqualFold(name[len(name)-len(directive):], directive))
	}
	if x.form != nil {
		for _, f := range x.form.fields {
			if match(f.lower) {
				return true
			}
		}
		return false
	}
	for name := range x.in.Header {
		if match(name) {
			return true
		}
	}
	return false
}

// dotResolutions returns the other keys key may become on an upstream, or a
// hop before it, that resolves dot segments ("." and "..") as RFC 3986 does,
// with empty segments kept or merged first; nil when key has none. A key that
// would resolve to the bucket itself is 400 InvalidURI: its request would
// reach the bucket, not an object.
func dotResolutions(key string) ([]string, error) {
	dots := false
	for s := range strings.SplitSeq(key, "/") {
		dots = dots || s == "." || s == ".."
	}
	if !dots {
		return nil, nil
	}
	segs := strings.Split(key, "/")
	var alts []string
	for _, merge := range []bool{false, true} {
		k := resolveDots(segs, merge)
		if k == "" {
			return nil, errInvalidURI.withMessage("The key's dot segments would resolve to the bucket itself.")
		}
		if k != key && !slices.Contains(alts, k) {
			alts = append(alts, k)
		}
	}
	return alts, nil
}

// resolveDots resolves the dot segments of a key's segments below the
// bucket, never above it; merge drops empty segments first (a hop that merges
// slashes). A key ending in a dot segment ends in a slash, as a resolved path
// does.
func resolveDots(segs []string, merge bool) string {
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "." || s == "..":
			if s == ".." && len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		case s == "" && merge && !last:
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "/")
}

// isPresigned reports whether r is signed in its query.
func isPresigned(r *http.Request) bool {
	q := r.URL.RawQuery
	return strings.Contains(q, "X-Amz-Signature=") || strings.Contains(q, "Signature=")
}

// clientIP is the client's address: the connection's, or, when the
// connection comes from a trusted proxy (WithTrustedProxies), the last
// address of X-Forwarded-For that is not one.
func (p *Proxy) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if len(p.cfg.trusted) == 0 {
		return host
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || !p.trusts(addr) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return host
		}
		host = a.String()
		if !p.trusts(a) {
			return host
		}
	}
	return host
}

func (p *Proxy) trusts(a netip.Addr) bool {
	for _, n := range p.cfg.trusted {
		if n.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// maxDeleteBody bounds the body of a DeleteObjects request the proxy reads to
// authorize its keys: 1,000 keys of 1,024 bytes, XML-escaped, fit.
const maxDeleteBody = 8 << 20

// maxDeleteKeys is S3's bound of the keys of one DeleteObjects.
const maxDeleteKeys = 1000

var errMalformedXML = s3Error(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema.")

// deleteObject is an object a DeleteObjects request names.
type deleteObject struct {
	key       string
	versioned bool // with a VersionId
}

// deleteKeys reads a DeleteObjects body (verified as it is read) to the
// objects it names, and leaves the body to forward as those same bytes: a
// plain body with their SHA-256, an aws-chunked one's checksum trailer as a
// header. The body must be read one way only (parseDelete): the upstream
// deletes what it reads, and the proxy authorized what it read.
func (b *clientBody) deleteKeys() ([]deleteObject, error) {
	if b.body == nil {
		return nil, errMalformedXML
	}
	data, err := io.ReadAll(io.LimitReader(b.body, maxDeleteBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDeleteBody {
		return nil, errMalformedXML.withMessage("The DeleteObjects body is larger than the proxy reads.")
	}
	objects, err := parseDelete(data)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	trailer := ""
	if b.chunked != nil {
		trailer = b.chunked.trailerLine()
	}
	*b = clientBody{body: readCloser{bytes.NewReader(data)}, length: int64(len(data)), payloadHash: hex.EncodeToString(sum[:]),
		decoded: b.decoded, checksumHeader: trailer}
	return objects, nil
}

// s3Namespace is the XML namespace of S3's documents.
const s3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

// parseDelete reads a DeleteObjects document strictly, so that no upstream
// can read another key from it than the proxy authorized: one Delete root
// (nothing but comments and blanks after it), Quiet and Object elements in
// it, each Object with one Key and at most one of VersionId, ETag,
// LastModifiedTime and Size; elements in S3's namespace or none; no DOCTYPE
// (entities) and no other elements. Anything else is 400 MalformedXML.
func parseDelete(data []byte) ([]deleteObject, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var (
		objects []deleteObject
		path    []string        // the open elements
		seen    map[string]bool // the children of the open Object
		text    strings.Builder // the open Key's or VersionId's text
		roots   int
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errMalformedXML
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != "" && t.Name.Space != s3Namespace {
				return nil, errMalformedXML
			}
			name := t.Name.Local
			switch len(path) {
			case 0:
				if roots++; roots > 1 || name != "Delete" {
					return nil, errMalformedXML
				}
			case 1:
				switch name {
				case "Object":
					if len(objects) == maxDeleteKeys {
						return nil, errMalformedXML.withMessage("A DeleteObjects request may name at most 1000 keys.")
					}
					seen = map[string]bool{}
				case "Quiet":
				default:
					return nil, errMalformedXML
				}
			case 2:
				if path[1] != "Object" || seen[name] {
					return nil, errMalformedXML
				}
				switch name {
				case "Key", "VersionId", "ETag", "LastModifiedTime", "Size":
					seen[name] = true
				default:
					return nil, errMalformedXML
				}
				text.Reset()
			default:
				return nil, errMalformedXML
			}
			path = append(path, name)
		case xml.EndElement:
			name := path[len(path)-1]
			switch {
			case len(path) == 2 && name == "Object":
				if !seen["Key"] {
					return nil, errMalformedXML
				}
				objects[len(objects)-1].versioned = seen["VersionId"]
			case len(path) == 3 && name == "Key":
				objects = append(objects, deleteObject{key: text.String()})
			}
			path = path[:len(path)-1]
		case xml.CharData:
			if len(path) == 3 {
				text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 && !(len(path) == 2 && path[1] == "Quiet") {
				return nil, errMalformedXML
			}
		case xml.Directive:
			return nil, errMalformedXML
		}
	}
	if roots != 1 || len(path) != 0 || len(objects) == 0 {
		return nil, errMalformedXML
	}
	return objects, nil
}

// actions are the policy actions of the S3 operations operationName names.
var actions = map[string]string{
	"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject",
	"GetObjectTagging": "s3:GetObjectTagging", "PutObjectTagging": "s3:PutObjectTagging", "DeleteObjectTagging": "s3:DeleteObjectTagging",
	"GetObjectAcl": "s3:GetObjectAcl", "PutObjectAcl": "s3:PutObjectAcl", "GetObjectAttributes": "s3:GetObjectAttributes",
	"PutObject": "s3:PutObject", "CopyObject": "s3:PutObject", "UploadPart": "s3:PutObject", "UploadPartCopy": "s3:PutObject",
	"CreateMultipartUpload": "s3:PutObject", "CompleteMultipartUpload": "s3:PutObject", "PostObject": "s3:PutObject",
	"ListParts": "s3:ListMultipartUploadParts", "AbortMultipartUpload": "s3:AbortMultipartUpload",
	"RestoreObject": "s3:RestoreObject", "DeleteObject": "s3:DeleteObject", "DeleteObjects": "s3:DeleteObject",
	"ListObjects": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "HeadBucket": "s3:ListBucket",
	"ListObjectVersions": "s3:ListBucketVersions", "ListMultipartUploads": "s3:ListBucketMultipartUploads",
	"ListBuckets": "s3:ListAllMyBuckets", "CreateBucket": "s3:CreateBucket", "DeleteBucket": "s3:DeleteBucket",
	"GetBucketAcl": "s3:GetBucketAcl", "PutBucketAcl": "s3:PutBucketAcl",
	"GetBucketCors": "s3:GetBucketCORS", "PutBucketCors": "s3:PutBucketCORS", "DeleteBucketCors": "s3:PutBucketCORS",
	"GetBucketLifecycle": "s3:GetLifecycleConfiguration", "PutBucketLifecycle": "s3:PutLifecycleConfiguration",
	"DeleteBucketLifecycle": "s3:PutLifecycleConfiguration", "GetBucketLocation": "s3:GetBucketLocation",
	"GetBucketLogging": "s3:GetBucketLogging", "PutBucketLogging": "s3:PutBucketLogging",
	"GetBucketPolicy": "s3:GetBucketPolicy", "PutBucketPolicy": "s3:PutBucketPolicy", "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
	"GetBucketTagging": "s3:GetBucketTagging", "PutBucketTagging": "s3:PutBucketTagging", "DeleteBucketTagging": "s3:PutBucketTagging",
	"GetBucketVersioning": "s3:GetBucketVersioning", "PutBucketVersioning": "s3:PutBucketVersioning",
	"GetBucketWebsite": "s3:GetBucketWebsite", "PutBucketWebsite": "s3:PutBucketWebsite", "DeleteBucketWebsite": "s3:DeleteBucketWebsite",
	"GetBucketEncryption": "s3:GetEncryptionConfiguration", "PutBucketEncryption": "s3:PutEncryptionConfiguration",
	"DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
	"GetBucketReplication":   "s3:GetReplicationConfiguration", "PutBucketReplication": "s3:PutReplicationConfiguration",
	"DeleteBucketReplication": "s3:PutReplicationConfiguration",
	"GetBucketNotification":   "s3:GetBucketNotification", "PutBucketNotification": "s3:PutBucketNotification",
	"GetBucketObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration": "s3:PutBucketObjectLockConfiguration",
	"GetBucketOwnershipControls": "s3:GetBucketOwnershipControls", "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
	"DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
	"GetBucketPublicAccessBlock":    "s3:GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
	"DeleteBucketPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
	"GetBucketAccelerate":           "s3:GetAccelerateConfiguration", "PutBucketAccelerate": "s3:PutAccelerateConfiguration",
	"GetBucketRequestPayment": "s3:GetBucketRequestPayment", "PutBucketRequestPayment": "s3:PutBucketRequestPayment",
}

// actionOf is the policy action of an S3 operation; an operation the proxy
// does not know is "s3:" and its name ("s3:Unknown", "s3:GetBucketSubresource"),
// which no action of AWS's is, so that a rule that allows what it knows denies it.
func actionOf(op string) string {
	if a, ok := actions[op]; ok {
		return a
	}
	return "s3:" + op
}
