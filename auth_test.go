package proxy_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// completeRequests counts the requests the upstream received whole: a request
// whose body ended in an error was aborted and stores nothing.
func completeRequests(up *fakeUpstream) int {
	n := 0
	for _, r := range up.requests() {
		if !strings.HasPrefix(r.SigErr, "body:") {
			n++
		}
	}
	return n
}

func TestHostileRequestsRefused(t *testing.T) {
	signed := func(method, target, body string, mod func(*http.Request)) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := httptest.NewRequest(method, target, strings.NewReader(body))
			clientSign(t, r, sha256Hex([]byte(body)))
			mod(r)
			return r
		}
	}
	cases := []struct {
		name   string
		req    func(t *testing.T) *http.Request
		status int
		code   string
	}{
		{"seed bypass: Expect 100-continue with a bad signature", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("data"))
			r.Header.Set("Expect", "100-continue")
			clientSignAt(t, r, sha256Hex([]byte("data")), fixedNow, unitKey, "wrong-secret")
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"seed bypass: uploadId in the query with a bad signature", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/k?partNumber=1&uploadId=abc", strings.NewReader("data"))
			clientSignAt(t, r, sha256Hex([]byte("data")), fixedNow, unitKey, "wrong-secret")
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"seed bypass: uploadId and no signature at all", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodPut, "/bucket/k?partNumber=1&uploadId=abc", strings.NewReader("data"))
		}, 403, "AccessDenied"},
		{"method changed", signed("GET", "/bucket/k", "", func(r *http.Request) { r.Method = http.MethodDelete }), 403, "SignatureDoesNotMatch"},
		{"path changed", signed("GET", "/bucket/k", "", func(r *http.Request) { r.RequestURI = "/bucket/other" }), 403, "SignatureDoesNotMatch"},
		{"query added", signed("GET", "/bucket/k", "", func(r *http.Request) { r.RequestURI += "?acl=" }), 403, "SignatureDoesNotMatch"},
		{"query changed", signed("GET", "/bucket/?prefix=a", "", func(r *http.Request) { r.RequestURI = "/bucket/?prefix=b" }), 403, "SignatureDoesNotMatch"},
		{"signed header changed", signed("PUT", "/bucket/k", "", func(r *http.Request) { r.Header.Set("X-Amz-Date", "20261128T120001Z") }), 403, "SignatureDoesNotMatch"},
		{"host changed", signed("GET", "/bucket/k", "", func(r *http.Request) { r.Host = "evil.test" }), 403, "SignatureDoesNotMatch"},
		{"body changed", signed("PUT", "/bucket/k", "original", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader("tampered"))
		}), 400, "XAmzContentSHA256Mismatch"},
		{"body hash changed", signed("PUT", "/bucket/k", "original", func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte("tampered")))
			r.Body = io.NopCloser(strings.NewReader("tampered"))
		}), 403, "SignatureDoesNotMatch"},
		{"unsigned x-amz-meta added", signed("PUT", "/bucket/k", "", func(r *http.Request) { r.Header.Set("X-Amz-Meta-Evil", "1") }), 403, "AccessDenied"},
		{"x-amz-content-sha256 missing", signed("GET", "/bucket/k", "", func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }), 400, "InvalidRequest"},
		{"unknown access key", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSignAt(t, r, sha256Hex(nil), fixedNow, "nobody", "x")
			return r
		}, 403, "InvalidAccessKeyId"},
		{"wrong secret", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSignAt(t, r, sha256Hex(nil), fixedNow, unitKey, "not-the-secret")
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"replay after the skew", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSignAt(t, r, sha256Hex(nil), fixedNow.Add(-16*time.Minute), unitKey, unitSecret)
			return r
		}, 403, "RequestTimeTooSkewed"},
		{"dated in the future", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSignAt(t, r, sha256Hex(nil), fixedNow.Add(16*time.Minute), unitKey, unitSecret)
			return r
		}, 403, "RequestTimeTooSkewed"},
		{"scope for another service", signed("GET", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/s3/", "/ec2/", 1))
		}), 400, "AuthorizationHeaderMalformed"},
		{"scope for another day", signed("GET", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261128/", "/20261127/", 1))
		}), 400, "AuthorizationHeaderMalformed"},
		{"garbage authorization", signed("GET", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage")
		}), 400, "AuthorizationHeaderMalformed"},
		{"duplicate authorization part", signed("GET", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("Authorization", r.Header.Get("Authorization")+", Signature="+strings.Repeat("a", 64))
		}), 400, "AuthorizationHeaderMalformed"},
		{"short signature", signed("GET", "/bucket/k", "", func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:len(a)-2])
		}), 400, "AuthorizationHeaderMalformed"},
		{"signed headers without host", signed("GET", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=host;", "SignedHeaders=", 1))
		}), 400, "AuthorizationHeaderMalformed"},
		{"sigv2", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			r.Header.Set("Authorization", "AWS "+unitKey+":c2lnbmF0dXJl")
			return r
		}, 400, "InvalidRequest"},
		{"sigv2 presigned", func(t *testing.T) *http.Request {
			return httptest.NewRequest(http.MethodGet, "/bucket/k?AWSAccessKeyId="+unitKey+"&Expires=1900000000&Signature=abc", nil)
		}, 400, "InvalidRequest"},
		{"sigv4a", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			r.Header.Set("Authorization", "AWS4-ECDSA-P256-SHA256 Credential="+unitKey+"/20261128/s3/aws4_request, SignedHeaders=host, Signature=00")
			return r
		}, 501, "NotImplemented"},
		{"header and query signature", func(t *testing.T) *http.Request {
			u := presign(t, "GET", "http://example.com/bucket/k", fixedNow, time.Hour)
			r := httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
			clientSign(t, r, sha256Hex(nil))
			return r
		}, 400, "InvalidArgument"},
		{"expired presign", func(t *testing.T) *http.Request {
			u := presign(t, "GET", "http://example.com/bucket/k", fixedNow.Add(-2*time.Hour), time.Hour)
			return httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
		}, 403, "AccessDenied"},
		{"presign from the future", func(t *testing.T) *http.Request {
			u := presign(t, "GET", "http://example.com/bucket/k", fixedNow.Add(time.Hour), time.Hour)
			return httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
		}, 403, "AccessDenied"},
		{"overlong presign", func(t *testing.T) *http.Request {
			u := presign(t, "GET", "http://example.com/bucket/k", fixedNow, 7*24*time.Hour+time.Second)
			return httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
		}, 400, "AuthorizationQueryParametersError"},
		{"presign path changed", func(t *testing.T) *http.Request {
			u := presign(t, "GET", "http://example.com/bucket/k", fixedNow, time.Hour)
			return httptest.NewRequest(http.MethodGet, strings.Replace(u.RequestURI(), "/bucket/k", "/bucket/j", 1), nil)
		}, 403, "SignatureDoesNotMatch"},
		{"presign used for another method", func(t *testing.T) *http.Request {
			u := presign(t, "GET", "http://example.com/bucket/k", fixedNow, time.Hour)
			return httptest.NewRequest(http.MethodPut, u.RequestURI(), strings.NewReader("x"))
		}, 403, "SignatureDoesNotMatch"},
		{"presign with unsigned x-amz-meta added", func(t *testing.T) *http.Request {
			u := presign(t, "PUT", "http://example.com/bucket/k", fixedNow, time.Hour)
			r := httptest.NewRequest(http.MethodPut, u.RequestURI(), strings.NewReader("x"))
			r.Header.Set("X-Amz-Meta-Evil", "1")
			return r
		}, 403, "AccessDenied"}, // refused as S3 refuses it (HeadersNotSigned), not dropped
		{"aws-chunked without decoded length", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("0\r\n\r\n"))
			r.Header.Set("Content-Encoding", "aws-chunked")
			clientSign(t, r, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
			return r
		}, 411, "MissingContentLength"},
		// Shapes from the hardening round (issue 12): refused before anything
		// is kept or forwarded.
		{"TRACE, signed", signed("GET", "/bucket/k", "", func(r *http.Request) { r.Method = "TRACE" }), 405, "MethodNotAllowed"},
		{"lowercase get, signed", signed("GET", "/bucket/k", "", func(r *http.Request) { r.Method = "get" }), 405, "MethodNotAllowed"},
		{"PROPFIND, signed", signed("GET", "/bucket/k", "", func(r *http.Request) { r.Method = "PROPFIND" }), 405, "MethodNotAllowed"},
		{"1 MiB region", signed("GET", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/"+strings.Repeat("r", 1<<20)+"/", 1))
		}), 400, "RequestHeaderSectionTooLarge"},
		{"65-byte region", signed("GET", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/"+strings.Repeat("r", 65)+"/", 1))
		}), 400, "AuthorizationHeaderMalformed"},
		{"region with a space", signed("GET", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/us east/", 1))
		}), 400, "AuthorizationHeaderMalformed"},
		{"600 unsigned x-amz headers", signed("GET", "/bucket/k", "", func(r *http.Request) {
			for i := range 600 {
				r.Header.Set("X-Amz-Meta-"+strings.Repeat("a", i%40)+string(rune('a'+i%26))+string(rune('a'+i/26)), "v")
			}
		}), 400, "RequestHeaderSectionTooLarge"},
		{"two copy sources", signed("PUT", "/bucket/k", "", func(r *http.Request) {
			r.Header.Add("X-Amz-Copy-Source", "bucket/a")
			r.Header.Add("X-Amz-Copy-Source", "other/b")
			clientSign(t, r, sha256Hex(nil))
		}), 400, "InvalidArgument"},
		{"copy source climbing out after a literal ?", signed("PUT", "/bucket/k", "", func(r *http.Request) {
			r.Header.Set("X-Amz-Copy-Source", "bucket/x?/../../other/secret.txt")
			clientSign(t, r, sha256Hex(nil))
		}), 400, "InvalidArgument"},
		{"2 KiB key", signed("GET", "/bucket/"+strings.Repeat("k", 2048), "", func(*http.Request) {}), 400, "KeyTooLongError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newFakeUpstream(t)
			p := newProxy(t, up)
			w := serve(p, c.req(t))
			if c.status == 0 {
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				assert.Empty(t, up.last(t).Header.Get("X-Amz-Meta-Evil"), "an unsigned x-amz-* header must not be forwarded")
				return
			}
			assert.Equal(t, c.status, w.Code, w.Body.String())
			assert.Equal(t, c.code, s3Code(w.Body.String()))
			assert.Zero(t, completeRequests(up), "nothing may reach the upstream whole")
		})
	}
}

