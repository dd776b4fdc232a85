package vgwtest

import (
	"os"
	"sync"
	"testing"
)

// Shared is a versitygw shared by the tests of one test binary: started on
// first use by Get, stopped by Stop (from TestMain). The zero value serves
// http.
type Shared struct {
	// TLS, when set, gives the certificate and key files of an https
	// versitygw.
	TLS func() (certFile, keyFile string, err error)

	once    sync.Once
	srv     *Server
	err     error
	missing bool // no binary, as opposed to one that fails to start
}

// RequireIntegration reports OSP_REQUIRE_INTEGRATION=1 (the README's test
// command and CI): a missing versitygw (or other real part) fails the tests
// that need it instead of skipping them.
func RequireIntegration() bool { return os.Getenv("OSP_REQUIRE_INTEGRATION") == "1" }

// Get returns the shared versitygw, starting it on first use. Without a
// versitygw binary the test is skipped, or fails when RequireIntegration.
func (s *Shared) Get(t testing.TB) *Server {
	t.Helper()
	s.once.Do(func() {
		bin, missing, err := Binary()
		if err != nil {
			s.err, s.missing = err, missing
			return
		}
		var certFile, keyFile string
		if s.TLS != nil {
			if certFile, keyFile, s.err = s.TLS(); s.err != nil {
				return
			}
		}
		s.srv, s.err = Start(bin, certFile, keyFile)
	})
	switch {
	case s.err == nil:
		return s.srv
	case s.missing && !RequireIntegration():
		t.Skipf("skipped: %v (set VERSITYGW or put versitygw on PATH; OSP_REQUIRE_INTEGRATION=1 makes this a failure)", s.err)
	case s.missing:
		t.Fatalf("OSP_REQUIRE_INTEGRATION=1 but versitygw is not available: %v; install it with `GOBIN=<dir> go install github.com/versity/versitygw/cmd/versitygw@v1.8.0` and set VERSITYGW=<dir>/versitygw", s.err)
	default:
		t.Fatalf("versitygw did not start: %v", s.err)
	}
	return nil
}

// Stop stops the shared versitygw if it was started.
func (s *Shared) Stop() {
	if s.srv != nil {
		s.srv.Stop()
	}
}
