package proxy

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
)

// FuzzParseAuthHeader: the Authorization header parser never panics, and what
// it accepts is well formed: a credential scope for s3, sorted unique signed
// headers including host, a 64-digit hex signature.
func FuzzParseAuthHeader(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + strings.Repeat("a", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261128/eu-de/s3/aws4_request,SignedHeaders=host,Signature=" + strings.Repeat("0", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=/20261128/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x")
	f.Add("AWS4-HMAC-SHA256 Credential=a=b, SignedHeaders=host, Signature=")
	f.Add("AWS AKID:c2ln")
	// Hardening shapes: long and odd regions and key ids, many signed names.
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261128/" + strings.Repeat("r", 70) + "/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261128/us east/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=" + strings.Repeat("k", 129) + "/20261128/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("a", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/s3/aws4_request, SignedHeaders=host;" + strings.Repeat("x-amz-a;", 600) + "x-amz-b, Signature=" + strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, v string) {
		sig, err := parseAuthHeader(v)
		if err != nil {
			if sig != nil {
				t.Fatal("a signature and an error")
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is no *Error", err)
			}
			return
		}
		if sig.service != "s3" || len(sig.date) != 8 || !validScopePart(sig.region, maxRegion, isRegionByte) ||
			!validScopePart(sig.accessKeyID, maxAccessKeyID, isKeyIDByte) || len(sig.signedHeaders) > maxFields {
			t.Fatalf("accepted a bad scope: %+v", sig)
		}
		if cred := sig.accessKeyID + "/" + sig.scope(); !strings.Contains(v, "Credential="+cred) ||
			strings.Count(cred, "/") != 4 {
			t.Fatalf("the credential %q is not the one in %q", cred, v)
		}
		if !isHexSHA256(sig.signature) {
			t.Fatalf("accepted signature %q", sig.signature)
		}
		if !slices.Contains(sig.signedHeaders, "host") {
			t.Fatal("accepted signed headers without host")
		}
		for i := 1; i < len(sig.signedHeaders); i++ {
			if sig.signedHeaders[i-1] >= sig.signedHeaders[i] {
				t.Fatalf("accepted unsorted signed headers %q", sig.signedHeaders)
			}
		}
	})
}

// FuzzParsePresign: the presigned URL parser never panics, and what it accepts
// has an expiry within S3's bounds and a date matching its scope.
func FuzzParsePresign(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261128%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261128T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("b", 64))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=0")
	f.Add("X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261128%2Fus%20east%2Fs3%2Faws4_request&X-Amz-Date=20261128T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("b", 64))
	f.Add("x-amz-signature=x&x-amz-security-token=t&X-Amz-Algorithm=AWS4-HMAC-SHA256")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		sig, err := parsePresign(q)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is no *Error", err)
			}
			return
		}
		if sig.expires < 0 || sig.expires > maxPresignSecs*1e9 {
			t.Fatalf("accepted expiry %v", sig.expires)
		}
		if sig.amzDate[:8] != sig.date || !sig.presigned || !validScopePart(sig.region, maxRegion, isRegionByte) {
			t.Fatalf("accepted %+v", sig)
		}
	})
}

// FuzzParseRequest: path parsing never panics, never yields an invalid bucket
// name, and the key it yields encodes back to a path that decodes to it.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"/bucket/key", "/bucket/a%20b", "/bucket//x", "/b%2Fc/k", "/", "/bucket", "/../etc", "/bucket/%ZZ",
		"/bucket/" + strings.Repeat("k", 1025), "/bkt-000001/k?pad=" + strings.Repeat("p", 2000)} {
		f.Add(s, "proxy.test")
	}
	f.Add("/key", "bucket.s3.proxy.test")
	cfg := defaultConfig()
	cfg.vhostDomains = []string{"s3.proxy.test"}
	f.Fuzz(func(t *testing.T, path, host string) {
		u, err := url.ParseRequestURI(path)
		if err != nil {
			return
		}
		r := &http.Request{Method: http.MethodGet, URL: u, Host: host, RequestURI: path}
		req, err := parseRequest(r, cfg)
		if err != nil {
			return
		}
		if req.bucket != "" && !validBucketName(req.bucket) {
			t.Fatalf("invalid bucket %q accepted", req.bucket)
		}
		if len(req.key) > maxKeyLength {
			t.Fatalf("key of %d bytes accepted", len(req.key))
		}
		if dec, err := url.PathUnescape(encodeKey(req.key)); err != nil || dec != req.key {
			t.Fatalf("key %q does not round-trip: %q %v", req.key, dec, err)
		}
	})
}

