package proxy_test

// Red-team probes: each case asserts the secure / S3-correct behaviour, so it
// fails when the proxy is vulnerable: a client without the secret, or one with
// a key and limited rules, trying to make the proxy forward what it did not
// sign, act outside its rules, hold resources, fail with 5xx or leak a
// credential.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// rtSignV4 signs r by hand (header form) with the proxy's canonicalization
// rules: the raw path and the raw query, each query pair decoded and encoded
// again. Unlike the AWS SDK signer it keeps pairs that hold a ';'.
func rtSignV4(t *testing.T, r *http.Request, payloadHash string, extraSigned ...string) {
	t.Helper()
	amzDate := fixedNow.Format("20060102T150405Z")
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	var pairs []string
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		require.NoError(t, err)
		dv, err := url.QueryUnescape(v)
		require.NoError(t, err)
		pairs = append(pairs, rtEscape(dk)+"="+rtEscape(dv))
	}
	sort.Strings(pairs)
	names := append([]string{"host", "x-amz-content-sha256", "x-amz-date"}, extraSigned...)
	sort.Strings(names)
	var ch strings.Builder
	for _, n := range names {
		v := r.Header.Get(n)
		if n == "host" {
			v = r.Host
		}
		ch.WriteString(n + ":" + strings.TrimSpace(v) + "\n")
	}
	creq := strings.Join([]string{r.Method, rawPath, strings.Join(pairs, "&"), ch.String(), strings.Join(names, ";"), payloadHash}, "\n")
	scope := amzDate[:8] + "/us-east-1/s3/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sha256Hex([]byte(creq))
	k := []byte("AWS4" + unitSecret)
	for _, part := range []string{amzDate[:8], "us-east-1", "s3", "aws4_request"} {
		k = rtHMAC(k, part)
	}
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+unitKey+"/"+scope+", SignedHeaders="+
		strings.Join(names, ";")+", Signature="+hex.EncodeToString(rtHMAC(k, sts)))
}

func rtHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func rtEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// rtPresignV2 returns a SigV2 presigned path+query for method and path
// (path-style, as S3's string to sign names it).
func rtPresignV2(method, path string) string {
	exp := strconv.FormatInt(fixedNow.Add(time.Hour).Unix(), 10)
	m := hmac.New(sha1.New, []byte(unitSecret))
	m.Write([]byte(method + "\n\n\n" + exp + "\n" + path))
	sig := base64.StdEncoding.EncodeToString(m.Sum(nil))
	return path + "?AWSAccessKeyId=" + unitKey + "&Expires=" + exp + "&Signature=" + url.QueryEscape(sig)
}

// rtRules is a request authorizer: the client may only GetObject and
// PutObject keys under public/, list under prefix public/, and CreateBucket.
func rtRules() *recordingAuthz {
	return &recordingAuthz{decide: func(r proxy.AccessRequest) proxy.Decision {
		switch r.Action {
		case "s3:GetObject", "s3:PutObject", "s3:DeleteObject":
			return proxy.Decision{Allow: strings.HasPrefix(r.Key, "public/")}
		case "s3:ListBucket":
			return proxy.Decision{Allow: strings.HasPrefix(r.Prefix, "public/")}
		case "s3:CreateBucket":
			return proxy.Decision{Allow: true}
		}
		return proxy.Decision{Allow: false}
	}}
}

