package s3servers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/osproxy/proxy/internal/vgwtest"
)

// s3rver is pinned by testdata/s3rver/package.json and package-lock.json and
// installed with `npm ci` into the repository's .cache/s3rver/<hash>, <hash>
// naming those two files: a new lock file gets a new directory, and test
// binaries installing at the same time each install into a directory of their
// own and rename it into place, the first one winning.

// s3rverStartTimeout bounds the wait for a new s3rver to answer.
const s3rverStartTimeout = 30 * time.Second

// S3rverInstall is an installed s3rver.
type S3rverInstall struct {
	Node    string // node's path
	Dir     string // holds node_modules/s3rver
	Version string // s3rver's version
}

// InstallS3rver installs s3rver with npm ci unless it is installed already.
// It fails without node or npm, or when npm ci does.
func InstallS3rver() (*S3rverInstall, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, err
	}
	src := filepath.Join(packageDir(), "testdata", "s3rver")
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return nil, err
		}
		h.Write(b)
	}
	base := filepath.Join(repoRoot(), ".cache", "s3rver")
	dst := filepath.Join(base, hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dst, "node_modules", "s3rver", "package.json")); err != nil {
		if err := npmCI(src, base, dst); err != nil {
			return nil, err
		}
	}
	var pkg struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dst, "node_modules", "s3rver", "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil {
		return nil, fmt.Errorf("s3rver is not installed in %s: %v", dst, err)
	}
	return &S3rverInstall{Node: node, Dir: dst, Version: pkg.Version}, nil
}

// npmCI installs the packages of src into a new directory under base and
// renames it to dst.
func npmCI(src, base, dst string) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(base, "install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // nothing left once renamed
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			return err
		}
	}
	if _, err := run(5*time.Minute, tmp, os.Environ(), npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if _, serr := os.Stat(filepath.Join(dst, "node_modules", "s3rver", "package.json")); serr == nil {
			return nil // another test binary installed it first
		}
		return err
	}
	return nil
}

// StartS3rver starts s3rver from inst on a free port with a data directory of
// its own and waits until it answers. It knows virtual-hosted requests to
// <bucket>.s3.osp.test only (--service-endpoint osp.test, --no-vhost-buckets:
// another host name is not taken for a bucket's).
//
// s3rver checks no SigV4 signature: any request whose access key is S3RVER
// passes, and so does one without credentials. It checks SigV2 signatures
// with the secret S3RVER. It verifies no payload hash and stores aws-chunked
// bodies (signed or not) with their framing.
func StartS3rver(inst *S3rverInstall) (*Server, error) {
	dir, err := os.MkdirTemp("", "osp-s3rver-")
	if err != nil {
		return nil, err
	}
	s := &Server{Kind: S3rver, Version: "s3rver " + inst.Version, AccessKey: S3rverAccessKey, SecretKey: S3rverSecretKey,
		Region: Region, Domain: Domain, dir: dir}
	if err := s.startS3rver(inst); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) startS3rver(inst *S3rverInstall) error {
	port, err := vgwtest.FreePort()
	if err != nil {
		return err
	}
	s.Port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{filepath.Join(inst.Dir, "node_modules", "s3rver", "bin", "s3rver.js"),
		"--directory", filepath.Join(s.dir, "data"), "--address", "127.0.0.1", "--port", strconv.Itoa(port),
		// s3rver serves <bucket>.s3.<service endpoint>.
		"--service-endpoint", strings.TrimPrefix(Domain, "s3."), "--no-vhost-buckets"}
	if _, err := s.spawn("s3rver", inst.Node, args, Environ("NODE_")); err != nil {
		return err
	}
	return s.waitReady(s3rverStartTimeout)
}
