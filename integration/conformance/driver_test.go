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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/osproxy/proxy/internal/vgwtest"
)

// lineDriver drives an SDK through a long-running driver program of testdata
// (boto3_ops.py, js/js_ops.mjs) that performs one request per line of JSON
// and answers one line of JSON, so that the interpreter and the SDK start once
// per run. A step that outlives its deadline kills the process: later steps
// then fail.
type lineDriver struct {
	name   string // in errors: "boto3", "aws-sdk-js"
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	quit   chan struct{}
	stderr *lockedBuffer
	dead   error
	done   chan struct{}
}

// startLineDriver starts cmd (its Stdin, Stdout and Stderr unset) and waits
// for its answer to a "version" request.
func startLineDriver(name string, cmd *exec.Cmd) (*lineDriver, error) {
	b := &lineDriver{name: name, cmd: cmd, lines: make(chan string), quit: make(chan struct{}), stderr: &lockedBuffer{}, done: make(chan struct{})}
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
func (b *lineDriver) call(ctx context.Context, req map[string]any) (json.RawMessage, error) {
	if b.dead != nil {
		return nil, b.dead
	}
	line, _ := json.Marshal(req)
	if _, err := b.stdin.Write(append(line, '\n')); err != nil {
		b.kill(fmt.Errorf("%s driver: %v: %s", b.name, err, truncate(b.stderr.String(), 500)))
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
			return nil, fmt.Errorf("%s driver answered %q: %v", b.name, truncate(l, 200), err)
		}
		if !res.OK {
			return nil, errors.New(res.Error)
		}
		return res.Result, nil
	case <-b.done:
		b.kill(fmt.Errorf("%s driver exited: %s", b.name, truncate(b.stderr.String(), 500)))
		return nil, b.dead
	case <-ctx.Done():
		b.kill(fmt.Errorf("%s driver killed after a step timed out", b.name))
		return nil, ctx.Err()
	}
}

func (b *lineDriver) kill(err error) {
	if b.dead == nil {
		b.dead = err
		_ = b.cmd.Process.Kill()
	}
}

func (b *lineDriver) Close() {
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

func (b *lineDriver) do(ctx context.Context, op string, args map[string]any) error {
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

func (b *lineDriver) MakeBucket(ctx context.Context, bucket string) error {
	return b.do(ctx, "make_bucket", map[string]any{"bucket": bucket})
}

func (b *lineDriver) ListBuckets(ctx context.Context) ([]string, error) {
	r, err := b.call(ctx, withOp("list_buckets", nil))
	if err != nil {
		return nil, err
	}
	var names []string
	return names, json.Unmarshal(r, &names)
}

func (b *lineDriver) Put(ctx context.Context, bucket, key, file string) error {
	return b.do(ctx, "put", map[string]any{"bucket": bucket, "key": key, "file": file})
}

func (b *lineDriver) PutMultipart(ctx context.Context, bucket, key, file string) error {
	return b.do(ctx, "put_multipart", map[string]any{"bucket": bucket, "key": key, "file": file})
}

func (b *lineDriver) Get(ctx context.Context, bucket, key, file string) error {
	return b.do(ctx, "get", map[string]any{"bucket": bucket, "key": key, "file": file})
}

func (b *lineDriver) GetRange(ctx context.Context, bucket, key string, first, last int64, file string) error {
	return b.do(ctx, "get_range", map[string]any{"bucket": bucket, "key": key, "first": first, "last": last, "file": file})
}

func (b *lineDriver) Head(ctx context.Context, bucket, key string) (int64, error) {
	r, err := b.call(ctx, withOp("head", map[string]any{"bucket": bucket, "key": key}))
	if err != nil {
		return 0, err
	}
	var n int64
	return n, json.Unmarshal(r, &n)
}

func (b *lineDriver) Copy(ctx context.Context, bucket, src, dst string) error {
	return b.do(ctx, "copy", map[string]any{"bucket": bucket, "src": src, "dst": dst})
}

func (b *lineDriver) List(ctx context.Context, bucket, prefix, delimiter string) ([]string, []string, error) {
	r, err := b.call(ctx, withOp("list_objects", map[string]any{"bucket": bucket, "prefix": prefix, "delimiter": delimiter}))
	if err != nil {
		return nil, nil, err
	}
	var l struct{ Keys, Prefixes []string }
	err = json.Unmarshal(r, &l)
	return l.Keys, l.Prefixes, err
}

// SyncUp and SyncDown: the SDKs have no sync; the driver walks the tree and
// uploads each file, lists and downloads each key, as a program would.
func (b *lineDriver) SyncUp(ctx context.Context, dir, bucket, prefix string) error {
	return b.do(ctx, "sync_up", map[string]any{"dir": dir, "bucket": bucket, "prefix": prefix})
}

func (b *lineDriver) SyncDown(ctx context.Context, bucket, prefix, dir string) error {
	return b.do(ctx, "sync_down", map[string]any{"dir": dir, "bucket": bucket, "prefix": prefix})
}

func (b *lineDriver) presign(ctx context.Context, op, bucket, key string) (string, error) {
	r, err := b.call(ctx, withOp(op, map[string]any{"bucket": bucket, "key": key}))
	if err != nil {
		return "", err
	}
	var u string
	return u, json.Unmarshal(r, &u)
}

func (b *lineDriver) PresignGet(ctx context.Context, bucket, key string) (string, error) {
	return b.presign(ctx, "presign_get", bucket, key)
}

func (b *lineDriver) PresignPut(ctx context.Context, bucket, key string) (string, http.Header, error) {
	u, err := b.presign(ctx, "presign_put", bucket, key)
	return u, nil, err
}

func (b *lineDriver) PresignPost(ctx context.Context, bucket string, p postPolicy) (*postForm, error) {
	r, err := b.call(ctx, withOp("presign_post", map[string]any{"bucket": bucket, "policy": p}))
	if err != nil {
		return nil, err
	}
	var f postForm
	return &f, json.Unmarshal(r, &f)
}

// PostForm has the driver post the form with the HTTP stack its users post
// forms with.
func (b *lineDriver) PostForm(ctx context.Context, f *postForm, file postFile) (*postAnswer, error) {
	r, err := b.call(ctx, withOp("post_form", map[string]any{"url": f.URL, "fields": f.Fields,
		"file": file.Path, "filename": file.Name, "content_type": file.ContentType}))
	if err != nil {
		return nil, err
	}
	var a postAnswer
	return &a, json.Unmarshal(r, &a)
}

func (b *lineDriver) DeleteBatch(ctx context.Context, bucket, _ string, keys []string) error {
	return b.do(ctx, "delete_batch", map[string]any{"bucket": bucket, "keys": keys})
}

func (b *lineDriver) Delete(ctx context.Context, bucket, key string) error {
	return b.do(ctx, "delete", map[string]any{"bucket": bucket, "key": key})
}

func (b *lineDriver) RemoveBucket(ctx context.Context, bucket string) error {
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