func TestRedTeamSignatureCoverage(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up, proxy.WithSigV2(true))

	// Positive controls: the recorder is reached.
	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSign(t, r, sha256Hex(nil))
	w := serve(p, r)
	require.Equal(t, 200, w.Code, w.Body.String())
	require.True(t, up.last(t).SigOK)
	w = serve(p, httptest.NewRequest(http.MethodGet, presign(t, http.MethodGet, "http://example.com/bucket/k", fixedNow, time.Hour).RequestURI(), nil))
	require.Equal(t, 200, w.Code, w.Body.String())
	w = serve(p, httptest.NewRequest(http.MethodGet, rtPresignV2(http.MethodGet, "/bucket/k"), nil))
	require.Equal(t, 200, w.Code, w.Body.String())
	r = httptest.NewRequest(http.MethodPut, "/bucket/public/x?acl=", nil)
	rtSignV4(t, r, sha256Hex(nil))
	w = serve(p, r)
	require.Equal(t, 200, w.Code, "hand signer control: "+w.Body.String())

	type probe struct {
		name    string
		req     func(t *testing.T) *http.Request
		code    int    // expected status class*100 (4 → 4xx) or exact when > 99
		s3code  string // expected S3 code, "" for any
		upCheck func(t *testing.T, reqs []seen, before int)
	}
	nothingForwarded := func(t *testing.T, reqs []seen, before int) {
		assert.Len(t, reqs, before, "nothing forwarded")
	}
	presignedGet := func(extra string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			u := presign(t, http.MethodGet, "http://example.com/bucket/k", fixedNow, time.Hour)
			return httptest.NewRequest(http.MethodGet, u.RequestURI()+extra, nil)
		}
	}
	probes := []probe{
		{name: "hdr-unsigned-x-amz-meta", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Set("X-Amz-Meta-Evil", "1")
			return r
		}, code: 403, upCheck: nothingForwarded},
		{name: "hdr-unsigned-x-amz-acl-odd-case", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header["x-amz-ACL"] = []string{"public-read"} // not canonicalized (a direct ServeHTTP caller)
			return r
		}, code: 0, upCheck: func(t *testing.T, reqs []seen, before int) {
			for _, g := range reqs[before:] {
				for name := range g.Header {
					assert.NotEqual(t, "x-amz-acl", strings.ToLower(name), "unsigned odd-case header forwarded")
				}
			}
		}},
		{name: "hdr-unsigned-x-amz-copy-source", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Set("X-Amz-Copy-Source", "/bucket/other")
			return r
		}, code: 403, upCheck: nothingForwarded},
		{name: "presigned-unsigned-x-amz-acl-dropped", req: func(t *testing.T) *http.Request {
			u := presign(t, http.MethodPut, "http://example.com/bucket/k", fixedNow, time.Hour)
			r := httptest.NewRequest(http.MethodPut, u.RequestURI(), strings.NewReader("x"))
			r.Header.Set("X-Amz-Acl", "public-read")
			r.Header.Set("X-Amz-Meta-Evil", "1")
			r.Header.Set("X-Amz-Server-Side-Encryption", "AES256")
			return r
		}, code: 0, upCheck: func(t *testing.T, reqs []seen, before int) {
			if len(reqs) > before {
				h := reqs[len(reqs)-1].Header
				assert.Empty(t, h.Get("X-Amz-Acl"))
				assert.Empty(t, h.Get("X-Amz-Meta-Evil"))
				assert.Empty(t, h.Get("X-Amz-Server-Side-Encryption"))
			}
		}},
		{name: "presigned-unsigned-copy-source-header", req: func(t *testing.T) *http.Request {
			u := presign(t, http.MethodPut, "http://example.com/bucket/k", fixedNow, time.Hour)
			r := httptest.NewRequest(http.MethodPut, u.RequestURI(), nil)
			r.Header.Set("X-Amz-Copy-Source", "/bucket/secret")
			return r
		}, code: 0, upCheck: func(t *testing.T, reqs []seen, before int) {
			if len(reqs) > before {
				assert.Empty(t, reqs[len(reqs)-1].Header.Get("X-Amz-Copy-Source"))
			}
		}},
		{name: "presigned-extra-versionId", req: presignedGet("&versionId=1"), code: 403, s3code: "SignatureDoesNotMatch", upCheck: nothingForwarded},
		{name: "presigned-extra-uploadId", req: presignedGet("&uploadId=1"), code: 403, s3code: "SignatureDoesNotMatch", upCheck: nothingForwarded},
		{name: "presigned-extra-acl", req: presignedGet("&acl"), code: 403, s3code: "SignatureDoesNotMatch", upCheck: nothingForwarded},
		{name: "presigned-extra-x-id", req: presignedGet("&x-id=GetObject"), code: 403, s3code: "SignatureDoesNotMatch", upCheck: nothingForwarded},
		{name: "presigned-extra-response-content-type", req: presignedGet("&response-content-type=text/html"), code: 403, s3code: "SignatureDoesNotMatch", upCheck: nothingForwarded},
		{name: "presigned-extra-lowercase-x-amz-signature", req: presignedGet("&x-amz-signature=00"), code: 4, upCheck: nothingForwarded},
		{name: "presigned-extra-semicolon-acl", req: presignedGet("&acl=;"), code: 403, upCheck: nothingForwarded},
		{name: "presigned-extra-encoded-acl", req: presignedGet("&%61cl"), code: 403, upCheck: nothingForwarded},
		{name: "presigned-dup-X-Amz-Signature", req: func(t *testing.T) *http.Request {
			u := presign(t, http.MethodGet, "http://example.com/bucket/k", fixedNow, time.Hour)
			return httptest.NewRequest(http.MethodGet, u.RequestURI()+"&X-Amz-Signature="+u.Query().Get("X-Amz-Signature"), nil)
		}, code: 4, upCheck: nothingForwarded},
		{name: "presigned-expires-604801", req: func(t *testing.T) *http.Request {
			u := presign(t, http.MethodGet, "http://example.com/bucket/k", fixedNow, 604801*time.Second)
			return httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
		}, code: 400, s3code: "AuthorizationQueryParametersError", upCheck: nothingForwarded},
		{name: "presigned-expires-negative", req: func(t *testing.T) *http.Request {
			u := presign(t, http.MethodGet, "http://example.com/bucket/k", fixedNow, -time.Second)
			return httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
		}, code: 400, upCheck: nothingForwarded},
		{name: "presigned-dated-1h-future", req: func(t *testing.T) *http.Request {
			u := presign(t, http.MethodGet, "http://example.com/bucket/k", fixedNow.Add(time.Hour), time.Hour)
			return httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
		}, code: 403, upCheck: nothingForwarded},
		{name: "hdr-dated-1h-future", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSignAt(t, r, sha256Hex(nil), fixedNow.Add(time.Hour), unitKey, unitSecret)
			return r
		}, code: 403, s3code: "RequestTimeTooSkewed", upCheck: nothingForwarded},
		{name: "header-and-query-signature", req: func(t *testing.T) *http.Request {
			u := presign(t, http.MethodGet, "http://example.com/bucket/k", fixedNow, time.Hour)
			r := httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
			clientSign(t, r, sha256Hex(nil))
			return r
		}, code: 400, upCheck: nothingForwarded},
		{name: "scope-service-iam", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/s3/", "/iam/", 1))
			return r
		}, code: 400, upCheck: nothingForwarded},
		{name: "scope-service-sts", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/s3/", "/sts/", 1))
			return r
		}, code: 400, upCheck: nothingForwarded},
		{name: "sigv4a-refused-501-as-documented", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			r.Header.Set("Authorization", "AWS4-ECDSA-P256-SHA256 Credential=x")
			return r
		}, code: 501, upCheck: nothingForwarded},
		{name: "dup-authorization-second-forged", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Add("Authorization", "AWS4-HMAC-SHA256 Credential=other/20261128/us-east-1/s3/aws4_request, SignedHeaders=host, Signature="+strings.Repeat("0", 64))
			return r
		}, code: 0, upCheck: func(t *testing.T, reqs []seen, before int) {
			if len(reqs) > before {
				assert.NotContains(t, strings.Join(reqs[len(reqs)-1].Header.Values("Authorization"), " "), "other/")
			}
		}},
		{name: "dup-x-amz-date-unsigned-second", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Add("X-Amz-Date", "20990101T000000Z")
			return r
		}, code: 403, upCheck: nothingForwarded},
		{name: "host-changed-after-signing", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Host = "evil.example"
			return r
		}, code: 403, s3code: "SignatureDoesNotMatch", upCheck: nothingForwarded},
		{name: "sigv2-presigned-extra-acl", req: func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, rtPresignV2(http.MethodGet, "/bucket/k")+"&acl", nil)
		}, code: 403, upCheck: nothingForwarded},
		{name: "sigv2-presigned-extra-encoded-acl",
			req: func(t *testing.T) *http.Request {
				return httptest.NewRequest(http.MethodGet, rtPresignV2(http.MethodGet, "/bucket/k")+"&%61cl", nil)
			}, code: 403, upCheck: nothingForwarded},
		{name: "sigv2-presigned-put-extra-encoded-uploadId",
			req: func(t *testing.T) *http.Request {
				return httptest.NewRequest(http.MethodPut, rtPresignV2(http.MethodPut, "/bucket/k")+"&%75ploadId=victim&%70artNumber=1", strings.NewReader("x"))
			}, code: 403, upCheck: nothingForwarded},
		{name: "sigv2-presigned-extra-encoded-versionId",
			req: func(t *testing.T) *http.Request {
				return httptest.NewRequest(http.MethodGet, rtPresignV2(http.MethodGet, "/bucket/k")+"&%76ersionId=old", nil)
			}, code: 403, upCheck: nothingForwarded},
		{name: "sigv2-hdr-unsigned-x-amz-meta", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			r.Header.Set("Date", fixedNow.Format(http.TimeFormat))
			m := hmac.New(sha1.New, []byte(unitSecret))
			m.Write([]byte("GET\n\n\n" + fixedNow.Format(http.TimeFormat) + "\n/bucket/k"))
			r.Header.Set("Authorization", "AWS "+unitKey+":"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
			r.Header.Set("X-Amz-Meta-Evil", "1")
			return r
		}, code: 403, upCheck: nothingForwarded},
		{name: "sigv2-hdr-date-1h-old", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			d := fixedNow.Add(-time.Hour).Format(http.TimeFormat)
			r.Header.Set("Date", d)
			m := hmac.New(sha1.New, []byte(unitSecret))
			m.Write([]byte("GET\n\n\n" + d + "\n/bucket/k"))
			r.Header.Set("Authorization", "AWS "+unitKey+":"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
			return r
		}, code: 403, s3code: "RequestTimeTooSkewed", upCheck: nothingForwarded},
		{name: "sigv2-presigned-expires-8-days", req: func(t *testing.T) *http.Request {
			exp := strconv.FormatInt(fixedNow.Add(8*24*time.Hour).Unix(), 10)
			m := hmac.New(sha1.New, []byte(unitSecret))
			m.Write([]byte("GET\n\n\n" + exp + "\n/bucket/k"))
			return httptest.NewRequest(http.MethodGet, "/bucket/k?AWSAccessKeyId="+unitKey+"&Expires="+exp+"&Signature="+url.QueryEscape(base64.StdEncoding.EncodeToString(m.Sum(nil))), nil)
		}, code: 403, upCheck: nothingForwarded},
	}
	for _, c := range probes {
		t.Run(c.name, func(t *testing.T) {
			before := len(up.requests())
			w := serve(p, c.req(t))
			switch {
			case c.code > 99:
				assert.Equal(t, c.code, w.Code, w.Body.String())
			case c.code > 0:
				assert.Equal(t, c.code, w.Code/100, w.Body.String())
			default:
				assert.Less(t, w.Code, 500, w.Body.String())
			}
			if c.s3code != "" {
				assert.Equal(t, c.s3code, s3Code(w.Body.String()))
			}
			if c.upCheck != nil {
				c.upCheck(t, up.requests(), before)
			}
		})
	}
}

