package integration_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

// S3 fidelity, the rest (issue 24): what S3 refuses, the proxy refuses, with
// S3's status, code, message and the field at stake. Each request goes
// straight to versitygw and through the proxy (with anonymous buckets, SigV2
// and a region configured, as a user fronting that server would). The
// reference is AWS S3: where versitygw answers otherwise, the proxy must give
// AWS's answer and versitygw's is logged.

// itgS3Answer is what a test expects of an answer, or AWS S3's own.
type itgS3Answer = testkit.S3Answer

// itgAnswerFields sends req and returns its status, S3 code, message and the
// named fields of its error body ("-" for a missing one).
func itgAnswerFields(s *itgSide, req *http.Request, fields ...string) string {
	resp, err := s.hc.Do(req)
	if err != nil {
		return "ERR " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Code, Message string
		Extra         []struct {
			XMLName xml.Name
			Value   string `xml:",chardata"`
		} `xml:",any"`
	}
	_ = xml.Unmarshal(body, &e)
	a := itgS3Answer{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	for _, name := range fields {
		v := "-"
		for _, x := range e.Extra {
			if x.XMLName.Local == name {
				v = x.Value
			}
		}
		a.Fields = append(a.Fields, name+"="+v)
	}
	return a.String()
}

// itgRefusal is one request sent to both sides, and AWS S3's answer to it.
type itgRefusal struct {
	name   string
	req    func(s *itgSide) *http.Request
	fields []string // the fields at stake
	aws    string   // AWS S3's answer (itgS3Answer.String)
	stored string   // a key that must not exist afterwards ("" for none)
}

// checkRefusals sends each request to both sides: the proxy must answer as
// AWS S3 does; versitygw's answer is logged where it differs. A request
// that must store nothing is followed by a HEAD of its key.
func (e *itgEnv) checkRefusals(t *testing.T, cases []itgRefusal) {
	t.Helper()
	ctx := t.Context()
	for _, c := range cases {
		d := itgAnswerFields(e.direct, c.req(e.direct), c.fields...)
		p := itgAnswerFields(e.proxy, c.req(e.proxy), c.fields...)
		if p != c.aws {
			t.Errorf("%s:\n proxy  %s\n AWS S3 %s", c.name, p, c.aws)
		}
		if d != c.aws {
			t.Logf("%s: versitygw answers %s where AWS S3 answers %s", c.name, d, c.aws)
		}
		if c.stored != "" {
			if got := itgHead(ctx, e.proxy.c, e.proxy.buckets[0], c.stored); got != "ERR 404 NotFound" {
				t.Errorf("%s: the proxy's upstream stored %s: %s", c.name, c.stored, got)
			}
		}
	}
}

// newItgFrontEnv is the environment of the run: anonymous buckets,
// SigV2 and a region, plus opts.
func newItgFrontEnv(t *testing.T, opts ...proxy.Option) *itgEnv {
	opts = append([]proxy.Option{proxy.WithRegions(itgRegion), proxy.WithSigV2(true)}, opts...)
	e := newItgEnv(t, itgConfig{anonymous: true, opts: opts})
	e.createBuckets(t)
	return e
}

// itgPresignPut presigns a PUT of key for the side, signing the headers in
// signed (as SDK presigners sign the x-amz-* headers they may not hoist), and
// returns the request with body, the signed headers and the headers in
// unsigned added.
func itgPresignPut(ctx context.Context, s *itgSide, key string, signed, unsigned http.Header, body string) *http.Request {
	u, _ := url.Parse(s.base + "/" + s.buckets[0] + "/" + key)
	q := u.Query()
	q.Set("X-Amz-Expires", "600")
	u.RawQuery = q.Encode()
	r := &http.Request{Method: http.MethodPut, URL: u, Host: u.Host, Header: signed.Clone()}
	if r.Header == nil {
		r.Header = http.Header{}
	}
	payloadHash := "UNSIGNED-PAYLOAD" // or the one the URL signs, as the SDKs' presigners take it
	if v := r.Header.Get("X-Amz-Content-Sha256"); v != "" {
		payloadHash = v
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signedURL, signedHeader, err := signer.PresignHTTP(ctx, aws.Credentials{AccessKeyID: s.key, SecretAccessKey: s.secret}, r, payloadHash, "s3", itgRegion, time.Now())
	if err != nil {
		panic(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, signedURL, strings.NewReader(body))
	for k, v := range signedHeader {
		if !strings.EqualFold(k, "Host") {
			req.Header[k] = v
		}
	}
	for k, v := range unsigned {
		req.Header[k] = v
	}
	return req
}

// itgUnsignedHeaders are x-amz-* headers a client may add to a presigned PUT
// that did not sign them (testkit.UnsignedHeaders).
func itgUnsignedHeaders(copySource string) []http.Header { return testkit.UnsignedHeaders(copySource) }

// itgNotSigned is AWS S3's answer to a request with unsigned x-amz-* headers.
func itgNotSigned(names string) string { return testkit.NotSigned(names) }

// headerNames is the lowercase names of h, sorted, as HeadersNotSigned lists them.
func headerNames(h http.Header) string { return testkit.HeaderNames(h) }

// TestIntegrationPresignedUnsignedHeaders (issue 24, 1): a presigned PUT
// with x-amz-* headers its URL did not sign is refused as S3 refuses it,
// naming them, and nothing is stored; the same headers signed by the URL go
// through. An unsigned x-amz-content-sha256, which AWS's CRT signer sends
// with presigned requests and S3 takes, goes through.
func TestIntegrationPresignedUnsignedHeaders(t *testing.T) {
	t.Parallel()
	e := newItgFrontEnv(t)
	ctx := t.Context()
	e.both(t, "put the copy source", "ok", func(s *itgSide) string { return itgPut(ctx, s.c, s.buckets[0], "src", []byte("source"), nil) })
	var cases []itgRefusal
	for i, h := range itgUnsignedHeaders("") {
		key := fmt.Sprintf("unsigned-%d", i)
		cases = append(cases, itgRefusal{
			name: "presigned PUT with unsigned " + headerNames(h),
			req: func(s *itgSide) *http.Request {
				h := h.Clone()
				if _, ok := h["X-Amz-Copy-Source"]; ok {
					h.Set("X-Amz-Copy-Source", s.buckets[0]+"/src")
				}
				return itgPresignPut(ctx, s, key, nil, h, "presigned body")
			},
			fields: []string{"HeadersNotSigned"},
			aws:    itgNotSigned(headerNames(h)),
			stored: key,
		})
	}
	cases = append(cases, itgRefusal{
		name: "presigned PUT signing x-amz-acl, with unsigned x-amz-tagging",
		req: func(s *itgSide) *http.Request {
			return itgPresignPut(ctx, s, "half-signed", http.Header{"X-Amz-Acl": {"private"}}, http.Header{"X-Amz-Tagging": {"a=b"}}, "x")
		},
		fields: []string{"HeadersNotSigned"},
		aws:    itgNotSigned("x-amz-tagging"),
		stored: "half-signed",
	})
	e.checkRefusals(t, cases)
	for _, s := range e.sides() {
		if got := itgHead(ctx, s.c, s.buckets[0], "unsigned-2"); got != "ERR 404 NotFound" {
			t.Errorf("%s: an unsigned x-amz-copy-source copied: %s", s.name, got)
		}
	}

	// The same headers, signed by the URL, go through and are stored.
	e.both(t, "presigned PUT signing x-amz-meta-note", "200", func(s *itgSide) string {
		return itgDo(s, itgPresignPut(ctx, s, "signed", http.Header{"X-Amz-Meta-Note": {"signed"}}, nil, "presigned body"))
	})
	e.both(t, "the signed metadata is stored", `ok size 14, type "binary/octet-stream", meta {note=signed}`, func(s *itgSide) string {
		return itgHead(ctx, s.c, s.buckets[0], "signed")
	})
	// x-amz-content-sha256 unsigned: S3 takes it (the CRT sends it), and the
	// proxy neither reads nor forwards it. versitygw refuses it.
	out := map[string]string{}
	for _, s := range e.sides() {
		out[s.name] = itgDo(s, itgPresignPut(ctx, s, "sha", nil, http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}, "presigned body"))
	}
	require.Equal(t, "200", out["proxy"], "presigned PUT with an unsigned x-amz-content-sha256")
	if out["direct"] != "200" {
		t.Logf("presigned PUT with an unsigned x-amz-content-sha256: versitygw answers %s where AWS S3 answers 200", out["direct"])
	}
	for _, key := range []string{"src", "signed", "sha"} {
		for _, s := range e.sides() {
			_ = itgDelete(ctx, s.c, s.buckets[0], key)
		}
	}
	e.deleteBuckets(t)
}

// TestIntegrationMalformedDate (issue 24, 2): a header-signed request whose
// x-amz-date is not a date is refused with 403, as S3 refuses it, not as a
// malformed credential (400).
func TestIntegrationMalformedDate(t *testing.T) {
	t.Parallel()
	e := newItgFrontEnv(t)
	ctx := t.Context()
	noDate := itgS3Answer{Status: 403, Code: "AccessDenied", Message: "AWS authentication requires a valid Date or x-amz-date header"}.String()
	var cases []itgRefusal
	for _, date := range []string{"yesterday", time.Now().UTC().Format("20060102"), time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Format(http.TimeFormat)} {
		cases = append(cases, itgRefusal{
			name: "x-amz-date " + date,
			req: func(s *itgSide) *http.Request {
				r, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/"+s.buckets[0]+"/dated", strings.NewReader("x"))
				_ = itgSign(ctx, s, r, itgSHA256([]byte("x")))
				r.Header.Set("X-Amz-Date", date)
				return r
			},
			aws:    noDate,
			stored: "dated",
		})
	}
	e.checkRefusals(t, cases)
	e.deleteBuckets(t)
}

// TestIntegrationPostObjectEpilogue (issue 24, 3): bytes after a form's
// closing delimiter are ignored, as S3 ignores them: the file is stored as
// sent, through the proxy as straight to versitygw.
func TestIntegrationPostObjectEpilogue(t *testing.T) {
	t.Parallel()
	e := newItgFrontEnv(t)
	ctx := t.Context()
	file := itgRandom(100_000, 24)
	for _, c := range []struct {
		name string
		edit func(body []byte) []byte
	}{
		{"bytes after the closing delimiter", func(b []byte) []byte { return append(b, "trailing bytes\r\n"...) }},
		{"a part after the closing delimiter", func(b []byte) []byte {
			return append(b, "--"+itgBoundaryOf(b)+"\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\npublic-read\r\n"...)
		}},
		// versitygw answers 500 to a form without it, straight or through
		// the proxy, which forwards its form ended as the client's is; AWS
		// S3 takes it (the proxy's own answer: TestPostObjectEpilogue).
		{"no CRLF after the closing delimiter", func(b []byte) []byte { return bytes.TrimSuffix(b, []byte("\r\n")) }},
	} {
		key := "epilogue/" + strings.ReplaceAll(c.name, " ", "-")
		e.both(t, c.name, "204 etag=true Location <bucket>/"+url.PathEscape(key), func(s *itgSide) string {
			edited := *s
			edited.hc = &http.Client{Transport: itgBodyEdit{base: s.hc.Transport, edit: c.edit}}
			resp, body, err := itgPostSigned(ctx, &edited, s.buckets[0], itgForm{Key: key, File: file})
			return itgPostOutcome(s, s.buckets[0], resp, body, err)
		})
		e.both(t, c.name+": the file is stored as sent", "ok 100000 bytes, equal", func(s *itgSide) string {
			return itgGet(ctx, s.c, s.buckets[0], key, "", file)
		})
		e.both(t, c.name+": delete", "ok", func(s *itgSide) string { return itgDelete(ctx, s.c, s.buckets[0], key) })
	}
	e.deleteBuckets(t)
}

// itgBoundaryOf is the boundary of a multipart body: its first line less "--".
func itgBoundaryOf(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return strings.TrimPrefix(string(line), "--")
}

// itgBodyEdit is a transport that edits each request's body before it goes.
type itgBodyEdit struct {
	base http.RoundTripper
	edit func([]byte) []byte
}

func (t itgBodyEdit) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	body = t.edit(body)
	r = r.Clone(r.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return t.base.RoundTrip(r)
}

// TestIntegrationTruncatedStreamingBodies (issue 24, 4): an aws-chunked body
// that ends early (in a chunk, before the final chunk, before its declared
// trailer or the trailer's signature), or that holds fewer bytes than it
// declares, is S3's IncompleteBody in S3's words, signed or not, and nothing
// is stored; a body changed inside a signed chunk stays SignatureDoesNotMatch.
func TestIntegrationTruncatedStreamingBodies(t *testing.T) {
	t.Parallel()
	e := newItgFrontEnv(t)
	ctx := t.Context()
	data := itgRandom(8192+100, 24) // chunks of 8 KiB, versitygw's minimum
	crc := "x-amz-checksum-crc32:" + itgCRC32(data)
	incomplete := itgS3Answer{Status: 400, Code: "IncompleteBody", Message: "You did not provide the number of bytes specified by the Content-Length HTTP header"}.String()
	mismatch := itgS3Answer{Status: 403, Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}.String()
	const (
		unsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
		signed          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
		signedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	)
	// cut returns the body up to where at finds in it.
	type cutFunc func(body []byte) []byte
	before := func(s string) cutFunc {
		return func(b []byte) []byte { return b[:bytes.LastIndex(b, []byte(s))] }
	}
	var cases []itgRefusal
	for _, c := range []struct {
		name, payload string
		cut           cutFunc
		declared      int // x-amz-decoded-content-length; 0 for len(data)
		flip          bool
		aws           string
	}{
		{"unsigned trailer, ends inside a chunk", unsignedTrailer, func(b []byte) []byte { return b[:5000] }, 0, false, incomplete},
		{"unsigned trailer, ends before the final chunk", unsignedTrailer, before("0\r\n" + crc), 0, false, incomplete},
		{"unsigned trailer, ends before the declared trailer", unsignedTrailer, before(crc), 0, false, incomplete},
		{"unsigned trailer, ends inside the trailer", unsignedTrailer, func(b []byte) []byte { return b[:bytes.LastIndex(b, []byte(crc))+25] }, 0, false, incomplete},
		{"unsigned trailer, fewer bytes than declared", unsignedTrailer, nil, len(data) + 1, false, incomplete},
		{"signed, ends inside a chunk", signed, func(b []byte) []byte { return b[:5000] }, 0, false, incomplete},
		{"signed, ends before the final chunk", signed, before("0;chunk-signature="), 0, false, incomplete},
		{"signed, fewer bytes than declared", signed, nil, len(data) + 1, false, incomplete},
		{"signed trailer, ends before the declared trailer", signedTrailer, before(crc), 0, false, incomplete},
		{"signed trailer, ends before the trailer's signature", signedTrailer, before("x-amz-trailer-signature:"), 0, false, incomplete},
		{"signed, a byte changed inside a chunk", signed, nil, 0, true, mismatch},
	} {
		key := "cut/" + strings.NewReplacer(" ", "-", ",", "", "'", "").Replace(c.name)
		cases = append(cases, itgRefusal{
			name: c.name,
			req: func(s *itgSide) *http.Request {
				declared := c.declared
				if declared == 0 {
					declared = len(data)
				}
				h := http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {fmt.Sprint(declared)}}
				if c.payload != signed {
					h.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
				}
				trailer := crc
				if c.payload == signed {
					trailer = ""
				}
				return itgChunkedPut(ctx, s, key, c.payload, h, data, trailer, func(b []byte) []byte {
					if c.flip {
						b = bytes.Clone(b)
						b[len(b)/2] ^= 1
					}
					if c.cut != nil {
						b = c.cut(b)
					}
					return b
				})
			},
			aws:    c.aws,
			stored: key,
		})
	}
	e.checkRefusals(t, cases)
	for _, s := range e.sides() { // versitygw stores some of them
		for _, c := range cases {
			_ = itgDelete(ctx, s.c, s.buckets[0], c.stored)
		}
	}
	e.deleteBuckets(t)
}

// itgChunkedPut builds a PutObject of data as an aws-chunked body in 8 KiB
// chunks (payload: unsigned with the trailer, or signed in a chain from the
// request's signature, with the trailer and its signature when trailer is
// not ""), edits the body, and signs the request for the edited body's
// length.
func itgChunkedPut(ctx context.Context, s *itgSide, key, payload string, h http.Header, data []byte, trailer string, edit func([]byte) []byte) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/"+s.buckets[0]+"/"+key, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	now := time.Now().UTC()
	var body []byte
	if payload == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
		body = edit(itgAWSChunked(data, 8192, trailer))
		r.ContentLength = int64(len(body))
		_ = itgSignAt(ctx, s, r, payload, now)
	} else {
		// The length of the body does not depend on the signatures: sign
		// once for it, then frame with the seed signature.
		size := len(edit(itgSignedChunks(s, strings.Repeat("0", 64), now, data, trailer)))
		r.ContentLength = int64(size)
		_ = itgSignAt(ctx, s, r, payload, now)
		_, seed, _ := strings.Cut(r.Header.Get("Authorization"), "Signature=")
		body = edit(itgSignedChunks(s, seed, now, data, trailer))
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return r
}

