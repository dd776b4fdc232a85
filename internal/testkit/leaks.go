package testkit

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Goroutines are the goroutines running at one moment, by id, each with its
// stack as runtime.Stack writes it.
type Goroutines map[uint64]string

// Snapshot returns the goroutines running now, but for those of the runtime
// and the testing package (see Leaks).
func Snapshot() Goroutines {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	g := Goroutines{}
	for stack := range strings.SplitSeq(string(buf), "\n\n") {
		id, ok := goroutineID(stack)
		if ok && !ownedByRuntime(stack) {
			g[id] = stack
		}
	}
	return g
}

// Leaks waits until no goroutine is running but the caller's, those in
// before, and those the runtime and the testing package own (the testing
// package waiting for its tests, the signal handler), and returns nil; after
// about two seconds it gives up and returns an error listing the stacks of
// the others. The goroutines a test stopped often end a moment after it
// returns: their last exits are still running, hence the wait.
//
// It replaces go.uber.org/goleak's Find (before nil) and VerifyNone with
// IgnoreCurrent (before a Snapshot taken at the start), with the same rules.
func Leaks(before Goroutines) error {
	self, _ := goroutineID(currentStack())
	var left Goroutines
	for i := 0; ; i++ {
		left = Snapshot()
		delete(left, self)
		for id := range before {
			delete(left, id)
		}
		if len(left) == 0 {
			return nil
		}
		if i == 40 {
			break
		}
		time.Sleep(min(time.Duration(1<<i)*time.Microsecond, 50*time.Millisecond))
	}
	ids := make([]uint64, 0, len(left))
	for id := range left {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutines left running:", len(ids))
	for _, id := range ids {
		b.WriteString("\n\n" + left[id])
	}
	return fmt.Errorf("%s", b.String())
}

// CheckLeaks makes the test fail, at its cleanup, when a goroutine it started
// is still running: the goroutines running when it is called are not
// counted. Cleanups run last-registered first, so calling it at the start of
// a test checks after every cleanup the test registers later (the closing of
// its servers and caches).
func CheckLeaks(t testing.TB) {
	t.Helper()
	before := Snapshot()
	t.Cleanup(func() {
		if err := Leaks(before); err != nil {
			t.Errorf("%v", err)
		}
	})
}

func currentStack() string {
	buf := make([]byte, 256)
	return string(buf[:runtime.Stack(buf, false)])
}

// goroutineID reads the id of "goroutine 7 [chan receive]:".
func goroutineID(stack string) (uint64, bool) {
	rest, ok := strings.CutPrefix(stack, "goroutine ")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, " ")
	id, err := strconv.ParseUint(n, 10, 64)
	return id, err == nil
}

// ownedByRuntime reports the goroutines goleak leaves out by default: the
// testing package's, waiting on a channel for the tests or fuzzing it runs;
// cgo's, in a syscall; the signal handler's (os/signal, signal.Notify); and
// the tracer's (go test -trace).
func ownedByRuntime(stack string) bool {
	header, frames, _ := strings.Cut(stack, "\n")
	state := header
	if _, s, ok := strings.Cut(header, "["); ok {
		state, _, _ = strings.Cut(s, "]")
	}
	first, _, _ := strings.Cut(frames, "\n")
	if i := strings.LastIndex(first, "("); i > 0 {
		first = first[:i]
	}
	switch first {
	case "testing.RunTests", "testing.(*T).Run", "testing.(*T).Parallel", "testing.runFuzzing", "testing.runFuzzTests":
		return strings.HasPrefix(state, "chan receive")
	case "os/signal.signal_recv", "os/signal.loop":
		return true
	}
	return strings.Contains(frames, "runtime.goexit") && strings.HasPrefix(state, "syscall") ||
		strings.Contains(frames, "runtime.ensureSigM") ||
		strings.Contains(frames, "runtime.ReadTrace")
}