// The rules of rtRules against requests that try to do more than they allow.
func TestRedTeamFineGrained(t *testing.T) {
	up := newFakeUpstream(t)
	rules := rtRules()
	p := newProxy(t, up, proxy.WithRequestAuthorizer(rules.hook))

	// Positive controls.
	r := httptest.NewRequest(http.MethodGet, "/bucket/public/x", nil)
	clientSign(t, r, sha256Hex(nil))
	require.Equal(t, 200, serve(p, r).Code)
	r = httptest.NewRequest(http.MethodGet, "/bucket/secret", nil)
	clientSign(t, r, sha256Hex(nil))
	require.Equal(t, 403, serve(p, r).Code)

	deleteBody := func(keys ...string) string {
		var b strings.Builder
		b.WriteString("<Delete>")
		for _, k := range keys {
			b.WriteString("<Object><Key>" + k + "</Key></Object>")
		}
		b.WriteString("</Delete>")
		return b.String()
	}
	signedBody := func(method, target, body string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := httptest.NewRequest(method, target, strings.NewReader(body))
			clientSign(t, r, sha256Hex([]byte(body)))
			return r
		}
	}
	type probe struct {
		name string
		req  func(t *testing.T) *http.Request
		// upOK reports whether what the upstream got (if anything) is
		// within the rules.
		upOK func(t *testing.T, got []seen)
	}
	none := func(t *testing.T, got []seen) { assert.Empty(t, got, "nothing forwarded") }
	// sameQuery: a pair the proxy's url.Query() dropped (';') does not reach
	// the upstream either, so the upstream does what was authorized.
	sameQuery := func(t *testing.T, got []seen) {
		for _, g := range got {
			assert.NotContains(t, g.RequestURI, ";", "a query pair the authorizer did not see went upstream")
		}
	}
	probes := []probe{
		{name: "delete-objects-outside-prefix", req: signedBody(http.MethodPost, "/bucket?delete", deleteBody("public/a", "secret")), upOK: none},
		{name: "delete-objects-two-keys-one-object",
			req: signedBody(http.MethodPost, "/bucket?delete", "<Delete><Object><Key>secret</Key><Key>public/a</Key></Object></Delete>"), upOK: none},
		{name: "delete-objects-second-root",
			req: signedBody(http.MethodPost, "/bucket?delete", deleteBody("public/a")+deleteBody("secret")), upOK: none},
		{name: "delete-objects-namespaced-key",
			req: signedBody(http.MethodPost, "/bucket?delete", `<Delete><Object><x:Key xmlns:x="urn:x">secret</x:Key><Key>public/a</Key></Object></Delete>`), upOK: none},
		{name: "delete-objects-entity", req: signedBody(http.MethodPost, "/bucket?delete",
			`<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "secret">]><Delete><Object><Key>&e;</Key></Object></Delete>`), upOK: none},
		{name: "delete-objects-cdata-split", req: signedBody(http.MethodPost, "/bucket?delete",
			`<Delete><Object><Key>sec<![CDATA[ret]]></Key></Object></Delete>`), upOK: none},
		{name: "delete-objects-key-on-object-path", req: signedBody(http.MethodPost, "/bucket/public/x?delete", deleteBody("secret")), upOK: none},
		{name: "delete-objects-bucket-slash-key", req: signedBody(http.MethodPost, "/bucket//?delete", deleteBody("secret")), upOK: none},
		{name: "copy-source-outside-prefix", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/public/copy", nil)
			r.Header.Set("X-Amz-Copy-Source", "/bucket/secret")
			clientSign(t, r, sha256Hex(nil))
			return r
		}, upOK: none},
		{name: "copy-source-query-hoisted", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/public/copy?X-Amz-Copy-Source=%2Fbucket%2Fsecret", nil)
			clientSign(t, r, sha256Hex(nil))
			return r
		}, upOK: none},
		{name: "copy-source-dot-segments", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/public/copy", nil)
			r.Header.Set("X-Amz-Copy-Source", "/bucket/public/../secret")
			clientSign(t, r, sha256Hex(nil))
			return r
		}, upOK: func(t *testing.T, got []seen) {
			for _, g := range got {
				assert.NotContains(t, g.Header.Get("X-Amz-Copy-Source"), "..", "a dot-segment copy source authorized as public/")
			}
		}},
		{name: "list-prefix-outside", req: signedBody(http.MethodGet, "/bucket?list-type=2&prefix=secret/", ""), upOK: none},
		{name: "list-no-prefix", req: signedBody(http.MethodGet, "/bucket?list-type=2", ""), upOK: none},
		{name: "list-dup-prefix-first-authorized", req: signedBody(http.MethodGet, "/bucket?list-type=2&prefix=secret/&prefix=public/", ""), upOK: func(t *testing.T, got []seen) {
			for _, g := range got {
				q, _ := url.ParseQuery(strings.SplitN(g.RequestURI, "?", 2)[1])
				assert.True(t, strings.HasPrefix(q.Get("prefix"), "public/"), "the upstream's first prefix is the authorized one")
			}
		}},
		{name: "list-prefix-semicolon", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket?list-type=2&prefix=secret/;&prefix=public/", nil)
			rtSignV4(t, r, sha256Hex(nil))
			return r
		}, upOK: sameQuery},
		{name: "put-acl-hidden-by-semicolon", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/public/x?acl=;", strings.NewReader(""))
			r.Header.Set("X-Amz-Acl", "public-read")
			rtSignV4(t, r, sha256Hex(nil), "x-amz-acl")
			return r
		}, upOK: sameQuery},
		{name: "put-bucket-policy-hidden-by-semicolon", req: func(t *testing.T) *http.Request {
			body := `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}`
			r := httptest.NewRequest(http.MethodPut, "/bucket?policy=;", strings.NewReader(body))
			rtSignV4(t, r, sha256Hex([]byte(body)))
			return r
		}, upOK: sameQuery},
		{name: "put-lifecycle-hidden-by-semicolon", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket?lifecycle=;", strings.NewReader("<LifecycleConfiguration/>"))
			rtSignV4(t, r, sha256Hex([]byte("<LifecycleConfiguration/>")))
			return r
		}, upOK: sameQuery},
		{name: "put-object-with-acl-header",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPut, "/bucket/public/x", nil)
				r.Header.Set("X-Amz-Acl", "public-read")
				clientSign(t, r, sha256Hex(nil))
				return r
			}, upOK: none},
		{name: "put-acl-plain", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/public/x?acl", nil)
			r.Header.Set("X-Amz-Acl", "public-read")
			clientSign(t, r, sha256Hex(nil))
			return r
		}, upOK: none},
		{name: "put-acl-encoded-name", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/public/x?%61cl", nil)
			rtSignV4(t, r, sha256Hex(nil))
			return r
		}, upOK: none},
		{name: "put-bucket-policy-plain", req: signedBody(http.MethodPut, "/bucket?policy", "{}"), upOK: none},
		{name: "dot-segments-key-vhost-upstream",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/bucket/public/%2E%2E/secret", nil)
				clientSign(t, r, sha256Hex(nil))
				return r
			}, upOK: func(t *testing.T, got []seen) {
				for _, g := range got {
					p := strings.Split(strings.SplitN(g.RequestURI, "?", 2)[0], "/")
					assert.NotContains(t, p, "..", "a dot segment forwarded after a prefix rule allowed it: %s", g.RequestURI)
				}
			}},
		{name: "empty-uploadId-delete", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodDelete, "/bucket/secret?uploadId=", nil)
			clientSign(t, r, sha256Hex(nil))
			return r
		}, upOK: none},
		{name: "list-buckets-denied-by-rules",
			req: func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				clientSign(t, r, sha256Hex(nil))
				return r
			}, upOK: none},
	}
	for _, c := range probes {
		t.Run(c.name, func(t *testing.T) {
			before := len(up.requests())
			w := serve(p, c.req(t))
			got := up.requests()[before:]
			t.Logf("%d %s; forwarded %d; asked %v", w.Code, s3Code(w.Body.String()), len(got), actionsOf(rules.take()))
			assert.Less(t, w.Code, 500, w.Body.String())
			if c.name == "list-buckets-denied-by-rules" {
				assert.Equal(t, 403, w.Code, "ListAllMyBuckets denied by the rules")
			}
			c.upOK(t, got)
		})
	}
}

