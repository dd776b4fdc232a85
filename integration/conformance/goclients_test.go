package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// goSDK drives aws-sdk-go-v2's service/s3 with the defaults of
// config.LoadDefaultConfig (retries on, CRC32 checksums on uploads), path
// style.
type goSDK struct {
	c  *s3.Client
	ps *s3.PresignClient
	hc *http.Client
}

func goSDKClient() *clientSpec {
	return &clientSpec{id: "gosdk", name: "aws-sdk-go-v2 s3", open: func(t *testing.T, tg target, _ string) (ops, error) {
		c, hc := goS3(t, tg.url, tg.key, tg.secret, 3)
		return &goSDK{c: c, ps: s3.NewPresignClient(c), hc: hc}, nil
	}}
}

func (g *goSDK) MakeBucket(ctx context.Context, b string) error {
	_, err := g.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &b})
	return err
}

func (g *goSDK) ListBuckets(ctx context.Context) ([]string, error) {
	out, err := g.c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range out.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	return names, nil
}

func (g *goSDK) Put(ctx context.Context, b, key, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = g.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &key, Body: f})
	return err
}

// PutMultipart uploads 5 MiB parts as feature/s3/manager's uploader does:
// CRC32 declared on CreateMultipartUpload and sent with each part, the
// parts' checksums given back on CompleteMultipartUpload.
func (g *goSDK) PutMultipart(ctx context.Context, b, key, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	crc := types.ChecksumAlgorithmCrc32
	up, err := g.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: &key, ChecksumAlgorithm: crc})
	if err != nil {
		return err
	}
	const partSize = 5 << 20
	var parts []types.CompletedPart
	for n := int32(1); len(data) > 0; n++ {
		chunk := data[:min(partSize, len(data))]
		data = data[len(chunk):]
		out, err := g.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(chunk), ChecksumAlgorithm: crc})
		if err != nil {
			_, _ = g.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b, Key: &key, UploadId: up.UploadId})
			return fmt.Errorf("part %d: %w", n, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32})
	}
	_, err = g.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

func (g *goSDK) get(ctx context.Context, b, key, rng, file string) error {
	in := &s3.GetObjectInput{Bucket: &b, Key: &key}
	if rng != "" {
		in.Range = &rng
	}
	out, err := g.c.GetObject(ctx, in)
	if err != nil {
		return err
	}
	defer out.Body.Close()
	return writeFile(file, out.Body)
}

func writeFile(file string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (g *goSDK) Get(ctx context.Context, b, key, file string) error {
	return g.get(ctx, b, key, "", file)
}

func (g *goSDK) GetRange(ctx context.Context, b, key string, first, last int64, file string) error {
	return g.get(ctx, b, key, fmt.Sprintf("bytes=%d-%d", first, last), file)
}

func (g *goSDK) Head(ctx context.Context, b, key string) (int64, error) {
	out, err := g.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: &key})
	if err != nil {
		return 0, err
	}
	return aws.ToInt64(out.ContentLength), nil
}

func (g *goSDK) Copy(ctx context.Context, b, src, dst string) error {
	_, err := g.c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &b, Key: &dst, CopySource: aws.String(b + "/" + url.PathEscape(src))})
	return err
}

func (g *goSDK) List(ctx context.Context, b, prefix, delimiter string) ([]string, []string, error) {
	in := &s3.ListObjectsV2Input{Bucket: &b, Prefix: &prefix}
	if delimiter != "" {
		in.Delimiter = &delimiter
	}
	var keys, prefixes []string
	p := s3.NewListObjectsV2Paginator(g.c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		for _, cp := range out.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(cp.Prefix))
		}
	}
	return keys, prefixes, nil
}

// walkFiles calls fn with each file of dir and its slash-separated relative
// path.
func walkFiles(dir string, fn func(path, rel string) error) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		return fn(path, filepath.ToSlash(rel))
	})
}

// SyncUp and SyncDown: the SDK has no sync; walk and upload, list and
// download, as a program would.
func (g *goSDK) SyncUp(ctx context.Context, dir, b, prefix string) error {
	return walkFiles(dir, func(path, rel string) error { return g.Put(ctx, b, prefix+rel, path) })
}

func (g *goSDK) SyncDown(ctx context.Context, b, prefix, dir string) error {
	keys, _, err := g.List(ctx, b, prefix, "")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := g.Get(ctx, b, k, filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(k, prefix)))); err != nil {
			return err
		}
	}
	return nil
}

