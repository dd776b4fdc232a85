package proxy

import (
	"net/http"
	"net/url"
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
		if sig.service != "s3" || len(sig.date) != 8 || sig.region == "" || sig.accessKeyID == "" {
			t.Fatalf("accepted a bad scope: %+v", sig)
		}
		if !isHexSHA256(sig.signature) {
			t.Fatalf("accepted signature %q", sig.signature)
		}
		if !containsString(sig.signedHeaders, "host") {
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
		if sig.expires <= 0 || sig.expires > maxPresignSecs*1e9 {
			t.Fatalf("accepted expiry %v", sig.expires)
		}
		if sig.amzDate[:8] != sig.date || !sig.presigned {
			t.Fatalf("accepted %+v", sig)
		}
	})
}

// FuzzParseRequest: path parsing never panics, never yields an invalid bucket
// name, and the key it yields encodes back to a path that decodes to it.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{"/bucket/key", "/bucket/a%20b", "/bucket//x", "/b%2Fc/k", "/", "/bucket", "/../etc", "/bucket/%ZZ"} {
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
		if dec, err := url.PathUnescape(encodeKey(req.key)); err != nil || dec != req.key {
			t.Fatalf("key %q does not round-trip: %q %v", req.key, dec, err)
		}
	})
}
