package integration_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
	"github.com/osproxy/proxy/internal/testkit"
)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// s3Code extracts the <Code> of an S3 XML error body.
func s3Code(body string) string { return testkit.S3Code(body) }

// itgLeavesBucket reports whether resolving the dot segments of key, as a path
// below its bucket, would climb out of it (empty segments not counted): the
// keys the proxy refuses with 400 on a path-style upstream and as a copy
// source. TestItgLeavesBucket holds it to the proxy's answers.
func itgLeavesBucket(key string) bool {
	depth := 0
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "..":
			if depth--; depth < 0 {
				return true
			}
		case ".", "":
		default:
			depth++
		}
	}
	return false
}

// TestItgLeavesBucket: itgLeavesBucket is true exactly for the keys that a
// proxy in front of a path-style upstream refuses with 400 and never forwards,
// for every key of up to four segments of "a", ".", ".." and "".
func TestItgLeavesBucket(t *testing.T) {
	var forwarded atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { forwarded.Add(1) }))
	defer up.Close()
	u, err := url.Parse(up.URL)
	require.NoError(t, err)
	p, err := proxy.New(
		proxy.WithBuckets(proxy.Bucket{Name: "bucket", Anonymous: true,
			Endpoint:    proxy.Endpoint{Host: u.Hostname(), Port: up.Listener.Addr().(*net.TCPAddr).Port, Scheme: "http", PathStyle: true},
			Credentials: proxy.Credentials{AccessKeyID: "upstream-key", SecretAccessKey: "upstream-secret"}}),
		proxy.WithClientKeys(map[string]string{"key": "secret"}),
		proxy.WithTransport(up.Client().Transport))
	require.NoError(t, err)
	defer p.Close()
	defer up.Client().CloseIdleConnections()
	keys := []string{""}
	var all []string
	for range 4 {
		var next []string
		for _, k := range keys {
			for _, seg := range []string{"a", ".", "..", ""} {
				next = append(next, strings.TrimPrefix(k+"/"+seg, "/"))
			}
		}
		keys = next
		all = append(all, keys...)
	}
	leaving := 0
	for _, key := range all {
		if key == "" {
			continue
		}
		before := forwarded.Load()
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/bucket/"+key, nil))
		if itgLeavesBucket(key) {
			leaving++
			assert.Equal(t, http.StatusBadRequest, w.Code, "%q: %s", key, w.Body)
			assert.Equal(t, before, forwarded.Load(), "%q forwarded", key)
		} else {
			assert.Equal(t, http.StatusOK, w.Code, "%q: %s", key, w.Body)
			assert.Equal(t, before+1, forwarded.Load(), "%q not forwarded", key)
		}
	}
	require.NotZero(t, leaving)
}
