package graph

import (
	"context"
	"fmt"
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

// SetRecordChunk sets how many records a chunk of start-up holds, for a
// test, and returns the old value.
func SetRecordChunk(n int) int { return swap(&recordChunk, n) }

// ShadowRecords returns the records of the index's shadow (nil when it has
// none) and its revision.
func ShadowRecords(ix *Index) ([]Record, uint64) {
	ix.mu.Lock()
	sh := ix.sh
	ix.mu.Unlock()
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
	v := ix.read()
	defer v.mu.RUnlock()
	timed := func(r *room) time.Duration {
		start := time.Now()
		_ = v.s.clone(r)
		return time.Since(start)
	}
	debug.FreeOSMemory()
	prepared = timed(newRoom(v.s.roomNeeded()))
	debug.FreeOSMemory()
	return prepared, timed(nil)
}

// Places checks, on both sides of the index, that every folder's childAt,
// every user's homeAt and extraAt, every grant's heldAt and onAt and
// every lock's at name where the node is in its lists, that every user's
// links are its own and the free ones empty, that the texts count as
// dead exactly the bytes no node refers to and the spare's are not
// wasteful, that each folder's heldSum
// covers its held grants and is as fresh as heldSummary promises, and
// that both sides are at one revision. It runs on the writer, which holds
// the spare.
func Places(ix *Index) error {
	var err error
	if _, qerr := ix.enqueue(context.Background(), &writeReq{ctx: context.Background(), run: func() { err = places(ix) }}); qerr != nil {
		return qerr
	}
	return err
}

func places(ix *Index) error {
	v := ix.read()
	defer v.mu.RUnlock()
	sp := ix.spare()
	if sp.rev != v.rev {
		return fmt.Errorf("the sides are at revisions %d and %d", v.rev, sp.rev)
	}
	if sp.s.txt.wasteful() {
		return fmt.Errorf("the spare's texts hold %d dead bytes of %d, after it was brought up to date", sp.s.txt.dead, sp.s.txt.size)
	}
	for _, s := range []*state{v.s, sp.s} {
		if live := liveText(s); live != s.txt.size-s.txt.dead {
			return fmt.Errorf("the live ids and names hold %d bytes, but the texts count %d put and %d dead", live, s.txt.size, s.txt.dead)
		}
		for g, live := range s.grants.live {
			n := s.grant(int32(g))
			if live && ((*s.heldList(n))[n.heldAt].grant != int32(g) || (*s.onList(n))[n.onAt] != int32(g)) {
				return fmt.Errorf("grant %s is not at its places %d and %d", s.grantID(int32(g)), n.heldAt, n.onAt)
			}
		}
		for l, live := range s.locks.live {
			if n := s.lock(int32(l)); live && (*s.lockList(n))[n.at] != int32(l) {
				return fmt.Errorf("lock %s is not at its place %d", n.l.ID, n.at)
			}
		}
		for f, live := range s.folders.live {
			list := *s.held.at(int32(f))
			if m, gone := s.heldSum[f], int(s.heldGone[f]); !m.covers(summarize(list)) || gone >= max(1, len(list)) || len(list) == 0 && m != (heldSummary{}) {
				return fmt.Errorf("folder slot %d holds %d grants summed up as %+v, but %+v are noted, %d gone since exact", f, len(list), summarize(list), m, gone)
			}
			if !live {
				continue
			}
			if p := s.up[f]; p != none {
				if at := s.folder(int32(f)).childAt; s.folder(p).children[at] != int32(f) {
					return fmt.Errorf("folder %s is not at its childAt %d", s.folderID(int32(f)), at)
				}
			}
		}
		owner := map[int32]bool{} // links slots in use or free
		for u, live := range s.users.live {
			if !live {
				continue
			}
			n := s.user(int32(u))
			if s.folder(n.home).homes[n.homeAt] != int32(u) {
				return fmt.Errorf("user %s is not at its homeAt %d", s.txt.get(n.id), n.homeAt)
			}
			if len(s.extraAt(n)) != len(s.extras(n)) {
				return fmt.Errorf("user %s has %d extras and %d places", s.txt.get(n.id), len(s.extras(n)), len(s.extraAt(n)))
			}
			if n.nx == extrasApart && len(s.extras(n)) <= inlineExtras {
				return fmt.Errorf("user %s keeps %d extra groups apart, which fit in its node", s.txt.get(n.id), len(s.extras(n)))
			}
			for k, e := range s.extras(n) {
				if s.folder(e).extras[s.extraAt(n)[k]] != int32(u) {
					return fmt.Errorf("user %s is not at its place %d in extra group %s", s.txt.get(n.id), s.extraAt(n)[k], s.folderID(e))
				}
			}
			if n.links != 0 {
				if owner[n.links-1] {
					return fmt.Errorf("user %s shares its links %d", s.txt.get(n.id), n.links-1)
				}
				owner[n.links-1] = true
			}
		}
		for _, l := range s.freeLinks {
			if owner[l] {
				return fmt.Errorf("links %d are free and in use", l)
			}
			if n := s.links.at(l); n.held != nil || n.on != nil || n.locks != nil || n.extras != nil {
				return fmt.Errorf("links %d are free and not empty", l)
			}
			owner[l] = true
		}
		if len(owner) != s.links.len() {
			return fmt.Errorf("%d links are neither in use nor free, of %d", s.links.len()-len(owner), s.links.len())
		}
	}
	return nil
}

// liveText returns the bytes of the strings the live nodes of s refer to.
func liveText(s *state) int {
	n := 0
	for i, live := range s.folders.live {
		if f := s.folder(int32(i)); live {
			n += int(f.id.n + f.name.n)
		}
	}
	for i, live := range s.users.live {
		if u := s.user(int32(i)); live {
			n += int(u.id.n + u.name.n + u.class.n)
		}
	}
	for i, live := range s.grants.live {
		if g := s.grant(int32(i)); live {
			n += int(g.id.n + g.reason.n)
		}
	}
	return n
}
