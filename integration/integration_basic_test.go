package integration_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestIntegrationBasic runs the basic steps with virtual-hosted upstream
// requests (the proxy's default) and with path-style upstream requests.
func TestIntegrationBasic(t *testing.T) {
	t.Parallel()
	itgEachUpstreamStyle(t, itgBasicSteps)
}

func itgBasicSteps(t *testing.T, e *itgEnv) {
	ctx := t.Context()
	e.createBuckets(t)

	small := []byte("hello, object storage\n")
	meta := map[string]string{"color": "blue", "owner-name": "osp"}
	e.both(t, "put small object", "ok", func(s *itgSide) string {
		_, err := s.c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.buckets[0], Key: aws.String("hello.txt"), Body: bytes.NewReader(small),
			ContentType: aws.String("text/plain"), Metadata: meta,
		})
		return itgOutcome(err)
	})
	e.both(t, "get small object", itgBodyOutcome(small, small), func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], "hello.txt", "", small)
	})
	e.both(t, "head small object", `ok size 22, type "text/plain", meta {color=blue,owner-name=osp}`, func(s *itgSide) string {
		return itgHead(ctx, s.c, s.buckets[0], "hello.txt")
	})

	mid := itgRandom(2000, 1)
	e.both(t, "put 2000-byte object", "ok", func(s *itgSide) string {
		return itgPut(ctx, s.c, s.buckets[0], "range.bin", mid, nil)
	})
	e.both(t, "range get bytes=5-1000", itgBodyOutcome(mid[5:1001], mid[5:1001])+", Content-Range bytes 5-1000/2000", func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], "range.bin", "bytes=5-1000", mid[5:1001])
	})
	e.both(t, "range get bytes=-100", itgBodyOutcome(mid[1900:], mid[1900:])+", Content-Range bytes 1900-1999/2000", func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], "range.bin", "bytes=-100", mid[1900:])
	})
	e.both(t, "get missing object", "ERR 404 NoSuchKey", func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], "no/such/key", "", nil)
	})
	e.both(t, "put empty object", "ok", func(s *itgSide) string {
		return itgPut(ctx, s.c, s.buckets[0], "empty", []byte{}, nil)
	})
	e.both(t, "get empty object", itgBodyOutcome(nil, nil), func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], "empty", "", nil)
	})
	e.both(t, "head empty object", `ok size 0, type "application/octet-stream", meta {}`, func(s *itgSide) string {
		return itgHead(ctx, s.c, s.buckets[0], "empty")
	})
	e.both(t, "conditional requests", "If-None-Match: ERR 304 NotModified; If-Match: ERR 412 PreconditionFailed", func(s *itgSide) string {
		return itgConditional(ctx, s.c, s.buckets[0], "hello.txt")
	})
	const disposition = `attachment; filename="a b+c&d=e.txt"`
	e.both(t, "get with response-* overrides", fmt.Sprintf("ok type %q, disposition %q", "text/x-osp; charset=utf-8", disposition), func(s *itgSide) string {
		out, err := s.c.GetObject(ctx, &s3.GetObjectInput{
			Bucket: &s.buckets[0], Key: aws.String("hello.txt"),
			ResponseContentType:        aws.String("text/x-osp; charset=utf-8"),
			ResponseContentDisposition: aws.String(disposition),
		})
		if err != nil {
			return itgOutcome(err)
		}
		_, _ = io.Copy(io.Discard, out.Body)
		_ = out.Body.Close()
		return fmt.Sprintf("ok type %q, disposition %q", aws.ToString(out.ContentType), aws.ToString(out.ContentDisposition))
	})
	presigned := []byte("put with a presigned URL")
	e.both(t, "presigned PUT", "200", func(s *itgSide) string {
		req, err := s3.NewPresignClient(s.c).PresignPutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.buckets[0], Key: aws.String("presigned/obj ect+1"),
		}, s3.WithPresignExpires(10*time.Minute))
		if err != nil {
			return "presign: " + err.Error()
		}
		return itgPresigned(ctx, s.hc, req.Method, req.URL, req.SignedHeader, presigned)
	})
	e.both(t, "presigned GET", "200 "+itgHash(presigned), func(s *itgSide) string {
		req, err := s3.NewPresignClient(s.c).PresignGetObject(ctx, &s3.GetObjectInput{
			Bucket: &s.buckets[0], Key: aws.String("presigned/obj ect+1"),
		}, s3.WithPresignExpires(10*time.Minute))
		if err != nil {
			return "presign: " + err.Error()
		}
		return itgPresigned(ctx, s.hc, req.Method, req.URL, req.SignedHeader, nil)
	})
	// Header values the signature canonicalizes (SigV4 folds runs of
	// spaces, and only spaces) and a tagging header in query form.
	e.both(t, "put with two spaces in metadata, and tags", "ok", func(s *itgSide) string {
		_, err := s.c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.buckets[0], Key: aws.String("tagged"), Body: bytes.NewReader(small),
			Metadata: map[string]string{"note": "two  spaces"}, Tagging: aws.String("project=osp&team=a%20b%2Bc&empty="),
		})
		return itgOutcome(err)
	})
	e.both(t, "head metadata with two spaces", `ok size 22, type "application/octet-stream", meta {note=two  spaces}`, func(s *itgSide) string {
		return itgHead(ctx, s.c, s.buckets[0], "tagged")
	})
	e.both(t, "put with a tab inside a metadata value", "ok", func(s *itgSide) string {
		return itgPut(ctx, s.c, s.buckets[0], "tabbed", small, map[string]string{"note": "tab\there"})
	})
	e.both(t, "head metadata with a tab", "ok size 22, type \"application/octet-stream\", meta {note=tab\there}", func(s *itgSide) string {
		return itgHead(ctx, s.c, s.buckets[0], "tabbed")
	})
	e.both(t, "get object tagging", `ok [empty= project=osp team=a b+c]`, func(s *itgSide) string {
		out, err := s.c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &s.buckets[0], Key: aws.String("tagged")})
		if err != nil {
			return itgOutcome(err)
		}
		var tags []string
		for _, tg := range out.TagSet {
			tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		sort.Strings(tags)
		return fmt.Sprintf("ok %v", tags)
	})
	for _, k := range []string{"empty", "presigned/obj ect+1", "tagged", "tabbed"} {
		e.both(t, "delete "+k, "ok", func(s *itgSide) string { return itgDelete(ctx, s.c, s.buckets[0], k) })
	}

	tree := []string{"dir/a", "dir/b", "dir/sub/c", "dir/sub/d", "other"}
	for _, k := range tree {
		e.both(t, "put "+k, "ok", func(s *itgSide) string {
			return itgPut(ctx, s.c, s.buckets[0], k, []byte(k), nil)
		})
	}
	e.both(t, "list with prefix dir/", fmt.Sprintf("ok keys %q prefixes []", tree[:4]), func(s *itgSide) string {
		return itgList(ctx, s.c, s.buckets[0], "dir/", "", 0).String()
	})
	e.both(t, "list dir/ with delimiter", `ok keys ["dir/a" "dir/b"] prefixes ["dir/sub/"]`, func(s *itgSide) string {
		return itgList(ctx, s.c, s.buckets[0], "dir/", "/", 0).String()
	})
	e.both(t, "list root with delimiter", `ok keys ["hello.txt" "other" "range.bin"] prefixes ["dir/"]`, func(s *itgSide) string {
		return itgList(ctx, s.c, s.buckets[0], "", "/", 0).String()
	})

	e.both(t, "copy within the bucket", "ok", func(s *itgSide) string {
		return itgCopy(ctx, s.c, s.buckets[0], "hello.txt", s.buckets[0], "copies/hello.txt")
	})
	e.both(t, "get the copy", itgBodyOutcome(small, small), func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[0], "copies/hello.txt", "", small)
	})
	e.both(t, "head the copy", `ok size 22, type "text/plain", meta {color=blue,owner-name=osp}`, func(s *itgSide) string {
		return itgHead(ctx, s.c, s.buckets[0], "copies/hello.txt")
	})
	e.both(t, "copy across buckets", "ok", func(s *itgSide) string {
		return itgCopy(ctx, s.c, s.buckets[0], "range.bin", s.buckets[1], "from-other-bucket.bin")
	})
	e.both(t, "get the cross-bucket copy", itgBodyOutcome(mid, mid), func(s *itgSide) string {
		return itgGet(ctx, s.c, s.buckets[1], "from-other-bucket.bin", "", mid)
	})

	e.both(t, "batch delete", `ok deleted ["dir/a" "dir/b" "dir/sub/c" "dir/sub/d"] errors []`, func(s *itgSide) string {
		return itgDeleteObjects(ctx, s.c, s.buckets[0], tree[:4])
	})
	e.both(t, "list after batch delete", `ok keys ["copies/hello.txt" "hello.txt" "other" "range.bin"] prefixes []`, func(s *itgSide) string {
		return itgList(ctx, s.c, s.buckets[0], "", "", 0).String()
	})
	for _, k := range []string{"copies/hello.txt", "hello.txt", "other", "range.bin"} {
		e.both(t, "delete "+k, "ok", func(s *itgSide) string { return itgDelete(ctx, s.c, s.buckets[0], k) })
	}
	e.both(t, "head deleted object", "ERR 404 NotFound", func(s *itgSide) string {
		return itgHead(ctx, s.c, s.buckets[0], "hello.txt")
	})
	e.both(t, "delete cross-bucket copy", "ok", func(s *itgSide) string {
		return itgDelete(ctx, s.c, s.buckets[1], "from-other-bucket.bin")
	})

	// A bucket the proxy is not configured for does not exist for its clients.
	if got := itgOutcome(func() error {
		_, err := e.proxy.c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &e.direct.buckets[0]})
		return err
	}()); got != "ERR 404 NotFound" {
		t.Errorf("head of a bucket the proxy does not serve: %s, want ERR 404 NotFound", got)
	}

	e.deleteBuckets(t)
}

