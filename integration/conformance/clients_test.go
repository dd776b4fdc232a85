package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osproxy/proxy/integration/internal/s3servers"
	"github.com/osproxy/proxy/internal/vgwtest"
)

// clientSpec is one client of the matrix.
type clientSpec struct {
	id   string // in bucket names: [a-z0-9]
	name string // in the matrix: name and version
	open func(t *testing.T, tg target, work string) (ops, error)
}

// discoverClients finds the clients of the matrix. The Debian ones (aws-cli
// v2, s3cmd, rclone, boto3 of python3-boto3) and aws-sdk-js v3 (node and npm,
// the packages installed with npm ci) are required when
// OSP_REQUIRE_INTEGRATION=1; aws-cli v1 and a newer boto3 on PATH are
// optional; the Go clients are always there.
func discoverClients(t *testing.T) []*clientSpec {
	var cs []*clientSpec
	missing := func(what, why string) {
		if requireIntegration() {
			t.Errorf("OSP_REQUIRE_INTEGRATION=1 but %s is not available: %s (apt-get install -y awscli s3cmd rclone python3-boto3)", what, why)
		} else {
			t.Logf("skipping %s: %s", what, why)
		}
	}

	awsByMajor := map[string][2]string{} // major → path, version
	for _, p := range candidates("aws", "/usr/bin/aws") {
		out, err := probe(p, "--version")
		m := regexp.MustCompile(`aws-cli/((\d+)\.[0-9.]+)`).FindStringSubmatch(out)
		if err != nil || m == nil {
			continue
		}
		if _, seen := awsByMajor[m[2]]; !seen {
			awsByMajor[m[2]] = [2]string{p, m[1]}
		}
	}
	if a, ok := awsByMajor["2"]; ok {
		cs = append(cs, awsCLIClient("awscli2", a[0], a[1]))
	} else {
		missing("aws-cli v2 (Debian awscli)", "no aws on PATH or at /usr/bin/aws reports aws-cli/2")
	}
	if a, ok := awsByMajor["1"]; ok {
		cs = append(cs, awsCLIClient("awscli1", a[0], a[1]))
	} else {
		t.Logf("skipping aws-cli v1 (optional): none on PATH")
	}

	if p, err := exec.LookPath("s3cmd"); err != nil {
		missing("s3cmd", err.Error())
	} else if out, err := probe(p, "--version"); err != nil {
		missing("s3cmd", err.Error())
	} else {
		cs = append(cs, s3cmdClient(p, strings.TrimPrefix(strings.TrimSpace(out), "s3cmd version ")))
	}

	if p, err := exec.LookPath("rclone"); err != nil {
		missing("rclone", err.Error())
	} else if out, err := probe(p, "version"); err != nil {
		missing("rclone", err.Error())
	} else {
		v, _, _ := strings.Cut(out, "\n")
		cs = append(cs, rcloneClient(p, strings.TrimPrefix(strings.TrimSpace(v), "rclone ")))
	}

	debBoto := ""
	if out, err := probe("/usr/bin/python3", "-c", "import boto3; print(boto3.__version__)"); err != nil {
		missing("boto3 of python3-boto3 (/usr/bin/python3)", err.Error())
	} else {
		debBoto = strings.TrimSpace(out)
		cs = append(cs, boto3Client("boto3deb", "/usr/bin/python3", debBoto))
	}
	if p, err := exec.LookPath("python3"); err != nil {
		t.Logf("skipping a newer boto3 (optional): no python3 on PATH")
	} else if out, err := probe(p, "-c", "import boto3; print(boto3.__version__)"); err != nil {
		t.Logf("skipping a newer boto3 (optional): %s cannot import boto3", p)
	} else if v := strings.TrimSpace(out); v == debBoto {
		t.Logf("skipping a newer boto3 (optional): python3 on PATH has the Debian boto3 %s", v)
	} else {
		cs = append(cs, boto3Client("boto3path", p, v))
	}

	if js, err := jsClient(); err != nil {
		if requireIntegration() {
			t.Errorf("OSP_REQUIRE_INTEGRATION=1 but aws-sdk-js v3 cannot run: %v (node 20 or later and npm: apt-get install -y nodejs npm; the packages come from the npm registry)", err)
		} else {
			t.Logf("skipping aws-sdk-js v3: %v", err)
		}
	} else {
		cs = append(cs, js)
	}

	cs = append(cs, goSDKClient(), minioClient())
	return cs
}

// candidates lists the executables called name on PATH, then extra ones, each
// once.
func candidates(name string, extra ...string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir != "" {
			add(filepath.Join(dir, name))
		}
	}
	for _, p := range extra {
		add(p)
	}
	return out
}

// probe runs a command for its version, bounded.
func probe(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, truncate(string(out), 300))
	}
	return string(out), nil
}

// cli runs one client command line.
type cli struct {
	bin string
	env []string
	dir string
}

// clientEnv is the environment of client subprocesses: the caller's without
// any AWS_*, RCLONE_*, BOTO_* or S3CMD_* settings (so nothing of the machine's
// configuration, AWS_CA_BUNDLE included, changes what the clients do), with
// retries off and Python's TLS warnings silenced.
func clientEnv(extra ...string) []string {
	env := s3servers.Environ("AWS_", "RCLONE_", "BOTO_", "S3CMD_", "PYTHONWARNINGS=", "HTTP_PROXY=", "HTTPS_PROXY=", "http_proxy=", "https_proxy=", "NO_PROXY=", "no_proxy=")
	env = append(env, "PYTHONWARNINGS=ignore", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "NO_PROXY=127.0.0.1,localhost")
	return append(env, extra...)
}

// run runs the command until it exits or ctx ends and returns its stdout.
func (c *cli) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env, cmd.Dir = c.env, c.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	vgwtest.KillWithParent(cmd.SysProcAttr)
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("`%s %s`: %v: %s", filepath.Base(c.bin), strings.Join(args, " "), err,
			truncate(stderr.String()+" "+stdout.String(), 600))
	}
	return stdout.Bytes(), nil
}
