package proxy_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
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
		if err := goleak.Find(leakIgnores()...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left running after the tests:\n%v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func leakIgnores() []goleak.Option {
	return []goleak.Option{
		// The testing package's own signal/timeout machinery.
		goleak.IgnoreTopFunction("os/signal.signal_recv"),
	}
}
