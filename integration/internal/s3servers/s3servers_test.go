package s3servers_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/osproxy/proxy/integration/internal/s3servers"
)

// shared holds one server of each kind for this test binary.
var shared = map[s3servers.Kind]*s3servers.Shared{}

func init() {
	for _, k := range s3servers.Kinds {
		shared[k] = &s3servers.Shared{Kind: k}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range shared {
		s.Stop()
	}
	os.Exit(code)
}

// server returns the shared server of kind k, logging how long it took to
// start when this call started it.
func server(t *testing.T, k s3servers.Kind) *s3servers.Server {
	t.Helper()
	start := time.Now()
	srv := shared[k].Get(t)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Logf("%s (%s) started on %s in %v", k, srv.Version, srv.Addr, d.Round(10*time.Millisecond))
	}
	return srv
}

// client is an aws-sdk-go-v2 client of srv: path style, or virtual-hosted
// under srv.Domain.
func client(t *testing.T, srv *s3servers.Server, vhost bool) *s3.Client {
	tr := srv.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	endpoint := srv.URL()
	if vhost {
		endpoint = "http://" + srv.Domain
	}
	return s3.New(s3.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: !vhost,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		HTTPClient:   &http.Client{Transport: tr, Timeout: time.Minute},
	})
}

func bucketName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, rand.IntN(1e6))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	return b
}

// TestSmoke creates a bucket on each server, puts an object with a plain body
// (the SDK over http sends its hex SHA-256), reads it back, lists it, and
// deletes it and the bucket.
func TestSmoke(t *testing.T) {
	for _, k := range s3servers.Kinds {
		t.Run(string(k), func(t *testing.T) {
			srv := server(t, k)
			if srv.AccessKey == "" || srv.SecretKey == "" || srv.Region == "" || srv.Port == 0 {
				t.Fatalf("incomplete server: %+v", srv)
			}
			for _, vhost := range []bool{false, true} {
				smoke(t, srv, client(t, srv, vhost), vhost)
			}
		})
	}
}

func smoke(t *testing.T, srv *s3servers.Server, c *s3.Client, vhost bool) {
	t.Helper()
	ctx := context.Background()
	bucket, key := bucketName("smoke"), "dir/obj ect+1.bin"
	data := randomBytes(100_000)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s (vhost %v): %s: %v\n%s", srv.Kind, vhost, what, err, srv.LogTail())
		}
	}
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
	step("CreateBucket", err)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(data)})
	step("PutObject", err)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	step("GetObject", err)
	got, err := io.ReadAll(out.Body)
	_ = out.Body.Close()
	step("GetObject body", err)
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: GetObject returned %d bytes, not the %d put", srv.Kind, len(got), len(data))
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	step("ListObjectsV2", err)
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != key || aws.ToInt64(list.Contents[0].Size) != int64(len(data)) {
		t.Fatalf("%s: ListObjectsV2 = %s, want %q of %d bytes", srv.Kind, listing(list.Contents), key, len(data))
	}
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
	step("DeleteObject", err)
	list, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	step("ListObjectsV2 after delete", err)
	if len(list.Contents) != 0 {
		t.Fatalf("%s: ListObjectsV2 after DeleteObject = %s", srv.Kind, listing(list.Contents))
	}
	_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket})
	step("DeleteBucket", err)
}

