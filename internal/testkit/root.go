package testkit

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// rootModule is the library's module path: its go.mod marks the repository's
// root, above the nested modules (integration, examples, bench, ...).
const rootModule = "github.com/osproxy/proxy"

// RepoRoot is the repository's root directory, where the tests of every module
// keep what they install once (.cache/bin, .cache/js, .cache/s3rver): the
// nearest directory above this package's source, or else above the working
// directory, whose go.mod is the library's. It is "" when there is none.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	if dir := rootAbove(filepath.Dir(file)); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return rootAbove(wd)
}

// rootAbove walks up from dir to the directory of the library's go.mod.
func rootAbove(dir string) string {
	if !filepath.IsAbs(dir) {
		return ""
	}
	for {
		if modulePath(filepath.Join(dir, "go.mod")) == rootModule {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// modulePath is the module line of the go.mod at path, "" when unreadable.
func modulePath(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}
