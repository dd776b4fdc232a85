package conformance

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/osproxy/proxy/internal/vgwtest"
)

// versitygw, started once per test binary (internal/vgwtest): one instance
// over http (the proxy's upstream and the http baseline) and one over https
// (the https baseline), each started on first use.
const (
	// vgwAccessKey and vgwSecretKey are versitygw's root keys: the proxy's
	// upstream credentials and the keys of the baseline clients.
	vgwAccessKey = vgwtest.AccessKey
	vgwSecretKey = vgwtest.SecretKey
	// vgwDomain is versitygw's virtual-host domain: the proxy sends
	// <bucket>.s3.osp.test requests, which its transport dials to versitygw.
	vgwDomain = vgwtest.Domain
)

// requireIntegration is OSP_REQUIRE_INTEGRATION=1 (CI): what is missing fails
// the run instead of skipping.
func requireIntegration() bool { return os.Getenv("OSP_REQUIRE_INTEGRATION") == "1" }

// versityGW is a running versitygw.
type versityGW struct{ *vgwtest.Server }

func (v *versityGW) url() string { return v.URL() }

// transport returns a transport that reaches versitygw whatever host is
// asked; its idle connections are closed when the test ends.
func (v *versityGW) transport(t testing.TB) *http.Transport {
	tr := v.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
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

func startVersity(useTLS bool) (*versityGW, error, bool) {
	bin, missing, err := vgwtest.Binary()
	if err != nil {
		return nil, err, missing
	}
	var certFile, keyFile string
	if useTLS {
		c := testCert()
		if c.err != nil {
			return nil, c.err, false
		}
		certFile, keyFile = c.certFile, c.keyFile
	}
	s, err := vgwtest.Start(bin, certFile, keyFile)
	if err != nil {
		return nil, err, false
	}
	return &versityGW{s}, nil, false
}

func stopVersity() {
	for _, s := range []*vgwSlot{&vgwHTTP, &vgwHTTPS} {
		if s.v != nil {
			s.v.Stop()
		}
	}
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
