package proxy_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/osproxy/proxy/internal/testkit"
)

// TestMain runs the tests and then fails the run if any goroutine was left
// behind (a proxy not closed, a cache not stopped, a connection not released).
// Tests close their servers, proxies and idle client connections themselves,
// so only goroutines the runtime or the testing package own are ignored here.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := testkit.Leaks(nil); err != nil {
			fmt.Fprintf(os.Stderr, "after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
