// Package testkit holds the test doubles the proxy's tests share: Clock, a
// clock the test moves by hand, and IAM, a fake IBM Cloud IAM token endpoint;
// and their tools: CheckLeaks and Leaks, which fail a test or a test binary
// that leaves goroutines running, and RepoRoot, where the tests of every
// module keep what they install.
package testkit

import (
	"sync/atomic"
	"time"
)

// Clock is a clock the test moves by hand. It is safe for concurrent use; its
// Now method is what proxy.WithClock and NewIAM take.
type Clock struct {
	ns  atomic.Int64
	loc *time.Location
}

// NewClock returns a clock showing start, in start's location, until Advance
// moves it.
func NewClock(start time.Time) *Clock {
	c := &Clock{loc: start.Location()}
	c.ns.Store(start.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).In(c.loc) }

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
