package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
	"github.com/osproxy/proxy/internal/s3xml"
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
	// SourceBucket and SourceKey are the object a copy or a rename reads;
	// it is asked about first: a copy s3:GetObject (s3:GetObjectVersion) of
	// the source, a rename s3:GetObject and s3:DeleteObject of it; then the
	// request's own action, with these set.
	SourceBucket, SourceKey string
	// Prefix is the prefix of a listing (ListObjects, ListObjectsV2,
	// ListObjectVersions, ListMultipartUploads), from the same reading of
	// the query that goes upstream; "" for any other operation.
	Prefix string
	// ClientIP is the client's address: the connection's, or the last one
	// X-Forwarded-For names before a proxy of WithTrustedProxies.
	ClientIP  string
	Presigned bool
	Token     string // the client's access key id, as AuthorizeFunc gets it
}

// Scope is what a Decision holds for, and so how it may be reused. A call of
// the hook is shared only by concurrent requests whose AccessRequest is equal
// in every field; an answer is reused for other requests only as its scope
// says. A rule that looks at ClientIP, Presigned, Method or a copy's source
// must answer ScopeRequest: the wider scopes say the answer holds whatever
// those are.
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
// and the key or the listing prefix (ScopeKey); without key and prefix, with
// bucketWide set, for ScopeBucket answers.
type decisionKey struct {
	token          [sha256.Size]byte
	action, bucket string
	key, prefix    string
	bucketWide     bool
}

// decisions caches the request authorizer's answers by their scope. A call
// is shared only by requests whose AccessRequest is equal in every field, and
// a cached answer is reused only within the scope it was given for.
type decisions struct {
	f     RequestAuthorizeFunc
	cache *loadingCache[decisionKey, AccessRequest, Decision]
}

