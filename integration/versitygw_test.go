package integration_test

import (
	"net/http"
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

// sharedVGW is the versitygw of this test binary, stopped by TestMain.
var sharedVGW vgwtest.Shared

// versity returns the shared versitygw, starting it on first use. Without a
// versitygw binary the test is skipped, or fails when OSP_REQUIRE_INTEGRATION=1.
func versity(t testing.TB) *versityGW {
	t.Helper()
	return &versityGW{sharedVGW.Get(t)}
}

// stopVersity stops the shared versitygw if it was started. TestMain calls it.
func stopVersity() { sharedVGW.Stop() }
