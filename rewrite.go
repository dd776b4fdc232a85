package proxy

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"

	"github.com/osproxy/proxy/internal/awschunked"
	"github.com/osproxy/proxy/internal/sigv4"
)

// upstream is the upstream request, built and signed before the hand-off to
// the reverse proxy, which cannot fail any more.
type upstream struct {
	url    *url.URL
	header http.Header
	body   io.ReadCloser
	length int64
}

// buildUpstream builds the upstream request of a client request for bucket t
// and signs it: path-style becomes virtual-hosted (unless t is path-style),
// the headers the client may forward are kept, the body is framed for the
// upstream and the request is signed with t's HMAC keys (signHMAC) or carries
// its IAM bearer token (signBearer).
func (p *Proxy) buildUpstream(r *http.Request, req s3Request, id *identity, b *clientBody, t *target) (upstream, error) {
	if t.endpoint.PathStyle && leavesBucket(req.key) {
		return upstream{}, errInvalidURI.withMessage("The key's dot segments would leave the bucket on this bucket's path-style upstream.")
	}
	u := upstreamURL(t, req.key)
	u.RawQuery = upstreamQuery(r.URL.RawQuery)
	bearer := t.creds.APIKey != ""
	f, err := p.frame(b, bearer || id.anonymous, t.endpoint.PlainUploads)
	if err != nil {
		return upstream{}, err
	}
	h := upstreamHeaders(r, req, id, b, f, t)
	var chain *awschunked.Chain
	switch {
	case id.anonymous:
		signNothing(h, f, r.Header.Get("X-Amz-Content-Sha256") != "")
	case bearer:
		err = p.signBearer(r.Context(), h, t, f)
	default:
		chain, err = p.signHMAC(r.Context(), r.Method, u, h, f, t)
	}
	if err != nil {
		return upstream{}, err
	}
	out := upstream{url: u, header: h, body: f.body, length: f.length}
	if f.reframe {
		// With a core to spare, signed chunks are hashed beside the copy.
		ahead := chain != nil && b.length >= minSideHash && runtime.GOMAXPROCS(0) > 1
		out.body = awschunked.NewEncoder(b.chunked, b.trailer, chain, f.chunk, ahead)
	}
	// Added after signing: a hop in between may change it.
	if ae := r.Header.Values("Accept-Encoding"); len(ae) > 0 {
		h["Accept-Encoding"] = ae
	} else {
		h.Set("Accept-Encoding", "identity")
	}
	return out, nil
}

// signNothing leaves an anonymous request without credentials: the upstream's
// public access rules decide. A payload hash the client sent goes on, so the
// upstream checks it; a body framed again declares its payload method.
func signNothing(h http.Header, f framing, clientHash bool) {
	if clientHash || f.reframe {
		h.Set("X-Amz-Content-Sha256", f.payloadHash)
	}
}

// framing is how a client body goes upstream: as received (verified as it
// streams), or decoded from aws-chunked and framed again by a chunkEncoder.
type framing struct {
	body        io.ReadCloser // the body as it goes; nil when there is none or it is framed again
	length      int64         // its length upstream; -1 when unknown
	payloadHash string        // x-amz-content-sha256 upstream
	reframe     bool          // framed again as aws-chunked in chunks of chunk bytes
	chunk       int
}

// frame decides how b goes upstream. An aws-chunked body is framed again when
// it carried a checksum trailer (which the upstream then stores, as it would
// from the client) or signed chunks (signed again for the upstream's keys; a
// request signed with no key, bearer or anonymous, sends the plain body). Either way the
// upstream itself can tell a cut body from a complete one. Signed chunks keep
// the client's chunk size where they can, so that each is hashed once. For an
// upstream of plain uploads (Endpoint.PlainUploads) an aws-chunked body goes
// decoded, its trailer verified here: one the proxy cannot verify is refused.
func (p *Proxy) frame(b *clientBody, keyless, plain bool) (framing, error) {
	f := framing{body: b.body, length: b.length, payloadHash: b.payloadHash}
	switch {
	case p.cfg.upstreamHashes && !keyless && b.unchecked != nil:
		f.body = b.unchecked // the upstream signature carries the client's hash: the upstream checks it
	case b.unchecked != nil && (b.length < 0 || b.length >= minSideHash) && runtime.GOMAXPROCS(0) > 1:
		// A core to spare: the body is hashed beside its copy upstream.
		want, _ := hex.DecodeString(b.payloadHash) // checked by openBody
		sh := newSideHash(b.unchecked, b.length, want)
		f.body = readerCloser{newHoldback(sh), sh}
	}
	if b.chunked != nil && plain {
		if a := awschunked.LookupChecksum(b.trailer); b.trailer != "" && (a == nil || a.New == nil) {
			return f, errUnverifiableTrailer(b.trailer)
		}
	} else if b.chunked != nil && (b.trailer != "" || b.signedChunks && !keyless) {
		f.body, f.reframe, f.chunk = nil, true, awschunked.ChunkSize
		f.payloadHash = sigv4.StreamingUnsigned
		if b.trailer == "" {
			f.payloadHash = sigv4.StreamingSigned
			var err error
			if f.chunk, err = b.chunked.FirstChunkSize(); err != nil {
				return f, err
			}
		}
		f.length = awschunked.EncodedLength(b.length, f.chunk, f.payloadHash == sigv4.StreamingSigned, awschunked.TrailerLength(b.trailer))
	}
	if f.length == 0 {
		f.body = nil
	}
	return f, nil
}

