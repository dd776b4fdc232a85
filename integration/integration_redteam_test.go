package integration_test

// Red-team probes against versitygw: what a POST form stores upstream is what
// the proxy authorized (redteam_test.go and redteam2_test.go at the root hold
// the in-process probes).

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// TestRedTeam2PostFilenameVersity: against versitygw, the object a form with
// key "public/${filename}" stores must be the key the proxy authorized.
func TestRedTeam2PostFilenameVersity(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	rules := func(_ context.Context, r proxy.AccessRequest) (proxy.Decision, error) {
		if r.Action != "s3:PutObject" {
			return proxy.Decision{Allow: true}, nil
		}
		mu.Lock()
		asked = append(asked, r.Key)
		mu.Unlock()
		// Only under public/dir/.
		return proxy.Decision{Allow: strings.HasPrefix(r.Key, "public/dir/")}, nil
	}
	e := newItgEnv(t, itgConfig{opts: []proxy.Option{proxy.WithRequestAuthorizer(rules)}})
	e.createBuckets(t)
	ctx := t.Context()
	bucket := e.proxy.buckets[0]
	resp, body, err := itgPostSigned(ctx, e.proxy, bucket, itgForm{Key: "public/dir/${filename}", File: []byte("x"), FileName: "ok.txt"})
	require.NoError(t, err)
	require.Less(t, resp.StatusCode, 300, "control: %s", body)
	l := itgList(ctx, e.direct.c, bucket, "", "", 100)
	t.Logf("asked %q; stored %s", asked, l)
	assert.Equal(t, asked, l.keys, "the key stored is the key authorized")
}

// TestRedTeam2PostFileTypeVersity: the file part's own Content-Type is no
// field, so no policy covers it; the object's type must be the one the policy
// allowed.
func TestRedTeam2PostFileTypeVersity(t *testing.T) {
	e := newItgEnv(t, itgConfig{})
	e.createBuckets(t)
	ctx := t.Context()
	bucket := e.proxy.buckets[0]
	resp, body, err := itgPostSigned(ctx, e.proxy, bucket, itgForm{Key: "pic.png", File: []byte("<script>1</script>"), FileName: "pic.png",
		Fields: [][2]string{{"Content-Type", "image/png"}}, FileType: "text/html"})
	require.NoError(t, err)
	require.Less(t, resp.StatusCode, 300, "%s", body)
	head, err := e.direct.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("pic.png")})
	require.NoError(t, err)
	t.Logf("stored Content-Type %q", aws.ToString(head.ContentType))
	assert.Equal(t, "image/png", aws.ToString(head.ContentType))
	// Without a Content-Type field (and condition) the file part's type.
	resp, body, err = itgPostSigned(ctx, e.proxy, bucket, itgForm{Key: "x.bin", File: []byte("<script>1</script>"), FileName: "x.bin", FileType: "text/html"})
	require.NoError(t, err)
	require.Less(t, resp.StatusCode, 300, "%s", body)
	head, err = e.direct.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("x.bin")})
	require.NoError(t, err)
	t.Logf("stored Content-Type without a field: %q", aws.ToString(head.ContentType))
}