func newDecisions(cfg *config) *decisions {
	if cfg.requestAuth == nil {
		return nil
	}
	c := newLoadingCache[decisionKey, AccessRequest, Decision]("request-authorization", cfg.authCacheTTL, cfg.authCacheCap, cfg)
	c.place = func(k decisionKey, d Decision) (decisionKey, time.Duration, bool) {
		ttl := d.TTL
		if ttl <= 0 {
			ttl = cfg.authCacheTTL
		}
		switch d.Scope {
		case ScopeBucket:
			k.key, k.prefix, k.bucketWide = "", "", true
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

// allowed asks for r, from the cache when an answer holds for it; otherwise
// with one call of the hook for every request equal to r that is waiting.
func (d *decisions) allowed(ctx context.Context, r AccessRequest) (bool, error) {
	k := decisionKey{token: sha256.Sum256([]byte(r.Token)), action: r.Action, bucket: r.Bucket}
	if dec, hit := d.cache.lookup(decisionKey{token: k.token, action: k.action, bucket: k.bucket, bucketWide: true}); hit {
		return dec.Allow, nil
	}
	k.key, k.prefix = r.Key, r.Prefix
	if dec, hit := d.cache.lookup(k); hit {
		return dec.Allow, nil
	}
	// Kept in the cache and in flight: not slices of the request.
	k.bucket, k.key, k.prefix = strings.Clone(k.bucket), strings.Clone(k.key), strings.Clone(k.prefix)
	dec, err := d.cache.load(ctx, k, r, func(ctx context.Context) (Decision, error) { return d.f(ctx, r) })
	if err != nil {
		return false, hookError("request authorization", err)
	}
	return dec.Allow, nil
}

// authorizeRequest asks the request authorizer (WithRequestAuthorizer) about
// the request's operation, as parseRequest named it from the query that goes
// upstream (s3op), and for a copy about reading its source first, for a
// rename about reading and deleting its source; a DeleteObjects request is
// asked about every key it names. As AWS does, it asks about more than the
// operation's own action where the request carries more: an ACL, tags or an
// object-lock setting on a write (alsoAsked). A key with dot segments is
// asked about again as a hop that resolves them would read it
// (dotResolutions). What the proxy cannot name an action for is refused, not
// forwarded under another: a method S3 does not define on the sub-resource
// (405), a query parameter S3 does not define (501).
func (p *Proxy) authorizeRequest(x *exchange) error {
	if p.decisions == nil || x.who.anonymous {
		return nil
	}
	r, op := x.in, x.req.op
	switch {
	case op.Action == "":
		return errMethodNotAllowed.withMessage("The specified method is not allowed against this resource: " +
			"the proxy knows no S3 operation " + r.Method + " of it, so it cannot ask whether it is allowed.")
	case op.Unknown != "":
		return errNotImplemented.withMessage("The query parameter " + strconv.Quote(clip(op.Unknown)) +
			" is not one S3 defines; with request authorization the proxy forwards only what it can name an action for.")
	}
	base := AccessRequest{
		Method: r.Method, Bucket: x.req.bucket, Key: x.req.key, Token: x.who.token,
		ClientIP: p.clientIP(r), Presigned: x.who.presigned,
	}
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
	// askSource asks about reading (and for a rename, deleting) the object
	// the request reads from, before its own action.
	askSource := func(bucket, key string, actions ...string) error {
		for _, action := range actions {
			src := base
			src.Action, src.Bucket, src.Key = action, bucket, key
			src.SourceBucket, src.SourceKey = bucket, key
			if err := askKey(src); err != nil {
				return err
			}
		}
		base.SourceBucket, base.SourceKey = bucket, key
		return nil
	}
	if x.req.copyBucket != "" {
		read := "s3:GetObject"
		if x.req.copyVersioned {
			read = "s3:GetObjectVersion"
		}
		if err := askSource(x.req.copyBucket, x.req.copyKey, read); err != nil {
			return err
		}
	}
	if x.req.renameKey != "" {
		if err := askSource(x.req.bucket, x.req.renameKey, "s3:GetObject", "s3:DeleteObject"); err != nil {
			return err
		}
	}
	base.Action = op.Action
	if op.Lists {
		base.Prefix = op.Prefix
	}
	if op.Name == "DeleteObjects" {
		objects, err := x.body.deleteKeys()
		if err != nil {
			return err
		}
		for _, o := range objects {
			one := base
			one.Action, one.Key = "s3:DeleteObject", o.Key
			if o.Versioned {
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
	for _, action := range alsoAsked(op.Name, x.carries) {
		also := base
		also.Action = action
		if err := askKey(also); err != nil {
			return err
		}
	}
	return nil
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

// carries reports whether the request has a header (sent as one, or hoisted
// into the query by a presigner), or its POST Object form a field, whose
// lower-case name starts with prefix. The directive headers
// (x-amz-tagging-directive) say where tags come from, not tags: they do not
// count as x-amz-tagging.
func (x *exchange) carries(prefix string) bool {
	const directive = "-directive"
	match := func(name string) bool { // case-insensitive, without allocating
		return len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) &&
			!(len(name) >= len(directive) && strings.EqualFold(name[len(name)-len(directive):], directive))
	}
	if x.form != nil {
		for _, f := range x.form.Fields {
			if match(f.Lower) {
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
	return slices.ContainsFunc(x.req.op.Headers, match)
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

var errMalformedXML = fromProtocol(s3err.MalformedXML)

// deleteKeys reads a DeleteObjects body (verified as it is read) to the
// objects it names, and leaves the body to forward as those same bytes: a
// plain body with their SHA-256, an aws-chunked one's checksum trailer as a
// header. The body must be read one way only (s3xml.ParseDelete): the upstream
// deletes what it reads, and the proxy authorized what it read.
func (b *clientBody) deleteKeys() ([]s3xml.DeleteObject, error) {
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
	objects, err := s3xml.ParseDelete(data)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	trailer := ""
	if b.chunked != nil {
		trailer = b.chunked.TrailerLine()
	}
	*b = clientBody{body: readCloser{bytes.NewReader(data)}, length: int64(len(data)), payloadHash: hex.EncodeToString(sum[:]),
		decoded: b.decoded, checksumHeader: trailer}
	return objects, nil
}
