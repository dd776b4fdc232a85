package conformance

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/osproxy/proxy/integration/internal/s3servers"
)

// The client matrix. Every client runs the same steps four times: straight
// against versitygw over http and over https (the baseline, with versitygw's
// root keys) and through the proxy over http and over https (with the
// proxy's client key). A step passes through the proxy when it passes there;
// it must, whenever it passes in the baseline. A step the client has no way to
// do, or one that fails in the baseline (versitygw or the client cannot), is
// n.a., with its reason logged.
//
// Each step starts from the state it needs, set up with an oracle client
// straight to versitygw when an earlier step left it otherwise, so that one
// failure does not hide the steps after it; what a client stored is checked
// with the oracle too.
//
// The upload steps then run the same way against SeaweedFS, s3rver and
// radosgw, each straight and through a proxy in front of it
// (upstreams_test.go), with the oracle straight to that server.

// ops is what a client under test can do. Implementations drive the client as
// a user would (a CLI command, a boto3 or Go SDK call) and return errNA for
// what the client has no way to do.
type ops interface {
	MakeBucket(ctx context.Context, b string) error
	ListBuckets(ctx context.Context) ([]string, error)
	// Put stores file at key in one PutObject.
	Put(ctx context.Context, b, key, file string) error
	// PutMultipart stores file at key with a multipart upload.
	PutMultipart(ctx context.Context, b, key, file string) error
	// Get downloads key into file.
	Get(ctx context.Context, b, key, file string) error
	// GetRange downloads bytes first..last (inclusive) of key into file.
	GetRange(ctx context.Context, b, key string, first, last int64, file string) error
	Head(ctx context.Context, b, key string) (size int64, err error)
	Copy(ctx context.Context, b, src, dst string) error
	// List lists keys under prefix, with delimiter "/" or none.
	List(ctx context.Context, b, prefix, delimiter string) (keys, prefixes []string, err error)
	// SyncUp makes prefix mirror dir; SyncDown makes dir mirror prefix.
	SyncUp(ctx context.Context, dir, b, prefix string) error
	SyncDown(ctx context.Context, b, prefix, dir string) error
	PresignGet(ctx context.Context, b, key string) (string, error)
	PresignPut(ctx context.Context, b, key string) (string, http.Header, error)
	// PresignPost makes the policy and fields of a form upload (POST Object)
	// to bucket b under p, with the client's POST presigner.
	PresignPost(ctx context.Context, b string, p postPolicy) (*postForm, error)
	// PostForm posts f with file as its last field, as the client's users
	// post forms, and returns the answer whatever its status.
	PostForm(ctx context.Context, f *postForm, file postFile) (*postAnswer, error)
	// DeleteBatch deletes keys, which are every key under prefix, in
	// DeleteObjects requests.
	DeleteBatch(ctx context.Context, b, prefix string, keys []string) error
	Delete(ctx context.Context, b, key string) error
	RemoveBucket(ctx context.Context, b string) error
	Close()
}

// errNA is returned by ops a client has no way to do.
var errNA = errors.New("the client has no way to do this")

// na returns errNA with a reason.
func na(why string) error { return fmt.Errorf("%w: %s", errNA, why) }

// Keys and objects of the steps.
var (
	// smallKeys are put by put-small: awkward keys from the core issue.
	smallKeys = []string{"plain.txt", "a b", "a+b", "k=v", "caf\u00e9", "sp ace/and+plus", "100%"}
	// batchKeys are deleted by batch-delete (under "batch/").
	batchKeys = []string{"batch/a b", "batch/a+b", "batch/k=v", "batch/caf\u00e9", "batch/sp ace/and+plus", "batch/100%"}
	// getKeys are read by get (with the two big objects), headKeys by head.
	getKeys  = []string{"a+b", "caf\u00e9", "sp ace/and+plus", "100%"}
	headKeys = []string{"a b", "k=v", tenKey}
	// deleteKeys are deleted one by one by delete.
	deleteKeys = []string{"a+b", "caf\u00e9", "100%"}
	// syncTree is the directory synced up and down (relative paths).
	syncTree = []string{"one.txt", "sub dir/two+2.txt", "sub dir/deeper/thr\u00e9e=3.txt", "100%.txt", "a b.bin"}
)

