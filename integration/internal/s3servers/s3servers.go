// Package s3servers starts and stops real S3 servers other than versitygw
// (internal/vgwtest) for the project's tests, each on 127.0.0.1 with fixed
// keys and a temporary data directory:
//
//   - SeaweedFS (`weed server -s3`, Go): verifies SigV4 and decodes aws-chunked
//     bodies. Its binary is $WEED, else .cache/bin/weed, else weed on PATH;
//     scripts/test builds it (the module's replace directives keep `go
//     install` from doing so).
//   - s3rver (npm, under node): checks no SigV4 signature and stores
//     aws-chunked bodies with their framing inside. It is installed with npm
//     ci from testdata/s3rver into the repository's .cache/s3rver on first use.
//   - Ceph's radosgw (Debian's 16.2, which has no store without RADOS): one
//     ceph-mon and one memstore ceph-osd without cephx serve it; all three
//     come from Debian's radosgw, ceph-mon and ceph-osd packages.
//
// Every process dies with the test binary (vgwtest.KillWithParent) and is
// stopped by Server.Stop. A missing server skips the tests that need it, or
// fails them when OSP_REQUIRE_INTEGRATION=1 (vgwtest.RequireIntegration).
// PassThrough takes TLS off in front of any of them, versitygw included.
package s3servers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/osproxy/proxy/internal/testkit"
	"github.com/osproxy/proxy/internal/vgwtest"
)

// Kind names one of the servers.
type Kind string

// The servers this package starts.
const (
	SeaweedFS Kind = "seaweedfs"
	S3rver    Kind = "s3rver"
	RadosGW   Kind = "radosgw"
)

// Kinds lists every server, in the order tests usually run them.
var Kinds = []Kind{SeaweedFS, S3rver, RadosGW}

// The keys of SeaweedFS and radosgw are versitygw's; s3rver knows one key
// pair of its own (it checks no SigV4 signature, only that the access key is
// S3RVER). Domain is the virtual-host domain of all three, as of versitygw:
// <bucket>.s3.osp.test addresses a bucket when the Host says so.
const (
	AccessKey       = vgwtest.AccessKey
	SecretKey       = vgwtest.SecretKey
	S3rverAccessKey = "S3RVER"
	S3rverSecretKey = "S3RVER"
	Region          = "us-east-1"
	Domain          = vgwtest.Domain
)

// Server is a running S3 server.
type Server struct {
	Kind    Kind
	Version string // what the server says it is ("SeaweedFS 4.53 (30GB)", "s3rver 3.7.1", "radosgw 16.2.15")
	Addr    string // 127.0.0.1:<port> of its S3 endpoint
	Port    int

	AccessKey string
	SecretKey string
	Region    string
	// Domain is the virtual-host domain the server knows: requests with Host
	// <bucket>.<Domain> address the bucket. Clients reach it by dialing Addr
	// whatever the host (Transport).
	Domain string
	// PathStyle reports that clients must use path-style requests. None of
	// the three needs it; clients given a URL with an IP use path style anyway.
	PathStyle bool

	dir      string   // removed by Stop
	logs     []string // files LogTail reads, most telling first
	procs    []*proc  // long-running processes, in start order
	kill     bool     // Stop kills at once: nothing worth a clean shutdown (SeaweedFS, radosgw)
	cleanup  []func() // run by Stop after the processes have ended
	stopOnce sync.Once
}

// proc is one long-running process of a server.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

// exited reports whether p has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// URL is the base URL of path-style clients talking to the server directly.
func (s *Server) URL() string { return "http://" + s.Addr }

// Transport returns a transport that connects to the server whatever host is
// asked, so that virtual-hosted names under Domain reach it. The caller closes
// its idle connections.
func (s *Server) Transport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, s.Addr)
		},
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		DisableCompression:    true,
	}
}

// Stop ends the server's processes (s3rver: SIGTERM, then SIGKILL after 5 s;
// SeaweedFS and radosgw's cluster, whose data goes anyway and which take 5 to
// 15 s to shut down: SIGKILL) and removes its directory. It is safe to call
// more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		sig := syscall.SIGTERM
		if s.kill {
			sig = syscall.SIGKILL
		}
		for i := len(s.procs) - 1; i >= 0; i-- {
			if p := s.procs[i]; p.cmd.Process != nil && !p.exited() {
				_ = p.cmd.Process.Signal(sig)
			}
		}
		deadline := time.After(5 * time.Second)
		for _, p := range s.procs {
			select {
			case <-p.done:
			case <-deadline:
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		for _, f := range s.cleanup {
			f()
		}
		if s.dir != "" {
			_ = os.RemoveAll(s.dir)
		}
	})
}

// LogTail returns the end of the server's logs, for error messages.
func (s *Server) LogTail() string {
	var b strings.Builder
	for _, f := range s.logs {
		data, err := os.ReadFile(f)
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "[%s] %s\n", filepath.Base(f), strings.TrimSpace(string(data)))
	}
	if b.Len() == 0 {
		return "(no output)"
	}
	return strings.TrimSpace(b.String())
}

// spawn starts a long-running process of s with its output in the file
// <name>.out in s's directory.
func (s *Server) spawn(name, bin string, args, env []string) (*proc, error) {
	out := filepath.Join(s.dir, name+".out")
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s.logs = append(s.logs, out)
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f // files: no copying goroutines
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	vgwtest.KillWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return p, nil
}

