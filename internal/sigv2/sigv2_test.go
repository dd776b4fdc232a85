package sigv2

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy/internal/s3err"
	"github.com/osproxy/proxy/internal/sigv4"
)

const (
	keyID  = "AKIAIOSFODNN7EXAMPLE"
	secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

var now = time.Date(2007, 3, 27, 19, 36, 42, 0, time.UTC)

// sign is HMAC-SHA1 in base64 of a string to sign written out by hand.
func sign(sts string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	date := now.Format(http.TimeFormat)
	for _, tc := range []struct {
		name, method, target, vhost, sts string
		header                           map[string]string
	}{
		{name: "path-style GET", method: "GET", target: "/photos/puppy.jpg",
			sts: "GET\n\n\n" + date + "\n/photos/puppy.jpg"},
		{name: "virtual-hosted GET", method: "GET", target: "/puppy.jpg", vhost: "photos",
			sts: "GET\n\n\n" + date + "\n/photos/puppy.jpg"},
		{name: "x-amz headers sorted, lower-cased, trimmed and joined", method: "PUT", target: "/photos/puppy.jpg",
			header: map[string]string{"Content-Type": "image/jpeg", "Content-Md5": "bWQ1", "X-Amz-Meta-B": " two ", "X-Amz-Meta-A": "one"},
			sts:    "PUT\nbWQ1\nimage/jpeg\n" + date + "\nx-amz-meta-a:one\nx-amz-meta-b:two\n/photos/puppy.jpg"},
		{name: "sub-resources sorted and decoded, others left out", method: "GET", target: "/photos/puppy.jpg?versionId=3&prefix=x&%61cl",
			sts: "GET\n\n\n" + date + "\n/photos/puppy.jpg?acl&versionId=3"},
		{name: "bucket signed with a trailing slash (botocore)", method: "GET", target: "/photos",
			sts: "GET\n\n\n" + date + "\n/photos/"},
		{name: "list-type signed as a sub-resource (older botocore)", method: "GET", target: "/photos?list-type=2&prefix=a",
			sts: "GET\n\n\n" + date + "\n/photos?list-type=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://s3.test"+tc.target, nil)
			r.Header.Set("Date", date)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			sig, err := ParseHeader("AWS " + keyID + ":" + sign(tc.sts))
			require.NoError(t, err)
			assert.Equal(t, keyID, sig.AccessKeyID)
			require.NoError(t, Verify(r, sig, secret, tc.vhost, now, 15*time.Minute))

			err = Verify(r, sig, "another secret", tc.vhost, now, 15*time.Minute)
			assert.True(t, errors.Is(err, s3err.SignatureDoesNotMatch), "%v", err)
			r.Method = "DELETE"
			assert.Error(t, Verify(r, sig, secret, tc.vhost, now, 15*time.Minute), "the method is signed")
		})
	}
}

func TestVerifyClock(t *testing.T) {
	sts := func(date string) string { return "GET\n\n\n" + date + "\n/b/k" }
	r := httptest.NewRequest("GET", "http://s3.test/b/k", nil)
	old := now.Add(-20 * time.Minute).Format(http.TimeFormat)
	r.Header.Set("Date", old)
	sig, err := ParseHeader("AWS " + keyID + ":" + sign(sts(old)))
	require.NoError(t, err)
	err = Verify(r, sig, secret, "", now, 15*time.Minute)
	var e *s3err.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "RequestTimeTooSkewed", e.Code)

	r.Header.Del("Date")
	assert.ErrorIs(t, Verify(r, sig, secret, "", now, 15*time.Minute), sigv4.ErrNoDate)

	// x-amz-date takes the place of Date, which is then signed empty.
	amz := now.Format(http.TimeFormat)
	r.Header.Set("X-Amz-Date", amz)
	sig, _ = ParseHeader("AWS " + keyID + ":" + sign("GET\n\n\n\nx-amz-date:"+amz+"\n/b/k"))
	assert.NoError(t, Verify(r, sig, secret, "", now, 15*time.Minute))
}

func TestPresigned(t *testing.T) {
	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	q := url.Values{"AWSAccessKeyId": {keyID}, "Expires": {exp}, "Signature": {sign("GET\n\n\n" + exp + "\n/b/k")}}
	r := httptest.NewRequest("GET", "http://s3.test/b/k?"+q.Encode(), nil)
	sig, err := ParseQuery(r.URL.Query())
	require.NoError(t, err)
	assert.True(t, sig.Presigned)
	require.NoError(t, Verify(r, sig, secret, "", now, 15*time.Minute))

	var e *s3err.Error
	require.ErrorAs(t, Verify(r, sig, secret, "", now.Add(2*time.Hour), 15*time.Minute), &e)
	assert.Equal(t, "AccessDenied", e.Code, "expired")

	far := strconv.FormatInt(now.Add(8*24*time.Hour).Unix(), 10)
	q.Set("Expires", far)
	q.Set("Signature", sign("GET\n\n\n"+far+"\n/b/k"))
	r = httptest.NewRequest("GET", "http://s3.test/b/k?"+q.Encode(), nil)
	sig, err = ParseQuery(r.URL.Query())
	require.NoError(t, err)
	assert.Error(t, Verify(r, sig, secret, "", now, 15*time.Minute), "more than seven days ahead")

	for _, bad := range []url.Values{
		{"AWSAccessKeyId": {keyID}, "Expires": {exp}},
		{"AWSAccessKeyId": {keyID, keyID}, "Expires": {exp}, "Signature": {"s"}},
		{"AWSAccessKeyId": {"bad key"}, "Expires": {exp}, "Signature": {"s"}},
	} {
		_, err := ParseQuery(bad)
		assert.Error(t, err, "%v", bad)
	}
}

func TestParseHeader(t *testing.T) {
	for _, bad := range []string{"AWS", "AWS nokey", "AWS :sig", "AWS key:", "AWS bad key:sig"} {
		_, err := ParseHeader(bad)
		var e *s3err.Error
		require.ErrorAs(t, err, &e, bad)
		assert.Equal(t, "AuthorizationHeaderMalformed", e.Code, bad)
	}
}

// BenchmarkVerify verifies a signed GET with sub-resources and x-amz headers.
func BenchmarkVerify(b *testing.B) {
	date := now.Format(http.TimeFormat)
	r := httptest.NewRequest("GET", "http://s3.test/photos/puppy.jpg?versionId=3&acl", nil)
	r.Header.Set("Date", date)
	r.Header.Set("X-Amz-Meta-A", "one")
	sig, _ := ParseHeader("AWS " + keyID + ":" + sign("GET\n\n\n"+date+"\nx-amz-meta-a:one\n/photos/puppy.jpg?acl&versionId=3"))
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(r, sig, secret, "", now, 15*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
