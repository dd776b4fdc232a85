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

// awsCLI drives aws-cli (v1 or v2) as a user does: `aws s3` commands where
// they exist, `aws s3api` for the rest. Its config file asks for path-style
// addressing and SigV4 presigned URLs, as the docs of every S3-compatible
// store tell users of aws-cli v1 to do (v1 presigns with SigV2 otherwise).
type awsCLI struct {
	cli
	global []string
}

func awsCLIClient(id, bin, version string) *clientSpec {
	return &clientSpec{id: id, name: "aws-cli " + version, open: func(_ *testing.T, tg target, work string) (ops, error) {
		cfg := filepath.Join(work, "aws-config")
		const conf = "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n    signature_version = s3v4\n"
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		a := &awsCLI{cli: cli{bin: bin, dir: work, env: clientEnv(
			"AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(work, "no-credentials"),
			"AWS_ACCESS_KEY_ID="+tg.key, "AWS_SECRET_ACCESS_KEY="+tg.secret,
			"AWS_DEFAULT_REGION="+region, "AWS_RETRY_MODE=standard", "AWS_MAX_ATTEMPTS=1",
		)}}
		a.global = []string{"--endpoint-url", tg.url, "--output", "json"}
		if tg.https() {
			a.global = append(a.global, "--no-verify-ssl")
		}
		return a, nil
	}}
}

func (a *awsCLI) aws(ctx context.Context, args ...string) ([]byte, error) {
	return a.run(ctx, append(args, a.global...)...)
}

func s3url(b, key string) string { return "s3://" + b + "/" + key }

func (a *awsCLI) MakeBucket(ctx context.Context, b string) error {
	_, err := a.aws(ctx, "s3", "mb", "s3://"+b)
	return err
}

func (a *awsCLI) ListBuckets(ctx context.Context) ([]string, error) {
	out, err := a.aws(ctx, "s3", "ls")
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 {
			names = append(names, f[2])
		}
	}
	return names, nil
}

func (a *awsCLI) Put(ctx context.Context, b, key, file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if fi.Size() < 8<<20 {
		_, err = a.aws(ctx, "s3", "cp", file, s3url(b, key))
		return err
	}
	// `aws s3 cp` goes multipart from 8 MiB on: one PutObject is s3api's.
	_, err = a.aws(ctx, "s3api", "put-object", "--bucket", b, "--key", key, "--body", file)
	return err
}

func (a *awsCLI) PutMultipart(ctx context.Context, b, key, file string) error {
	_, err := a.aws(ctx, "s3", "cp", file, s3url(b, key))
	return err
}

func (a *awsCLI) Get(ctx context.Context, b, key, file string) error {
	_, err := a.aws(ctx, "s3", "cp", s3url(b, key), file)
	return err
}

func (a *awsCLI) GetRange(ctx context.Context, b, key string, first, last int64, file string) error {
	_, err := a.aws(ctx, "s3api", "get-object", "--bucket", b, "--key", key, "--range", fmt.Sprintf("bytes=%d-%d", first, last), file)
	return err
}

func (a *awsCLI) Head(ctx context.Context, b, key string) (int64, error) {
	out, err := a.aws(ctx, "s3api", "head-object", "--bucket", b, "--key", key)
	if err != nil {
		return 0, err
	}
	var h struct{ ContentLength int64 }
	if err := json.Unmarshal(out, &h); err != nil {
		return 0, fmt.Errorf("head-object output %q: %v", truncate(string(out), 200), err)
	}
	return h.ContentLength, nil
}

func (a *awsCLI) Copy(ctx context.Context, b, src, dst string) error {
	_, err := a.aws(ctx, "s3", "cp", s3url(b, src), s3url(b, dst))
	return err
}

func (a *awsCLI) List(ctx context.Context, b, prefix, delimiter string) ([]string, []string, error) {
	args := []string{"s3api", "list-objects-v2", "--bucket", b}
	if prefix != "" {
		args = append(args, "--prefix", prefix)
	}
	if delimiter != "" {
		args = append(args, "--delimiter", delimiter)
	}
	out, err := a.aws(ctx, args...)
	if err != nil {
		return nil, nil, err
	}
	var l struct {
		Contents       []struct{ Key string }
		CommonPrefixes []struct{ Prefix string }
	}
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &l); err != nil {
			return nil, nil, fmt.Errorf("list-objects-v2 output %q: %v", truncate(string(out), 200), err)
		}
	}
	var keys, prefixes []string
	for _, c := range l.Contents {
		keys = append(keys, c.Key)
	}
	for _, p := range l.CommonPrefixes {
		prefixes = append(prefixes, p.Prefix)
	}
	return keys, prefixes, nil
}

func (a *awsCLI) SyncUp(ctx context.Context, dir, b, prefix string) error {
	_, err := a.aws(ctx, "s3", "sync", dir, s3url(b, prefix))
	return err
}

func (a *awsCLI) SyncDown(ctx context.Context, b, prefix, dir string) error {
	_, err := a.aws(ctx, "s3", "sync", s3url(b, prefix), dir)
	return err
}

func (a *awsCLI) PresignGet(ctx context.Context, b, key string) (string, error) {
	out, err := a.aws(ctx, "s3", "presign", s3url(b, key), "--expires-in", "600")
	return strings.TrimSpace(string(out)), err
}

func (a *awsCLI) PresignPut(context.Context, string, string) (string, http.Header, error) {
	return "", nil, na("aws-cli presigns GET only")
}

func (a *awsCLI) PresignPost(context.Context, string, postPolicy) (*postForm, error) {
	return nil, na("aws-cli has no POST presigner")
}

func (a *awsCLI) PostForm(context.Context, *postForm, postFile) (*postAnswer, error) {
	return nil, na("aws-cli has no POST presigner")
}

func (a *awsCLI) DeleteBatch(ctx context.Context, b, _ string, keys []string) error {
	type obj struct{ Key string }
	req := struct {
		Objects []obj
		Quiet   bool
	}{}
	for _, k := range keys {
		req.Objects = append(req.Objects, obj{k})
	}
	js, _ := json.Marshal(req)
	f := filepath.Join(a.dir, "delete.json")
	if err := os.WriteFile(f, js, 0o600); err != nil {
		return err
	}
	out, err := a.aws(ctx, "s3api", "delete-objects", "--bucket", b, "--delete", "file://"+f)
	if err != nil {
		return err
	}
	var res struct{ Errors []json.RawMessage }
	_ = json.Unmarshal(out, &res)
	if len(res.Errors) > 0 {
		return fmt.Errorf("delete-objects errors: %s", truncate(string(out), 400))
	}
	return nil
}

func (a *awsCLI) Delete(ctx context.Context, b, key string) error {
	_, err := a.aws(ctx, "s3", "rm", s3url(b, key))
	return err
}

func (a *awsCLI) RemoveBucket(ctx context.Context, b string) error {
	_, err := a.aws(ctx, "s3", "rb", "s3://"+b)
	return err
}

func (a *awsCLI) Close() {}
