package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rcloneCLI drives rclone with a remote "osp" defined in environment
// variables (provider Other, path style) and an empty config file. AWS_*
// variables are not passed: rclone 1.60 fails on AWS_CA_BUNDLE.
type rcloneCLI struct {
	cli
	flags []string
}

func rcloneClient(bin, version string) *clientSpec {
	return &clientSpec{id: "rclone", name: "rclone " + version, open: func(_ *testing.T, tg target, work string) (ops, error) {
		conf := filepath.Join(work, "rclone.conf")
		if err := os.WriteFile(conf, nil, 0o600); err != nil {
			return nil, err
		}
		r := &rcloneCLI{cli: cli{bin: bin, dir: work, env: clientEnv(
			"RCLONE_CONFIG="+conf,
			"RCLONE_CONFIG_OSP_TYPE=s3",
			"RCLONE_CONFIG_OSP_PROVIDER=Other",
			"RCLONE_CONFIG_OSP_ACCESS_KEY_ID="+tg.key,
			"RCLONE_CONFIG_OSP_SECRET_ACCESS_KEY="+tg.secret,
			"RCLONE_CONFIG_OSP_ENDPOINT="+tg.url,
			"RCLONE_CONFIG_OSP_REGION="+region,
			"RCLONE_CONFIG_OSP_FORCE_PATH_STYLE=true",
		)}}
		r.flags = []string{"--retries", "1", "--low-level-retries", "1", "--contimeout", "10s", "--timeout", "60s"}
		if tg.https() {
			r.flags = append(r.flags, "--no-check-certificate")
		}
		return r, nil
	}}
}

func (r *rcloneCLI) rclone(ctx context.Context, args ...string) ([]byte, error) {
	return r.run(ctx, append(args, r.flags...)...)
}

// remote is the rclone path of key in b ("osp:b/key"), without a trailing
// slash: rclone addresses directories by name.
func remote(b, key string) string { return strings.TrimSuffix("osp:"+b+"/"+key, "/") }

func (r *rcloneCLI) MakeBucket(ctx context.Context, b string) error {
	_, err := r.rclone(ctx, "mkdir", "osp:"+b)
	return err
}

func (r *rcloneCLI) ListBuckets(ctx context.Context) ([]string, error) {
	out, err := r.rclone(ctx, "lsd", "osp:")
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 5 {
			names = append(names, f[len(f)-1])
		}
	}
	return names, nil
}

// Put relies on rclone's default upload cutoff (200 MiB): one PutObject.
func (r *rcloneCLI) Put(ctx context.Context, b, key, file string) error {
	_, err := r.rclone(ctx, "copyto", file, remote(b, key))
	return err
}

func (r *rcloneCLI) PutMultipart(ctx context.Context, b, key, file string) error {
	_, err := r.rclone(ctx, "copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", file, remote(b, key))
	return err
}

func (r *rcloneCLI) Get(ctx context.Context, b, key, file string) error {
	_, err := r.rclone(ctx, "copyto", remote(b, key), file)
	return err
}

func (r *rcloneCLI) GetRange(ctx context.Context, b, key string, first, last int64, file string) error {
	out, err := r.rclone(ctx, "cat", "--offset", fmt.Sprint(first), "--count", fmt.Sprint(last-first+1), remote(b, key))
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o644)
}

func (r *rcloneCLI) Head(ctx context.Context, b, key string) (int64, error) {
	out, err := r.rclone(ctx, "lsjson", "--stat", remote(b, key))
	if err != nil {
		return 0, err
	}
	var st struct{ Size int64 }
	if err := json.Unmarshal(out, &st); err != nil {
		return 0, fmt.Errorf("lsjson output %q: %v", truncate(string(out), 200), err)
	}
	return st.Size, nil
}

func (r *rcloneCLI) Copy(ctx context.Context, b, src, dst string) error {
	_, err := r.rclone(ctx, "copyto", remote(b, src), remote(b, dst))
	return err
}

// List lists a directory with `rclone lsf` (delimiter "/"), or every file
// under it with `rclone lsf -R --files-only`; rclone names entries relative to
// the directory, directories with a trailing slash.
func (r *rcloneCLI) List(ctx context.Context, b, prefix, delimiter string) ([]string, []string, error) {
	args := []string{"lsf"}
	if delimiter == "" {
		args = append(args, "-R", "--files-only")
	}
	out, err := r.rclone(ctx, append(args, remote(b, prefix))...)
	if err != nil {
		return nil, nil, err
	}
	var keys, prefixes []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name := sc.Text()
		if name == "" {
			continue
		}
		if strings.HasSuffix(name, "/") {
			prefixes = append(prefixes, prefix+name)
		} else {
			keys = append(keys, prefix+name)
		}
	}
	return keys, prefixes, nil
}

func (r *rcloneCLI) SyncUp(ctx context.Context, dir, b, prefix string) error {
	_, err := r.rclone(ctx, "sync", dir, remote(b, prefix))
	return err
}

func (r *rcloneCLI) SyncDown(ctx context.Context, b, prefix, dir string) error {
	_, err := r.rclone(ctx, "sync", remote(b, prefix), dir)
	return err
}

func (r *rcloneCLI) PresignGet(ctx context.Context, b, key string) (string, error) {
	out, err := r.rclone(ctx, "link", "--expire", "10m", remote(b, key))
	return strings.TrimSpace(string(out)), err
}

func (r *rcloneCLI) PresignPut(context.Context, string, string) (string, http.Header, error) {
	return "", nil, na("rclone link presigns GET only")
}

func (r *rcloneCLI) PresignPost(context.Context, string, postPolicy) (*postForm, error) {
	return nil, na("rclone has no POST presigner")
}

func (r *rcloneCLI) PostForm(context.Context, *postForm, postFile) (*postAnswer, error) {
	return nil, na("rclone has no POST presigner")
}

func (r *rcloneCLI) DeleteBatch(context.Context, string, string, []string) error {
	return na("rclone deletes S3 objects one DeleteObject at a time")
}

func (r *rcloneCLI) Delete(ctx context.Context, b, key string) error {
	_, err := r.rclone(ctx, "deletefile", remote(b, key))
	return err
}

func (r *rcloneCLI) RemoveBucket(ctx context.Context, b string) error {
	_, err := r.rclone(ctx, "rmdir", "osp:"+b)
	return err
}

func (r *rcloneCLI) Close() {}
