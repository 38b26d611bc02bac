package graph

import (
	"runtime/debug"
	"time"
)

// swap sets *p to v and returns the old value: a test sets a tuning
// variable with it and puts the old value back when it ends.
func swap[T any](p *T, v T) T {
	old := *p
	*p = v
	return old
}

// SetLockScanCost sets lockScanCost for a test and returns the old value.
func SetLockScanCost(c int) int { return swap(&lockScanCost, c) }

// ShadowRecords returns the records of the index's shadow (nil when it has
// none) and its revision.
func ShadowRecords(ix *Index) ([]Record, uint64) {
	ix.mu.RLock()
	sh := ix.sh
	ix.mu.RUnlock()
	if sh == nil {
		return nil, 0
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	recs, err := sh.s.allRecords(nil)
	if err != nil {
		panic(err)
	}
	return recs, sh.rev
}

// SetShadowLinger sets how long a shadow outlives its last watch, for a
// test, and returns the old value.
func SetShadowLinger(d time.Duration) time.Duration { return swap(&shadowLinger, d) }

// SetShadowBacklog sets how many commits a shadow may have waiting, for a
// test, and returns the old value.
func SetShadowBacklog(n int) int { return swap(&maxShadowBacklog, n) }

// TimeCopy copies the index's state as a new shadow would and returns how
// long the copy took with its room made beforehand (what the writer waits
// for) and without. Memory is handed back to the system before each, so
// that both start from pages the process does not have, as a first copy
// does.
func TimeCopy(ix *Index) (prepared, cold time.Duration) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	timed := func(r *room) time.Duration {
		start := time.Now()
		_ = ix.s.clone(r)
		return time.Since(start)
	}
	debug.FreeOSMemory()
	prepared = timed(newRoom(ix.s.roomNeeded()))
	debug.FreeOSMemory()
	return prepared, timed(nil)
}
