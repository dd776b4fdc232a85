package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/osproxy/proxy/internal/vgwtest"
)

// boto3Ops drives boto3 through testdata/boto3_ops.py, a long-running Python
// process that performs one request per line of JSON, so that the interpreter
// and boto3 start once per run. A step that outlives its deadline kills the
// process: later steps then fail.
type boto3Ops struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	quit   chan struct{}
	stderr *lockedBuffer
	dead   error
	done   chan struct{}
}

func boto3Client(id, python, version string) *clientSpec {
	return &clientSpec{id: id, name: "boto3 " + version, open: func(_ *testing.T, tg target, work string) (ops, error) {
		return startBoto3(python, tg, work)
	}}
}

// boto3SigV2Client is boto3 signing every request and presigned URL with
// AWS Signature Version 2 (signature_version "s3").
func boto3SigV2Client(python, version string) *clientSpec {
	return &clientSpec{id: "boto3-sigv2", name: "boto3 " + version + " (SigV2)", open: func(_ *testing.T, tg target, work string) (ops, error) {
		return startBoto3(python, tg, work, "OSP_SIGNATURE_VERSION=s3")
	}}
}

// scriptDir is this package's directory, where testdata lives.
func scriptDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

func startBoto3(python string, tg target, work string, env ...string) (*boto3Ops, error) {
	b := &boto3Ops{lines: make(chan string), quit: make(chan struct{}), stderr: &lockedBuffer{}, done: make(chan struct{})}
	b.cmd = exec.Command(python, "-u", filepath.Join(scriptDir(), "testdata", "boto3_ops.py"))
	b.cmd.Dir = work
	b.cmd.Env = clientEnv("OSP_ENDPOINT="+tg.url, "AWS_ACCESS_KEY_ID="+tg.key, "AWS_SECRET_ACCESS_KEY="+tg.secret,
		"AWS_DEFAULT_REGION="+region, "AWS_CONFIG_FILE="+filepath.Join(work, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(work, "no-credentials"))
	b.cmd.Env = append(b.cmd.Env, env...)
	b.cmd.Stderr = b.stderr
	b.cmd.SysProcAttr = &syscall.SysProcAttr{}
	vgwtest.KillWithParent(b.cmd.SysProcAttr)
	var err error
	if b.stdin, err = b.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case b.lines <- sc.Text():
			case <-b.quit:
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := b.call(ctx, map[string]any{"op": "version"}); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// call sends one request and waits for its answer until ctx ends.
func (b *boto3Ops) call(ctx context.Context, req map[string]any) (json.RawMessage, error) {
	if b.dead != nil {
		return nil, b.dead
	}
	line, _ := json.Marshal(req)
	if _, err := b.stdin.Write(append(line, '\n')); err != nil {
		b.kill(fmt.Errorf("boto3 driver: %v: %s", err, truncate(b.stderr.String(), 500)))
		return nil, b.dead
	}
	select {
	case l := <-b.lines:
		var res struct {
			OK     bool
			Result json.RawMessage
			Error  string
		}
		if err := json.Unmarshal([]byte(l), &res); err != nil {
			return nil, fmt.Errorf("boto3 driver answered %q: %v", truncate(l, 200), err)
		}
		if !res.OK {
			return nil, errors.New(res.Error)
		}
		return res.Result, nil
	case <-b.done:
		b.kill(fmt.Errorf("boto3 driver exited: %s", truncate(b.stderr.String(), 500)))
		return nil, b.dead
	case <-ctx.Done():
		b.kill(fmt.Errorf("boto3 driver killed after a step timed out"))
		return nil, ctx.Err()
	}
}

func (b *boto3Ops) kill(err error) {
	if b.dead == nil {
		b.dead = err
		_ = b.cmd.Process.Kill()
	}
}

func (b *boto3Ops) Close() {
	_ = b.stdin.Close()
	close(b.quit)
	exited := make(chan struct{})
	go func() {
		_ = b.cmd.Wait()
		close(exited)
	}()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-exited
	}
	<-b.done
}

func (b *boto3Ops) do(ctx context.Context, op string, args map[string]any) error {
	_, err := b.call(ctx, withOp(op, args))
	return err
}

func withOp(op string, args map[string]any) map[string]any {
	if args == nil {
		args = map[string]any{}
	}
	args["op"] = op
	return args
}

func (b *boto3Ops) MakeBucket(ctx context.Context, bucket string) error {
	return b.do(ctx, "make_bucket", map[string]any{"bucket": bucket})
}

func (b *boto3Ops) ListBuckets(ctx context.Context) ([]string, error) {
	r, err := b.call(ctx, withOp("list_buckets", nil))
	if err != nil {
		return nil, err
	}
	var names []string
	return names, json.Unmarshal(r, &names)
}

func (b *boto3Ops) Put(ctx context.Context, bucket, key, file string) error {
	return b.do(ctx, "put", map[string]any{"bucket": bucket, "key": key, "file": file})
}

func (b *boto3Ops) PutMultipart(ctx context.Context, bucket, key, file string) error {
	return b.do(ctx, "put_multipart", map[string]any{"bucket": bucket, "key": key, "file": file})
}

func (b *boto3Ops) Get(ctx context.Context, bucket, key, file string) error {
	return b.do(ctx, "get", map[string]any{"bucket": bucket, "key": key, "file": file})
}

func (b *boto3Ops) GetRange(ctx context.Context, bucket, key string, first, last int64, file string) error {
	return b.do(ctx, "get_range", map[string]any{"bucket": bucket, "key": key, "first": first, "last": last, "file": file})
}

func (b *boto3Ops) Head(ctx context.Context, bucket, key string) (int64, error) {
	r, err := b.call(ctx, withOp("head", map[string]any{"bucket": bucket, "key": key}))
	if err != nil {
		return 0, err
	}
	var n int64
	return n, json.Unmarshal(r, &n)
}

func (b *boto3Ops) Copy(ctx context.Context, bucket, src, dst string) error {
	return b.do(ctx, "copy", map[string]any{"bucket": bucket, "src": src, "dst": dst})
}

func (b *boto3Ops) List(ctx context.Context, bucket, prefix, delimiter string) ([]string, []string, error) {
	r, err := b.call(ctx, withOp("list_objects", map[string]any{"bucket": bucket, "prefix": prefix, "delimiter": delimiter}))
	if err != nil {
		return nil, nil, err
	}
	var l struct{ Keys, Prefixes []string }
	err = json.Unmarshal(r, &l)
	return l.Keys, l.Prefixes, err
}

// SyncUp and SyncDown: boto3 has no sync; the driver walks the tree and
// uploads each file, lists and downloads each key, as a program would.
func (b *boto3Ops) SyncUp(ctx context.Context, dir, bucket, prefix string) error {
	return b.do(ctx, "sync_up", map[string]any{"dir": dir, "bucket": bucket, "prefix": prefix})
}

func (b *boto3Ops) SyncDown(ctx context.Context, bucket, prefix, dir string) error {
	return b.do(ctx, "sync_down", map[string]any{"dir": dir, "bucket": bucket, "prefix": prefix})
}

func (b *boto3Ops) presign(ctx context.Context, op, bucket, key string) (string, error) {
	r, err := b.call(ctx, withOp(op, map[string]any{"bucket": bucket, "key": key}))
	if err != nil {
		return "", err
	}
	var u string
	return u, json.Unmarshal(r, &u)
}

func (b *boto3Ops) PresignGet(ctx context.Context, bucket, key string) (string, error) {
	return b.presign(ctx, "presign_get", bucket, key)
}

func (b *boto3Ops) PresignPut(ctx context.Context, bucket, key string) (string, http.Header, error) {
	u, err := b.presign(ctx, "presign_put", bucket, key)
	return u, nil, err
}

func (b *boto3Ops) DeleteBatch(ctx context.Context, bucket, _ string, keys []string) error {
	return b.do(ctx, "delete_batch", map[string]any{"bucket": bucket, "keys": keys})
}

func (b *boto3Ops) Delete(ctx context.Context, bucket, key string) error {
	return b.do(ctx, "delete", map[string]any{"bucket": bucket, "key": key})
}

func (b *boto3Ops) RemoveBucket(ctx context.Context, bucket string) error {
	return b.do(ctx, "remove_bucket", map[string]any{"bucket": bucket})
}

// lockedBuffer is a bounded, concurrency-safe sink for a subprocess's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
