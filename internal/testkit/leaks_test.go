package testkit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLeaks(t *testing.T) {
	before := Snapshot()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
	}()
	err := Leaks(before)
	if err == nil || !strings.Contains(err.Error(), "TestLeaks.func1") || !strings.Contains(err.Error(), "1 goroutines left running") {
		t.Errorf("a goroutine left running: %v", err)
	}
	close(stop)
	<-done
	if err := Leaks(before); err != nil {
		t.Errorf("after it stopped: %v", err)
	}
	// The goroutines the test binary runs anyway are not leaks.
	if err := Leaks(nil); err != nil {
		t.Errorf("nothing started: %v", err)
	}
}

func TestCheckLeaks(t *testing.T) {
	stop := make(chan struct{})
	rec := &recorder{TB: t}
	t.Run("leaks", func(t *testing.T) {
		rec.TB = t
		CheckLeaks(rec)
		go func() { <-stop }()
	})
	// rec's cleanup ran with the subtest's (on t, which rec wraps).
	close(stop)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "TestCheckLeaks") {
		t.Errorf("errors: %q", rec.errs)
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.HasPrefix(string(b), "module github.com/osproxy/proxy\n") {
		t.Fatalf("RepoRoot() = %q: %v %q", root, err, b)
	}
	if got := rootAbove(filepath.Join(root, "internal", "testkit")); got != root {
		t.Errorf("from internal/testkit: %q", got)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module github.com/osproxy/proxy/nested\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := rootAbove(dir); got == dir {
		t.Errorf("a nested module's go.mod taken for the root's")
	}
}