const (
	tenKey     = "big/ten.bin"   // put-10MiB, one PutObject
	multiKey   = "big/multi.bin" // multipart
	copySrc    = "a b"
	copyDst    = "copy/k=v a+b caf\u00e9"
	presignGet = "sp ace/and+plus"
	presignPut = "presigned/k=v a+b 100%"
	tenSize    = 10 << 20
	multiSize  = 21 << 20
	rangeFirst = 8<<20 - 100 // across aws-cli's and boto3's 8 MiB part boundary
	rangeLast  = 8<<20 + 99
)

// data is the local side of the steps: files to upload, shared by every run.
type data struct {
	dir   string
	small map[string][]byte // key → content
	ten   []byte
	multi []byte
	tree  map[string][]byte // relative path → content
	// postSmall (text) and postBig are uploaded by presign-post.
	postSmall, postBig []byte
}

func (d *data) smallFile(key string) string {
	return filepath.Join(d.dir, "small", fmt.Sprint(slices.Index(smallKeys, key)))
}
func (d *data) tenFile() string   { return filepath.Join(d.dir, "ten.bin") }
func (d *data) multiFile() string { return filepath.Join(d.dir, "multi.bin") }
func (d *data) treeDir() string   { return filepath.Join(d.dir, "tree") }
func (d *data) postSmallFile() string {
	return filepath.Join(d.dir, "post-small.txt")
}
func (d *data) postBigFile() string { return filepath.Join(d.dir, "post-big.bin") }

func newData(t *testing.T) *data {
	d := &data{dir: t.TempDir(), small: map[string][]byte{}, tree: map[string][]byte{}}
	require.NoError(t, os.Mkdir(filepath.Join(d.dir, "small"), 0o755))
	for i, k := range smallKeys {
		d.small[k] = []byte(fmt.Sprintf("small object %d, key %q\n", i, k))
		require.NoError(t, os.WriteFile(d.smallFile(k), d.small[k], 0o644))
	}
	d.ten = randomBytes(tenSize, 10)
	d.multi = randomBytes(multiSize, 21)
	require.NoError(t, os.WriteFile(d.tenFile(), d.ten, 0o644))
	require.NoError(t, os.WriteFile(d.multiFile(), d.multi, 0o644))
	d.postSmall = bytes.Repeat([]byte("uploaded with a presigned POST form\n"), postSmallSize/36+1)[:postSmallSize]
	d.postBig = randomBytes(postBigSize, 5)
	require.NoError(t, os.WriteFile(d.postSmallFile(), d.postSmall, 0o644))
	require.NoError(t, os.WriteFile(d.postBigFile(), d.postBig, 0o644))
	for i, p := range syncTree {
		c := []byte(fmt.Sprintf("synced file %d: %s\n", i, p))
		if strings.HasSuffix(p, ".bin") {
			c = randomBytes(64<<10, byte(i))
		}
		d.tree[p] = c
		f := filepath.Join(d.treeDir(), filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(f), 0o755))
		require.NoError(t, os.WriteFile(f, c, 0o644))
	}
	return d
}

// target is where a client run sends its requests.
type target struct {
	side   string // "direct" or "proxy"
	scheme string // "http" or "https"
	url    string // base URL
	key    string
	secret string
	vgw    *versityGW // where the buckets live
	// tlsFront: the server sits behind a TLS terminator (s3servers.PassThrough)
	// and names itself with http in the URLs it answers.
	tlsFront bool
	// md5MultipartETag: the server gives a multipart object the MD5 of its
	// bytes as ETag, not S3's MD5 of the parts' MD5s with a -<parts> suffix
	// (s3rver): the ETag cannot tell a multipart upload.
	md5MultipartETag bool
}

func (tg target) https() bool { return tg.scheme == "https" }

// hostPort is the target's host:port.
func (tg target) hostPort() string {
	_, hp, _ := strings.Cut(tg.url, "://")
	return hp
}

// run is one client's steps against one target.
type run struct {
	ops    ops
	tg     target
	bucket string
	data   *data
	work   string     // scratch directory
	oracle *s3.Client // straight to the upstream with its keys
	tc     *s3.Client // aws-sdk-go-v2 to the target with its keys
	hc     *http.Client
	// answers are the status and S3 error code of the answers to the
	// POST steps' forms, for the comparison of the proxy with versitygw.
	answers map[string]postSeen
}

// step is one column of the matrix.
type step struct {
	name    string
	timeout time.Duration
	fn      func(ctx context.Context, r *run) error
}