func TestRequestTimeTooSkewedCarriesServerTime(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	clientSignAt(t, r, sha256Hex(nil), fixedNow.Add(-time.Hour), unitKey, unitSecret)
	w := serve(p, r)
	require.Equal(t, http.StatusForbidden, w.Code)
	var e struct {
		Code                       string
		ServerTime                 string
		RequestTime                string
		MaxAllowedSkewMilliseconds int64
	}
	require.NoError(t, xml.Unmarshal(w.Body.Bytes(), &e))
	assert.Equal(t, "RequestTimeTooSkewed", e.Code)
	assert.Equal(t, fixedNow.Format("2006-01-02T15:04:05Z"), e.ServerTime)
	assert.Equal(t, fixedNow.Add(-time.Hour).Format("20060102T150405Z"), e.RequestTime)
	assert.Equal(t, int64(15*60*1000), e.MaxAllowedSkewMilliseconds)
}

func TestValidRequestsAccepted(t *testing.T) {
	cases := map[string]func(t *testing.T) *http.Request{
		"header GET": func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k?versionId=1", nil)
			clientSign(t, r, sha256Hex(nil))
			return r
		},
		"within the skew": func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSignAt(t, r, sha256Hex(nil), fixedNow.Add(-14*time.Minute), unitKey, unitSecret)
			return r
		},
		"unsigned payload PUT": func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("body"))
			clientSign(t, r, "UNSIGNED-PAYLOAD")
			return r
		},
		"presigned GET made six days ago for seven": func(t *testing.T) *http.Request {
			u := presign(t, "GET", "http://example.com/bucket/k", fixedNow.Add(-6*24*time.Hour), 7*24*time.Hour)
			return httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
		},
		"presigned PUT": func(t *testing.T) *http.Request {
			u := presign(t, "PUT", "http://example.com/bucket/a%20b", fixedNow, time.Hour)
			return httptest.NewRequest(http.MethodPut, u.RequestURI(), strings.NewReader("body"))
		},
		"signed headers of every shape": func(t *testing.T) *http.Request {
			q := "list-type=2&prefix=a%20b/c&delimiter=%2F&start-after=%7Ez&encoding-type=url&max-keys=5&fetch-owner=true"
			r := httptest.NewRequest(http.MethodGet, "/bucket/?"+q+"&a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11", nil)
			r.Header.Set("X-Amz-Meta-Under_score", "v")
			r.Header.Set("X-Amz-Meta-"+strings.Repeat("long-", 14), "a name longer than 64 bytes")
			r.Header["X-Amz-Meta-Multi"] = []string{"  one  two ", "three"}
			r.Header.Set("Range", "bytes=0-9")
			clientSign(t, r, sha256Hex(nil))
			return r
		},
		"key sent raw, signed encoded": func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/a%2Bb%3Dc", nil)
			clientSign(t, r, sha256Hex(nil))
			r.RequestURI = "/bucket/a+b=c"
			return r
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			up := newFakeUpstream(t)
			p := newProxy(t, up)
			w := serve(p, mk(t))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			got := up.last(t)
			assert.True(t, got.SigOK, got.SigErr)
		})
	}
}

