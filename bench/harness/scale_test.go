package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/osproxy/proxy/bench/internal/growth"
)

// BenchmarkScale is the in-process half of -growth's scale measurement as a
// Go benchmark: ServeHTTP of a proxy configured with n things of a kind, on
// requests spread over all n (each served once first), against an upstream
// and an IAM that answer at once in process (see inProcess):
//
//	go -C bench test -run '^$' -bench BenchmarkScale -benchtime 200000x ./harness
func BenchmarkScale(b *testing.B) {
	for _, kind := range growth.ScaleKinds {
		for _, n := range benchScaleNs {
			b.Run(fmt.Sprintf("%s=%d", kind, n), func(b *testing.B) { benchScale(b, kind, n) })
		}
	}
}

func benchScale(b *testing.B, kind string, n int) {
	reqs, err := scaleRequests(kind, n, "proxy.test", rand.New(rand.NewPCG(22, 4)).Perm(n))
	if err != nil {
		b.Fatal(err)
	}
	ip, err := newInProcess(kind, n, reqs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ip.close() })
	calls := ip.up.iamCalls.Load()
	w := &recorder{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.reset()
		ip.proxy.ServeHTTP(w, ip.reqs[i])
		if w.status != http.StatusOK {
			b.Fatalf("%s: status %d", ip.reqs[i].URL, w.status)
		}
		if i++; i == len(ip.reqs) {
			i = 0
		}
	}
	b.ReportMetric(float64(ip.up.iamCalls.Load()-calls)/float64(b.N), "iam/op")
}

var benchScaleNs = []int{10, 1_000, 100_000}
