package sigv2

import (
	"net/http"
	"net/url"
	"testing"
)

// FuzzSigV2: the SigV2 parsers and string to sign never panic on any header,
// path or query, and a variant that applies gives the same string twice.
func FuzzSigV2(f *testing.F) {
	f.Add("AWS AKID:c2ln", "/bucket/key", "acl&versionId=1&list-type=2&uploads=", "x-amz-meta-a")
	f.Add("AWS :", "/b", "response-content-type=a%2Fb&x=y", "")
	f.Add("AWS k", "", "AWSAccessKeyId=k&Signature=s&Expires=1", "x-amz-date")
	f.Fuzz(func(t *testing.T, auth, path, query, amz string) {
		_, _ = ParseHeader(auth)
		if q, err := url.ParseQuery(query); err == nil {
			_, _ = ParseQuery(q)
		}
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path, RawQuery: query}, RequestURI: path + "?" + query, Header: http.Header{}}
		if amz != "" {
			r.Header.Set("X-Amz-"+amz, "v")
		}
		for _, v := range variants {
			a, ok := stringToSign(r, "date", "", v)
			b, _ := stringToSign(r, "date", "", v)
			if ok && string(a) != string(b) {
				t.Fatalf("not deterministic: %q %q", a, b)
			}
		}
	})
}
