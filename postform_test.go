package proxy_test

// POST Object forms as a browser posts them and the SDKs' presigners sign
// them, for the in-process tests (postobject_test.go, merge_test.go, the
// red-team probes) against a proxy on an httptest server, built by
// internal/testkit, which the integration module's suites use too.

import (
	"context"
	"net/http"

	"github.com/osproxy/proxy/internal/testkit"
)

// itgSide is one way to reach an S3 endpoint, as the integration suite names
// it: directly ("direct") or through the proxy ("proxy"), with the client's
// base endpoint, keys and HTTP client (unitSide in postobject_test.go makes
// one for a proxy on an httptest server).
type itgSide struct {
	name   string       // "direct" or "proxy"
	hc     *http.Client // the client's HTTP client
	base   string       // the client's base endpoint
	key    string       // the client's access key and secret
	secret string
}

// itgForm is a POST Object form to build and sign for one side.
type itgForm = testkit.Form

// client is how s posts a form.
func (s *itgSide) client() testkit.PostClient {
	return testkit.PostClient{Name: s.name, HC: s.hc, Base: s.base, Key: s.key, Secret: s.secret}
}

// itgPostSigned builds f for bucket on side s, signs its policy with SigV4 as
// the SDKs' presigners do, and posts it.
func itgPostSigned(ctx context.Context, s *itgSide, bucket string, f itgForm) (*http.Response, []byte, error) {
	return testkit.PostSigned(ctx, s.client(), bucket, f)
}

// itgPostOutcome reduces a POST Object answer to what must not depend on the
// side (testkit.PostOutcome).
func itgPostOutcome(s *itgSide, bucket string, resp *http.Response, body []byte, err error) string {
	return testkit.PostOutcome(s.client(), bucket, resp, body, err)
}

func itgHMAC(key []byte, data string) []byte { return testkit.HMAC(key, data) }

// itgRandom returns n reproducible pseudo-random bytes.
func itgRandom(n int, seed uint64) []byte { return testkit.Random(n, seed) }
