package proxy_test

import (
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/osproxy/proxy/internal/vgwtest"
)

// The integration tests run against versitygw (github.com/versity/versitygw), a
// real S3 server that checks SigV4, started once per test binary
// (internal/vgwtest).
const (
	// vgwAccessKey and vgwSecretKey are versitygw's root keys: the upstream
	// credentials of the proxy and the keys of the baseline client.
	vgwAccessKey = vgwtest.AccessKey
	vgwSecretKey = vgwtest.SecretKey
	// vgwDomain is versitygw's virtual-host domain: it serves
	// <bucket>.s3.osp.test as well as path-style requests.
	vgwDomain = vgwtest.Domain
)

// versityGW is a running versitygw.
type versityGW struct{ *vgwtest.Server }

// url is the base URL for path-style clients talking to versitygw directly.
func (v *versityGW) url() string { return v.URL() }

// transport returns a transport that connects to versitygw whatever host is
// asked, so that virtual-hosted names under s3.osp.test reach it. Its idle
// connections are closed when the test ends.
func (v *versityGW) transport(t testing.TB) *http.Transport {
	tr := v.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
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
	vgwOnce.Do(func() {
		bin, missing, err := vgwtest.Binary()
		if err != nil {
			vgwErr, vgwMissing = err, missing
			return
		}
		s, err := vgwtest.Start(bin, "", "")
		if err != nil {
			vgwErr = err
			return
		}
		vgw = &versityGW{s}
	})
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

// stopVersity stops the shared versitygw if it was started. TestMain calls it.
func stopVersity() {
	if vgw != nil {
		vgw.Stop()
	}
}
