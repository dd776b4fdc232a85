//go:build race

package conformance

// raceBuild: the race detector's runtime keeps shadow memory it does not
// return, so the soak's RSS bound is looser under -race (its Go heap bound is
// not).
const raceBuild = true
