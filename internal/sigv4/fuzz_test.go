package sigv4

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/osproxy/proxy/internal/s3err"
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
		sig, err := ParseHeader(v)
		if err != nil {
			if sig != nil {
				t.Fatal("a signature and an error")
			}
			if _, ok := err.(*s3err.Error); !ok {
				t.Fatalf("error %T is no *s3err.Error", err)
			}
			return
		}
		if sig.Service != "s3" || len(sig.Date) != 8 || !ValidScopePart(sig.Region, MaxRegion, IsRegionByte) ||
			!ValidScopePart(sig.AccessKeyID, MaxAccessKeyID, IsKeyIDByte) || len(sig.SignedHeaders) > MaxSignedHeaders {
			t.Fatalf("accepted a bad scope: %+v", sig)
		}
		if cred := sig.AccessKeyID + "/" + sig.Scope(); !strings.Contains(v, "Credential="+cred) ||
			strings.Count(cred, "/") != 4 {
			t.Fatalf("the credential %q is not the one in %q", cred, v)
		}
		if !IsHexSHA256(sig.Signature) {
			t.Fatalf("accepted signature %q", sig.Signature)
		}
		if !slices.Contains(sig.SignedHeaders, "host") {
			t.Fatal("accepted signed headers without host")
		}
		for i := 1; i < len(sig.SignedHeaders); i++ {
			if sig.SignedHeaders[i-1] >= sig.SignedHeaders[i] {
				t.Fatalf("accepted unsorted signed headers %q", sig.SignedHeaders)
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
		sig, err := ParsePresign(q)
		if err != nil {
			if _, ok := err.(*s3err.Error); !ok {
				t.Fatalf("error %T is no *s3err.Error", err)
			}
			return
		}
		if sig.Expires < 0 || sig.Expires > MaxPresignSecs*1e9 {
			t.Fatalf("accepted expiry %v", sig.Expires)
		}
		if sig.AmzDate[:8] != sig.Date || !sig.Presigned || !ValidScopePart(sig.Region, MaxRegion, IsRegionByte) {
			t.Fatalf("accepted %+v", sig)
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

// FuzzParseAmzDate: ParseAmzDate answers as time.Parse(AmzDateFormat, v)
// does, the same time or an error both, for every string.
func FuzzParseAmzDate(f *testing.F) {
	for _, s := range []string{"20261207T035000Z", "20240229T235959Z", "20230229T000000Z", "00000101T000000Z",
		"99991231T235959Z", "20261207T240000Z", "20261207T236000Z", "20261207T235960Z", "20261300T000000Z",
		"20260431T000000Z", "2026120T7035000Z", "20261207t035000Z", "20261207T035000z", "+0261207T035000Z",
		"2026-12-07T03:50:00Z", "", "20261207T035000", "20261207T035000Z0", "٢٠٢٦1207T035000Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := ParseAmzDate(v)
		want, wantErr := time.Parse(AmzDateFormat, v)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("ParseAmzDate(%q): error %v, time.Parse: %v", v, err, wantErr)
		}
		if err == nil && (!got.Equal(want) || got.Location() != want.Location()) {
			t.Fatalf("ParseAmzDate(%q) = %v, time.Parse: %v", v, got, want)
		}
	})
}
