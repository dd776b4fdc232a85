package testkit

import "math/rand/v2"

// Random returns n reproducible pseudo-random bytes for seed.
func Random(n int, seed uint64) []byte {
	var s [32]byte
	s[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}
