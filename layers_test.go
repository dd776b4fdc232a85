package proxy

import (
	"go/build"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLayers keeps the S3 protocol packages below the proxy: each imports the
// standard library and the protocol packages listed here, nothing else
// (docs/architecture.md). The compiler already keeps them from importing the
// root; this keeps them from growing dependencies or reaching sideways.
func TestLayers(t *testing.T) {
	const mod = "github.com/osproxy/proxy/"
	allowed := map[string][]string{
		"internal/s3err":      nil,
		"internal/s3op":       nil,
		"internal/sigv4":      {"internal/s3err"},
		"internal/sigv2":      {"internal/s3err", "internal/sigv4"},
		"internal/awschunked": {"internal/s3err"},
		"internal/postform":   {"internal/s3err", "internal/sigv4"},
		"internal/s3xml":      {"internal/s3err"},
	}
	for dir, may := range allowed {
		pkg, err := build.ImportDir(filepath.FromSlash(dir), 0)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, imp := range pkg.Imports {
			if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				continue // the standard library
			}
			if !slices.Contains(may, strings.TrimPrefix(imp, mod)) {
				t.Errorf("%s imports %s: a protocol package imports the standard library and %v only", dir, imp, may)
			}
		}
	}
}