// A secret rotated in the store stops the old one at once, although derived
// signing keys are cached.
func TestRotatedSecretStopsAtOnce(t *testing.T) {
	var mu sync.Mutex
	secret := unitSecret
	up := newFakeUpstream(t)
	p := newProxy(t, up, proxy.WithClientSecrets(func(ctx context.Context, id string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if id != unitKey {
			return "", proxy.ErrInvalidAccessKeyID
		}
		return secret, nil
	}))
	get := func(s string) int {
		r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
		clientSignAt(t, r, sha256Hex(nil), fixedNow, unitKey, s)
		return serve(p, r).Code
	}
	require.Equal(t, http.StatusOK, get(unitSecret))
	mu.Lock()
	secret = "rotated"
	mu.Unlock()
	assert.Equal(t, http.StatusForbidden, get(unitSecret))
	assert.Equal(t, http.StatusOK, get("rotated"))
}

// SDKs disagree on tabs inside header values: the Go SDK keeps them, botocore
// folds them into a space. Both signatures verify.
func TestTabsInSignedHeaderValues(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	r := httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("x"))
	r.Header.Set("X-Amz-Meta-Note", "tab\there")
	clientSign(t, r, sha256Hex([]byte("x"))) // the Go SDK signer: the tab stays
	w := serve(p, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "tab\there", up.last(t).Header.Get("X-Amz-Meta-Note"))

	// botocore's form: signed as "tab here", sent with the tab.
	r = httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("x"))
	r.Header.Set("X-Amz-Meta-Note", "tab here")
	clientSign(t, r, sha256Hex([]byte("x")))
	r.Header.Set("X-Amz-Meta-Note", "tab\there")
	w = serve(p, r)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	// Any other change still fails.
	r = httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("x"))
	r.Header.Set("X-Amz-Meta-Note", "tab here")
	clientSign(t, r, sha256Hex([]byte("x")))
	r.Header.Set("X-Amz-Meta-Note", "tab\tthere")
	assert.Equal(t, http.StatusForbidden, serve(p, r).Code)
}

