// Package redisuse is a proxy.UseCounter in Redis, so that every replica of a
// proxy counts the uses of a presigned URL in one place and
// proxy.WithPresignedUseLimit holds across them. It lives in a module of its
// own, beside the library, so that the library needs no Redis client.
//
// An Add answers within DefaultTimeout whatever the client it is given. A
// go-redis client ignores a context's deadline in socket reads unless
// ContextTimeoutEnabled is set, so Add runs the Redis call beside it and
// stops waiting at the deadline: an error, and the request fails closed
// (503). The call it abandons ends when the client gives up on it: at once if
// it waits for a connection, at the client's ReadTimeout (5 s by default) if
// it waits for an answer, or when Redis answers; with ReadTimeout -1, only
// when Redis answers or the connection drops. So that a long hang under load
// cannot pile them up, a Counter holds at most 10,000 calls in flight,
// abandoned ones included, and past that Add fails at once, without a call.
// Set ContextTimeoutEnabled on the client all the same: it then ends its
// calls at the deadline itself, and none lingers.
//
// A use whose script reached Redis before it hung is counted when Redis
// resumes, though its request was refused: that URL has one use fewer. So has
// a use the client retried (MaxRetries) after Redis ran it but before its
// answer arrived. The counter errs on the closed side: never more uses than
// the limit, sometimes fewer.
package redisuse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/osproxy/proxy"
	"github.com/redis/go-redis/v9"
)

// incr adds one use and, on the first, sets the key to expire with the URL:
// one round trip, atomic.
var incr = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIREAT', KEYS[1], ARGV[1]) end
return n
`)

// Counter counts uses in Redis under Prefix + the SHA-256 of the URL's key.
type Counter struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	// calls holds a token for each Redis call in flight, waited for or
	// abandoned, and so bounds them.
	calls chan struct{}
}

var _ proxy.UseCounter = (*Counter)(nil)

// DefaultTimeout bounds one Add, whatever the client's own timeouts.
const DefaultTimeout = 2 * time.Second

// maxCalls bounds a Counter's Redis calls in flight. A Redis that answers in
// 1 ms holds one per 1,000 requests a second; a hung one, one per request of
// the last DefaultTimeout, and those stuck on a connection until the client's
// ReadTimeout.
const maxCalls = 10_000

// New returns a Counter on client (a single node, a sentinel or a cluster
// client), with keys under prefix ("osproxy:uses:" when empty). Each Add is
// bounded by DefaultTimeout, ContextTimeoutEnabled or not (see the package
// documentation).
func New(client redis.UniversalClient, prefix string) *Counter {
	if prefix == "" {
		prefix = "osproxy:uses:"
	}
	return &Counter{client: client, prefix: prefix, timeout: DefaultTimeout, calls: make(chan struct{}, maxCalls)}
}

// Add records one use of key, which expires at expires, and returns the uses
// so far. An unreachable, hung or overloaded Redis is an error, and the proxy
// fails closed.
func (c *Counter) Add(ctx context.Context, key string, expires time.Time) (int64, error) {
	select {
	case c.calls <- struct{}{}:
	default:
		return 0, fmt.Errorf("redis use counter: %d calls in flight, Redis slow or hung", cap(c.calls))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	sum := sha256.Sum256([]byte(key))
	done := make(chan *redis.Cmd, 1) // never blocks the call, waited for or not
	go func() {
		defer func() { <-c.calls }()
		done <- incr.Run(ctx, c.client, []string{c.prefix + hex.EncodeToString(sum[:])}, expires.UnixMilli())
	}()
	select {
	case cmd := <-done:
		n, err := cmd.Int64()
		if err != nil {
			return 0, fmt.Errorf("redis use counter: %w", err)
		}
		return n, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("redis use counter: no answer: %w", ctx.Err())
	}
}
