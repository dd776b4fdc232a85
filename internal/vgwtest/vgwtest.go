// Package vgwtest starts and stops versitygw (github.com/versity/versitygw),
// the real S3 server of the project's integration and conformance tests: a
// posix backend in a temporary directory, on a free loopback port, checking
// SigV4 with fixed root keys. With Options.IAM it also keeps accounts of its
// own (its internal IAM store), which CreateUser adds.
package vgwtest

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
	"time"
)

// The root keys and the virtual-host domain of every versitygw started here:
// it serves <bucket>.s3.osp.test as well as path-style requests.
const (
	AccessKey = "osp-root"
	SecretKey = "osp-root-secret-key"
	Domain    = "s3.osp.test"
)

// startTimeout bounds the wait for a new versitygw to answer.
const startTimeout = 15 * time.Second

// Server is a running versitygw.
type Server struct {
	Addr string // 127.0.0.1:<port>
	Port int
	TLS  bool

	dir       string // removed by Stop: data root and log
	log       string
	accessLog string // "" unless Options.AccessLog
	bin       string
	cmd       *exec.Cmd
	done      chan struct{} // closed once the process has exited
	stopOnce  sync.Once
}

// Binary finds versitygw: $VERSITYGW, else versitygw on PATH. missing reports
// that neither is set up, as opposed to a VERSITYGW that is wrong.
func Binary() (path string, missing bool, err error) {
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

// Start starts versitygw from bin and waits until it answers; with certFile
// and keyFile it serves https.
func Start(bin, certFile, keyFile string) (*Server, error) {
	return StartWith(bin, Options{CertFile: certFile, KeyFile: keyFile})
}

// Options are what StartWith may add to the versitygw Start starts.
type Options struct {
	// CertFile and KeyFile, both or neither, serve https.
	CertFile, KeyFile string
	// IAM keeps accounts besides the root's, in versitygw's internal IAM
	// store (--iam-dir) in the server's directory: CreateUser adds them.
	IAM bool
	// AccessLog writes versitygw's S3 access log (--access-log), one line
	// per request with the access key id that signed it: AccessLog reads it.
	AccessLog bool
}

// StartWith is Start with options.
func StartWith(bin string, o Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "osp-versitygw-")
	if err != nil {
		return nil, err
	}
	s := &Server{TLS: o.CertFile != "", dir: dir, log: filepath.Join(dir, "versitygw.log"), bin: bin, done: make(chan struct{})}
	if err := s.start(bin, o); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) start(bin string, o Options) error {
	data := filepath.Join(s.dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	s.Port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logf, err := os.Create(s.log)
	if err != nil {
		return err
	}
	defer logf.Close()

	args := []string{"--port", s.Addr, "--virtual-domain", Domain, "--quiet"}
	if s.TLS {
		args = append(args, "--cert", o.CertFile, "--key", o.KeyFile)
	}
	if o.IAM {
		iam := filepath.Join(s.dir, "iam")
		if err := os.Mkdir(iam, 0o700); err != nil {
			return err
		}
		args = append(args, "--iam-dir", iam)
	}
	if o.AccessLog {
		s.accessLog = filepath.Join(s.dir, "access.log")
		args = append(args, "--access-log", s.accessLog)
	}
	s.cmd = exec.Command(bin, append(args, "posix", data)...)
	s.cmd.Env = append(environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf // files: no copying goroutines
	s.cmd.SysProcAttr = &syscall.SysProcAttr{}
	KillWithParent(s.cmd.SysProcAttr)
	if err := s.cmd.Start(); err != nil {
		close(s.done)
		return fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited during startup (%s): %s", s.cmd.ProcessState, s.LogTail())
		default:
		}
		if s.ready() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within %v: %s", s.Addr, startTimeout, s.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether versitygw answers an HTTP request.
func (s *Server) ready() bool {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return true
}

// Stop ends versitygw (SIGTERM, then SIGKILL after 5 s) and removes its
// directory. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		_ = os.RemoveAll(s.dir)
	})
}

// CreateUser adds an account to a versitygw started with Options.IAM, with
// versitygw's admin command and the root keys. Role is "user" (its own
// buckets, and what bucket policies grant it), "userplus" or "admin".
func (s *Server) CreateUser(accessKey, secretKey, role string) error {
	args := []string{"admin", "--access", AccessKey, "--secret", SecretKey, "--endpoint-url", s.URL()}
	if s.TLS {
		args = append(args, "--allow-insecure")
	}
	cmd := exec.Command(s.bin, append(args, "create-user", "--access", accessKey, "--secret", secretKey, "--role", role)...)
	cmd.Env = environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("versitygw admin create-user %s: %w: %s", accessKey, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// AccessLog returns versitygw's access log so far (Options.AccessLog): one
// line per request, whose fifth field is the access key id that signed it.
func (s *Server) AccessLog() (string, error) {
	if s.accessLog == "" {
		return "", errors.New("versitygw was started without its access log")
	}
	b, err := os.ReadFile(s.accessLog)
	return string(b), err
}

// LogTail returns the end of versitygw's output, for error messages.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(no output)"
	}
	return strings.TrimSpace(string(b))
}

// URL is the base URL of path-style clients talking to versitygw directly.
func (s *Server) URL() string {
	if s.TLS {
		return "https://" + s.Addr
	}
	return "http://" + s.Addr
}

// Transport returns a transport that connects to versitygw whatever host is
// asked, so that virtual-hosted names under s3.osp.test reach it. Like the
// proxy's default transport it closes connections with a reset: versitygw
// keeps a cut UNSIGNED-PAYLOAD body when its connection ends with a FIN. The
// caller closes its idle connections.
func (s *Server) Transport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, s.Addr)
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
	if s.TLS {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return tr
}

// FreePort returns a TCP port free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// environ is the environment without versitygw's own settings, so that the
// caller's VGW_* or ROOT_* variables cannot change the server under test.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// KillWithParent asks the kernel to kill a child process if the test binary
// dies without stopping it (a -timeout panic, a crash). Pdeathsig exists on Linux
// only; reflection keeps this file portable.
func KillWithParent(attr *syscall.SysProcAttr) {
	f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig")
	if f.IsValid() && f.CanSet() && f.Type() == reflect.TypeOf(syscall.SIGKILL) {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
}
