package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// The SigV2 examples of the Amazon S3 developer guide (bucket johnsmith, the
// documentation's example keys), through a proxy with WithSigV2: each
// verifies, virtual-hosted and path-style, and goes upstream signed with
// SigV4; changed, it does not verify.
func TestSigV2DocumentedExamples(t *testing.T) {
	const key, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	type example struct {
		name, method, target, date, sig string
		h                               http.Header
		at                              time.Time
	}
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC1123Z, s); return tm }
	examples := []example{
		{"object GET", http.MethodGet, "/photos/puppy.jpg", "Tue, 27 Mar 2007 19:36:42 +0000", "bWq2s1WEIj+Ydj0vQ697zp+IXMU=", nil, at("Tue, 27 Mar 2007 19:36:42 +0000")},
		{"object PUT", http.MethodPut, "/photos/puppy.jpg", "Tue, 27 Mar 2007 21:15:45 +0000", "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
			http.Header{"Content-Type": {"image/jpeg"}}, at("Tue, 27 Mar 2007 21:15:45 +0000")},
		{"list", http.MethodGet, "/?prefix=photos&max-keys=50&marker=puppy", "Tue, 27 Mar 2007 19:42:41 +0000", "htDYFYduRNen8P9ZfE/s9SuKy0U=", nil, at("Tue, 27 Mar 2007 19:42:41 +0000")},
		{"ACL (a sub-resource)", http.MethodGet, "/?acl", "Tue, 27 Mar 2007 19:44:46 +0000", "c2WLPFtWHVgbEmeEG93a4cG37dM=", nil, at("Tue, 27 Mar 2007 19:44:46 +0000")},
		{"presigned", http.MethodGet, "/photos/puppy.jpg?AWSAccessKeyId=" + key + "&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620", "", "", nil, time.Unix(1175139620-60, 0)},
	}
	for _, vhost := range []bool{true, false} {
		for _, ex := range examples {
			name := ex.name + map[bool]string{true: ", virtual-hosted", false: ", path-style"}[vhost]
			up := newFakeUpstream(t)
			p, err := proxy.New(
				proxy.WithBuckets(proxy.Bucket{Name: "johnsmith", Endpoint: up.endpoint(),
					Credentials: proxy.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}}),
				proxy.WithClientKeys(map[string]string{key: secret}),
				proxy.WithVirtualHostDomains("s3.amazonaws.com"),
				proxy.WithSigV2(true),
				proxy.WithTransport(up.transport()),
				proxy.WithClock(func() time.Time { return ex.at }),
			)
			require.NoError(t, err)
			request := func(edit func(*http.Request)) *httptest.ResponseRecorder {
				target, host := ex.target, "johnsmith.s3.amazonaws.com"
				if !vhost {
					target, host = "/johnsmith"+ex.target, "s3.amazonaws.com"
				}
				r := httptest.NewRequest(ex.method, target, nil)
				r.Host = host
				for k, v := range ex.h {
					r.Header[k] = v
				}
				if ex.sig != "" {
					r.Header.Set("Date", ex.date)
					r.Header.Set("Authorization", "AWS "+key+":"+ex.sig)
				}
				edit(r)
				return serve(p, r)
			}
			w := request(func(*http.Request) {})
			require.Equal(t, 200, w.Code, name+": "+w.Body.String())
			assert.True(t, up.last(t).SigOK, "%s: re-signed with SigV4 for the upstream", name)
			assert.NotContains(t, up.last(t).RequestURI, "Signature", name)

			before := len(up.requests())
			w = request(func(r *http.Request) { r.Header.Set("X-Amz-Meta-Added", "1") })
			assert.Equal(t, "SignatureDoesNotMatch", s3Code(w.Body.String()), name+", an x-amz header added")
			w = request(func(r *http.Request) {
				r.URL.RawQuery += "&versionId=3"
				r.RequestURI += map[bool]string{true: "&", false: "?"}[strings.Contains(r.RequestURI, "?")] + "versionId=3"
			})
			assert.Equal(t, "SignatureDoesNotMatch", s3Code(w.Body.String()), name+", a sub-resource added")
			assert.Len(t, up.requests(), before, "nothing forwarded")
			_ = p.Close()
		}
	}
}

// SigV2 is refused unless WithSigV2, with S3's words; a SigV2 presigned URL
// expires, and may not run for more than seven days.
func TestSigV2Rules(t *testing.T) {
	up := newFakeUpstream(t)
	off := newProxy(t, up)
	r := httptest.NewRequest(http.MethodGet, "/bucket/k", nil)
	r.Header.Set("Date", fixedNow.Format(http.TimeFormat))
	r.Header.Set("Authorization", "AWS "+unitKey+":c2lnbmF0dXJl")
	w := serve(off, r)
	assert.Equal(t, 400, w.Code)
	assert.Contains(t, w.Body.String(), "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")

	on := newProxy(t, up, proxy.WithSigV2(true))
	for _, c := range []struct {
		name, query, code string
	}{
		{"expired", "Expires=1", "AccessDenied"},
		{"eight days ahead", "Expires=" + strconv.FormatInt(fixedNow.Add(8*24*time.Hour).Unix(), 10), "AccessDenied"},
		{"not a number", "Expires=soon", "AccessDenied"},
		{"missing Expires", "", "AccessDenied"},
		{"unknown key", "Expires=" + strconv.FormatInt(fixedNow.Add(time.Hour).Unix(), 10) + "&x=", "InvalidAccessKeyId"},
	} {
		id := unitKey
		if c.code == "InvalidAccessKeyId" {
			id = "nobody"
		}
		q := "AWSAccessKeyId=" + id + "&Signature=c2lnbmF0dXJl"
		if c.query != "" {
			q += "&" + c.query
		}
		w := serve(on, httptest.NewRequest(http.MethodGet, "/bucket/k?"+q, nil))
		assert.Equal(t, c.code, s3Code(w.Body.String()), c.name)
	}
	assert.Empty(t, up.requests())
}
