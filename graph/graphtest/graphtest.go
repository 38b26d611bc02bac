// Package graphtest helps tests build indexes: a clock they move by hand
// and an in-memory index that is closed when the test ends.
package graphtest

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
)

// Clock is a graph.Clock that moves only when told. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Start is the time test clocks start at unless told otherwise.
var Start = time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)

// Open returns an index over journal j (nil for memory only), with the
// bootstrap catalogue, closed when the test ends.
func Open(tb testing.TB, clock graph.Clock, j graph.Journal) *graph.Index {
	tb.Helper()
	ix, err := graph.Open(context.Background(), graph.Options{Clock: clock, Journal: j})
	if err != nil {
		tb.Fatalf("open index: %v", err)
	}
	tb.Cleanup(ix.Close)
	return ix
}

// Seed returns the seed of random case i of a property test: CANOPY_SEED
// when it is set, to replay one case, else one drawn from the clock. A
// test logs the seed of a case that fails.
func Seed(tb testing.TB, i int) uint64 {
	tb.Helper()
	if s := os.Getenv("CANOPY_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("CANOPY_SEED: %v", err)
		}
		return n
	}
	return uint64(time.Now().UnixNano()) + uint64(i)*7919
}
