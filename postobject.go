package proxy

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/osproxy/proxy/internal/postform"
	"github.com/osproxy/proxy/internal/sigv4"
)

// POST Object is a browser's upload: an HTML form (multipart/form-data) posted
// to the bucket, whose fields carry the key, the object's headers and a policy
// signed with the client's key; the file comes last.
//
// The proxy reads the fields (at most 20 KB of them; internal/postform reads
// the form, checks the policy and frames the upstream's form), verifies
// the policy's signature with the client's secret, checks the policy (its
// expiration, a condition for every field, each condition, the file's length
// against content-length-range), authorizes the upload as a PutObject of the
// key, and posts the upstream a form of its own: the client's fields, a policy
// with the client's conditions signed with the upstream's keys, and the file,
// streamed as it arrives. The upstream checks the conditions again.
//
// Every upstream needs a Content-Length, which the proxy announces before the
// file streams: that of the client's form, less its fields, plus the proxy's
// own. The file ends at the closing delimiter ("\r\n--boundary--"), found as
// it streams; its length is what the request's Content-Length leaves for it
// when the form ends as browsers, Go, Python and Node.js end it (a CRLF after
// the closing delimiter), and the policy's content-length-range is checked
// with that length before anything goes upstream, and again once the file
// ended elsewhere. The bytes after the closing delimiter (the epilogue),
// which S3 ignores, are ignored too: the upstream's form gets as many bytes of
// its own there. A form with a field after the file, or without a closing
// delimiter, is refused as malformed before the last byte goes upstream, so
// the upstream stores nothing.
//
// An upstream with an IAM bearer token cannot take a form (a POST form is
// signed in its policy, not with a token): the proxy answers 501
// NotImplemented for those buckets.

