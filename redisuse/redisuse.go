// Package redisuse is a proxy.UseCounter in Redis, so that every replica of a
// proxy counts the uses of a presigned URL in one place and
// proxy.WithPresignedUseLimit holds across them. It lives in a module of its
// own, beside the library, so that the library needs no Redis client.
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
}

var _ proxy.UseCounter = (*Counter)(nil)

// DefaultTimeout bounds one Add.
const DefaultTimeout = 2 * time.Second

// New returns a Counter on client (a single node, a sentinel or a cluster
// client), with keys under prefix ("osproxy:uses:" when empty). Each Add is
// bounded by DefaultTimeout.
func New(client redis.UniversalClient, prefix string) *Counter {
	if prefix == "" {
		prefix = "osproxy:uses:"
	}
	return &Counter{client: client, prefix: prefix, timeout: DefaultTimeout}
}

// Add records one use of key, which expires at expires, and returns the uses
// so far. An unreachable Redis is an error, and the proxy fails closed.
func (c *Counter) Add(ctx context.Context, key string, expires time.Time) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	sum := sha256.Sum256([]byte(key))
	n, err := incr.Run(ctx, c.client, []string{c.prefix + hex.EncodeToString(sum[:])}, expires.UnixMilli()).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis use counter: %w", err)
	}
	return n, nil
}
