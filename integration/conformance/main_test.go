// Package conformance is the proxy's conformance and failure suite: real S3
// clients (aws-cli, s3cmd, rclone, boto3, aws-sdk-js, aws-sdk-go-v2,
// minio-go) driven as users drive them, straight against versitygw and
// through the proxy (the client matrix, TestMatrix, presigned POST form
// uploads among its steps), and their uploads straight against SeaweedFS,
// s3rver and radosgw and through a proxy in front of each
// (internal/s3servers); upstream, hook, IAM and client faults
// (TestFault*); two proxies behind one round-robin listener (TestScaleOut);
// and a bounded mixed-load run (TestSoak).
//
// It needs versitygw (VERSITYGW or PATH), the Debian clients (awscli, s3cmd,
// rclone, python3-boto3), node 20 with npm (aws-sdk-js is installed with npm
// ci into .cache/js, s3rver into .cache/s3rver), SeaweedFS's weed (WEED or
// .cache/bin/weed) and Debian's radosgw, ceph-mon and ceph-osd. Without them
// the tests skip, or fail when OSP_REQUIRE_INTEGRATION=1.
package conformance

import (
	"fmt"
	"os"
	"testing"

	"github.com/osproxy/proxy/internal/testkit"
)

// TestMain runs the tests, stops the versitygw processes and then fails the
// run if any goroutine was left behind: every proxy, server, transport and
// client subprocess a test starts is stopped by that test.
func TestMain(m *testing.M) {
	code := m.Run()
	stopVersity()
	if certDir != "" {
		_ = os.RemoveAll(certDir)
	}
	if code == 0 {
		if err := testkit.Leaks(nil); err != nil {
			fmt.Fprintf(os.Stderr, "after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