// FuzzCanonicalQuery checks the canonical query, built in reused buffers,
// against a plain implementation of SigV4's rules, and a reused verifier
// against a fresh one.
func FuzzCanonicalQuery(f *testing.F) {
	for _, seed := range []string{"", "a=1", "prefix=a%20b&list-type=2", "acl&versionId=x", "b=2&a=1&a=0",
		"x=%E1%88%B4&y=+", "X-Amz-Signature=abc&X-Amz-Date=1", "a=%zz", "&&=&k=v=w", "%2F=%7E"} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	reused := new(verifier)
	f.Fuzz(func(t *testing.T, raw string, presigned bool) {
		want, wantErr := plainCanonicalQuery(raw, presigned)
		got, err := reused.canonicalQuery(raw, presigned)
		if (err != nil) != wantErr {
			t.Fatalf("%q: error %v, plain implementation error %v", raw, err, wantErr)
		}
		if err == nil && string(got) != want {
			t.Fatalf("%q: got %q, want %q", raw, got, want)
		}
		fresh, _ := new(verifier).canonicalQuery(raw, presigned)
		if err == nil && string(fresh) != want {
			t.Fatalf("%q: a fresh verifier got %q, want %q", raw, fresh, want)
		}
	})
}

// plainCanonicalQuery is SigV4's canonical query string written plainly.
func plainCanonicalQuery(raw string, presigned bool) (string, bool) {
	var params [][2]string
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return "", true
		}
		if presigned && dk == "X-Amz-Signature" {
			continue
		}
		params = append(params, [2]string{sigv4Escape(dk), sigv4Escape(dv)})
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i][0] != params[j][0] {
			return params[i][0] < params[j][0]
		}
		return params[i][1] < params[j][1]
	})
	pairs := make([]string, len(params))
	for i, p := range params {
		pairs[i] = p[0] + "=" + p[1]
	}
	return strings.Join(pairs, "&"), false
}

// sigv4Escape is UriEncode: unreserved characters as they are, every other
// byte as %XX in upper case.
func sigv4Escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// FuzzCopySource: the copy-source parser never panics, and what it accepts
// names a valid bucket and a key that stays inside it, however the value mixes
// '?', encodings and dot segments.
func FuzzCopySource(f *testing.F) {
	for _, s := range []string{"bucket/key", "/bucket/key?versionId=abc", "a-bucket/x?/../../b-bucket/secret.txt",
		"a-bucket/x%3F/../../b-bucket/s", "a-bucket/x?versionId=1/../../b-bucket/s", "b%2F../c/k", "//bucket/k", "bucket/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		bucket, _, _, err := copySourceBucket(v)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is no *Error", err)
			}
			return
		}
		if !validBucketName(bucket) {
			t.Fatalf("invalid bucket %q accepted from %q", bucket, v)
		}
		path, _, _ := strings.Cut(strings.TrimPrefix(v, "/"), "?versionId=")
		_, rawKey, _ := strings.Cut(path, "/")
		for _, key := range []string{rawKey, mustUnescape(t, rawKey)} {
			if leavesBucket(key) {
				t.Fatalf("a key leaving its bucket accepted: %q", v)
			}
		}
		if whole, err := url.PathUnescape(strings.TrimPrefix(v, "/")); err == nil && leavesBucket(whole) {
			t.Fatalf("decoded whole, %q leaves its bucket", v)
		}
	})
}

func mustUnescape(t *testing.T, s string) string {
	d, err := url.PathUnescape(s)
	if err != nil {
		t.Fatalf("accepted a key that does not decode: %q", s)
	}
	return d
}