// errUnverifiableTrailer refuses an aws-chunked body whose trailer checksum
// the proxy cannot compute, for an upstream that gets the body decoded: it
// would go unchecked.
func errUnverifiableTrailer(trailer string) *Error {
	return errInvalidRequest.withMessage("The " + clip(trailer) + " trailer cannot be verified for this bucket, " +
		"whose upstream takes uploads without aws-chunked framing; send the checksum as a header, or use CRC32, " +
		"CRC32C, CRC64NVME, SHA1, SHA256, MD5 or SHA512.")
}

// upstreamHeaders returns the headers of the upstream request before signing:
// the client's end-to-end headers it may forward (see forwardedHeader and
// identity.mayForward) and the framing headers of f.
func upstreamHeaders(r *http.Request, req s3Request, id *identity, b *clientBody, f framing, t *target) http.Header {
	decoded := b.decoded
	h := make(http.Header, len(r.Header))
	for name, values := range r.Header {
		if !forwardedHeader(name) || !id.mayForward(name) {
			continue
		}
		if decoded && name == "Content-Encoding" {
			if values = stripAWSChunked(values); values == nil {
				continue // set below when the body is framed again
			}
		}
		if decoded && !f.reframe && b.checksumHeader == "" && name == "X-Amz-Sdk-Checksum-Algorithm" {
			continue // the checksum travelled in the trailer and was verified here
		}
		h[name] = values
	}
	if name, value, ok := strings.Cut(b.checksumHeader, ":"); ok {
		h.Set(name, value)
	}
	if t.creds.ServiceInstanceID != "" && r.Method == http.MethodPut && req.key == "" && r.URL.RawQuery == "" {
		h.Set("Ibm-Service-Instance-Id", t.creds.ServiceInstanceID)
	}
	if f.reframe {
		h.Set("Content-Encoding", strings.Join(append([]string{"aws-chunked"}, stripAWSChunked(r.Header.Values("Content-Encoding"))...), ","))
		h.Set("X-Amz-Decoded-Content-Length", strconv.FormatInt(b.length, 10))
		if b.trailer != "" {
			h.Set("X-Amz-Trailer", b.trailer)
		}
	}
	return h
}

// upstreamURL builds the URL of a request for key in t's bucket:
// virtual-hosted https://<bucket>.<host>[:port]/<key> by default, or path-style
// https://<host>[:port]/<bucket>/<key>. The query is set by the caller.
func upstreamURL(t *target, key string) *url.URL {
	u := &url.URL{Scheme: t.scheme, Host: t.host}
	switch {
	case !t.endpoint.PathStyle:
		u.Path = "/" + key
	case key == "":
		u.Path = "/" + t.bucket
	default:
		u.Path = "/" + t.bucket + "/" + key
	}
	u.RawPath = u.Path
	if enc := sigv4.EncodeKey(u.Path[1:]); enc != u.Path[1:] {
		u.RawPath = "/" + enc
	}
	return u
}

// upstreamHost returns the scheme and host of the upstream URLs of a bucket
// at endpoint e; see upstreamURL.
func upstreamHost(e Endpoint, bucket string) (scheme, host string) {
	scheme, host = e.Scheme, e.Host
	if scheme == "" {
		scheme = "https"
	}
	if e.Port != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(e.Port))
	}
	if !e.PathStyle {
		host = bucket + "." + host
	}
	return scheme, host
}

