// Package integration_test holds the suites that run the whole proxy, through
// its public API only, against real S3 servers: versitygw (started once per
// test binary, internal/vgwtest), and SeaweedFS, s3rver and radosgw
// (internal/s3servers), each step straight to the server and through the
// proxy with the outcomes compared. The conformance suite of real clients is
// in conformance/. This is a module of its own, so that the library's go.mod
// does not list the S3 clients and hashes these tests use.
//
// Without versitygw the tests skip, or fail with OSP_REQUIRE_INTEGRATION=1.
package integration_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/osproxy/proxy/internal/testkit"
)

// TestMain runs the tests, stops the shared versitygw and then fails the run if
// any goroutine was left behind (a proxy not closed, a cache not stopped, a
// connection not released). Tests close their servers, proxies and idle client
// connections themselves, so only goroutines the runtime or the testing package
// own are ignored here.
func TestMain(m *testing.M) {
	code := m.Run()
	stopVersity()
	if code == 0 {
		if err := testkit.Leaks(nil); err != nil {
			fmt.Fprintf(os.Stderr, "after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
