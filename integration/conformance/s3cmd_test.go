package conformance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// s3cmdCLI drives s3cmd with a config file of its own: path style
// (host_bucket without %(bucket)s), SigV4, retries off.
type s3cmdCLI struct {
	cli
	cfg string
}

func s3cmdClient(bin, version string) *clientSpec { return s3cmdClientSigned(bin, version, false) }

// s3cmdClientSigned is s3cmdClient signing with AWS Signature Version 2 when
// v2 (signature_v2 = True); s3cmd's signurl signs with SigV2 either way.
func s3cmdClientSigned(bin, version string, v2 bool) *clientSpec {
	id, name := "s3cmd", "s3cmd "+version
	if v2 {
		id, name = "s3cmd-sigv2", name+" (SigV2)"
	}
	return &clientSpec{id: id, name: name, open: func(_ *testing.T, tg target, work string) (ops, error) {
		cfg := filepath.Join(work, "s3cfg")
		conf := fmt.Sprintf(`[default]
access_key = %s
secret_key = %s
host_base = %s
host_bucket = %s
use_https = %s
check_ssl_certificate = False
check_ssl_hostname = False
signurl_use_https = %s
bucket_location = us-east-1
signature_v2 = %s
max_retries = 0
progress_meter = False
`, tg.key, tg.secret, tg.hostPort(), tg.hostPort(), pyBool(tg.https()), pyBool(tg.https()), pyBool(v2))
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			return nil, err
		}
		return &s3cmdCLI{cli: cli{bin: bin, dir: work, env: clientEnv("HOME=" + work)}, cfg: cfg}, nil
	}}
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func (s *s3cmdCLI) s3cmd(ctx context.Context, args ...string) ([]byte, error) {
	return s.run(ctx, append([]string{"-c", s.cfg}, args...)...)
}

func (s *s3cmdCLI) MakeBucket(ctx context.Context, b string) error {
	_, err := s.s3cmd(ctx, "mb", "s3://"+b)
	return err
}

var s3uriRE = regexp.MustCompile(`s3://(.*)$`)

func (s *s3cmdCLI) ListBuckets(ctx context.Context) ([]string, error) {
	out, err := s.s3cmd(ctx, "ls")
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := s3uriRE.FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, m[1])
		}
	}
	return names, nil
}

func (s *s3cmdCLI) Put(ctx context.Context, b, key, file string) error {
	_, err := s.s3cmd(ctx, "put", file, s3url(b, key))
	return err
}

// PutMultipart relies on s3cmd's default: multipart above 15 MiB.
func (s *s3cmdCLI) PutMultipart(ctx context.Context, b, key, file string) error {
	_, err := s.s3cmd(ctx, "put", file, s3url(b, key))
	return err
}

func (s *s3cmdCLI) Get(ctx context.Context, b, key, file string) error {
	_, err := s.s3cmd(ctx, "get", "--force", s3url(b, key), file)
	return err
}

func (s *s3cmdCLI) GetRange(context.Context, string, string, int64, int64, string) error {
	return na("s3cmd has no ranged download")
}

var s3cmdSizeRE = regexp.MustCompile(`(?m)^\s*File size:\s*(\d+)`)

func (s *s3cmdCLI) Head(ctx context.Context, b, key string) (int64, error) {
	out, err := s.s3cmd(ctx, "info", s3url(b, key))
	if err != nil {
		return 0, err
	}
	m := s3cmdSizeRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no size in `s3cmd info` output %q", truncate(string(out), 300))
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

func (s *s3cmdCLI) Copy(ctx context.Context, b, src, dst string) error {
	_, err := s.s3cmd(ctx, "cp", s3url(b, src), s3url(b, dst))
	return err
}

// List uses `s3cmd ls`, which lists with delimiter "/", or `s3cmd ls
// --recursive` without delimiter.
func (s *s3cmdCLI) List(ctx context.Context, b, prefix, delimiter string) ([]string, []string, error) {
	args := []string{"ls"}
	if delimiter == "" {
		args = append(args, "--recursive")
	}
	out, err := s.s3cmd(ctx, append(args, s3url(b, prefix))...)
	if err != nil {
		return nil, nil, err
	}
	var keys, prefixes []string
	base := "s3://" + b + "/"
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, base)
		if i < 0 {
			continue
		}
		name := line[i+len(base):]
		if strings.Contains(line[:i], "DIR") {
			prefixes = append(prefixes, name)
		} else {
			keys = append(keys, name)
		}
	}
	return keys, prefixes, nil
}

func (s *s3cmdCLI) SyncUp(ctx context.Context, dir, b, prefix string) error {
	_, err := s.s3cmd(ctx, "sync", dir+"/", s3url(b, prefix))
	return err
}

func (s *s3cmdCLI) SyncDown(ctx context.Context, b, prefix, dir string) error {
	_, err := s.s3cmd(ctx, "sync", s3url(b, prefix), dir+"/")
	return err
}

// PresignGet uses `s3cmd signurl`, which signs with SigV2 only.
func (s *s3cmdCLI) PresignGet(ctx context.Context, b, key string) (string, error) {
	out, err := s.s3cmd(ctx, "signurl", s3url(b, key), "+600")
	return strings.TrimSpace(string(out)), err
}

func (s *s3cmdCLI) PresignPut(context.Context, string, string) (string, http.Header, error) {
	return "", nil, na("s3cmd presigns GET only")
}

func (s *s3cmdCLI) PresignPost(context.Context, string, postPolicy) (*postForm, error) {
	return nil, na("s3cmd has no POST presigner")
}

func (s *s3cmdCLI) PostForm(context.Context, *postForm, postFile) (*postAnswer, error) {
	return nil, na("s3cmd has no POST presigner")
}

// DeleteBatch uses `s3cmd del --recursive`, which sends DeleteObjects for
// what it lists under the prefix.
func (s *s3cmdCLI) DeleteBatch(ctx context.Context, b, prefix string, _ []string) error {
	_, err := s.s3cmd(ctx, "del", "--recursive", "--force", s3url(b, prefix))
	return err
}

func (s *s3cmdCLI) Delete(ctx context.Context, b, key string) error {
	_, err := s.s3cmd(ctx, "del", s3url(b, key))
	return err
}

func (s *s3cmdCLI) RemoveBucket(ctx context.Context, b string) error {
	_, err := s.s3cmd(ctx, "rb", "s3://"+b)
	return err
}

func (s *s3cmdCLI) Close() {}