// forwardedHeader reports whether a client request header is an end-to-end
// header passed to the upstream. Authentication headers, hop-by-hop headers and
// the aws-chunked framing headers are never forwarded; the proxy sets its own.
func forwardedHeader(canonicalName string) bool {
	switch canonicalName {
	case "Content-Type", "Content-Md5", "Content-Encoding", "Content-Language",
		"Content-Disposition", "Cache-Control", "Expires", "Range",
		"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
		"Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers":
		return true
	case "X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Security-Token",
		"X-Amz-Decoded-Content-Length", "X-Amz-Trailer", "X-Amz-User-Agent":
		return false
	}
	return strings.HasPrefix(canonicalName, "X-Amz-")
}

// stripAWSChunked removes the aws-chunked coding from a Content-Encoding value;
// what remains (e.g. "gzip") describes the stored object.
func stripAWSChunked(values []string) []string {
	var out []string
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if part != "" && !strings.EqualFold(part, "aws-chunked") {
				out = append(out, part)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return []string{strings.Join(out, ",")}
}

// presignParams are the query parameters of a presigned request; they are
// never forwarded upstream, in any case or encoding.
var presignParams = [...]string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
	"X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId", "Signature", "Expires",
}

// isPresignParam reports whether the raw (encoded) name of a query parameter
// is one of presignParams, ignoring case.
func isPresignParam(rawName string) bool {
	name := queryName(rawName)
	for _, p := range presignParams {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

// upstreamQuery returns the client's raw query without presign parameters,
// keeping the client's encoding of everything else.
func upstreamQuery(rawQuery string) string {
	strip := false
	for part := range strings.SplitSeq(rawQuery, "&") {
		if name, _, _ := strings.Cut(part, "="); isPresignParam(name) {
			strip = true
			break
		}
	}
	if !strip {
		return rawQuery
	}
	var b strings.Builder
	for part := range strings.SplitSeq(rawQuery, "&") {
		if name, _, _ := strings.Cut(part, "="); part == "" || isPresignParam(name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

// signHMAC signs the upstream request (method, u, h) with t's HMAC keys (static
// or its provider's, hmacKeys) for
// the payload hash of f. For signed aws-chunked bodies it returns the chain the
// upstream chunk signatures follow, seeded with the request's signature.
func (p *Proxy) signHMAC(ctx context.Context, method string, u *url.URL, h http.Header, f framing, t *target) (*awschunked.Chain, error) {
	keys, err := p.hmacKeys(ctx, t)
	if err != nil {
		return nil, err
	}
	if keys.signer == nil { // a target not made by newTarget
		return nil, errInternal.with(errors.New("upstream keys without a signer"))
	}
	h.Set("X-Amz-Content-Sha256", f.payloadHash)
	sr := &http.Request{Method: method, URL: u, Host: u.Host, Header: h, ContentLength: max(f.length, 0)}
	if err := keys.signer.SignHTTP(ctx, keys.Credentials, sr, f.payloadHash, "s3", t.region(), p.cfg.now()); err != nil {
		return nil, errInternal.with(err)
	}
	if f.payloadHash != sigv4.StreamingSigned {
		return nil, nil
	}
	return p.seedChain(sr, keys.SecretAccessKey)
}

// seedChain computes the seed signature of an upstream request signed for
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD, from the request as signed (its signed
// headers, date and scope), and starts the upstream chunk chain with it. The
// signer's own signature must be the same: a difference would have every
// chunk refused upstream, so it is an internal error here instead.
func (p *Proxy) seedChain(sr *http.Request, secret string) (*awschunked.Chain, error) {
	sig, err := sigv4.ParseHeader(sr.Header.Get("Authorization"))
	if err != nil {
		return nil, errInternal.with(fmt.Errorf("upstream signature: %w", err))
	}
	sig.AmzDate = sr.Header.Get("X-Amz-Date")
	key := p.keys.signingKey(secret, sig.Date, sig.Region, sig.Service)
	seed, err := sigv4.SignatureOf(sr, sig, sigv4.StreamingSigned, key)
	if err != nil {
		return nil, errInternal.with(fmt.Errorf("upstream signature: %w", err))
	}
	if seed != sig.Signature {
		return nil, errInternal.with(errors.New("upstream signature: the signer's canonical request and the proxy's differ"))
	}
	chain, _ := awschunked.NewChain(&awschunked.Signer{Key: key, AmzDate: sig.AmzDate, Scope: sig.Scope(), Prev: seed})
	return chain, nil
}
