package integration_test

import (
	"strings"
	"testing"
)

// TestMountStripPrefix serves the proxy under /s3 through http.StripPrefix.
func TestMountStripPrefix(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{mount: itgMountStripPrefix})
	itgMountedSteps(t, e)
}

// TestMountPathPrefix serves the proxy under /s3 without stripping, with
// proxy.WithPathPrefix("/s3").
func TestMountPathPrefix(t *testing.T) {
	t.Parallel()
	e := newItgEnv(t, itgConfig{mount: itgMountPathPrefix})
	itgMountedSteps(t, e)
}

// itgMountedSteps puts, gets, lists and deletes through a proxy mounted under
// /s3. Keys with "//" or dot segments are left out: http.ServeMux redirects
// such paths to their cleaned form before the proxy sees them.
func itgMountedSteps(t *testing.T, e *itgEnv) {
	if !strings.HasSuffix(e.proxy.base, itgMountPath) {
		t.Fatalf("proxy base %s is not under %s", e.proxy.base, itgMountPath)
	}
	keys := []string{"plain.txt", "nested/dir/object"}
	for _, k := range itgAwkwardKeys {
		if !itgUncleanPath(k) {
			keys = append(keys, k)
		}
	}
	itgKeyOps(t, e, keys, false)
}
