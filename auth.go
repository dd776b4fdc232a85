package proxy

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/awschunked"
	"github.com/osproxy/proxy/internal/sigv2"
	"github.com/osproxy/proxy/internal/sigv4"
)

// identity is who sent a request, as authentication established it, and what
// the client's signature covers.
type identity struct {
	token     string // the client's access key id: verified, or taken on trust in token mode
	verified  bool   // the signature was verified (WithClientSecrets)
	anonymous bool   // no signature at all: forwarded without credentials where a bucket allows it
	presigned bool   // signed in the query (verified or, in token mode, not)
	// A verified presigned URL: its signature, which names it, and when it
	// expires (for WithPresignedUseLimit); "" otherwise.
	presignedURL string
	urlExpires   time.Time
	signed       []string           // the header names the client signed, lower case; nil in token mode
	payloadHash  string             // the client's x-amz-content-sha256 (UNSIGNED-PAYLOAD when it sent none)
	chunks       *awschunked.Signer // what verified chunk signatures chain from; nil unless the body has signed chunks
}

// mayForward reports whether a client header may go upstream: in token mode
// every allowed header, when verified only the x-amz-* headers the client signed.
func (id *identity) mayForward(canonicalName string) bool {
	if !id.verified || !strings.HasPrefix(canonicalName, "X-Amz-") {
		return true
	}
	return sigv4.HasFold(id.signed, canonicalName)
}

// authenticate identifies the client. With client secrets configured it
// verifies the SigV4 signature (header or presigned URL), which covers the
// payload hash; in token mode it only reads the access key id.
func (p *Proxy) authenticate(r *http.Request, req *s3Request) (identity, error) {
	sig, sig2, err := parseAuth(r)
	if err != nil {
		return identity{}, err
	}
	if err := p.checkRegion(sig); err != nil {
		return identity{}, err
	}
	switch {
	case sig == nil && sig2 == nil:
		return anonymous(r)
	case !p.cfg.verifying():
		return tokenMode(r, sig, sig2)
	case sig2 != nil && !p.cfg.sigV2:
		return identity{}, errInvalidRequest.withMessage("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	case sig2 != nil:
		return p.authenticateV2(r, sig2, req)
	}
	secret, err := p.clientSecret(r.Context(), sig.AccessKeyID)
	if err != nil {
		return identity{}, err
	}
	if err := sigv4.CheckTime(sig, p.cfg.now().UTC(), p.cfg.maxSkew); err != nil {
		return identity{}, err
	}
	payloadHash, err := sigv4.PayloadHash(r, sig)
	if err != nil {
		return identity{}, err
	}
	if err := sigv4.CheckSignedHeaders(r, sig); err != nil {
		return identity{}, err
	}
	key, cached := p.keys.lookup(secret, sig.Date, sig.Region, sig.Service)
	if !cached {
		key = sigv4.DeriveKey(secret, sig.Date, sig.Region, sig.Service)
	}
	if err := sigv4.Verify(r, sig, payloadHash, key); err != nil {
		return identity{}, err
	}
	if !cached {
		p.keys.store(secret, sig.Date, sig.Region, sig.Service, key)
	}
	id := identity{token: sig.AccessKeyID, verified: true, presigned: sig.Presigned, signed: sig.SignedHeaders, payloadHash: payloadHash}
	if sig.Presigned {
		t, _ := sigv4.ParseAmzDate(sig.AmzDate) // checked by checkTime
		id.presignedURL, id.urlExpires = "v4:"+sig.Signature, t.Add(sig.Expires)
	}
	if payloadHash == sigv4.StreamingSigned || payloadHash == sigv4.StreamingSignedTrailer {
		id.chunks = &awschunked.Signer{Key: key, AmzDate: sig.AmzDate, Scope: sig.Scope(), Prev: sig.Signature}
	}
	return id, nil
}

// checkRegion refuses a signature scoped to a region the proxy does not answer
// for (WithRegions), naming the region it expects as S3 does.
func (p *Proxy) checkRegion(sig *sigv4.Signature) error {
	if sig == nil || len(p.cfg.regions) == 0 || slices.Contains(p.cfg.regions, sig.Region) {
		return nil
	}
	form := sigv4.HeaderForm
	if sig.Presigned {
		form = sigv4.QueryForm
	}
	want := p.cfg.regions[0]
	return form.Credential("the region '"+sig.Region+"' is wrong; expecting '"+want+"'").WithField("Region", want)
}

// clientSecret returns the secret access key of a client's access key id: from
// WithClientKeys, or from the WithClientSecrets hook.
func (p *Proxy) clientSecret(ctx context.Context, accessKeyID string) (string, error) {
	if p.cfg.clientKeys != nil {
		if s, ok := p.cfg.clientKeys[accessKeyID]; ok {
			return s, nil
		}
		return "", ErrInvalidAccessKeyID
	}
	return callGated(ctx, p.secretsGate, p.cfg.hookTimeout, "client secrets", func(ctx context.Context) (string, error) {
		return p.cfg.secrets(ctx, accessKeyID)
	})
}

// authenticateV2 verifies a SigV2 signature (WithSigV2). Every x-amz-* header
// is signed in SigV2; the body is not, unless an x-amz-content-sha256 the
// signature covers says what it is.
func (p *Proxy) authenticateV2(r *http.Request, sig *sigv2.Signature, req *s3Request) (identity, error) {
	secret, err := p.clientSecret(r.Context(), sig.AccessKeyID)
	if err != nil {
		return identity{}, err
	}
	vhost := ""
	if req.vhost {
		vhost = req.bucket
	}
	if err := sigv2.Verify(r, sig, secret, vhost, p.cfg.now().UTC(), p.cfg.maxSkew); err != nil {
		return identity{}, err
	}
	id := identity{token: sig.AccessKeyID, verified: true, presigned: sig.Presigned, payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
	if sig.Presigned {
		exp, _ := strconv.ParseInt(sig.Expires, 10, 64) // checked by sigv2.Verify
		// The signature as verified: a '+' sent unencoded (read as ' ') and
		// one sent as %2B are the same URL, counted once.
		id.presignedURL, id.urlExpires = "v2:"+strings.ReplaceAll(sig.Signature, " ", "+"), time.Unix(exp, 0)
	}
	switch id.payloadHash {
	case "":
		id.payloadHash = sigv4.UnsignedPayload
	case sigv4.StreamingSigned, sigv4.StreamingSignedTrailer:
		return identity{}, errInvalidRequest.withMessage("Signed aws-chunked bodies need AWS Signature Version 4.")
	}
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Amz-") {
			id.signed = append(id.signed, strings.ToLower(name))
		}
	}
	slices.Sort(id.signed)
	return id, nil
}