// The errors of malformed signatures carry S3's codes, messages and fields,
// which SDKs show and act on.
func TestAuthErrorsInS3Words(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up, proxy.WithRegions("eu-de", "us-east-1"))
	header := func(edit func(string) string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
			clientSign(t, r, sha256Hex(nil))
			r.Header.Set("Authorization", edit(r.Header.Get("Authorization")))
			return r
		}
	}
	query := func(edit func(string) string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			u := presign(t, "GET", "http://example.com/bucket/k", fixedNow, time.Hour)
			return httptest.NewRequest(http.MethodGet, edit(u.RequestURI()), nil)
		}
	}
	for _, c := range []struct {
		name, code, message, field string
		req                        func(t *testing.T) *http.Request
	}{
		{"wrong region", "AuthorizationHeaderMalformed", "The authorization header is malformed; the region 'ap-south-9' is wrong; expecting 'eu-de'", "<Region>eu-de</Region>",
			header(func(a string) string { return strings.Replace(a, "/us-east-1/", "/ap-south-9/", 1) })},
		{"another service", "AuthorizationHeaderMalformed", `The authorization header is malformed; incorrect service "ec2". This endpoint belongs to "s3".`, "",
			header(func(a string) string { return strings.Replace(a, "/s3/", "/ec2/", 1) })},
		{"wrong terminal", "AuthorizationHeaderMalformed", `The authorization header is malformed; incorrect terminal "aws5_request". This endpoint uses "aws4_request".`, "",
			header(func(a string) string { return strings.Replace(a, "aws4_request", "aws5_request", 1) })},
		{"bad date", "AuthorizationHeaderMalformed", `incorrect date format "2026112x". This date in the credential must be in the format "yyyyMMdd".`, "",
			header(func(a string) string { return strings.Replace(a, "/20261128/", "/2026112x/", 1) })},
		{"two components", "AuthorizationHeaderMalformed", "The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.", "",
			header(func(a string) string { _, rest, _ := strings.Cut(a, ", "); return "AWS4-HMAC-SHA256 " + rest })},
		{"four components", "AuthorizationHeaderMalformed", "The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.", "",
			header(func(a string) string { return a + ", Extra=1" })},
		{"a component unknown", "AuthorizationHeaderMalformed", `The authorization header is malformed; the authorization component "Credentials=x" is malformed.`, "",
			header(func(a string) string {
				_, rest, _ := strings.Cut(a, ", ")
				return "AWS4-HMAC-SHA256 Credentials=x, " + rest
			})},
		{"no space", "InvalidArgument", "Authorization header is invalid -- one and only one ' ' (space) required.", "<ArgumentName>Authorization</ArgumentName><ArgumentValue>AWS4-HMAC-SHA256</ArgumentValue>",
			header(func(string) string { return "AWS4-HMAC-SHA256" })},
		{"another scheme", "InvalidArgument", "Unsupported Authorization Type", "<ArgumentName>Authorization</ArgumentName><ArgumentValue>Bearer</ArgumentValue>",
			header(func(string) string { return "Bearer token" })},
		{"x-amz-date not a date", "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header", "",
			func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
				clientSign(t, r, sha256Hex(nil))
				r.Header.Set("X-Amz-Date", "yesterday")
				return r
			}},
		{"unsigned x-amz-* headers", "AccessDenied", "There were headers present in the request which were not signed", "<HeadersNotSigned>x-amz-acl, x-amz-tagging</HeadersNotSigned>",
			func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("x"))
				clientSign(t, r, sha256Hex([]byte("x")))
				r.Header.Set("X-Amz-Tagging", "a=b")
				r.Header.Set("X-Amz-Acl", "public-read")
				return r
			}},
		{"presigned, unsigned x-amz-* headers", "AccessDenied", "There were headers present in the request which were not signed", "<HeadersNotSigned>x-amz-acl, x-amz-tagging</HeadersNotSigned>",
			func(t *testing.T) *http.Request {
				u := presign(t, "PUT", "http://example.com/bucket/k", fixedNow, time.Hour)
				r := httptest.NewRequest(http.MethodPut, u.RequestURI(), strings.NewReader("x"))
				r.Header.Set("X-Amz-Tagging", "a=b")
				r.Header.Set("X-Amz-Acl", "public-read")
				return r
			}},
		{"empty body, another hash", "XAmzContentSHA256Mismatch", "", "<ClientComputedContentSHA256>" + sha256Hex([]byte("declared")) + "</ClientComputedContentSHA256><S3ComputedContentSHA256>" + sha256Hex(nil) + "</S3ComputedContentSHA256>",
			func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPut, "/bucket/k", nil)
				clientSign(t, r, sha256Hex([]byte("declared")))
				return r
			}},
		{"mal-formed credential", "AuthorizationHeaderMalformed", `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`, "",
			header(func(a string) string {
				return strings.Replace(a, "Credential=client-key/", "Credential=client-key//", 1)
			})},
		{"presigned, wrong region", "AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter; the region 'ap-south-9' is wrong; expecting 'eu-de'", "<Region>eu-de</Region>",
			query(func(q string) string { return strings.Replace(q, "%2Fus-east-1%2F", "%2Fap-south-9%2F", 1) })},
		{"presigned, negative expiry", "AuthorizationQueryParametersError", "X-Amz-Expires must be non-negative", "",
			query(func(q string) string { return strings.Replace(q, "X-Amz-Expires=3600", "X-Amz-Expires=-1", 1) })},
		{"presigned, over a week", "AuthorizationQueryParametersError", "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds", "",
			query(func(q string) string { return strings.Replace(q, "X-Amz-Expires=3600", "X-Amz-Expires=604801", 1) })},
		{"presigned, missing parameter", "AuthorizationQueryParametersError", "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.", "",
			query(func(q string) string { return strings.Replace(q, "X-Amz-Expires=3600&", "", 1) })},
		{"presigned, expired", "AccessDenied", "Request has expired", "<X-Amz-Expires>3600</X-Amz-Expires>",
			func(t *testing.T) *http.Request {
				u := presign(t, "GET", "http://example.com/bucket/k", fixedNow.Add(-2*time.Hour), time.Hour)
				return httptest.NewRequest(http.MethodGet, u.RequestURI(), nil)
			}},
		{"sigv2", "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.", "",
			func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
				r.Header.Set("Authorization", "AWS "+unitKey+":c2lnbmF0dXJl")
				return r
			}},
		{"body hash mismatch", "XAmzContentSHA256Mismatch", "", "<ClientComputedContentSHA256>" + sha256Hex([]byte("declared")) + "</ClientComputedContentSHA256><S3ComputedContentSHA256>" + sha256Hex([]byte("sent")) + "</S3ComputedContentSHA256>",
			func(t *testing.T) *http.Request {
				r := httptest.NewRequest(http.MethodPut, "/bucket/k", strings.NewReader("sent"))
				clientSign(t, r, sha256Hex([]byte("declared")))
				return r
			}},
	} {
		w := serve(p, c.req(t))
		body := w.Body.String()
		assert.Equal(t, c.code, s3Code(body), c.name)
		assert.Contains(t, body, xmlEscape(c.message), c.name)
		assert.Contains(t, body, c.field, c.name)
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
