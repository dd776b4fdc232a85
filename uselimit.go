package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Presigned-URL use limits (WithPresignedUseLimit): a presigned URL works at
// most N times until it expires. A use is a request whose presigned signature
// verified, whatever the upstream then answers: a failed answer counts, so a
// URL cannot be retried past its limit. The counts live behind UseCounter, in
// this process by default and in a store every replica shares otherwise.

// UseCounter counts the uses of presigned URLs. Add records one use of key, a
// URL that expires at expires (the count may be forgotten after), and returns
// the uses so far, this one included. It must be safe for concurrent use; one
// that all replicas of a proxy share (for instance Redis: INCR the key, then
// PEXPIREAT it at expires) makes the limit hold across them. An error fails
// the request closed.
type UseCounter interface {
	Add(ctx context.Context, key string, expires time.Time) (int64, error)
}

// DefaultUseCounterCapacity bounds NewMemoryUseCounter's URLs by default.
const DefaultUseCounterCapacity = 100_000

// errUseCounterFull is a memory counter's answer when it tracks capacity URLs
// that have not expired: it fails closed rather than forget a count.
var errUseCounterFull = errors.New("use counter full")

// NewMemoryUseCounter returns a UseCounter of this process holding at most
// capacity URLs (DefaultUseCounterCapacity when capacity ≤ 0). Past it,
// expired URLs are dropped; if none has expired, Add fails (and so the
// request, closed) rather than forget a count that an evicted URL would get
// back.
func NewMemoryUseCounter(capacity int) UseCounter {
	if capacity <= 0 {
		capacity = DefaultUseCounterCapacity
	}
	return &memoryUses{capacity: capacity, counts: map[string]*useCount{}, now: time.Now}
}

type memoryUses struct {
	mu       sync.Mutex
	capacity int
	counts   map[string]*useCount
	now      func() time.Time
}

type useCount struct {
	n       int64
	expires time.Time
}

func (m *memoryUses) Add(_ context.Context, key string, expires time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if c, ok := m.counts[key]; ok && now.Before(c.expires) {
		c.n++
		return c.n, nil
	}
	if len(m.counts) >= m.capacity {
		for k, c := range m.counts {
			if !now.Before(c.expires) {
				delete(m.counts, k)
			}
		}
		if len(m.counts) >= m.capacity {
			return 0, errUseCounterFull
		}
	}
	m.counts[key] = &useCount{n: 1, expires: expires}
	return 1, nil
}

// errUseLimit answers a presigned URL used more often than its limit.
var errUseLimit = errAccessDenied.withMessage("This presigned URL has been used as many times as it may be.")

// countUse counts a use of a verified presigned URL against its limit. When
// the counter cannot be reached the request fails closed, with 503
// ServiceUnavailable, and the failure is logged.
func (p *Proxy) countUse(x *exchange) error {
	if p.cfg.useLimit <= 0 || x.who.presignedURL == "" {
		return nil
	}
	n, err := p.cfg.useCounter.Add(x.in.Context(), x.who.presignedURL, x.who.urlExpires)
	if err != nil {
		p.log.LogAttrs(x.in.Context(), slog.LevelWarn, "presigned-URL use counter unavailable: failing closed",
			slog.String("request_id", x.id), slog.Any("error", err))
		return errServiceUnavailable.with(fmt.Errorf("use counter: %w", err))
	}
	if n > int64(p.cfg.useLimit) {
		return errUseLimit.with(fmt.Errorf("presigned URL used %d times, limit %d", n, p.cfg.useLimit))
	}
	return nil
}