// anonymous is the identity of a request without any signature: authorize
// lets it through only to a bucket that takes anonymous requests.
func anonymous(r *http.Request) (identity, error) {
	id := identity{anonymous: true, payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
	switch id.payloadHash {
	case "":
		id.payloadHash = sigv4.UnsignedPayload
	case sigv4.StreamingSigned, sigv4.StreamingSignedTrailer:
		return identity{}, errInvalidRequest.withMessage("Anonymous requests don't support this x-amz-content-sha256 value. Please use UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER.")
	}
	return id, nil
}

// tokenMode takes the client's access key id as its token, unverified.
func tokenMode(r *http.Request, sig *sigv4.Signature, sig2 *sigv2.Signature) (identity, error) {
	id := identity{payloadHash: r.Header.Get("X-Amz-Content-Sha256")}
	if sig != nil {
		id.token, id.presigned = sig.AccessKeyID, sig.Presigned
	} else {
		id.token, id.presigned = sig2.AccessKeyID, sig2.Presigned
	}
	if id.token == "" {
		return identity{}, errAccessDenied
	}
	if id.payloadHash == "" {
		id.payloadHash = sigv4.UnsignedPayload
	}
	return id, nil
}

// mayCarryAuth reports whether a raw query may hold one of the query
// parameters of a presigned URL that parseAuth looks for. A query without a
// percent sign names its parameters as they are written ('+' decodes to a
// space, which no such name has), so one that holds none of the names as a
// substring holds none of them: its parse is skipped, the answer unchanged.
func mayCarryAuth(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	if strings.IndexByte(rawQuery, '%') >= 0 {
		return true
	}
	for _, name := range [...]string{"X-Amz-Algorithm", "Signature", "X-Amz-Credential", "AWSAccessKeyId"} { // "Signature" covers X-Amz-Signature
		if strings.Contains(rawQuery, name) {
			return true
		}
	}
	return false
}

// parseAuth finds how the request is signed: a SigV4 signature (header or
// query), a SigV2 one, or neither (anonymous).
func parseAuth(r *http.Request) (*sigv4.Signature, *sigv2.Signature, error) {
	auth := r.Header.Get("Authorization")
	var q url.Values
	if mayCarryAuth(r.URL.RawQuery) {
		q = r.URL.Query()
	}
	presignV4 := q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential")
	presignV2 := q.Has("AWSAccessKeyId") && q.Has("Signature")
	if auth != "" && (presignV4 || presignV2) {
		return nil, nil, errInvalidArgument.withMessage("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified.")
	}
	switch {
	case strings.HasPrefix(auth, sigv4.AlgorithmV4+" "):
		sig, err := sigv4.ParseHeader(auth)
		if err != nil {
			return nil, nil, err
		}
		if sig.AmzDate, err = sigv4.RequestDate(r); err != nil {
			return nil, nil, err
		}
		if sig.AmzDate[:8] != sig.Date {
			return nil, nil, sigv4.HeaderForm.Malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
		}
		return sig, nil, nil
	case strings.HasPrefix(auth, sigv4.AlgorithmV4A+" "):
		return nil, nil, errNotImplemented.withMessage("AWS Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256.")
	case strings.HasPrefix(auth, "AWS "):
		sig2, err := sigv2.ParseHeader(auth)
		return nil, sig2, err
	case auth != "":
		return nil, nil, sigv4.UnsupportedAuth(auth)
	case presignV4:
		sig, err := sigv4.ParsePresign(q)
		return sig, nil, err
	case presignV2:
		sig2, err := sigv2.ParseQuery(q)
		return nil, sig2, err
	}
	return nil, nil, nil
}