var steps = []step{
	{"mb", time.Minute, stepMakeBucket},
	{"ls-buckets", time.Minute, stepListBuckets},
	{"put-small", 3 * time.Minute, stepPutSmall},
	{"put-10MiB", 2 * time.Minute, stepPutTen},
	{"multipart", 3 * time.Minute, stepMultipart},
	{"get", 3 * time.Minute, stepGet},
	{"range-get", time.Minute, stepRangeGet},
	{"head", 2 * time.Minute, stepHead},
	{"copy", time.Minute, stepCopy},
	{"list", 2 * time.Minute, stepList},
	{"sync", 3 * time.Minute, stepSync},
	{"presign-get", time.Minute, stepPresignGet},
	{"presign-put", time.Minute, stepPresignPut},
	{"presign-post", 2 * time.Minute, stepPresignPost},
	{"post-denied", time.Minute, stepPostDenied},
	{"batch-delete", time.Minute, stepBatchDelete},
	{"delete", 2 * time.Minute, stepDelete},
	{"rb", time.Minute, stepRemoveBucket},
}

// file is a fresh path in the run's scratch directory.
func (r *run) file(name string) string {
	dir, err := os.MkdirTemp(r.work, "f")
	if err != nil {
		panic(err)
	}
	return filepath.Join(dir, name)
}

// ensureBucket creates the bucket with the oracle when it is missing.
func (r *run) ensureBucket(ctx context.Context) error {
	if _, err := r.oracle.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &r.bucket}); err == nil {
		return nil
	}
	if _, err := r.oracle.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &r.bucket}); err != nil {
		return fmt.Errorf("setup: create bucket: %s", s3Code(err))
	}
	return nil
}

// ensure stores with the oracle each object that is missing or not of the
// expected size.
func (r *run) ensure(ctx context.Context, objs map[string][]byte) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	for k, want := range objs {
		h, err := r.oracle.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &r.bucket, Key: aws.String(k)})
		if err == nil && aws.ToInt64(h.ContentLength) == int64(len(want)) {
			continue
		}
		if err := oraclePut(ctx, r.oracle, r.bucket, k, want); err != nil {
			return fmt.Errorf("setup: put %q: %s", k, s3Code(err))
		}
	}
	return nil
}

func (r *run) allSmall() map[string][]byte { return cloneObjs(r.data.small) }

func cloneObjs(m map[string][]byte) map[string][]byte {
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// stored checks with the oracle that key holds want: a failure is the check
// checkStored. Bytes stored with aws-chunked framing inside are errCorrupt.
func (r *run) stored(ctx context.Context, key string, want []byte) error {
	got, err := oracleGet(ctx, r.oracle, r.bucket, key)
	if err != nil {
		return checkFailed(checkStored, fmt.Errorf("%q not stored: %s", key, s3Code(err)))
	}
	if framedData(got, want) {
		return checkFailed(checkStored, fmt.Errorf("%w: %q stored as %d bytes: the %d sent with their aws-chunked framing inside", errCorrupt, key, len(got), len(want)))
	}
	if err := sameBytes(fmt.Sprintf("stored %q", key), got, want); err != nil {
		return checkFailed(checkStored, err)
	}
	return nil
}

// checkStored is the check that what a client uploaded is stored, exact.
const checkStored = "stored bytes"

// checkError is one failed check of a step. Steps that check several things
// about one answer report each (errors.Join), so that the proxy's failures
// can be compared with the server's check by check (upstreamVerdict).
type checkError struct {
	check string
	err   error
}

func checkFailed(check string, err error) error { return &checkError{check: check, err: err} }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

// failedChecks are the checks err reports as failed; "" stands for a failure
// that is no checkError (the client's command or call failed).
func failedChecks(err error) map[string]bool {
	out := map[string]bool{}
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *checkError:
			out[e.check] = true
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if inner := e.Unwrap(); inner != nil {
				walk(inner)
			} else {
				out[""] = true
			}
		default:
			out[""] = true
		}
	}
	walk(err)
	return out
}

func sameBytes(what string, got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	return fmt.Errorf("%s: %d bytes differ from the %d expected", what, len(got), len(want))
}

func (r *run) fileHolds(what, file string, want []byte) error {
	got, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	return sameBytes(what, got, want)
}

func stepMakeBucket(ctx context.Context, r *run) error {
	if err := r.ops.MakeBucket(ctx, r.bucket); err != nil {
		return err
	}
	if _, err := r.oracle.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &r.bucket}); err != nil {
		return fmt.Errorf("bucket not created: %s", s3Code(err))
	}
	return nil
}

