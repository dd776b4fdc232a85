package proxy_test

// The in-process half of issue 24, 1 (a presigned request with x-amz-*
// headers its URL did not sign); the half against versitygw is
// TestIntegrationPresignedUnsignedHeaders in integration/.

import (
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/osproxy/proxy/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestPresignedUnsignedHeadersReachNothing (issue 24, 1): with a recording
// upstream, a presigned request with unsigned x-amz-* headers is refused
// before anything goes upstream, whatever the header, the method or the
// form of the URL's query.
func TestPresignedUnsignedHeadersReachNothing(t *testing.T) {
	up := newFakeUpstream(t)
	p := newProxy(t, up)
	for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
		for _, h := range append(itgUnsignedHeaders("bucket/src"),
			http.Header{"X-Amz-Date": {fixedNow.Format("20060102T150405Z")}},
			http.Header{"X-Amz-Security-Token": {"token"}},
			http.Header{"X-Amz-Checksum-Mode": {"ENABLED"}},
			http.Header{"X-Amz-Sdk-Checksum-Algorithm": {"CRC32"}, "X-Amz-Checksum-Crc32": {"AAAAAA=="}},
		) {
			u := presign(t, method, "http://example.com/bucket/k", fixedNow, time.Hour)
			r := httptest.NewRequest(method, u.RequestURI(), strings.NewReader("x"))
			for k, v := range h {
				r.Header[k] = v
			}
			w := serve(p, r)
			var e struct{ Code, Message, HeadersNotSigned string }
			require.NoError(t, xml.Unmarshal(w.Body.Bytes(), &e))
			got := itgS3Answer{Status: w.Code, Code: e.Code, Message: e.Message, Fields: []string{"HeadersNotSigned=" + e.HeadersNotSigned}}.String()
			require.Equal(t, itgNotSigned(headerNames(h)), got, "%s with %v", method, h)
		}
	}
	// A checksum hoisted into the query as a signed parameter does not stand
	// for the header: S3 refuses the header still.
	u := presign(t, http.MethodPut, "http://example.com/bucket/k?x-amz-checksum-crc32=AAAAAA%3D%3D", fixedNow, time.Hour)
	r := httptest.NewRequest(http.MethodPut, u.RequestURI(), strings.NewReader("x"))
	r.Header.Set("X-Amz-Checksum-Crc32", "AAAAAA==")
	require.Equal(t, http.StatusForbidden, serve(p, r).Code)
	require.Empty(t, up.requests(), "the upstream received a request")

	// What goes through: the URL signs the header, or it is
	// x-amz-content-sha256, which goes no further.
	r = httptest.NewRequest(http.MethodPut, presign(t, http.MethodPut, "http://example.com/bucket/k", fixedNow, time.Hour).RequestURI(), strings.NewReader("x"))
	r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	require.Equal(t, http.StatusOK, serve(p, r).Code)
	require.Equal(t, "UNSIGNED-PAYLOAD", up.last(t).Header.Get("X-Amz-Content-Sha256"), "the upstream's own")
}

// itgS3Answer is what a test expects of an answer, or AWS S3's own.
type itgS3Answer = testkit.S3Answer

// itgUnsignedHeaders are x-amz-* headers a client may add to a presigned PUT
// that did not sign them (testkit.UnsignedHeaders).
func itgUnsignedHeaders(copySource string) []http.Header { return testkit.UnsignedHeaders(copySource) }

// itgNotSigned is AWS S3's answer to a request with unsigned x-amz-* headers.
func itgNotSigned(names string) string { return testkit.NotSigned(names) }

// headerNames is the lowercase names of h, sorted, as HeadersNotSigned lists them.
func headerNames(h http.Header) string { return testkit.HeaderNames(h) }