func actionsOf(a []proxy.AccessRequest) []string {
	var out []string
	for _, r := range a {
		out = append(out, r.Action+":"+r.Key+r.Prefix)
	}
	return out
}

// Path tricks: the bucket the proxy authorizes is the one the upstream gets.
func TestRedTeamPaths(t *testing.T) {
	up := newFakeUpstream(t)
	var asked []string
	p := tokenModeProxy(t, up, func(_ context.Context, _, bucket string) (bool, error) {
		asked = append(asked, bucket)
		return bucket == "bucket", nil
	}, proxy.WithBuckets(proxy.Bucket{Name: "other", Endpoint: up.endpoint(),
		Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
		proxy.WithVirtualHostDomains("proxy.test"))
	get := func(target, host string) (*httptest.ResponseRecorder, []seen) {
		before := len(up.requests())
		r := httptest.NewRequest(http.MethodGet, target, nil)
		if host != "" {
			r.Host = host
		}
		clientSignAt(t, r, sha256Hex(nil), time.Now(), "tok", "unused")
		w := serve(p, r)
		return w, up.requests()[before:]
	}
	w, got := get("/bucket/k", "")
	require.Equal(t, 200, w.Code, "control")
	require.Len(t, got, 1)
	for _, c := range []struct{ name, target, host string }{
		{"encoded-slash-in-bucket", "/bucket%2F..%2Fother/k", ""},
		{"encoded-slash-bucket-other", "/other%2Fk", ""},
		{"double-slash", "//other/k", ""},
		{"dot-dot-to-other", "/bucket/../other/k", ""},
		{"encoded-dot-dot-to-other", "/bucket/%2e%2e/other/k", ""},
		{"vhost-other-with-path-bucket", "/bucket/k", "other.proxy.test"},
		{"vhost-upper-case", "/k", "OTHER.proxy.test"},
		{"vhost-trailing-dot", "/k", "other.proxy.test."},
		{"backslash", "/bucket\\..\\other/k", ""},
		{"nul-in-bucket", "/other%00/k", ""},
		{"semicolon-param", "/other;x=1/k", ""},
		{"overlong-utf8-slash", "/bucket/%c0%af../other/k", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, got := get(c.target, c.host)
			t.Logf("%d %s", w.Code, s3Code(w.Body.String()))
			assert.Less(t, w.Code, 500)
			for _, g := range got {
				host := g.Host
				assert.True(t, strings.HasPrefix(host, "bucket."), "upstream host %s for %s", host, c.target)
			}
		})
	}
	// A path-style upstream: dot segments that leave the bucket are refused.
	ps := up.endpoint()
	ps.PathStyle = true
	pathStyle, err := proxy.New(proxy.WithBuckets(proxy.Bucket{Name: "bucket", Endpoint: ps,
		Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
		proxy.WithAuthorizer(func(_ context.Context, _, b string) (bool, error) { return b == "bucket", nil }),
		proxy.WithTransport(up.transport()))
	require.NoError(t, err)
	defer pathStyle.Close()
	for _, target := range []string{"/bucket/../other/k", "/bucket/%2E%2E/other/k", "/bucket/a/../../other/k", "/bucket/.%2E/other"} {
		before := len(up.requests())
		r := httptest.NewRequest(http.MethodGet, target, nil)
		clientSignAt(t, r, sha256Hex(nil), time.Now(), "tok", "unused")
		w := serve(pathStyle, r)
		assert.Equal(t, 400, w.Code, target)
		assert.Len(t, up.requests(), before, target)
	}
}

// Malformed requests get 4xx, as S3 answers, never 5xx or a panic.
func TestRedTeamMalformed(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	chunkedPut := func(body, decoded string, trailer string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/c", strings.NewReader(body))
			r.Header.Set("Content-Encoding", "aws-chunked")
			r.Header.Set("X-Amz-Decoded-Content-Length", decoded)
			if trailer != "" {
				r.Header.Set("X-Amz-Trailer", trailer)
			}
			clientSign(t, r, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
			return r
		}
	}
	crc := "x-amz-checksum-crc32:AAAAAA==\r\n\r\n"
	signed := func(method, target string, edit func(r *http.Request)) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := httptest.NewRequest(method, target, nil)
			clientSign(t, r, sha256Hex(nil))
			if edit != nil {
				edit(r)
			}
			return r
		}
	}
	for _, c := range []struct {
		name string
		req  func(t *testing.T) *http.Request
	}{
		{"chunk-size-0x", chunkedPut("0x1\r\na\r\n0\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"chunk-size-overflow", chunkedPut("ffffffffffffffffffff\r\na\r\n0\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"chunk-size-int64-max", chunkedPut("7fffffffffffffff\r\na\r\n0\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"chunk-size-negative", chunkedPut("-1\r\na\r\n0\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"chunk-size-plus", chunkedPut("+1\r\na\r\n0\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"chunk-more-than-decoded", chunkedPut("2\r\nab\r\n0\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"chunk-less-than-decoded", chunkedPut("1\r\na\r\n0\r\n"+crc, "5", "x-amz-checksum-crc32")},
		{"decoded-length-negative", chunkedPut("1\r\na\r\n0\r\n"+crc, "-1", "x-amz-checksum-crc32")},
		{"decoded-length-huge", chunkedPut("1\r\na\r\n0\r\n"+crc, "99999999999999999999", "x-amz-checksum-crc32")},
		{"trailer-injects-meta", chunkedPut("1\r\na\r\n0\r\nx-amz-meta-evil:1\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"trailer-injects-authorization", chunkedPut("1\r\na\r\n0\r\nAuthorization:AWS x:y\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"trailer-declared-meta", chunkedPut("1\r\na\r\n0\r\nx-amz-meta-evil:1\r\n\r\n", "1", "x-amz-meta-evil")},
		{"trailer-bad-checksum", chunkedPut("1\r\na\r\n0\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"chunk-ext-signature-unsigned-mode", chunkedPut("1;chunk-signature=zz\r\na\r\n0\r\n"+crc, "1", "x-amz-checksum-crc32")},
		{"chunk-lf-only", chunkedPut("1\na\n0\n"+crc, "1", "x-amz-checksum-crc32")},
		{"payload-hash-garbage", signed(http.MethodGet, "/bucket/k", nil)},
		{"streaming-unknown", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("x"))
			clientSign(t, r, "STREAMING-EVIL")
			return r
		}},
		{"put-root", signed(http.MethodPut, "/", nil)},
		{"delete-root", signed(http.MethodDelete, "/", nil)},
		{"post-root", signed(http.MethodPost, "/", nil)},
		{"head-root-bad-max", signed(http.MethodHead, "/?max-buckets=0", nil)},
		{"list-buckets-bad-token", signed(http.MethodGet, "/?continuation-token=%%%", nil)},
		{"method-lowercase", func(t *testing.T) *http.Request {
			r := httptest.NewRequest("get", "/bucket/k", nil)
			return r
		}},
		{"method-PATCH", signed(http.MethodPatch, "/bucket/k", nil)},
		{"copy-source-two", signed(http.MethodPut, "/bucket/k", func(r *http.Request) {
			r.Header.Add("X-Amz-Copy-Source", "/bucket/a")
		})},
		{"query-bad-escape", signed(http.MethodGet, "/bucket/k?x=%zz", nil)},
		{"path-bad-escape", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			r.RequestURI = "/bucket/%zz"
			r.URL.RawPath = "/bucket/%zz"
			clientSign(t, r, sha256Hex(nil))
			return r
		}},
		{"key-too-long", signed(http.MethodGet, "/bucket/"+strings.Repeat("k", 1025), nil)},
		{"amz-date-garbage", signed(http.MethodGet, "/bucket/k", func(r *http.Request) { r.Header.Set("X-Amz-Date", "garbage") })},
		{"credential-date-mismatch", signed(http.MethodGet, "/bucket/k", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261128/", "/20261127/", 1))
		})},
		{"signedheaders-unsorted", signed(http.MethodGet, "/bucket/k", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=host;", "SignedHeaders=x-amz-date;host;", 1))
		})},
		{"authorization-garbage", signed(http.MethodGet, "/bucket/k", func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 ,,,,=,=")
		})},
		{"sigv2-when-off", signed(http.MethodGet, "/bucket/k", func(r *http.Request) { r.Header.Set("Authorization", "AWS a:b") })},
		{"bearer-auth", signed(http.MethodGet, "/bucket/k", func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") })},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.req(t)
			if c.name == "payload-hash-garbage" {
				r.Header.Set("X-Amz-Content-Sha256", "garbage")
				clientSign(t, r, "garbage")
			}
			w := serve(p, r)
			t.Logf("%d %s", w.Code, s3Code(w.Body.String()))
			assert.GreaterOrEqual(t, w.Code, 400, w.Body.String())
			assert.Less(t, w.Code, 500, w.Body.String())
		})
	}
}

// Nothing secret reaches a client or the log.
func TestRedTeamNoLeaks(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Echo-Authorization", r.Header.Get("Authorization")) // a misbehaving upstream
		w.WriteHeader(403)
		fmt.Fprintf(w, "<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>%s</AWSAccessKeyId><StringToSign>x</StringToSign><SignatureProvided>y</SignatureProvided><CanonicalRequest>%s</CanonicalRequest></Error>", upstreamKey, r.Header.Get("Authorization"))
	}
	var logs bytes.Buffer
	p := newProxy(t, up, proxy.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSign(t, r, sha256Hex(nil))
	clientAuth := r.Header.Get("Authorization")
	w := serve(p, r)
	require.Equal(t, 403, w.Code)
	require.Len(t, up.requests(), 1)
	body := w.Body.String()
	assert.NotContains(t, body, upstreamKey)
	assert.NotContains(t, body, "AWS4-HMAC-SHA256 Credential")
	sig := clientAuth[strings.LastIndex(clientAuth, "=")+1:]
	assert.NotContains(t, logs.String(), sig)
	assert.NotContains(t, logs.String(), unitSecret)
	assert.NotContains(t, logs.String(), upstreamSecret)
	// A forged signature is not logged either.
	r = httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSignAt(t, r, sha256Hex(nil), fixedNow, unitKey, "wrong")
	forged := r.Header.Get("Authorization")
	serve(p, r)
	assert.NotContains(t, logs.String(), forged[strings.LastIndex(forged, "=")+1:])
	t.Run("upstream-echoed-authorization-header",
		func(t *testing.T) {
			assert.Empty(t, w.Header().Get("X-Echo-Authorization"))
		})
}

// ListBuckets names only the buckets the client may use; preflights carry no
// credentials and name nothing unrouted.
func TestRedTeamListAndPreflight(t *testing.T) {
	up := newFakeUpstream(t)
	p := tokenModeProxy(t, up, func(_ context.Context, token, bucket string) (bool, error) {
		return bucket == "bucket", nil
	}, proxy.WithBuckets(proxy.Bucket{Name: "secret-bucket", Endpoint: up.endpoint(),
		Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}))
	w := tokenGet(t, p, "tok", "/")
	require.Equal(t, 200, w.Code)
	assert.Contains(t, w.Body.String(), "<Name>bucket</Name>", "control")
	assert.NotContains(t, w.Body.String(), "secret-bucket")

	r := preflightRequest("/secret-bucket/k", "https://evil.example", "GET", "")
	before := len(up.requests())
	w = serve(p, r)
	t.Logf("preflight routed bucket: %d", w.Code)
	for _, g := range up.requests()[before:] {
		assert.Empty(t, g.Header.Get("Authorization"), "preflight carries no credentials")
	}
	before = len(up.requests())
	w = serve(p, preflightRequest("/nowhere/k", "https://evil.example", "GET", ""))
	assert.Equal(t, 404, w.Code)
	assert.Len(t, up.requests(), before)
	w = serve(p, preflightRequest("/", "https://evil.example", "GET", ""))
	assert.Less(t, w.Code, 500)
}

// POST Object forms that try to name another key or bucket.
func TestRedTeamPostObject(t *testing.T) {
	up := newFakeUpstream(t)
	up.handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }
	rules := rtRules()
	p := newProxy(t, up, proxy.WithRequestAuthorizer(rules.hook))
	post := func(bucket string, fields [][2]string, after [][2]string) *httptest.ResponseRecorder {
		var b bytes.Buffer
		for _, f := range fields {
			fmt.Fprintf(&b, "--BOUND\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n", f[0], f[1])
		}
		b.WriteString("--BOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
		for _, f := range after {
			fmt.Fprintf(&b, "--BOUND\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n", f[0], f[1])
		}
		b.WriteString("--BOUND--\r\n")
		r := httptest.NewRequest(http.MethodPost, "/"+bucket, &b)
		r.Header.Set("Content-Type", "multipart/form-data; boundary=BOUND")
		return serve(p, r)
	}
	w := post("bucket", unitPostFields(t, "", "public/ok", nil), nil)
	require.Equal(t, 204, w.Code, "control: "+w.Body.String())
	require.NotEmpty(t, up.requests())

	withField := func(key string, extra ...[2]string) [][2]string {
		f := unitPostFields(t, "", key, []any{[]any{"starts-with", "$Key", ""}})
		return append(f, extra...)
	}
	for _, c := range []struct {
		name   string
		bucket string
		fields [][2]string
		after  [][2]string
	}{
		{"key-outside-prefix", "bucket", unitPostFields(t, "", "secret", nil), nil},
		{"two-key-fields", "bucket", append(unitPostFields(t, "", "public/ok", nil), [2]string{"key", "secret"}), nil},
		{"Key-other-case", "bucket", withField("public/ok", [2]string{"Key", "secret"}), nil},
		{"key-after-file", "bucket", unitPostFields(t, "", "public/ok", nil), [][2]string{{"key", "secret"}}},
		{"policy-for-bucket-posted-elsewhere", "other", unitPostFields(t, "", "public/ok", nil), nil},
		{"key-dot-segments", "bucket", unitPostFields(t, "", "public/../secret", nil), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(up.requests())
			w := post(c.bucket, c.fields, c.after)
			t.Logf("%d %s", w.Code, s3Code(w.Body.String()))
			assert.Less(t, w.Code, 500, w.Body.String())
			for _, g := range up.requests()[before:] {
				// The upstream form must name a key within the rules.
				s := string(g.Body)
				i := strings.Index(s, `name="key"`)
				if i < 0 {
					continue
				}
				val := strings.SplitN(s[i+len(`name="key"`)+4:], "\r\n", 2)[0]
				ok := strings.HasPrefix(val, "public/") && !strings.Contains(val, "..")
				assert.True(t, ok, "upstream form key %q", val)
				assert.NotContains(t, s, `name="Key"`)
			}
		})
	}
}