func stepListBuckets(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	names, err := r.ops.ListBuckets(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(names, r.bucket) {
		return fmt.Errorf("%s not among the %d buckets listed: %q", r.bucket, len(names), names)
	}
	return nil
}

func stepPutSmall(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	var errs []error
	for _, k := range smallKeys {
		if err := r.ops.Put(ctx, r.bucket, k, r.data.smallFile(k)); err != nil {
			errs = append(errs, fmt.Errorf("put %q: %w", k, err))
			continue
		}
		if err := r.stored(ctx, k, r.data.small[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func stepPutTen(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	if err := r.ops.Put(ctx, r.bucket, tenKey, r.data.tenFile()); err != nil {
		return err
	}
	return r.stored(ctx, tenKey, r.data.ten)
}

func stepMultipart(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	if err := r.ops.PutMultipart(ctx, r.bucket, multiKey, r.data.multiFile()); err != nil {
		return err
	}
	if err := r.stored(ctx, multiKey, r.data.multi); err != nil {
		return err
	}
	if r.tg.md5MultipartETag {
		return nil
	}
	h, err := r.oracle.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(multiKey)})
	if err != nil {
		return fmt.Errorf("head: %s", s3Code(err))
	}
	if etag := aws.ToString(h.ETag); !strings.Contains(etag, "-") {
		return fmt.Errorf("stored with ETag %s: not a multipart upload", etag)
	}
	return nil
}

func stepGet(ctx context.Context, r *run) error {
	objs := r.allSmall()
	objs[tenKey], objs[multiKey] = r.data.ten, r.data.multi
	if err := r.ensure(ctx, objs); err != nil {
		return err
	}
	var errs []error
	for _, k := range append(slices.Clone(getKeys), tenKey, multiKey) {
		f := r.file("got")
		if err := r.ops.Get(ctx, r.bucket, k, f); err != nil {
			errs = append(errs, fmt.Errorf("get %q: %w", k, err))
			continue
		}
		if err := r.fileHolds(fmt.Sprintf("got %q", k), f, objs[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func stepRangeGet(ctx context.Context, r *run) error {
	if err := r.ensure(ctx, map[string][]byte{multiKey: r.data.multi}); err != nil {
		return err
	}
	f := r.file("range")
	if err := r.ops.GetRange(ctx, r.bucket, multiKey, rangeFirst, rangeLast, f); err != nil {
		return err
	}
	return r.fileHolds("range", f, r.data.multi[rangeFirst:rangeLast+1])
}

func stepHead(ctx context.Context, r *run) error {
	objs := r.allSmall()
	objs[tenKey] = r.data.ten
	if err := r.ensure(ctx, objs); err != nil {
		return err
	}
	var errs []error
	for _, k := range headKeys {
		size, err := r.ops.Head(ctx, r.bucket, k)
		if err != nil {
			errs = append(errs, fmt.Errorf("head %q: %w", k, err))
		} else if size != int64(len(objs[k])) {
			errs = append(errs, fmt.Errorf("head %q: size %d, want %d", k, size, len(objs[k])))
		}
	}
	return errors.Join(errs...)
}

func stepCopy(ctx context.Context, r *run) error {
	if err := r.ensure(ctx, map[string][]byte{copySrc: r.data.small[copySrc]}); err != nil {
		return err
	}
	if err := r.ops.Copy(ctx, r.bucket, copySrc, copyDst); err != nil {
		return err
	}
	return r.stored(ctx, copyDst, r.data.small[copySrc])
}

func stepList(ctx context.Context, r *run) error {
	objs := r.allSmall()
	objs[tenKey], objs[multiKey], objs[copyDst] = r.data.ten, r.data.multi, r.data.small[copySrc]
	if err := r.ensure(ctx, objs); err != nil {
		return err
	}
	var root []string
	for _, k := range smallKeys {
		if !strings.Contains(k, "/") {
			root = append(root, k)
		}
	}
	cases := []struct {
		prefix, delimiter string
		keys, prefixes    []string
	}{
		{"", "/", root, []string{"big/", "copy/", "sp ace/"}},
		{"sp ace/", "/", []string{"sp ace/and+plus"}, nil},
		{"big/", "", []string{multiKey, tenKey}, nil},
	}
	var errs []error
	for _, c := range cases {
		keys, prefixes, err := r.ops.List(ctx, r.bucket, c.prefix, c.delimiter)
		if err != nil {
			errs = append(errs, fmt.Errorf("list prefix %q delimiter %q: %w", c.prefix, c.delimiter, err))
			continue
		}
		if !sameSet(keys, c.keys) || !sameSet(prefixes, c.prefixes) {
			errs = append(errs, fmt.Errorf("list prefix %q delimiter %q: keys %q prefixes %q, want keys %q prefixes %q",
				c.prefix, c.delimiter, keys, prefixes, c.keys, c.prefixes))
		}
	}
	return errors.Join(errs...)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

func stepSync(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	if err := r.ops.SyncUp(ctx, r.data.treeDir(), r.bucket, "sync/"); err != nil {
		return fmt.Errorf("sync up: %w", err)
	}
	keys, err := oracleKeys(ctx, r.oracle, r.bucket, "sync/")
	if err != nil {
		return fmt.Errorf("listing synced keys: %s", s3Code(err))
	}
	var want []string
	for p := range r.data.tree {
		want = append(want, "sync/"+p)
	}
	if !sameSet(keys, want) {
		return fmt.Errorf("sync up stored %q, want %q", keys, want)
	}
	for p, c := range r.data.tree {
		if err := r.stored(ctx, "sync/"+p, c); err != nil {
			return err
		}
	}
	dir := r.file("down")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := r.ops.SyncDown(ctx, r.bucket, "sync/", dir); err != nil {
		return fmt.Errorf("sync down: %w", err)
	}
	got := map[string][]byte{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		b, err := os.ReadFile(path)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		return err
	}
	var gotNames []string
	for p, c := range got {
		gotNames = append(gotNames, p)
		if !bytes.Equal(c, r.data.tree[p]) {
			return fmt.Errorf("sync down: %q differs", p)
		}
	}
	if !sameSet(gotNames, slices.Collect(mapKeys(r.data.tree))) {
		return fmt.Errorf("sync down wrote %q", gotNames)
	}
	return nil
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func stepPresignGet(ctx context.Context, r *run) error {
	want := r.data.small[presignGet]
	if err := r.ensure(ctx, map[string][]byte{presignGet: want}); err != nil {
		return err
	}
	u, err := r.ops.PresignGet(ctx, r.bucket, presignGet)
	if err != nil {
		return err
	}
	got, err := r.fetch(ctx, http.MethodGet, u, nil, nil)
	if err != nil {
		return err
	}
	return sameBytes("presigned GET", got, want)
}

func stepPresignPut(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	u, h, err := r.ops.PresignPut(ctx, r.bucket, presignPut)
	if err != nil {
		return err
	}
	body := []byte("put with a presigned URL\n")
	if _, err := r.fetch(ctx, http.MethodPut, u, h, body); err != nil {
		return err
	}
	return r.stored(ctx, presignPut, body)
}

// fetch sends a presigned request as curl would and returns the body of a
// 200 answer.
func (r *run) fetch(ctx context.Context, method, u string, h http.Header, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("presigned URL %q: %v", u, err)
	}
	if body == nil {
		req.Body, req.ContentLength = nil, 0
	}
	for k, v := range h {
		if !strings.EqualFold(k, "Host") {
			req.Header[k] = v
		}
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code, Message string }
		if xml.Unmarshal(b, &e) == nil && e.Code != "" {
			return nil, fmt.Errorf("presigned %s: %d %s: %s", method, resp.StatusCode, e.Code, e.Message)
		}
		return nil, fmt.Errorf("presigned %s: status %d: %s", method, resp.StatusCode, truncate(string(b), 300))
	}
	return b, nil
}

func stepBatchDelete(ctx context.Context, r *run) error {
	objs := map[string][]byte{}
	for _, k := range batchKeys {
		objs[k] = []byte("to be deleted: " + k)
	}
	if err := r.ensure(ctx, objs); err != nil {
		return err
	}
	if err := r.ops.DeleteBatch(ctx, r.bucket, "batch/", batchKeys); err != nil {
		return err
	}
	left, err := oracleKeys(ctx, r.oracle, r.bucket, "batch/")
	if err != nil {
		return fmt.Errorf("listing: %s", s3Code(err))
	}
	if len(left) > 0 {
		return fmt.Errorf("not deleted: %q", left)
	}
	return nil
}

func stepDelete(ctx context.Context, r *run) error {
	objs := map[string][]byte{}
	for _, k := range deleteKeys {
		objs[k] = r.data.small[k]
	}
	if err := r.ensure(ctx, objs); err != nil {
		return err
	}
	var errs []error
	for _, k := range deleteKeys {
		if err := r.ops.Delete(ctx, r.bucket, k); err != nil {
			errs = append(errs, fmt.Errorf("delete %q: %w", k, err))
			continue
		}
		if _, err := r.oracle.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &r.bucket, Key: aws.String(k)}); err == nil {
			errs = append(errs, fmt.Errorf("%q still there", k))
		}
	}
	return errors.Join(errs...)
}

func stepRemoveBucket(ctx context.Context, r *run) error {
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	if err := emptyBucket(ctx, r.oracle, r.bucket); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := r.ops.RemoveBucket(ctx, r.bucket); err != nil {
		return err
	}
	if _, err := r.oracle.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &r.bucket}); err == nil {
		return errors.New("bucket still there")
	}
	return nil
}

// emptyBucket deletes every object and multipart upload of bucket.
func emptyBucket(ctx context.Context, c *s3.Client, bucket string) error {
	keys, err := oracleKeys(ctx, c, bucket, "")
	if err != nil {
		return fmt.Errorf("listing: %s", s3Code(err))
	}
	for _, k := range keys {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String(k)}); err != nil {
			return fmt.Errorf("delete %q: %s", k, s3Code(err))
		}
	}
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		return fmt.Errorf("listing uploads: %s", s3Code(err))
	}
	for _, u := range ups.Uploads {
		_, _ = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: u.Key, UploadId: u.UploadId})
	}
	return nil
}

