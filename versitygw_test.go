package proxy_test

import (
	"context"
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

// The integration tests run against versitygw (github.com/versity/versitygw), a
// real S3 server that checks SigV4, started once per test binary on a free
// loopback port with a posix backend in a temporary directory.
const (
	// vgwAccessKey and vgwSecretKey are versitygw's root keys: the upstream
	// credentials of the proxy and the keys of the baseline client.
	vgwAccessKey = "osp-root"
	vgwSecretKey = "osp-root-secret-key"
	// vgwDomain is versitygw's virtual-host domain: it serves
	// <bucket>.s3.osp.test as well as path-style requests.
	vgwDomain = "s3.osp.test"
	// vgwStartTimeout bounds the wait for versitygw's port to answer.
	vgwStartTimeout = 10 * time.Second
)

// versityGW is a running versitygw process.
type versityGW struct {
	addr string // 127.0.0.1:<port>
	port int
	dir  string // removed by stop: data root and log
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
}

var (
	vgwOnce    sync.Once
	vgw        *versityGW
	vgwErr     error
	vgwMissing bool // the binary was not found (as opposed to failing to start)
)

// versity returns the shared versitygw, starting it on first use. Without a
// versitygw binary the test is skipped, or fails when OSP_REQUIRE_INTEGRATION=1.
func versity(t testing.TB) *versityGW {
	t.Helper()
	vgwOnce.Do(func() { vgw, vgwErr = startVersity() })
	switch {
	case vgwErr == nil:
		return vgw
	case vgwMissing && os.Getenv("OSP_REQUIRE_INTEGRATION") != "1":
		t.Skipf("integration test skipped: %v (set VERSITYGW or put versitygw on PATH; OSP_REQUIRE_INTEGRATION=1 makes this a failure)", vgwErr)
	case vgwMissing:
		t.Fatalf("OSP_REQUIRE_INTEGRATION=1 but versitygw is not available: %v; install it with `GOBIN=<dir> go install github.com/versity/versitygw/cmd/versitygw@v1.8.0` and set VERSITYGW=<dir>/versitygw", vgwErr)
	default:
		t.Fatalf("versitygw did not start: %v", vgwErr)
	}
	return nil
}

// versityBinary finds versitygw: $VERSITYGW, else versitygw on PATH.
func versityBinary() (string, error) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("VERSITYGW=%s: %w", p, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("VERSITYGW=%s is not an executable file", p)
		}
		return p, nil
	}
	p, err := exec.LookPath("versitygw")
	if err != nil {
		return "", errors.New("VERSITYGW is not set and versitygw is not on PATH")
	}
	return p, nil
}

func startVersity() (*versityGW, error) {
	bin, err := versityBinary()
	if err != nil {
		vgwMissing = os.Getenv("VERSITYGW") == "" // a wrong VERSITYGW is a mistake, not an absence
		return nil, err
	}
	dir, err := os.MkdirTemp("", "osp-versitygw-")
	if err != nil {
		return nil, err
	}
	v := &versityGW{dir: dir, log: filepath.Join(dir, "versitygw.log"), done: make(chan struct{})}
	if err := v.start(bin); err != nil {
		v.stop()
		return nil, err
	}
	return v, nil
}

func (v *versityGW) start(bin string) error {
	data := filepath.Join(v.dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	port, err := vgwFreePort()
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

	v.cmd = exec.Command(bin, "--port", v.addr, "--virtual-domain", vgwDomain, "--quiet", "posix", data)
	v.cmd.Env = append(vgwEnv(), "ROOT_ACCESS_KEY="+vgwAccessKey, "ROOT_SECRET_KEY="+vgwSecretKey)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf // files: no copying goroutines
	v.cmd.SysProcAttr = &syscall.SysProcAttr{}
	vgwKillWithParent(v.cmd.SysProcAttr)
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
		c, err := net.DialTimeout("tcp", v.addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within %v: %s", v.addr, vgwStartTimeout, v.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends versitygw (SIGTERM, then SIGKILL after 5 s) and removes its
// directory.
func (v *versityGW) stop() {
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

// stopVersity stops the shared versitygw if it was started. TestMain calls it.
func stopVersity() {
	if vgw != nil {
		vgw.stop()
	}
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

// url is the base URL for path-style clients talking to versitygw directly.
func (v *versityGW) url() string { return "http://" + v.addr }

// transport returns a transport that connects to versitygw whatever host is
// asked, so that virtual-hosted names under s3.osp.test reach it. Its idle
// connections are closed when the test ends.
func (v *versityGW) transport(t testing.TB) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, v.addr)
		},
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: time.Minute,
		DisableCompression:    true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func vgwFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// vgwEnv is the environment without versitygw's own settings, so that the
// caller's VGW_* or ROOT_* variables cannot change the server under test.
func vgwEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// vgwKillWithParent asks the kernel to kill versitygw if the test binary dies
// without running TestMain's cleanup (a -timeout panic, a crash). Pdeathsig
// exists on Linux only; reflection keeps this file portable.
func vgwKillWithParent(attr *syscall.SysProcAttr) {
	f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig")
	if f.IsValid() && f.CanSet() && f.Type() == reflect.TypeOf(syscall.SIGKILL) {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
}
