package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestIntegrationTLSClients puts objects with the SDK over https, where it
// sends what it sends to AWS by default: STREAMING-UNSIGNED-PAYLOAD-TRAILER
// aws-chunked bodies with a CRC32 trailer, with x-amz-decoded-content-length
// when the length is known and as a chunked transfer without it when not.
// versitygw gets the same requests through a TLS terminator that changes
// nothing else.
func TestIntegrationTLSClients(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{tls: true})
	ctx := t.Context()
	e.createBuckets(t)

	// Bodies under 256 KiB: a Go server that answers without reading the
	// body (the proxy without its decoder) still drains that much, so the
	// client gets the answer rather than a connection reset.
	data := itgRandom(200<<10, 5)
	cases := []struct {
		name     string
		data     []byte
		length   bool // ContentLength given
		seek     bool
		checksum types.ChecksumAlgorithm // the trailer; CRC32 by default
	}{
		{"seekable body", data, false, true, ""},
		{"unseekable body with length", data, true, false, ""},
		{"unseekable body of unknown length", data, false, false, ""},
		{"CRC32C trailer", data, false, true, types.ChecksumAlgorithmCrc32c},
		{"CRC64NVME trailer", data, false, true, types.ChecksumAlgorithmCrc64nvme},
		{"SHA1 trailer", data, false, true, types.ChecksumAlgorithmSha1},
		{"SHA256 trailer", data, false, true, types.ChecksumAlgorithmSha256},
		{"empty body", []byte{}, false, true, ""},
	}
	var keys []string
	for i, tc := range cases {
		key := fmt.Sprintf("tls/%d", i)
		keys = append(keys, key)
		t.Run(tc.name, func(t *testing.T) {
			e.bothOrSkip(t, "put, get back", itgBodyOutcome(tc.data, tc.data), func(s *itgSide) string {
				var body io.Reader = bytes.NewReader(tc.data)
				if !tc.seek {
					body = io.MultiReader(body)
				}
				in := &s3.PutObjectInput{Bucket: &s.buckets[0], Key: &key, Body: body, ChecksumAlgorithm: tc.checksum}
				if tc.length {
					in.ContentLength = aws.Int64(int64(len(tc.data)))
				}
				if _, err := s.c.PutObject(ctx, in); err != nil {
					return itgOutcome(err)
				}
				return itgGet(ctx, s.c, s.buckets[0], key, "", tc.data)
			})
			e.both(t, "checksum stored", "", func(s *itgSide) string {
				return itgStoredChecksum(ctx, s.c, s.buckets[0], key)
			})
		})
	}
	t.Run("multipart", func(t *testing.T) {
		// Without the decoder the proxy refuses 5 MiB parts unread and the
		// client may see a connection reset instead of the 501: probe first.
		small := &s3.PutObjectInput{Bucket: &e.proxy.buckets[0], Key: aws.String("tls/probe"), Body: bytes.NewReader([]byte("probe"))}
		if _, err := e.proxy.c.PutObject(ctx, small); strings.Contains(itgOutcome(err), " NotImplemented") {
			t.Skipf("aws-chunked decoder not yet available: small put through the proxy: %v", err)
		}
		big := itgRandom(10<<20, 6)
		e.bothOrSkip(t, "multipart upload", "ok parts [1 2] listed sizes [5242880 5242880], ETag ends -2", func(s *itgSide) string {
			return itgMultipart(ctx, s.c, s.buckets[0], "tls/multipart", big, 5<<20, "")
		})
		e.both(t, "get multipart object", itgBodyOutcome(big, big), func(s *itgSide) string {
			return itgGet(ctx, s.c, s.buckets[0], "tls/multipart", "", big)
		})
		e.both(t, "multipart upload with CRC32 checksums", "ok parts [1 2] listed sizes [5242880 5242880], ETag ends -2", func(s *itgSide) string {
			return itgMultipart(ctx, s.c, s.buckets[0], "tls/multipart-crc32", big, 5<<20, types.ChecksumAlgorithmCrc32)
		})
		e.both(t, "get multipart object with CRC32 checksums", itgBodyOutcome(big, big), func(s *itgSide) string {
			return itgGet(ctx, s.c, s.buckets[0], "tls/multipart-crc32", "", big)
		})
	})
	for _, s := range e.sides() {
		for _, k := range append(keys, "tls/multipart", "tls/multipart-crc32", "tls/probe") {
			_ = itgDelete(ctx, s.c, s.buckets[0], k)
		}
	}
	e.deleteBuckets(t)
}

// bothOrSkip is both, except that the test is skipped when the proxy answers
// NotImplemented while versitygw does not: the proxy's aws-chunked decoder is
// not there yet. It runs by itself once the decoder lands.
func (e *itgEnv) bothOrSkip(t *testing.T, step, want string, fn func(s *itgSide) string) string {
	t.Helper()
	d, p := fn(e.direct), fn(e.proxy)
	if strings.Contains(p, " NotImplemented") && !strings.Contains(d, " NotImplemented") {
		t.Skipf("aws-chunked decoder not yet available: %s through the proxy: %s", step, p)
	}
	if want != "" && d != want {
		t.Logf("versitygw itself cannot %s: got %q, want %q (proxy: %q)", step, d, want, p)
	}
	if d != p {
		t.Errorf("%s: direct %q, proxy %q", step, d, p)
	}
	return p
}

// itgStoredChecksum returns the checksum HeadObject reports with checksum
// mode on: the one the upload carried, if the server kept it.
func itgStoredChecksum(ctx context.Context, c *s3.Client, bucket, key string) string {
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		return itgOutcome(err)
	}
	var sums []string
	for name, v := range map[string]*string{"CRC32": h.ChecksumCRC32, "CRC32C": h.ChecksumCRC32C,
		"CRC64NVME": h.ChecksumCRC64NVME, "SHA1": h.ChecksumSHA1, "SHA256": h.ChecksumSHA256} {
		if v != nil {
			sums = append(sums, name+"="+*v)
		}
	}
	sort.Strings(sums)
	return fmt.Sprintf("ok checksums %v", sums)
}