// FuzzWithoutDiagnostics: scrubbing an upstream error body never panics, and
// what it returns is an XML <Error> without the upstream signature's
// diagnostics.
func FuzzWithoutDiagnostics(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>k</AWSAccessKeyId><StringToSign>s</StringToSign><RequestId>1</RequestId></Error>`))
	f.Add([]byte(`<Error><CanonicalRequest><x>nested</x></CanonicalRequest></Error>`))
	f.Add([]byte(`<Other/>`))
	f.Add([]byte(`not xml`))
	f.Fuzz(func(t *testing.T, body []byte) {
		clean, code, ok := withoutDiagnostics(body)
		if !ok {
			return
		}
		var e struct {
			Code string
		}
		if bytes.Count(clean, []byte("<Code")) == 1 && xml.Unmarshal(clean, &e) == nil && len(e.Code) <= maxErrorCode &&
			strings.TrimSpace(e.Code) != code {
			t.Fatalf("code %q, encoding/xml reads %q in %q", code, e.Code, clean)
		}
		d := xml.NewDecoder(bytes.NewReader(clean))
		depth := 0
		for {
			tok, err := d.Token()
			if err != nil {
				if err != io.EOF {
					t.Fatalf("scrubbed body %q does not parse: %v", clean, err)
				}
				break
			}
			switch e := tok.(type) {
			case xml.StartElement:
				depth++
				if depth == 1 && e.Name.Local != "Error" || depth == 2 && upstreamDiagnostics[e.Name.Local] {
					t.Fatalf("scrubbed body %q keeps %s", clean, e.Name.Local)
				}
			case xml.EndElement:
				depth--
			}
		}
	})
}

// FuzzSigV2: the SigV2 parsers and string to sign never panic on any header,
// path or query, and a variant that applies gives the same string twice.
func FuzzSigV2(f *testing.F) {
	f.Add("AWS AKID:c2ln", "/bucket/key", "acl&versionId=1&list-type=2&uploads=", "x-amz-meta-a")
	f.Add("AWS :", "/b", "response-content-type=a%2Fb&x=y", "")
	f.Add("AWS k", "", "AWSAccessKeyId=k&Signature=s&Expires=1", "x-amz-date")
	f.Fuzz(func(t *testing.T, auth, path, query, amz string) {
		_, _ = parseSigV2Header(auth)
		if q, err := url.ParseQuery(query); err == nil {
			_, _ = parseSigV2Query(q)
		}
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path, RawQuery: query}, RequestURI: path + "?" + query, Header: http.Header{}}
		if amz != "" {
			r.Header.Set("X-Amz-"+amz, "v")
		}
		for _, v := range v2Variants {
			a, ok := stringToSignV2(r, "date", "", v)
			b, _ := stringToSignV2(r, "date", "", v)
			if ok && string(a) != string(b) {
				t.Fatalf("not deterministic: %q %q", a, b)
			}
		}
	})
}

// FuzzDeleteKeys: reading a DeleteObjects body never panics, names at most
// 1,000 keys, and leaves the very same bytes to forward.
func FuzzDeleteKeys(f *testing.F) {
	f.Add([]byte("<Delete><Object><Key>a</Key></Object><Object><Key>b/c</Key><VersionId>1</VersionId></Object><Quiet>true</Quiet></Delete>"))
	f.Add([]byte("<Delete/>"))
	f.Add([]byte("<Delete><Object><Key>&amp;</Key></Object></Delete>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := clientBody{body: io.NopCloser(bytes.NewReader(body)), length: int64(len(body))}
		keys, err := b.deleteKeys()
		if err != nil {
			return
		}
		if len(keys) == 0 || len(keys) > maxDeleteKeys {
			t.Fatalf("%d keys accepted", len(keys))
		}
		got, _ := io.ReadAll(b.body)
		if !bytes.Equal(got, body) || b.length != int64(len(body)) {
			t.Fatal("the body to forward is not the body read")
		}
	})
}

// FuzzParseDelete: a DeleteObjects document parseDelete accepts names the
// same keys, in the same order, when encoding/xml reads it the way a Go
// upstream would; whatever it refuses, it refuses as MalformedXML.
func FuzzParseDelete(f *testing.F) {
	for _, s := range []string{
		`<Delete><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>v</VersionId></Object></Delete>`,
		`<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a &amp; <![CDATA[b]]></Key></Object></Delete>`,
		`<Delete><Object><Key>s</Key><Key>a</Key></Object></Delete>`,
		`<Delete><Object><x:Key xmlns:x="urn:x">s</x:Key><Key>a</Key></Object></Delete>`,
		`<Delete><Object><Key>a</Key></Object></Delete><Delete><Object><Key>s</Key></Object></Delete>`,
		`<!DOCTYPE d [<!ENTITY e "s">]><Delete><Object><Key>&e;</Key></Object></Delete>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objects, err := parseDelete(data)
		if err != nil {
			if !errors.Is(err, errMalformedXML) {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		var doc struct {
			Objects []struct {
				Key string `xml:"Key"`
			} `xml:"Object"`
		}
		if err := xml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("accepted, but encoding/xml refuses it: %v", err)
		}
		if len(doc.Objects) != len(objects) {
			t.Fatalf("accepted %d objects, encoding/xml reads %d", len(objects), len(doc.Objects))
		}
		for i, o := range objects {
			if doc.Objects[i].Key != o.key {
				t.Fatalf("object %d: key %q, encoding/xml reads %q", i, o.key, doc.Objects[i].Key)
			}
		}
	})
}