// itgConditional sends a GET with If-None-Match: <its ETag> (304) and a HEAD
// with a wrong If-Match (412).
func itgConditional(ctx context.Context, c *s3.Client, bucket, key string) string {
	h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "head: " + itgOutcome(err)
	}
	_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, IfNoneMatch: h.ETag})
	s := "If-None-Match: " + itgOutcome(err)
	_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key, IfMatch: aws.String(`"0123456789abcdef0123456789abcdef"`)})
	return s + "; If-Match: " + itgOutcome(err)
}

// itgPresigned sends a presigned request and returns its status, and for a GET
// a hash of the body.
func itgPresigned(ctx context.Context, hc *http.Client, method, u string, h http.Header, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err.Error()
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	for k, v := range h {
		if !strings.EqualFold(k, "Host") {
			req.Header[k] = v
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "ERR " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "ERR reading body: " + err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code string }
		_ = xml.Unmarshal(b, &e)
		return fmt.Sprintf("ERR %d %s", resp.StatusCode, e.Code)
	}
	if method == http.MethodGet {
		return fmt.Sprintf("%d %s", resp.StatusCode, itgHash(b))
	}
	return fmt.Sprint(resp.StatusCode)
}

func itgDeleteObjects(ctx context.Context, c *s3.Client, bucket string, keys []string) string {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		ids[i] = types.ObjectIdentifier{Key: &keys[i]}
	}
	out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: ids}})
	if err != nil {
		return itgOutcome(err)
	}
	var deleted, failed []string
	for _, d := range out.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	for _, e := range out.Errors {
		failed = append(failed, aws.ToString(e.Key)+": "+aws.ToString(e.Code))
	}
	sort.Strings(deleted)
	sort.Strings(failed)
	if deleted == nil {
		deleted = []string{}
	}
	if failed == nil {
		failed = []string{}
	}
	return fmt.Sprintf("ok deleted %q errors %q", deleted, failed)
}