// outcome is one step's result in one run.
type outcome struct {
	err     error
	elapsed time.Duration
}

// matrixSteps are the steps of this run: all of them, or those named in
// OSP_MATRIX_STEPS (comma-separated).
func matrixSteps(t *testing.T) []step {
	only := os.Getenv("OSP_MATRIX_STEPS")
	if only == "" {
		return steps
	}
	names := strings.Split(only, ",")
	out := slices.DeleteFunc(slices.Clone(steps), func(s step) bool { return !slices.Contains(names, s.name) })
	for _, n := range names {
		if !slices.ContainsFunc(steps, func(s step) bool { return s.name == n }) {
			t.Fatalf("OSP_MATRIX_STEPS: no step %q", n)
		}
	}
	return out
}

// runSteps runs steps of one client against one target, each bounded by its
// timeout.
func runSteps(r *run, steps []step) []outcome {
	out := make([]outcome, len(steps))
	for i, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		start := time.Now()
		err := safeStep(ctx, s, r)
		if err != nil && ctx.Err() != nil && !errors.Is(err, errNA) {
			err = fmt.Errorf("timed out after %v: %w", s.timeout, err)
		}
		cancel()
		out[i] = outcome{err: err, elapsed: time.Since(start)}
	}
	return out
}

func safeStep(ctx context.Context, s step, r *run) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return s.fn(ctx, r)
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// cell is one client × scheme × step verdict.
type cell int

