package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osproxy/proxy/internal/testkit"
)

// aws-sdk-js v3 runs through testdata/js/js_ops.mjs, a lineDriver under node.
// Its packages are pinned by testdata/js/package.json and package-lock.json,
// installed with `npm ci` into the repository's .cache/js (with a copy of the
// driver, which node resolves them from), once per test binary and again only
// when the lock file changes.

// jsDir is where the driver and its packages are installed.
func jsDir() string { return filepath.Join(testkit.RepoRoot(), ".cache", "js") }

var (
	jsOnce    sync.Once
	jsNode    string // node's path
	jsVersion string // the client-s3 version the driver reports
	jsErr     error
)

// jsClient is the aws-sdk-js v3 client of the matrix, or nil with the reason
// it cannot run (no node or npm, node older than 20, npm ci failing).
func jsClient() (*clientSpec, error) {
	jsOnce.Do(func() { jsNode, jsVersion, jsErr = installJS() })
	if jsErr != nil {
		return nil, jsErr
	}
	return &clientSpec{id: "awsjs", name: "aws-sdk-js " + jsVersion, open: func(_ *testing.T, tg target, work string) (ops, error) {
		return startJS(tg, work)
	}}, nil
}

func installJS() (node, version string, err error) {
	node, err = exec.LookPath("node")
	if err != nil {
		return "", "", err
	}
	out, err := probe(node, "--version")
	if err != nil {
		return "", "", err
	}
	m := regexp.MustCompile(`^v(\d+)\.`).FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return "", "", fmt.Errorf("node --version: %q", strings.TrimSpace(out))
	}
	if major, _ := strconv.Atoi(m[1]); major < 20 {
		return "", "", fmt.Errorf("node %s: aws-sdk-js v3 needs node 20 or later", strings.TrimSpace(out))
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", "", err
	}
	src := filepath.Join(scriptDir(), "testdata", "js")
	dst := jsDir()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", "", err
	}
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(lock)
	stamp := filepath.Join(dst, "node_modules", ".osp-lock-sha256")
	if old, err := os.ReadFile(stamp); err != nil || string(old) != hex.EncodeToString(sum[:]) {
		for _, f := range []string{"package.json", "package-lock.json"} {
			if err := copyFile(filepath.Join(src, f), filepath.Join(dst, f)); err != nil {
				return "", "", err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dst
		cmd.WaitDelay = time.Second
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("npm ci in %s: %v: %s", dst, err, truncate(string(out), 600))
		}
		if err := os.WriteFile(stamp, []byte(hex.EncodeToString(sum[:])), 0o644); err != nil {
			return "", "", err
		}
	}
	if err := copyFile(filepath.Join(src, "js_ops.mjs"), filepath.Join(dst, "js_ops.mjs")); err != nil {
		return "", "", err
	}
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dst, "node_modules", "@aws-sdk", "client-s3", "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil {
		return "", "", fmt.Errorf("@aws-sdk/client-s3 not installed in %s: %v", dst, err)
	}
	return node, pkg.Version, nil
}

// copyFile copies src to dst unless dst already holds the same bytes.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func startJS(tg target, work string) (*lineDriver, error) {
	cmd := exec.Command(jsNode, filepath.Join(jsDir(), "js_ops.mjs"))
	cmd.Dir = work
	cmd.Env = append(filteredEnvOf(clientEnv(), "NODE_"), "OSP_ENDPOINT="+tg.url, "AWS_ACCESS_KEY_ID="+tg.key,
		"AWS_SECRET_ACCESS_KEY="+tg.secret, "AWS_REGION="+region, "AWS_CONFIG_FILE="+filepath.Join(work, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(work, "no-credentials"),
		// fetch, which posts the forms, does not verify the test's certificate.
		"NODE_TLS_REJECT_UNAUTHORIZED=0", "NODE_NO_WARNINGS=1")
	return startLineDriver("aws-sdk-js", cmd)
}

// filteredEnvOf is env without the variables starting with one of prefixes.
func filteredEnvOf(env []string, prefixes ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