func (g *goSDK) PresignGet(ctx context.Context, b, key string) (string, error) {
	req, err := g.ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: &key}, s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		return "", err
	}
	return req.URL, nil
}

func (g *goSDK) PresignPut(ctx context.Context, b, key string) (string, http.Header, error) {
	req, err := g.ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: &key}, s3.WithPresignExpires(10*time.Minute))
	if err != nil {
		return "", nil, err
	}
	return req.URL, req.SignedHeader, nil
}

// PresignPost makes the policy with PresignPostObject: its Conditions are
// the policy's beyond the bucket, key and signing fields, and the program adds
// the form's other fields itself.
func (g *goSDK) PresignPost(ctx context.Context, b string, p postPolicy) (*postForm, error) {
	fields := map[string]string{"Content-Type": p.ContentType}
	conds := []any{[]any{"content-length-range", p.MinSize, p.MaxSize}}
	if p.TypePrefix != "" {
		conds = append(conds, []any{"starts-with", "$Content-Type", p.TypePrefix})
	} else {
		conds = append(conds, map[string]string{"Content-Type": p.ContentType})
	}
	for k, v := range p.Meta {
		fields["x-amz-meta-"+k] = v
		conds = append(conds, map[string]string{"x-amz-meta-" + k: v})
	}
	if p.Status != "" {
		fields["success_action_status"] = p.Status
		conds = append(conds, map[string]string{"success_action_status": p.Status})
	}
	req, err := g.ps.PresignPostObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String(p.Key)}, func(o *s3.PresignPostOptions) {
		o.Expires = time.Duration(p.Expires) * time.Second
		o.Conditions = conds
	})
	if err != nil {
		return nil, err
	}
	for k, v := range req.Values {
		fields[k] = v
	}
	return &postForm{URL: req.URL, Fields: sortedFields(fields)}, nil
}

func (g *goSDK) PostForm(ctx context.Context, f *postForm, file postFile) (*postAnswer, error) {
	return postMultipart(ctx, g.hc, f, file)
}

func (g *goSDK) DeleteBatch(ctx context.Context, b, _ string, keys []string) error {
	out, err := g.c.DeleteObjects(ctx, deleteObjectsInput(b, keys))
	if err != nil {
		return err
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("DeleteObjects: %d errors, first %s: %s", len(out.Errors), aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Code))
	}
	return nil
}

func (g *goSDK) Delete(ctx context.Context, b, key string) error {
	_, err := g.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b, Key: &key})
	return err
}

func (g *goSDK) RemoveBucket(ctx context.Context, b string) error {
	_, err := g.c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &b})
	return err
}

func (g *goSDK) Close() {}

// minioGo drives minio-go v7: over http its uploads are
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD (signed chunks).
type minioGo struct {
	c  *minio.Client
	tr *http.Transport
}

func minioClient() *clientSpec {
	return &clientSpec{id: "miniogo", name: "minio-go v7", open: func(t *testing.T, tg target, _ string) (ops, error) {
		return newMinio(tg)
	}}
}

func newMinio(tg target) (*minioGo, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second, TLSClientConfig: insecureTLS()}
	c, err := minio.New(tg.hostPort(), &minio.Options{
		Creds:        miniocreds.NewStaticV4(tg.key, tg.secret, ""),
		Secure:       tg.https(),
		Transport:    tr,
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, err
	}
	return &minioGo{c: c, tr: tr}, nil
}

func (m *minioGo) Close() { m.tr.CloseIdleConnections() }

func (m *minioGo) MakeBucket(ctx context.Context, b string) error {
	return m.c.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: region})
}