// isPostObject reports whether a request is POST Object: a multipart form
// posted to a bucket without a sub-resource (POST /bucket?delete is
// DeleteObjects).
func isPostObject(r *http.Request, req s3Request) bool {
	if r.Method != http.MethodPost || req.bucket == "" || req.key != "" || req.op.SubResource != "" {
		return false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

// maxPostDrain bounds what the proxy reads of a refused form's file before it
// answers: a client that is still sending the file reads an answer only once
// it has sent it (browsers and most HTTP clients), so a refusal is read to
// the end when the rest is this short; past it the connection is closed, as
// net/http does past its own 256 KiB.
const maxPostDrain = 8 << 20

// postObject answers POST Object; see the top of this file.
func (p *Proxy) postObject(x *exchange) error {
	r := x.in
	if r.ContentLength < 0 {
		return errMissingContentLength
	}
	f, err := postform.Read(r.Body, r.Header.Get("Content-Type"), r.ContentLength)
	if err == nil {
		err = p.postChecked(x, f)
	}
	if err != nil && r.ContentLength <= maxPostDrain {
		_, _ = io.Copy(io.Discard, r.Body) // bounded by the Content-Length
	}
	return err
}

// postChecked authenticates, checks and authorizes a form read up to its
// file, and hands it over to forward.
func (p *Proxy) postChecked(x *exchange, f *postform.Form) error {
	r := x.in
	var err error
	key, ok := f.Value("key")
	if !ok || key == "" {
		return postform.MissingField("key")
	}
	// S3 puts the file's name for ${filename}; the key is authorized so.
	x.req.key, x.req.postObject = strings.ReplaceAll(key, "${filename}", f.FileName), true
	x.req.op.Name, x.req.op.Action = "PostObject", "s3:PutObject"
	if len(x.req.key) > maxKeyLength {
		return errKeyTooLong
	}
	var pol *postform.Policy
	if x.who, pol, err = p.authenticatePost(r.Context(), f); err != nil {
		return err
	}
	checked := int64(-1) // the file's length the policy was checked with
	if pol != nil {
		checked = f.KnownLength()
		if err := pol.Check(f, x.req.bucket, checked); err != nil {
			return err
		}
	}
	if err := p.authorize(r.Context(), &x.who, x.req.bucket); err != nil {
		return err
	}
	if x.target, err = p.resolver.resolve(r.Context(), x.req.bucket); err != nil {
		return err
	}
	x.form = f
	if err := p.authorizeRequest(x); err != nil {
		return err
	}
	if x.out, err = p.postUpstream(x, f, pol, checked); err != nil {
		return err
	}
	p.forward(x)
	return nil
}

// authenticatePost finds who signed a form (postform's Signing) and
// verifies the signature of its policy with the client's secret (in token
// mode it takes the access key id on trust), then parses the policy; an
// anonymous form has none.
func (p *Proxy) authenticatePost(ctx context.Context, f *postform.Form) (identity, *postform.Policy, error) {
	signing, err := f.Signing()
	if err != nil {
		return identity{}, nil, err
	}
	policy, _ := f.Value("policy")
	var token string
	var check func(secret string) bool
	switch signing {
	case postform.SigV4:
		sig, err := f.Credential(p.cfg.regions)
		if err != nil {
			return identity{}, nil, err
		}
		token = sig.AccessKeyID
		signature, _ := f.Value("x-amz-signature")
		check = func(secret string) bool {
			key, cached := p.keys.lookup(secret, sig.Date, sig.Region, sig.Service)
			if !cached {
				key = sigv4.DeriveKey(secret, sig.Date, sig.Region, sig.Service)
			}
			ok := sigv4.EqualConstantTime([]byte(postform.SignatureV4(key, policy)), signature)
			if ok && !cached { // as for requests: a key is kept once a signature verified with it
				p.keys.store(secret, sig.Date, sig.Region, sig.Service, key)
			}
			return ok
		}
	case postform.SigV2:
		if p.cfg.verifying() && !p.cfg.sigV2 {
			return identity{}, nil, errInvalidRequest.withMessage("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
		}
		token, _ = f.Value("awsaccesskeyid")
		signature, _ := f.Value("signature")
		check = func(secret string) bool {
			return sigv4.EqualConstantTime([]byte(postform.SignatureV2(secret, policy)), signature)
		}
	default:
		return identity{anonymous: true, payloadHash: sigv4.UnsignedPayload}, nil, nil
	}
	if token == "" {
		return identity{}, nil, errAccessDenied
	}
	id := identity{token: token, payloadHash: sigv4.UnsignedPayload}
	if p.cfg.verifying() {
		secret, err := p.clientSecret(ctx, token)
		if err != nil {
			return identity{}, nil, err
		}
		if !check(secret) {
			return identity{}, nil, errSignatureMismatch
		}
		id.verified = true
	}
	pol, err := postform.ParsePolicy(policy, p.cfg.now())
	if err != nil {
		return identity{}, nil, err
	}
	return id, pol, nil
}

// postUpstream builds the upstream request of a form. An anonymous form goes
// as it came, without credentials; a signed one as a form of the proxy's,
// signed with the bucket's HMAC keys, its file's length checked again
// against the policy once the file ended, unless it is the length checked
// before it streamed.
func (p *Proxy) postUpstream(x *exchange, f *postform.Form, pol *postform.Policy, checked int64) (upstream, error) {
	r, t := x.in, x.target
	out := upstream{url: upstreamURL(t, ""), header: make(http.Header, 4)}
	if v := r.Header.Values("Origin"); len(v) > 0 {
		out.header["Origin"] = v
	}
	out.header.Set("Accept-Encoding", "identity")
	if x.who.anonymous {
		out.header.Set("Content-Type", r.Header.Get("Content-Type"))
		out.body = readCloser{io.MultiReader(bytes.NewReader(f.Raw), r.Body)}
		out.length = r.ContentLength
		return out, nil
	}
	if t.creds.APIKey != "" {
		return upstream{}, errNotImplemented.withMessage("POST Object (browser form upload) is not implemented for this bucket: its object store takes IAM bearer tokens, which cannot sign a form's policy. Upload with PUT (a presigned PUT URL) instead.")
	}
	creds, err := p.hmacKeys(r.Context(), t)
	if err != nil {
		return upstream{}, err
	}
	now := p.cfg.now().UTC()
	date := now.Format(sigv4.AmzDateFormat)
	o := postform.Onward{Auth: [][2]string{
		{"x-amz-algorithm", sigv4.AlgorithmV4},
		{"x-amz-credential", creds.AccessKeyID + "/" + date[:8] + "/" + t.region() + "/s3/aws4_request"},
		{"x-amz-date", date},
	}}
	if creds.SessionToken != "" {
		o.Auth = append(o.Auth, [2]string{"x-amz-security-token", creds.SessionToken})
	}
	// The key the proxy authorized is the one the upstream gets: with
	// ${filename} put in here, not left to an upstream that may not put it
	// (versitygw stores it as it is) or put another name (a base name).
	if sent, _ := f.Value("key"); sent != x.req.key {
		o.Key = x.req.key
	}
	if o.Policy, err = pol.Onward(o.Auth, o.Key); err != nil {
		return upstream{}, errInternal.with(err)
	}
	o.Signature = postform.SignatureV4(p.keys.signingKey(creds.SecretAccessKey, date[:8], t.region(), "s3"), o.Policy)
	o.Check = func(n int64) error {
		if n == checked { // checked before the file streamed
			return nil
		}
		return pol.LengthError(n)
	}
	contentType, body, length := f.Reframe(r.Body, o)
	out.header.Set("Content-Type", contentType)
	out.body = readCloser{body}
	out.length = length
	return out, nil
}
