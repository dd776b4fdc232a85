package conformance

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"
)

// TestScaleOut: two proxy instances that share nothing (no cache, no state),
// behind one round-robin TCP listener, serve the same clients correctly: a
// multipart upload whose requests alternate between them, a presigned URL
// made once and fetched through each, listings and deletes. This is how
// users scale the proxy out.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	v := versity(t, false)
	const bucket = "osp-scale-out"
	a := serve(t, newVGWProxy(t, v, []string{bucket}, debugLog()...), false)
	b := serve(t, newVGWProxy(t, v, []string{bucket}, debugLog()...), false)
	lb := newForwarder(t, a.addr(), b.addr())
	url := "http://" + lb.addr()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// One connection per request: consecutive requests alternate.
	c, hc := goS3(t, url, clientKey, clientSecret, 0)
	hc.Transport.(*http.Transport).DisableKeepAlives = true

	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)

	data := randomBytes(15<<20, 11)
	key := "multi/part k=v+1"
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: &key})
	require.NoError(t, err)
	var parts []types.CompletedPart
	for i := range 3 {
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data[i*5<<20 : (i+1)*5<<20])})
		require.NoError(t, err, "part %d", i+1)
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: &key,
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	require.NoError(t, err)

	ps, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: &key})
	require.NoError(t, err)
	for i := range 2 {
		resp, err := hc.Get(ps.URL)
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "presigned GET %d", i)
		require.NoError(t, sameBytes(fmt.Sprintf("presigned GET %d", i), got, data))
	}

	// minio-go and a keep-alive SDK client, several at once.
	m, err := newMinio(target{url: url, scheme: "http", key: clientKey, secret: clientSecret})
	require.NoError(t, err)
	defer m.Close()
	work := t.TempDir()
	for i := range 8 {
		f := filepath.Join(work, fmt.Sprint(i))
		require.NoError(t, os.WriteFile(f, randomBytes(100<<10+i, byte(i)), 0o644))
		require.NoError(t, m.Put(ctx, bucket, fmt.Sprintf("many/%d", i), f))
	}
	keys, _, err := m.List(ctx, bucket, "many/", "")
	require.NoError(t, err)
	require.Len(t, keys, 8)
	for i := range 8 {
		f := filepath.Join(work, fmt.Sprint("got", i))
		require.NoError(t, m.Get(ctx, bucket, fmt.Sprintf("many/%d", i), f))
		got, _ := os.ReadFile(f)
		require.NoError(t, sameBytes("minio get", got, randomBytes(100<<10+i, byte(i))))
	}

	// aws-cli, where the machine has it: a multipart cp up and down.
	if awsBin := awsCLIv2(); awsBin != "" {
		o, err := awsCLIClient("awscli2", awsBin, "").open(t, target{url: url, scheme: "http", key: clientKey, secret: clientSecret}, work)
		require.NoError(t, err)
		big := filepath.Join(work, "big")
		require.NoError(t, os.WriteFile(big, randomBytes(21<<20, 12), 0o644))
		require.NoError(t, o.PutMultipart(ctx, bucket, "cli/big", big))
		back := filepath.Join(work, "back")
		require.NoError(t, o.Get(ctx, bucket, "cli/big", back))
		got, _ := os.ReadFile(back)
		require.NoError(t, sameBytes("aws-cli round trip", got, randomBytes(21<<20, 12)))
	}

	require.NoError(t, m.DeleteBatch(ctx, bucket, "many/", keys))
	for _, k := range []string{key, "cli/big"} {
		_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		require.NoError(t, err)
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)

	t.Logf("connections per proxy: %v; requests per proxy: %d, %d", lb.counts(), a.handled.Load(), b.handled.Load())
	for i, n := range []int64{a.handled.Load(), b.handled.Load()} {
		if n < 5 {
			t.Errorf("proxy %d served only %d requests: the test did not spread the load", i, n)
		}
	}
}
