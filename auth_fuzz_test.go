package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/osproxy/proxy/internal/s3xml"
	"github.com/osproxy/proxy/internal/sigv4"
)

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
		if dec, err := url.PathUnescape(sigv4.EncodeKey(req.key)); err != nil || dec != req.key {
			t.Fatalf("key %q does not round-trip: %q %v", req.key, dec, err)
		}
	})
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
		if len(keys) == 0 || len(keys) > s3xml.MaxDeleteKeys {
			t.Fatalf("%d keys accepted", len(keys))
		}
		got, _ := io.ReadAll(b.body)
		if !bytes.Equal(got, body) || b.length != int64(len(body)) {
			t.Fatal("the body to forward is not the body read")
		}
	})
}

// FuzzMayCarryAuth: a query mayCarryAuth passes over holds none of the
// presigned URL's parameters parseAuth looks for, once parsed as parseAuth
// parses it.
func FuzzMayCarryAuth(f *testing.F) {
	for _, s := range []string{"", "list-type=2&prefix=a+b", "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X%2DAmz-Signature=x",
		"Signature=x&AWSAccessKeyId=y", "x-amz-algorithm=lower", "X-Amz-Credential", "a=b;X-Amz-Algorithm=c",
		"uploads&partNumber=1", "Signature+=x", "AWSAccessKeyId=%", "%58-Amz-Credential=k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if mayCarryAuth(raw) {
			return
		}
		q, _ := url.ParseQuery(raw)
		for _, name := range []string{"X-Amz-Algorithm", "X-Amz-Signature", "X-Amz-Credential", "AWSAccessKeyId", "Signature"} {
			if q.Has(name) {
				t.Fatalf("mayCarryAuth(%q) = false, but the query has %s", raw, name)
			}
		}
	})
}
