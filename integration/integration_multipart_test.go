package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestIntegrationMultipart uploads 20 MiB in four 5 MiB parts and reads it back
// whole and in ranges.
func TestIntegrationMultipart(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{})
	ctx := t.Context()
	e.createBuckets(t)

	const partSize = 5 << 20
	data := itgRandom(4*partSize, 2)
	key := "big/multipart.bin"
	e.both(t, "multipart upload", "ok parts [1 2 3 4] listed sizes [5242880 5242880 5242880 5242880], ETag ends -4", func(s *itgSide) string {
		return itgMultipart(ctx, s.c, s.buckets[0], key, data, partSize, "")
	})
	e.both(t, "get multipart object", itgBodyOutcome(data, data), func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], key, "", data)
	})
	e.both(t, "range get across a part boundary", itgBodyOutcome(data[partSize-1000:partSize+1000], data[partSize-1000:partSize+1000])+
		fmt.Sprintf(", Content-Range bytes %d-%d/%d", partSize-1000, partSize+999, len(data)), func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], key, fmt.Sprintf("bytes=%d-%d", partSize-1000, partSize+999), data[partSize-1000:partSize+1000])
	})
	e.both(t, "suffix range get", itgBodyOutcome(data[len(data)-4096:], data[len(data)-4096:])+
		fmt.Sprintf(", Content-Range bytes %d-%d/%d", len(data)-4096, len(data)-1, len(data)), func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], key, "bytes=-4096", data[len(data)-4096:])
	})
	e.both(t, "head multipart object", `ok size 20971520, type "application/x-osp", meta {kind=multipart}`, func(s *itgSide) string {
		return itgHead(ctx, s.c, s.buckets[0], key)
	})
	e.both(t, "abort a multipart upload", "ok aborted, listed []", func(s *itgSide) string {
		return itgAbortedUpload(ctx, s.c, s.buckets[0], "big/aborted.bin", data[:partSize])
	})
	e.both(t, "delete multipart object", "ok", func(s *itgSide) string { return itgDelete(ctx, s.c, s.buckets[0], key) })
	e.deleteBuckets(t)
}

// itgMultipart uploads data in parts of partSize and completes the upload;
// with a checksum algorithm the parts carry that checksum and so does the
// completion, as aws-cli does.
func itgMultipart(ctx context.Context, c *s3.Client, bucket, key string, data []byte, partSize int, checksum types.ChecksumAlgorithm) string {
	cm, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &bucket, Key: &key, ContentType: aws.String("application/x-osp"),
		Metadata: map[string]string{"kind": "multipart"}, ChecksumAlgorithm: checksum,
	})
	if err != nil {
		return "create: " + itgOutcome(err)
	}
	var parts []types.CompletedPart
	for i := 0; i*partSize < len(data); i++ {
		n := int32(i + 1)
		chunk := data[i*partSize : min((i+1)*partSize, len(data))]
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &bucket, Key: &key, UploadId: cm.UploadId, PartNumber: &n, Body: bytes.NewReader(chunk),
			ChecksumAlgorithm: checksum,
		})
		if err != nil {
			return fmt.Sprintf("upload part %d: %s", n, itgOutcome(err))
		}
		part := types.CompletedPart{ETag: up.ETag, PartNumber: &n}
		if checksum != "" {
			part.ChecksumCRC32, part.ChecksumCRC32C, part.ChecksumCRC64NVME = up.ChecksumCRC32, up.ChecksumCRC32C, up.ChecksumCRC64NVME
			part.ChecksumSHA1, part.ChecksumSHA256 = up.ChecksumSHA1, up.ChecksumSHA256
		}
		parts = append(parts, part)
	}
	lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: &key, UploadId: cm.UploadId})
	if err != nil {
		return "list parts: " + itgOutcome(err)
	}
	var numbers, sizes []int64
	for _, p := range lp.Parts {
		numbers = append(numbers, int64(aws.ToInt32(p.PartNumber)))
		sizes = append(sizes, aws.ToInt64(p.Size))
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &bucket, Key: &key, UploadId: cm.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "complete: " + itgOutcome(err)
	}
	etag := strings.Trim(aws.ToString(done.ETag), `"`)
	suffix := etag
	if i := strings.LastIndexByte(etag, '-'); i >= 0 {
		suffix = etag[i:]
	}
	return fmt.Sprintf("ok parts %v listed sizes %v, ETag ends %s", numbers, sizes, suffix)
}

func itgAbortedUpload(ctx context.Context, c *s3.Client, bucket, key string, part []byte) string {
	cm, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "create: " + itgOutcome(err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &bucket, Key: &key, UploadId: cm.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part),
	}); err != nil {
		return "upload part: " + itgOutcome(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: cm.UploadId}); err != nil {
		return "abort: " + itgOutcome(err)
	}
	lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		return "list uploads: " + itgOutcome(err)
	}
	keys := []string{}
	for _, u := range lu.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return fmt.Sprintf("ok aborted, listed %q", keys)
}
