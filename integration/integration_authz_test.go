package integration_test

// The integration halves of the request authorizer's tests (authz_query_test.go
// at the root holds the in-process ones).

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy"
)

// The reproductions against versitygw: what it answers straight (the
// listing of admin/, the bucket's ACL naming the upstream's key) never comes
// through the proxy to a client allowed only user/.
func TestIntegrationRequestAuthorizerBypasses(t *testing.T) {
	userOnly := func(_ context.Context, r proxy.AccessRequest) (proxy.Decision, error) {
		switch r.Action {
		case "s3:ListBucket":
			return proxy.Decision{Allow: strings.HasPrefix(r.Prefix, "user/")}, nil
		case "s3:GetObject", "s3:PutObject":
			return proxy.Decision{Allow: strings.HasPrefix(r.Key, "user/")}, nil
		}
		return proxy.Decision{}, nil
	}
	e := newItgEnv(t, itgConfig{opts: []proxy.Option{proxy.WithRequestAuthorizer(userOnly)}})
	ctx := t.Context()
	bucket := e.proxy.buckets[0]
	_, err := e.direct.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
	require.NoError(t, err)
	for _, k := range []string{"user/a", "admin/secret"} {
		_, err := e.direct.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: strings.NewReader(k)})
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		for _, k := range []string{"user/a", "admin/secret"} {
			_, _ = e.direct.c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(k)})
		}
		_, _ = e.direct.c.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: &bucket})
	})
	do := func(s *itgSide, query string) (int, string) {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/"+bucket+"?"+query, nil)
		require.NoError(t, err)
		require.NoError(t, itgSign(ctx, s, r, sha256Hex(nil)))
		resp, err := s.hc.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		query, straight string // what versitygw answers straight contains straight
		status          int
		code            string
	}{
		{"list-type=2&prefix=user%2F&prefix=admin%2F", "<Key>admin/secret</Key>", 400, "InvalidArgument"},
		{"acl&prefix=user%2F", "<AccessControlPolicy", 403, "AccessDenied"},
	} {
		status, body := do(e.direct, c.query)
		require.Equal(t, 200, status, body)
		require.Contains(t, body, c.straight, "versitygw answers this straight")
		status, body = do(e.proxy, c.query)
		assert.Equal(t, c.status, status, c.query+": "+body)
		assert.Equal(t, c.code, s3Code(body), c.query)
		assert.NotContains(t, body, "admin/")
	}
	status, body := do(e.proxy, "list-type=2&prefix=user%2F")
	assert.Equal(t, 200, status, body)
	assert.Contains(t, body, "<Key>user/a</Key>")
}
