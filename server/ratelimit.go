package server

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/time/rate"
)

// RateLimit limits each caller's calls: PerSecond on average, Burst at
// once. A BatchCheck or a stream counts as one call.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// maxLimited is how many callers' buckets are kept before they are all
// dropped and start full again (callers are few when tokens name them).
const maxLimited = 10_000

// limiter keeps a token bucket per caller; it implements go-grpc-middleware's
// ratelimit.Limiter.
type limiter struct {
	rl     RateLimit
	tokens *Tokens

	mu      sync.Mutex // guards buckets
	buckets map[string]*rate.Limiter
}

func newLimiter(rl RateLimit, tokens *Tokens) *limiter {
	return &limiter{rl: rl, tokens: tokens, buckets: map[string]*rate.Limiter{}}
}

// caller names whom to count a call against: the token's name, else the
// client certificate's subject, else the peer's host (callerName).
func (l *limiter) caller(ctx context.Context) string { return l.tokens.callerName(ctx) }

// Limit refuses the call when its caller's bucket is empty.
func (l *limiter) Limit(ctx context.Context) error {
	who := l.caller(ctx)
	l.mu.Lock()
	b, ok := l.buckets[who]
	if !ok {
		if len(l.buckets) >= maxLimited {
			l.buckets = map[string]*rate.Limiter{}
		}
		b = rate.NewLimiter(rate.Limit(l.rl.PerSecond), l.rl.Burst)
		l.buckets[who] = b
	}
	l.mu.Unlock()
	if !b.Allow() {
		return fmt.Errorf("caller %q is over its limit of %g calls/s (burst %d)", who, l.rl.PerSecond, l.rl.Burst)
	}
	return nil
}