const (
	cellOK cell = iota
	cellFail
	cellNA
)

func (c cell) String() string { return [...]string{"ok", "FAIL", "n.a.", "ok*"}[c] }

// verdict compares the proxy's outcome of a step with the baseline's.
func verdict(direct, viaProxy outcome) (cell, string) {
	switch {
	case errors.Is(direct.err, errNA):
		return cellNA, "client: " + direct.err.Error()
	case direct.err != nil:
		why := "baseline (straight to versitygw) fails: " + direct.err.Error()
		if viaProxy.err == nil {
			why += " (the proxy passes)"
		}
		return cellNA, why
	case viaProxy.err != nil:
		return cellFail, viaProxy.err.Error()
	}
	return cellOK, ""
}

// matrixRow is one client over one scheme.
type matrixRow struct {
	client string
	scheme string
	cells  []cell
}

func printMatrix(w io.Writer, steps []step, rows []matrixRow) (passed, failed, notApplicable int) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprint(tw, "client\tscheme")
	for _, s := range steps {
		fmt.Fprint(tw, "\t"+s.name)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s", r.client, r.scheme)
		for _, c := range r.cells {
			fmt.Fprint(tw, "\t"+c.String())
			switch c {
			case cellOK, cellBetter:
				passed++
			case cellFail:
				failed++
			default:
				notApplicable++
			}
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	return
}

// matrixParallel is how many client runs go at once (2 cores in CI: the CLI
// clients are CPU-bound Python start-ups, which wait a little too: 6 runs keep
// the two cores busy, 4 left a quarter of them idle).
func matrixParallel() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("OSP_MATRIX_PARALLEL"), &n); err == nil && n > 0 {
		return n
	}
	return 6
}