// itgSignedChunks frames data in 8 KiB chunks each signed in a chain from
// seed, then, when trailer is not "", the trailer and its signature.
func itgSignedChunks(s *itgSide, seed string, now time.Time, data []byte, trailer string) []byte {
	date := now.Format("20060102")
	scope := date + "/" + itgRegion + "/s3/aws4_request"
	key := itgHMAC(itgHMAC(itgHMAC(itgHMAC([]byte("AWS4"+s.secret), date), itgRegion), "s3"), "aws4_request")
	prev := seed
	next := func(algo string, digest []byte) string {
		sts := algo + "\n" + now.Format("20060102T150405Z") + "\n" + scope + "\n" + prev + "\n"
		if algo == "AWS4-HMAC-SHA256-PAYLOAD" {
			sts += itgSHA256(nil) + "\n"
		}
		prev = hex.EncodeToString(itgHMAC(key, sts+hex.EncodeToString(digest)))
		return prev
	}
	var b bytes.Buffer
	for rest := data; ; {
		chunk := rest[:min(8192, len(rest))]
		rest = rest[len(chunk):]
		d := sha256.Sum256(chunk)
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(chunk), next("AWS4-HMAC-SHA256-PAYLOAD", d[:]))
		if len(chunk) == 0 {
			break
		}
		b.Write(chunk)
		b.WriteString("\r\n")
	}
	if trailer != "" {
		d := sha256.Sum256([]byte(trailer + "\n"))
		b.WriteString(trailer + "\r\nx-amz-trailer-signature:" + next("AWS4-HMAC-SHA256-TRAILER", d[:]) + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// TestIntegrationContentSHA256MismatchFields (issue 24, 5): every path that
// answers XAmzContentSHA256Mismatch names both hashes, as S3 does: a
// header-signed PUT whose body is not the one signed, one without a body,
// a presigned PUT that signs the hash; checked by the proxy, or left to the
// upstream (WithUpstreamPayloadCheck).
func TestIntegrationContentSHA256MismatchFields(t *testing.T) {
	t.Parallel()
	declared := itgSHA256([]byte("the declared body"))
	answer := func(computed string) string {
		return itgS3Answer{Status: 400, Code: "XAmzContentSHA256Mismatch", Message: "The provided 'x-amz-content-sha256' header does not match what was computed.", Fields: []string{"ClientComputedContentSHA256=" + declared, "S3ComputedContentSHA256=" + computed}}.String()
	}
	fields := []string{"ClientComputedContentSHA256", "S3ComputedContentSHA256"}
	for _, c := range []struct {
		name string
		opts []proxy.Option
	}{
		{"checked by the proxy", nil},
		{"checked upstream", []proxy.Option{proxy.WithUpstreamPayloadCheck(true)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newItgFrontEnv(t, c.opts...)
			ctx := t.Context()
			e.checkRefusals(t, []itgRefusal{
				{name: "header-signed PUT, another body", req: func(s *itgSide) *http.Request {
					r, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/"+s.buckets[0]+"/sha-a", strings.NewReader("the body sent"))
					_ = itgSign(ctx, s, r, declared)
					return r
				}, fields: fields, aws: answer(itgSHA256([]byte("the body sent"))), stored: "sha-a"},
				{name: "header-signed PUT, no body", req: func(s *itgSide) *http.Request {
					r, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/"+s.buckets[0]+"/sha-b", nil)
					_ = itgSign(ctx, s, r, declared)
					return r
				}, fields: fields, aws: answer(itgSHA256(nil)), stored: "sha-b"},
				{name: "presigned PUT signing x-amz-content-sha256, another body", req: func(s *itgSide) *http.Request {
					return itgPresignPut(ctx, s, "sha-c", http.Header{"X-Amz-Content-Sha256": {declared}}, nil, "the body sent")
				}, fields: fields, aws: answer(itgSHA256([]byte("the body sent"))), stored: "sha-c"},
			})
			e.deleteBuckets(t)
		})
	}
}

// TestIntegrationAuthorizationWording (issue 24, 6): malformed Authorization
// headers get S3's code, message and fields.
func TestIntegrationAuthorizationWording(t *testing.T) {
	t.Parallel()
	e := newItgFrontEnv(t)
	ctx := t.Context()
	signed := func(edit func(auth string) string) func(s *itgSide) *http.Request {
		return func(s *itgSide) *http.Request {
			r, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/"+s.buckets[0]+"/k", nil)
			_ = itgSign(ctx, s, r, emptyPayloadHash)
			r.Header.Set("Authorization", edit(r.Header.Get("Authorization")))
			return r
		}
	}
	argument := []string{"ArgumentName", "ArgumentValue"}
	threeParts := itgS3Answer{Status: 400, Code: "AuthorizationHeaderMalformed", Message: "The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature."}.String()
	e.checkRefusals(t, []itgRefusal{
		{name: "no space", req: signed(func(string) string { return "invalid_header" }), fields: argument,
			aws: itgS3Answer{Status: 400, Code: "InvalidArgument", Message: "Authorization header is invalid -- one and only one ' ' (space) required.", Fields: []string{"ArgumentName=Authorization", "ArgumentValue=invalid_header"}}.String()},
		{name: "the scheme alone", req: signed(func(string) string { return "AWS4-HMAC-SHA256" }), fields: argument,
			aws: itgS3Answer{Status: 400, Code: "InvalidArgument", Message: "Authorization header is invalid -- one and only one ' ' (space) required.", Fields: []string{"ArgumentName=Authorization", "ArgumentValue=AWS4-HMAC-SHA256"}}.String()},
		{name: "another scheme", req: signed(func(a string) string { return strings.Replace(a, "AWS4-HMAC-SHA256", "AWS2-HMAC-SHA1", 1) }), fields: argument,
			aws: itgS3Answer{Status: 400, Code: "InvalidArgument", Message: "Unsupported Authorization Type", Fields: []string{"ArgumentName=Authorization", "ArgumentValue=AWS2-HMAC-SHA1"}}.String()},
		{name: "two components", req: signed(func(a string) string {
			i, j := strings.Index(a, " SignedHeaders="), strings.Index(a, " Signature=")
			return a[:i] + a[j:]
		}), aws: threeParts},
		{name: "four components", req: signed(func(a string) string { return a + ", Extra=1" }), aws: threeParts},
		{name: "a component malformed", req: signed(func(a string) string { return strings.Replace(a, "SignedHeaders=", "SignedHeaders", 1) }),
			aws: itgS3Answer{Status: 400, Code: "AuthorizationHeaderMalformed", Message: "The authorization header is malformed; the authorization component \"SignedHeadershost;x-amz-content-sha256;x-amz-date\" is malformed."}.String()},
	})
	e.deleteBuckets(t)
}
