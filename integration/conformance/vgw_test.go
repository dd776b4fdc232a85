package conformance

import (
	"net/http"
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
func requireIntegration() bool { return vgwtest.RequireIntegration() }

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

var (
	vgwHTTP  vgwtest.Shared
	vgwHTTPS = vgwtest.Shared{TLS: func() (string, string, error) {
		c := testCert()
		return c.certFile, c.keyFile, c.err
	}}
)

// versity returns the shared versitygw over http (tls false) or https,
// starting it on first use. Without a versitygw binary the test is skipped,
// or fails when OSP_REQUIRE_INTEGRATION=1.
func versity(t testing.TB, useTLS bool) *versityGW {
	t.Helper()
	if useTLS {
		return &versityGW{vgwHTTPS.Get(t)}
	}
	return &versityGW{vgwHTTP.Get(t)}
}

func stopVersity() {
	vgwHTTP.Stop()
	vgwHTTPS.Stop()
}