// Slow and half-open requests hold nothing once their clients go.
func TestRedTeamHalfOpen(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	srv := httptest.NewServer(p)
	defer srv.Close()
	// Control.
	r, _ := http.NewRequest(http.MethodGet, srv.URL+"/bucket/k", nil)
	clientSign(t, r, sha256Hex(nil))
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	http.DefaultClient.CloseIdleConnections()
	up.srv.CloseClientConnections()

	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	const n = 40
	var conns []net.Conn
	body := bytes.Repeat([]byte("a"), 1<<20)
	for i := range n {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		conns = append(conns, c)
		req, _ := http.NewRequest(http.MethodPut, srv.URL+fmt.Sprintf("/bucket/slow-%d", i), nil)
		req.ContentLength = int64(len(body))
		clientSign(t, req, sha256Hex(body))
		var head bytes.Buffer
		fmt.Fprintf(&head, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.RequestURI(), req.Host, len(body))
		for k, vs := range req.Header {
			for _, v := range vs {
				fmt.Fprintf(&head, "%s: %s\r\n", k, v)
			}
		}
		head.WriteString("\r\n")
		head.Write(body[:1000]) // then stall
		_, err = c.Write(head.Bytes())
		require.NoError(t, err)
	}
	time.Sleep(300 * time.Millisecond)
	t.Logf("goroutines: base %d, with %d stalled uploads %d", base, n, runtime.NumGoroutine())
	for _, c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		up.srv.CloseClientConnections()
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), base+5, "goroutines back to baseline after the clients left")
	// Nothing was stored whole.
	for _, g := range up.requests() {
		if strings.Contains(g.RequestURI, "slow-") {
			assert.Less(t, len(g.Body), len(body))
		}
	}
}

// Hop-by-hop tricks through a real server: Connection naming signed headers.
func TestRedTeamHopByHop(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	srv := httptest.NewServer(p)
	defer srv.Close()
	for _, conn := range []string{"x-amz-date", "authorization", "x-amz-content-sha256, host", "x-amz-meta-a", "upgrade"} {
		t.Run(conn, func(t *testing.T) {
			before := len(up.requests())
			r, _ := http.NewRequest(http.MethodGet, srv.URL+"/bucket/k", nil)
			r.Header.Set("X-Amz-Meta-A", "1")
			r.Header.Set("Upgrade", "websocket")
			clientSign(t, r, sha256Hex(nil))
			r.Header.Set("Connection", conn)
			resp, err := http.DefaultTransport.RoundTrip(r)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Less(t, resp.StatusCode, 500, string(b))
			for _, g := range up.requests()[before:] {
				assert.True(t, g.SigOK, g.SigErr)
				assert.NotContains(t, g.Header.Get("Authorization"), unitKey)
				assert.Empty(t, g.Header.Get("Upgrade"))
			}
		})
	}
}