// TestMatrix drives every client straight against each upstream (versitygw,
// the baseline, and the servers of upstreams_test.go) and through a proxy in
// front of it, over http and https, and prints one client × step matrix per
// upstream.
func TestMatrix(t *testing.T) {
	starts := startUpstreams(t)
	clients := discoverClients(t)
	if only := os.Getenv("OSP_MATRIX_CLIENTS"); only != "" {
		ids := strings.Split(only, ",")
		clients = slices.DeleteFunc(clients, func(c *clientSpec) bool { return !slices.Contains(ids, c.id) })
	}
	if len(clients) == 0 {
		t.Skip("no client available")
	}
	schemes := []string{"http", "https"}
	var proxyBuckets []string
	for _, c := range clients {
		for _, sc := range schemes {
			proxyBuckets = append(proxyBuckets, matrixBucket(c, sc, "proxy"))
		}
	}
	d := newData(t)
	ups := starts.upstreams(t, proxyBuckets)

	// One pool of runs for every upstream, the slow clients first.
	var jobs []*matrixJob
	for _, c := range clients {
		for _, up := range ups {
			for _, sc := range schemes {
				for _, side := range []string{"direct", "proxy"} {
					j := &matrixJob{c: c, up: up, bucket: matrixBucket(c, sc, side), tg: target{side: side, scheme: sc}}
					j.tg.md5MultipartETag = up.kind == s3servers.S3rver
					if side == "direct" {
						j.tg.url, j.tg.key, j.tg.secret = up.direct[sc], up.key, up.secret
						j.tg.tlsFront = up.kind != "" && sc == "https"
					} else {
						j.tg.url, j.tg.key, j.tg.secret = up.viaProxy[sc], clientKey, clientSecret
					}
					jobs = append(jobs, j)
				}
			}
		}
	}

	start := time.Now()
	sem := make(chan struct{}, matrixParallel())
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			steps := j.up.steps
			work, err := os.MkdirTemp(d.dir, "run-")
			if err != nil {
				j.res = failAll(err, len(steps))
				return
			}
			o, err := j.c.open(t, j.tg, work)
			if err != nil {
				j.res = failAll(fmt.Errorf("starting the client: %w", err), len(steps))
				return
			}
			defer o.Close()
			tc, hc := goS3(t, j.tg.url, j.tg.key, j.tg.secret, 0)
			r := &run{ops: o, tg: j.tg, bucket: j.bucket, data: d, work: work, oracle: j.up.store(t, j.tg.side, j.tg.scheme), tc: tc, hc: hc}
			t0 := time.Now()
			j.res = runSteps(r, steps)
			j.answers = r.answers
			t.Logf("%s%s %s %s: %v", j.up.prefix(), j.c.name, j.tg.scheme, j.tg.side, time.Since(t0).Round(time.Millisecond))
		}()
	}
	wg.Wait()

	var buf bytes.Buffer
	var passed, failed int
	for _, up := range ups {
		var pairs [][2]*matrixJob
		for i := 0; i < len(jobs); i += 2 {
			if jobs[i].up == up {
				pairs = append(pairs, [2]*matrixJob{jobs[i], jobs[i+1]})
			}
		}
		took := time.Since(start)
		if len(ups) > 1 {
			took = 0 // one pool: the time of all is under the last matrix
		}
		p, f := reportMatrix(t, &buf, up, pairs, took)
		passed, failed = passed+p, failed+f
	}
	reportFormats(t, &buf, ups, clients, schemes)
	if len(ups) > 1 {
		fmt.Fprintf(&buf, "all upstreams: %d passed, %d failed, in %v\n", passed, failed, time.Since(start).Round(time.Second))
	}
	fmt.Print(buf.String())
	if path := os.Getenv("OSP_MATRIX_FILE"); path != "" {
		_ = os.WriteFile(path, buf.Bytes(), 0o644)
	}
}

// matrixJob is one client's steps against one upstream, straight or through
// the proxy, over one scheme.
type matrixJob struct {
	c       *clientSpec
	up      *upstream
	tg      target
	bucket  string
	res     []outcome
	answers map[string]postSeen // run.answers
}

// matrixBucket is the bucket of a client's run: the same name on every
// upstream (each has its own store).
func matrixBucket(c *clientSpec, scheme, side string) string {
	return fmt.Sprintf("osp-%s-%s-%s", c.id, scheme, side[:1])
}