func listing(objs []types.Object) string {
	var s []string
	for _, o := range objs {
		s = append(s, fmt.Sprintf("%q (%d bytes)", aws.ToString(o.Key), aws.ToInt64(o.Size)))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// What a server did with an aws-chunked upload.
const (
	decoded = "decoded" // stored the data
	framed  = "framed"  // stored the body, chunk framing and trailer inside
	refused = "refused" // answered an error
)

// awsChunkedWant is what each server does with the two aws-chunked bodies:
// s3rver stores either with its framing, the corruption the proxy must keep
// from servers like it.
var awsChunkedWant = map[s3servers.Kind]map[string]string{
	s3servers.SeaweedFS: {"STREAMING-UNSIGNED-PAYLOAD-TRAILER": decoded, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": decoded},
	s3servers.S3rver:    {"STREAMING-UNSIGNED-PAYLOAD-TRAILER": framed, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": framed},
	s3servers.RadosGW:   {"STREAMING-UNSIGNED-PAYLOAD-TRAILER": refused, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": decoded},
}

// TestAWSChunked uploads 100,000 bytes in 64 KiB aws-chunked chunks to each
// server, as aws-sdk-js v3 and (over https) the other SDKs send them with a
// CRC32 trailer, and as minio-go sends them with chunk signatures, and reads
// the object back.
func TestAWSChunked(t *testing.T) {
	for _, k := range s3servers.Kinds {
		t.Run(string(k), func(t *testing.T) {
			srv := server(t, k)
			c := client(t, srv, false)
			ctx := context.Background()
			bucket := bucketName("chunked")
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
				t.Fatalf("CreateBucket: %v", err)
			}
			data := randomBytes(100_000)
			for _, mode := range []string{"STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"} {
				key := "chunked-" + strings.ToLower(mode)
				status, resp, body := putAWSChunked(t, srv, bucket, key, mode, data)
				got := refused + fmt.Sprintf(" (%d %s)", status, errorCode(resp))
				if status == http.StatusOK {
					out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
					if err != nil {
						t.Fatalf("%s: GetObject after a %s upload that answered 200: %v", k, mode, err)
					}
					stored, err := io.ReadAll(out.Body)
					_ = out.Body.Close()
					if err != nil {
						t.Fatal(err)
					}
					switch {
					case bytes.Equal(stored, data):
						got = decoded
					case bytes.Equal(stored, body):
						got = framed
					default:
						got = fmt.Sprintf("other: %d bytes stored of %d sent, %d data", len(stored), len(body), len(data))
					}
				}
				t.Logf("%s %s: %d data bytes in a %d-byte body: %s", k, mode, len(data), len(body), got)
				if want := awsChunkedWant[k][mode]; !strings.HasPrefix(got, want) {
					t.Errorf("%s %s: %s, want %s", k, mode, got, want)
				}
			}
		})
	}
}

func errorCode(body []byte) string {
	s := string(body)
	if i, j := strings.Index(s, "<Code>"), strings.Index(s, "</Code>"); i >= 0 && j > i {
		return s[i+len("<Code>") : j]
	}
	return strings.TrimSpace(s)
}

// putAWSChunked sends a PutObject whose body is data in aws-chunked framing,
// signed with srv's keys: with mode STREAMING-UNSIGNED-PAYLOAD-TRAILER, plain
// chunks and an x-amz-checksum-crc32 trailer; with
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD, chunks carrying chained signatures. It
// returns the status, the response body and the request body.
func putAWSChunked(t *testing.T, srv *s3servers.Server, bucket, key, mode string, data []byte) (int, []byte, []byte) {
	t.Helper()
	const chunkSize = 64 << 10
	now := time.Now().UTC()
	req, err := http.NewRequest(http.MethodPut, srv.URL()+"/"+bucket+"/"+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", mode)
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	trailer := mode == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	if trailer {
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	}
	// The framed length is known before signing: each chunk signature has 64
	// hex digits.
	var body bytes.Buffer
	frame := func(sig func([]byte) string) {
		body.Reset()
		for off := 0; ; off += chunkSize {
			chunk := data[min(off, len(data)):min(off+chunkSize, len(data))]
			if trailer {
				fmt.Fprintf(&body, "%x\r\n", len(chunk))
			} else {
				fmt.Fprintf(&body, "%x;chunk-signature=%s\r\n", len(chunk), sig(chunk))
			}
			if len(chunk) == 0 {
				break
			}
			body.Write(chunk)
			body.WriteString("\r\n")
		}
		if trailer {
			var sum [4]byte
			binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(data))
			fmt.Fprintf(&body, "x-amz-checksum-crc32:%s\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		}
		body.WriteString("\r\n")
	}
	frame(func([]byte) string { return strings.Repeat("0", 64) })
	req.ContentLength = int64(body.Len())
	creds := aws.Credentials{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, mode, "s3", srv.Region, now); err != nil {
		t.Fatal(err)
	}
	if !trailer {
		auth := req.Header.Get("Authorization")
		prev := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
		date, scope := now.Format("20060102T150405Z"), now.Format("20060102")+"/"+srv.Region+"/s3/aws4_request"
		key := []byte("AWS4" + srv.SecretKey)
		for _, s := range []string{now.Format("20060102"), srv.Region, "s3", "aws4_request"} {
			key = hmacSHA256(key, s)
		}
		empty := sha256.Sum256(nil)
		frame(func(chunk []byte) string {
			h := sha256.Sum256(chunk)
			prev = hex.EncodeToString(hmacSHA256(key, "AWS4-HMAC-SHA256-PAYLOAD\n"+date+"\n"+scope+"\n"+prev+"\n"+
				hex.EncodeToString(empty[:])+"\n"+hex.EncodeToString(h[:])))
			return prev
		})
	}
	sent := bytes.Clone(body.Bytes())
	req.Body = io.NopCloser(bytes.NewReader(sent))
	tr := srv.Transport()
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s PutObject: %v", srv.Kind, mode, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, sent
}

func hmacSHA256(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// TestFeatures probes each server for the S3 features the proxy's tests use
// and logs what it supports; only a broken probe fails. Run it with -v to see
// the table.
func TestFeatures(t *testing.T) {
	for _, k := range s3servers.Kinds {
		t.Run(string(k), func(t *testing.T) {
			srv := server(t, k)
			c := client(t, srv, false)
			ctx := context.Background()
			bucket := bucketName("features")
			if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
				t.Fatalf("CreateBucket: %v", err)
			}
			put := func(key string, body []byte) error {
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(body)})
				return err
			}
			if err := put("a", []byte("hello")); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			var rows []string
			probe := func(name string, f func() error) {
				res := "ok"
				if err := f(); err != nil {
					res = "NO: " + short(err)
				}
				rows = append(rows, fmt.Sprintf("%-34s %s", name, res))
			}
			probe("SigV4 checked (wrong secret refused)", func() error {
				bad := s3.New(s3.Options{Region: srv.Region, BaseEndpoint: aws.String(srv.URL()), UsePathStyle: true,
					Credentials: credentials.NewStaticCredentialsProvider(srv.AccessKey, "wrong-secret", "")})
				if _, err := bad.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("a")}); err == nil {
					return errors.New("a request signed with a wrong secret passed")
				}
				return nil
			})
			probe("payload hash checked", func() error {
				wrong := sha256.Sum256([]byte("y"))
				req, err := http.NewRequest(http.MethodPut, srv.URL()+"/"+bucket+"/bad-hash", strings.NewReader("x"))
				if err != nil {
					return err
				}
				req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(wrong[:]))
				creds := aws.Credentials{AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}
				if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(wrong[:]), "s3", srv.Region, time.Now()); err != nil {
					return err
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return err
				}
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return errors.New("a body that does not match x-amz-content-sha256 was stored")
				}
				return nil
			})
			probe("anonymous request refused", func() error {
				resp, err := http.Get(srv.URL() + "/" + bucket + "/a")
				if err != nil {
					return err
				}
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return errors.New("an unsigned GetObject passed")
				}
				return nil
			})
			probe("GetBucketLocation", func() error {
				_, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: &bucket})
				return err
			})
			probe("If-None-Match GET (304)", func() error {
				h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("a")})
				if err != nil {
					return err
				}
				_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("a"), IfNoneMatch: h.ETag})
				var re interface{ HTTPStatusCode() int }
				if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotModified {
					return nil
				}
				return fmt.Errorf("got %v, not 304", err)
			})
			probe("ListObjects (v1)", func() error {
				_, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: &bucket})
				return err
			})
			probe("Range GET", func() error {
				out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("a"), Range: aws.String("bytes=1-2")})
				if err != nil {
					return err
				}
				b, _ := io.ReadAll(out.Body)
				_ = out.Body.Close()
				if string(b) != "el" {
					return fmt.Errorf("got %q", b)
				}
				return nil
			})
			probe("CopyObject", func() error {
				_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("b"), CopySource: aws.String(bucket + "/a")})
				return err
			})
			probe("DeleteObjects", func() error {
				_, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("b")}}}})
				return err
			})
			probe("object tagging", func() error {
				_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &bucket, Key: aws.String("a"),
					Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}})
				if err != nil {
					return err
				}
				out, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: aws.String("a")})
				if err == nil && len(out.TagSet) != 1 {
					err = fmt.Errorf("%d tags read back", len(out.TagSet))
				}
				return err
			})
			probe("bucket tagging", func() error {
				_, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: &bucket,
					Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}})
				if err != nil {
					return err
				}
				_, err = c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: &bucket})
				return err
			})
			probe("versioning", func() error {
				_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
					VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
				if err != nil {
					return err
				}
				out, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &bucket})
				if err != nil {
					return fmt.Errorf("GetBucketVersioning: %w", err)
				}
				if out.Status != types.BucketVersioningStatusEnabled {
					return fmt.Errorf("GetBucketVersioning: status %q", out.Status)
				}
				if err := put("v", []byte("1")); err != nil {
					return err
				}
				if err := put("v", []byte("2")); err != nil {
					return err
				}
				vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: aws.String("v")})
				if err == nil && len(vs.Versions) != 2 {
					err = fmt.Errorf("%d versions listed", len(vs.Versions))
				}
				return err
			})
			probe("multipart upload", func() error {
				key := "mp"
				up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
				if err != nil {
					return err
				}
				part1, part2 := randomBytes(5<<20), []byte("tail")
				var parts []types.CompletedPart
				for i, p := range [][]byte{part1, part2} {
					n := int32(i + 1)
					out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId, PartNumber: &n, Body: bytes.NewReader(p)})
					if err != nil {
						return fmt.Errorf("UploadPart: %w", err)
					}
					parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: &n})
				}
				_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId,
					MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
				if err != nil {
					return fmt.Errorf("CompleteMultipartUpload: %w", err)
				}
				h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
				if err == nil && aws.ToInt64(h.ContentLength) != int64(len(part1)+len(part2)) {
					err = fmt.Errorf("%d bytes stored", aws.ToInt64(h.ContentLength))
				}
				return err
			})
			up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("abort")})
			if err != nil {
				t.Fatalf("CreateMultipartUpload: %v", err)
			}
			probe("ListMultipartUploads", func() error {
				_, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
				return err
			})
			probe("AbortMultipartUpload", func() error {
				_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: aws.String("abort"), UploadId: up.UploadId})
				return err
			})
			probe("UploadPartCopy", func() error {
				key := "mpc"
				up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
				if err != nil {
					return err
				}
				n := int32(1)
				_, err = c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId, PartNumber: &n, CopySource: aws.String(bucket + "/a")})
				return err
			})
			probe("presigned GET", func() error {
				ps, err := s3.NewPresignClient(c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("a")})
				if err != nil {
					return err
				}
				resp, err := http.Get(ps.URL)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			})
			probe("CORS configuration", func() error {
				_, err := c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: &bucket, CORSConfiguration: &types.CORSConfiguration{
					CORSRules: []types.CORSRule{{AllowedMethods: []string{"GET"}, AllowedOrigins: []string{"*"}}}}})
				return err
			})
			t.Logf("%s (%s):\n  %s", k, srv.Version, strings.Join(rows, "\n  "))
		})
	}
}

func short(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
