package conformance

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// versitygw, started once per test binary on a free loopback port with a
// posix backend in a temporary directory: one instance over http (the
// proxy's upstream and the http baseline) and one over https (the https
// baseline), each started on first use.
const (
	// vgwAccessKey and vgwSecretKey are versitygw's root keys: the proxy's
	// upstream credentials and the keys of the baseline clients.
	vgwAccessKey = "osp-root"
	vgwSecretKey = "osp-root-secret-key"
	// vgwDomain is versitygw's virtual-host domain: the proxy sends
	// <bucket>.s3.osp.test requests, which its transport dials to versitygw.
	vgwDomain       = "s3.osp.test"
	vgwStartTimeout = 15 * time.Second
)

// requireIntegration is OSP_REQUIRE_INTEGRATION=1 (CI): what is missing fails
// the run instead of skipping.
func requireIntegration() bool { return os.Getenv("OSP_REQUIRE_INTEGRATION") == "1" }

// versityGW is a running versitygw process.
type versityGW struct {
	addr   string // 127.0.0.1:<port>
	port   int
	tls    bool
	dir    string // removed by stop: data root and log
	log    string
	cmd    *exec.Cmd
	done   chan struct{} // closed once the process has exited
	stopMu sync.Mutex
}

type vgwSlot struct {
	once    sync.Once
	v       *versityGW
	err     error
	missing bool
}

var vgwHTTP, vgwHTTPS vgwSlot

// versity returns the shared versitygw over http (tls false) or https,
// starting it on first use. Without a versitygw binary the test is skipped,
// or fails when OSP_REQUIRE_INTEGRATION=1.
func versity(t testing.TB, useTLS bool) *versityGW {
	t.Helper()
	s := &vgwHTTP
	if useTLS {
		s = &vgwHTTPS
	}
	s.once.Do(func() { s.v, s.err, s.missing = startVersity(useTLS) })
	switch {
	case s.err == nil:
		return s.v
	case s.missing && !requireIntegration():
		t.Skipf("skipped: %v (set VERSITYGW or put versitygw on PATH; OSP_REQUIRE_INTEGRATION=1 makes this a failure)", s.err)
	case s.missing:
		t.Fatalf("OSP_REQUIRE_INTEGRATION=1 but versitygw is not available: %v; install it with `GOBIN=<dir> go install github.com/versity/versitygw/cmd/versitygw@v1.8.0` and set VERSITYGW=<dir>/versitygw", s.err)
	default:
		t.Fatalf("versitygw did not start: %v", s.err)
	}
	return nil
}

func stopVersity() {
	for _, s := range []*vgwSlot{&vgwHTTP, &vgwHTTPS} {
		if s.v != nil {
			s.v.stop()
		}
	}
}

// versityBinary finds versitygw: $VERSITYGW, else versitygw on PATH.
func versityBinary() (path string, missing bool, err error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		fi, err := os.Stat(p)
		if err != nil {
			return "", false, fmt.Errorf("VERSITYGW=%s: %w", p, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", false, fmt.Errorf("VERSITYGW=%s is not an executable file", p)
		}
		return p, false, nil
	}
	p, err := exec.LookPath("versitygw")
	if err != nil {
		return "", true, errors.New("VERSITYGW is not set and versitygw is not on PATH")
	}
	return p, false, nil
}

func startVersity(useTLS bool) (*versityGW, error, bool) {
	bin, missing, err := versityBinary()
	if err != nil {
		return nil, err, missing
	}
	dir, err := os.MkdirTemp("", "osp-conformance-vgw-")
	if err != nil {
		return nil, err, false
	}
	v := &versityGW{tls: useTLS, dir: dir, log: filepath.Join(dir, "versitygw.log"), done: make(chan struct{})}
	if err := v.start(bin); err != nil {
		v.stop()
		return nil, err, false
	}
	return v, nil, false
}

func (v *versityGW) start(bin string) error {
	data := filepath.Join(v.dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	v.port = port
	v.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logf, err := os.Create(v.log)
	if err != nil {
		return err
	}
	defer logf.Close()

	args := []string{"--port", v.addr, "--virtual-domain", vgwDomain, "--quiet"}
	if v.tls {
		c := testCert()
		if c.err != nil {
			return c.err
		}
		args = append(args, "--cert", c.certFile, "--key", c.keyFile)
	}
	args = append(args, "posix", data)
	v.cmd = exec.Command(bin, args...)
	v.cmd.Env = append(filteredEnv("VGW_", "ROOT_"), "ROOT_ACCESS_KEY="+vgwAccessKey, "ROOT_SECRET_KEY="+vgwSecretKey)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf // files: no copying goroutines
	v.cmd.SysProcAttr = &syscall.SysProcAttr{}
	killWithParent(v.cmd.SysProcAttr)
	if err := v.cmd.Start(); err != nil {
		close(v.done)
		return fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = v.cmd.Wait()
		close(v.done)
	}()

	deadline := time.Now().Add(vgwStartTimeout)
	for {
		select {
		case <-v.done:
			return fmt.Errorf("versitygw exited during startup (%s): %s", v.cmd.ProcessState, v.logTail())
		default:
		}
		if v.ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within %v: %s", v.addr, vgwStartTimeout, v.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether versitygw answers an HTTP request.
func (v *versityGW) ready() bool {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, v.url()+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return true
}

// stop ends versitygw (SIGTERM, then SIGKILL after 5 s) and removes its
// directory.
func (v *versityGW) stop() {
	v.stopMu.Lock()
	defer v.stopMu.Unlock()
	if v.cmd != nil && v.cmd.Process != nil {
		_ = v.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-v.done:
		case <-time.After(5 * time.Second):
			_ = v.cmd.Process.Kill()
			<-v.done
		}
	}
	_ = os.RemoveAll(v.dir)
}

func (v *versityGW) logTail() string {
	b, _ := os.ReadFile(v.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return strings.TrimSpace(string(b))
}

// url is the base URL of path-style clients talking to versitygw directly.
func (v *versityGW) url() string {
	if v.tls {
		return "https://" + v.addr
	}
	return "http://" + v.addr
}

// transport returns a transport that connects to versitygw whatever host is
// asked, so that virtual-hosted names under s3.osp.test reach it. Its idle
// connections are closed when the test ends.
func (v *versityGW) transport(t testing.TB) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		// Closed with a reset, as the proxy's default transport does (see
		// resetOnClose in proxy.go): versitygw keeps a cut UNSIGNED-PAYLOAD
		// body when its connection ends with a FIN.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, v.addr)
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			return c, err
		},
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		DisableCompression:    true,
	}
	if v.tls {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// filteredEnv is the environment without the variables starting with one of
// prefixes.
func filteredEnv(prefixes ...string) []string {
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

// killWithParent asks the kernel to kill a child process if the test binary
// dies without cleaning up (a -timeout panic, a crash). Pdeathsig exists on
// Linux only; reflection keeps this file portable.
func killWithParent(attr *syscall.SysProcAttr) {
	f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig")
	if f.IsValid() && f.CanSet() && f.Type() == reflect.TypeOf(syscall.SIGKILL) {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
}