// prefix is the upstream's name before a run's log line; none for versitygw.
func (up *upstream) prefix() string {
	if up.kind == "" {
		return ""
	}
	return up.name + ": "
}

// reportMatrix decides and writes the matrix of one upstream from its runs
// (direct, proxy) and returns its passed and failed cells.
func reportMatrix(t *testing.T, buf *bytes.Buffer, up *upstream, pairs [][2]*matrixJob, took time.Duration) (passed, failed int) {
	var rows []matrixRow
	var diffs []string // POST answers of the proxy that differ from the server's
	type reason struct {
		why     string
		schemes []string
	}
	var naOrder, betterOrder []string
	reasons := map[string]*reason{} // kind + client + step → first reason
	note := func(order *[]string, kind, client, step, scheme, why string) {
		k := kind + client + ", " + step
		if reasons[k] == nil {
			*order = append(*order, k)
			reasons[k] = &reason{why: why}
		}
		reasons[k].schemes = append(reasons[k].schemes, scheme)
	}
	server := up.name
	for _, pair := range pairs {
		direct, viaProxy := pair[0], pair[1]
		row := matrixRow{client: direct.c.name, scheme: direct.tg.scheme}
		for k, s := range up.steps {
			c, why := verdict(direct.res[k], viaProxy.res[k])
			if up.kind != "" {
				c, why = upstreamVerdict(up, s, direct.res[k], viaProxy.res[k])
			}
			row.cells = append(row.cells, c)
			switch c {
			case cellFail:
				t.Errorf("%s%s over %s, %s: passes straight to %s, fails through the proxy: %s", up.prefix(), row.client, row.scheme, s.name, server, why)
			case cellNA:
				t.Logf("%s%s over %s, %s: n.a.: %s", up.prefix(), row.client, row.scheme, s.name, why)
				note(&naOrder, "n.a.", row.client, s.name, row.scheme, why)
			case cellBetter:
				t.Logf("%s%s over %s, %s: ok*: %s", up.prefix(), row.client, row.scheme, s.name, why)
				note(&betterOrder, "ok*", row.client, s.name, row.scheme, why)
			}
		}
		rows = append(rows, row)
		diffs = append(diffs, compareAnswers(t, server, row.client, row.scheme, direct.answers, viaProxy.answers)...)
	}
	switch {
	case up.kind == "" && took > 0:
		fmt.Fprintf(buf, "\nclient matrix (through the proxy; n.a.: the client cannot, or versitygw itself cannot), %v:\n",
			took.Round(time.Second))
	case up.kind == "":
		fmt.Fprintf(buf, "\nclient matrix (through the proxy; n.a.: the client cannot, or versitygw itself cannot):\n")
	default:
		fmt.Fprintf(buf, "\nclient matrix against %s (through the proxy; n.a.: the client cannot, or %s itself cannot; "+
			"ok*: fails straight, passes through the proxy):\n", up.desc, up.name)
	}
	passed, failed, notApplicable := printMatrix(buf, up.steps, rows)
	list := func(title string, order []string, kind string) {
		if len(order) > 0 {
			fmt.Fprintf(buf, "%s\n", title)
		}
		for _, k := range order {
			fmt.Fprintf(buf, "  %s (%s): %s\n", strings.TrimPrefix(k, kind), strings.Join(reasons[k].schemes, ", "),
				truncate(strings.ReplaceAll(reasons[k].why, "\n", " "), 200))
		}
	}
	list(fmt.Sprintf("%d n.a.:", notApplicable), naOrder, "n.a.")
	list("ok* (the proxy does better than the server straight):", betterOrder, "ok*")
	if len(diffs) > 0 {
		fmt.Fprintf(buf, "%d presigned POST answers of the proxy differ from %s's to the same form:\n", len(diffs), server)
		for _, d := range diffs {
			fmt.Fprintf(buf, "  %s\n", d)
		}
	}
	fmt.Fprintf(buf, "%s%d passed, %d failed\n", up.prefix(), passed, failed)
	return passed, failed
}

func failAll(err error, n int) []outcome {
	out := make([]outcome, n)
	for i := range out {
		out[i].err = err
	}
	return out
}

// deleteObjectsInput builds a DeleteObjects request for keys.
func deleteObjectsInput(bucket string, keys []string) *s3.DeleteObjectsInput {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(keys[i])}
	}
	return &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: ids}}
}