func (m *minioGo) ListBuckets(ctx context.Context) ([]string, error) {
	bs, err := m.c.ListBuckets(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	return names, nil
}

// Put relies on minio-go's default part size (16 MiB and up): one PutObject.
func (m *minioGo) Put(ctx context.Context, b, key, file string) error {
	_, err := m.c.FPutObject(ctx, b, key, file, minio.PutObjectOptions{})
	return err
}

func (m *minioGo) PutMultipart(ctx context.Context, b, key, file string) error {
	_, err := m.c.FPutObject(ctx, b, key, file, minio.PutObjectOptions{PartSize: 5 << 20})
	return err
}

func (m *minioGo) Get(ctx context.Context, b, key, file string) error {
	return m.c.FGetObject(ctx, b, key, file, minio.GetObjectOptions{})
}

func (m *minioGo) GetRange(ctx context.Context, b, key string, first, last int64, file string) error {
	var o minio.GetObjectOptions
	if err := o.SetRange(first, last); err != nil {
		return err
	}
	obj, err := m.c.GetObject(ctx, b, key, o)
	if err != nil {
		return err
	}
	defer obj.Close()
	return writeFile(file, obj)
}

func (m *minioGo) Head(ctx context.Context, b, key string) (int64, error) {
	st, err := m.c.StatObject(ctx, b, key, minio.StatObjectOptions{})
	return st.Size, err
}

func (m *minioGo) Copy(ctx context.Context, b, src, dst string) error {
	_, err := m.c.CopyObject(ctx, minio.CopyDestOptions{Bucket: b, Object: dst}, minio.CopySrcOptions{Bucket: b, Object: src})
	return err
}

func (m *minioGo) List(ctx context.Context, b, prefix, delimiter string) ([]string, []string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var keys, prefixes []string
	for o := range m.c.ListObjects(ctx, b, minio.ListObjectsOptions{Prefix: prefix, Recursive: delimiter == ""}) {
		if o.Err != nil {
			return nil, nil, o.Err
		}
		if strings.HasSuffix(o.Key, "/") && o.Size == 0 && o.ETag == "" {
			prefixes = append(prefixes, o.Key)
		} else {
			keys = append(keys, o.Key)
		}
	}
	return keys, prefixes, nil
}

func (m *minioGo) SyncUp(ctx context.Context, dir, b, prefix string) error {
	return walkFiles(dir, func(path, rel string) error { return m.Put(ctx, b, prefix+rel, path) })
}

func (m *minioGo) SyncDown(ctx context.Context, b, prefix, dir string) error {
	keys, _, err := m.List(ctx, b, prefix, "")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := m.Get(ctx, b, k, filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(k, prefix)))); err != nil {
			return err
		}
	}
	return nil
}

func (m *minioGo) PresignGet(ctx context.Context, b, key string) (string, error) {
	u, err := m.c.PresignedGetObject(ctx, b, key, 10*time.Minute, nil)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

func (m *minioGo) PresignPut(ctx context.Context, b, key string) (string, http.Header, error) {
	u, err := m.c.PresignedPutObject(ctx, b, key, 10*time.Minute)
	if err != nil {
		return "", nil, err
	}
	return u.String(), nil, nil
}

// PresignPost makes the policy with PresignedPostPolicy. A starts-with on
// Content-Type puts the prefix in the form's field: the program sets the
// file's type there.
func (m *minioGo) PresignPost(ctx context.Context, b string, p postPolicy) (*postForm, error) {
	pp := minio.NewPostPolicy()
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	add(pp.SetBucket(b))
	add(pp.SetKey(p.Key))
	add(pp.SetExpires(time.Now().UTC().Add(time.Duration(p.Expires) * time.Second)))
	add(pp.SetContentLengthRange(p.MinSize, p.MaxSize))
	if p.TypePrefix != "" {
		add(pp.SetContentTypeStartsWith(p.TypePrefix))
	} else {
		add(pp.SetContentType(p.ContentType))
	}
	for k, v := range p.Meta {
		add(pp.SetUserMetadata(k, v))
	}
	if p.Status != "" {
		add(pp.SetSuccessStatusAction(p.Status))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	u, fields, err := m.c.PresignedPostPolicy(ctx, pp)
	if err != nil {
		return nil, err
	}
	fields["Content-Type"] = p.ContentType
	return &postForm{URL: u.String(), Fields: sortedFields(fields)}, nil
}

func (m *minioGo) PostForm(ctx context.Context, f *postForm, file postFile) (*postAnswer, error) {
	return postMultipart(ctx, &http.Client{Transport: m.tr}, f, file)
}

func (m *minioGo) DeleteBatch(ctx context.Context, b, _ string, keys []string) error {
	ch := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		ch <- minio.ObjectInfo{Key: k}
	}
	close(ch)
	var errs []error
	for e := range m.c.RemoveObjects(ctx, b, ch, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("%s: %w", e.ObjectName, e.Err))
	}
	return errors.Join(errs...)
}

func (m *minioGo) Delete(ctx context.Context, b, key string) error {
	return m.c.RemoveObject(ctx, b, key, minio.RemoveObjectOptions{})
}

func (m *minioGo) RemoveBucket(ctx context.Context, b string) error {
	return m.c.RemoveBucket(ctx, b)
}