// run runs a short command to its end and returns its output.
func run(timeout time.Duration, dir string, env []string, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	vgwtest.KillWithParent(cmd.SysProcAttr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, truncate(string(out), 1500))
	}
	return string(out), nil
}

// waitReady waits until a signed ListBuckets answers 200 and a first bucket
// and object can be written (and removes them), or one of s's processes ends,
// or timeout passes. The first write of SeaweedFS waits several seconds for
// its master's first volume and its filer's lock service, that of radosgw for
// its data pools: tests should not.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	bucket := fmt.Sprintf("osp-warm-up-%d", time.Now().UnixNano())
	steps := []struct {
		method, path string
		body         []byte
	}{
		{http.MethodGet, "/", nil},
		{http.MethodPut, "/" + bucket, nil},
		{http.MethodPut, "/" + bucket + "/warm-up", []byte("warm up")},
		{http.MethodDelete, "/" + bucket + "/warm-up", nil},
		{http.MethodDelete, "/" + bucket, nil},
	}
	for _, st := range steps {
		for {
			if err := s.exitedErr(); err != nil {
				return err
			}
			code, body, err := s.do(st.method, st.path, st.body)
			if err == nil && code/100 == 2 {
				break
			}
			last := fmt.Sprintf("%s %s: %d %s", st.method, st.path, code, truncate(string(body), 300))
			if err != nil {
				last = fmt.Sprintf("%s %s: %v", st.method, st.path, err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s on %s was not ready within %v (%s): %s", s.Kind, s.Addr, timeout, last, s.LogTail())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// exitedErr reports a process of s that has ended.
func (s *Server) exitedErr() error {
	for _, p := range s.procs {
		if p.exited() {
			return fmt.Errorf("%s exited during startup (%s): %s", p.name, p.cmd.ProcessState, s.LogTail())
		}
	}
	return nil
}

// do sends one path-style request signed with s's keys (a hex SHA-256 of the
// body) and returns the status code and the response body.
func (s *Server) do(method, path string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL()+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	creds := aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hash, "s3", s.Region, time.Now()); err != nil {
		return 0, nil, err
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// Start starts a server of kind k, finding (or, for s3rver, installing) what it
// needs. missing reports that the server is not set up on this machine, as
// opposed to one that is and fails.
func Start(k Kind) (srv *Server, missing bool, err error) {
	switch k {
	case SeaweedFS:
		bin, missing, err := SeaweedFSBinary()
		if err != nil {
			return nil, missing, err
		}
		srv, err := StartSeaweedFS(bin)
		return srv, false, err
	case S3rver:
		inst, err := InstallS3rver()
		if err != nil {
			return nil, true, err
		}
		srv, err := StartS3rver(inst)
		return srv, false, err
	case RadosGW:
		bins, err := RadosGWBinaries()
		if err != nil {
			return nil, true, err
		}
		srv, err := StartRadosGW(bins)
		return srv, false, err
	}
	return nil, false, fmt.Errorf("unknown S3 server kind %q", k)
}

// setup tells how to set up each server, for skip and failure messages.
var setup = map[Kind]string{
	SeaweedFS: "run scripts/test once (it builds .cache/bin/weed) or set WEED to a weed binary",
	S3rver:    "install node and npm (the tests run npm ci from integration/internal/s3servers/testdata/s3rver)",
	RadosGW:   "apt-get install radosgw ceph-mon ceph-osd",
}

// Shared is a server of one kind shared by the tests of one test binary:
// started on first use by Get, stopped by Stop (from TestMain).
type Shared struct {
	Kind Kind

	once    sync.Once
	srv     *Server
	err     error
	missing bool
}

// Get returns the shared server, starting it on first use. A server that is
// not set up skips the test, or fails it when vgwtest.RequireIntegration.
func (s *Shared) Get(t testing.TB) *Server {
	t.Helper()
	s.once.Do(func() { s.srv, s.missing, s.err = Start(s.Kind) })
	switch {
	case s.err == nil:
		return s.srv
	case s.missing && !vgwtest.RequireIntegration():
		t.Skipf("skipped: %s is not available: %v (%s; OSP_REQUIRE_INTEGRATION=1 makes this a failure)", s.Kind, s.err, setup[s.Kind])
	case s.missing:
		t.Fatalf("OSP_REQUIRE_INTEGRATION=1 but %s is not available: %v; %s", s.Kind, s.err, setup[s.Kind])
	default:
		t.Fatalf("%s did not start: %v", s.Kind, s.err)
	}
	return nil
}

// Stop stops the shared server if it was started.
func (s *Shared) Stop() {
	if s.srv != nil {
		s.srv.Stop()
	}
}

// repoRoot is the repository's root directory, where .cache is.
func repoRoot() string { return testkit.RepoRoot() }

// packageDir is this package's directory.
func packageDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Environ is the environment without the variables starting with one of
// prefixes, so that the caller's settings of a server cannot change the
// server under test.
func Environ(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// executable checks that path is an executable file.
func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// lookPath finds each of names on PATH.
func lookPath(names ...string) (map[string]string, error) {
	paths := map[string]string{}
	var missing []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			missing = append(missing, n)
			continue
		}
		paths[n] = p
	}
	if len(missing) > 0 {
		return nil, errors.New("not on PATH: " + strings.Join(missing, ", "))
	}
	return paths, nil
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
