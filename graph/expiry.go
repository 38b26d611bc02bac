package graph

import (
	"cmp"
	"container/heap"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SystemActor is the actor of the changes the service makes by itself, such
// as recording that a grant has expired.
const SystemActor = "system"

// dueKind is what falls due at a time: the service records each when it
// comes, as SystemActor.
type dueKind uint8

const (
	dueStart  dueKind = iota // a grant's StartsAt: start_grant
	dueExpiry                // a grant's ExpiresAt: expire_grant
	dueEnd                   // a user's ActiveUntil: set_user_state disabled
)

// expiryItem is something expected to fall due at at (unix nanoseconds):
// a grant's start or expiry, or the end of a user's activity.
type expiryItem struct {
	at   int64
	kind dueKind
	id   string
}

// expiries is a min-heap of the starts, expiries and ends not yet
// recorded. Entries go stale when their grant or user is removed,
// replaced or recorded; they are skipped when met rather than searched
// for, so the heap may hold some that no longer count.
type expiries []expiryItem

func (h expiries) Len() int { return len(h) }
func (h expiries) Less(i, j int) bool {
	return compareDue(h[i], h[j]) < 0
}

// compareDue orders what falls due by time, then kind, then id: the order
// the service records it in.
func compareDue(a, b expiryItem) int {
	return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.kind, b.kind), strings.Compare(a.id, b.id))
}
func (h expiries) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *expiries) Push(x any)   { *h = append(*h, x.(expiryItem)) }
func (h *expiries) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// pending reports whether the grant or user an entry names still awaits
// its change.
func (s *state) pending(e expiryItem) bool {
	if e.kind == dueEnd {
		u, ok := s.users.get(e.id)
		if !ok {
			return false
		}
		n := s.user(u)
		return n.active && n.timed && s.linksOf(n).until == e.at
	}
	i, ok := s.grants.get(e.id)
	if !ok {
		return false
	}
	g := s.grant(i)
	if e.kind == dueStart {
		return !g.started && g.starts == e.at && e.at != 0
	}
	return g.expires == e.at && !g.marked
}

// dueOf returns what a committed mutation makes fall due later.
func dueOf(m *Mutation) []expiryItem {
	var out []expiryItem
	switch {
	case m.AddGrant != nil:
		g := m.AddGrant
		if !g.StartsAt.IsZero() && !g.Started {
			out = append(out, expiryItem{at: unixNano(g.StartsAt), kind: dueStart, id: g.ID})
		}
		if !g.ExpiresAt.IsZero() && !g.Expired {
			out = append(out, expiryItem{at: unixNano(g.ExpiresAt), kind: dueExpiry, id: g.ID})
		}
	case m.CreateUser != nil:
		if u := m.CreateUser; !u.ActiveUntil.IsZero() {
			out = append(out, expiryItem{at: unixNano(u.ActiveUntil), kind: dueEnd, id: u.ID})
		}
	case m.SetUserState != nil:
		if c := m.SetUserState; !c.ActiveUntil.IsZero() {
			out = append(out, expiryItem{at: unixNano(c.ActiveUntil), kind: dueEnd, id: c.ID})
		}
	}
	return out
}

// noteExpiries adds what the mutations of a committed batch make fall due
// later; s is the state the batch has been applied to. ix.mu must be held.
func (ix *Index) noteExpiries(s *state, muts []Mutation) {
	added := false
	for i := range muts {
		for _, e := range dueOf(&muts[i]) {
			heap.Push(&ix.exp, e)
			added = true
		}
	}
	// Entries of removed grants and users are dropped when they reach the
	// top; a store that adds and removes many would otherwise keep them
	// until their time, so rebuild when they outnumber the most that can
	// be live (a start and an expiry per grant, an end per timed user).
	if added && len(ix.exp) > 1024 && len(ix.exp) > 2*(2*s.grants.len()+s.timed) {
		ix.exp = ix.exp[:0]
		ix.rebuildExpiries(s)
	}
	if added {
		select {
		case ix.expWake <- struct{}{}:
		default:
		}
	}
}

// rebuildExpiries fills the heap from the grants of s. ix.mu must be held
// (or the index not yet shared).
func (ix *Index) rebuildExpiries(s *state) {
	for i, live := range s.grants.live {
		if !live {
			continue
		}
		g := s.grant(int32(i))
		if g.expires != 0 && !g.marked {
			ix.exp = append(ix.exp, expiryItem{at: g.expires, kind: dueExpiry, id: s.grantID(int32(i))})
		}
		if g.starts != 0 && !g.started {
			ix.exp = append(ix.exp, expiryItem{at: g.starts, kind: dueStart, id: s.grantID(int32(i))})
		}
	}
	if s.timed > 0 { // else start-up need not visit every user
		for u, live := range s.users.live {
			if n := s.user(int32(u)); live && n.active && n.timed {
				ix.exp = append(ix.exp, expiryItem{at: s.linksOf(n).until, kind: dueEnd, id: s.userID(int32(u))})
			}
		}
	}
	heap.Init(&ix.exp)
}

// dropStale pops the entries at the top of the heap that no longer count
// in s, a committed state. ix.mu must be held.
func (ix *Index) dropStale(s *state) {
	for len(ix.exp) > 0 && !s.pending(ix.exp[0]) {
		heap.Pop(&ix.exp)
	}
}

// due returns the changes that record what has fallen due at or before
// now and is not yet recorded in s (starts, expiries, ends), earliest
// first, at most MaxBatchSize. The heap is only read, since s is the
// writer's trial state: if the commit fails, the same are due next time.
func (ix *Index) due(s *state, now int64) []Mutation {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var due []expiryItem
	seen := map[expiryItem]bool{}
	// A heap's entries at or before now form a subtree at its top.
	var visit func(k int)
	visit = func(k int) {
		if k >= len(ix.exp) || ix.exp[k].at > now {
			return
		}
		if e := ix.exp[k]; !seen[e] && s.pending(e) {
			seen[e] = true
			due = append(due, e)
		}
		visit(2*k + 1)
		visit(2*k + 2)
	}
	visit(0)
	slices.SortFunc(due, compareDue)
	if len(due) > MaxBatchSize {
		due = due[:MaxBatchSize]
	}
	muts := make([]Mutation, len(due))
	for i, e := range due {
		switch e.kind {
		case dueStart:
			muts[i] = Mutation{StartGrant: &Delete{ID: e.id}}
		case dueExpiry:
			muts[i] = Mutation{ExpireGrant: &Delete{ID: e.id}}
		case dueEnd:
			muts[i] = Mutation{SetUserState: &StateChange{ID: e.id, State: StateDisabled}}
		}
	}
	return muts
}

// ExpireDue records, as one batch written by SystemActor, everything whose
// time has come by the clock: every grant whose start has passed has
// started (start_grant), every grant whose expiry has passed has expired
// (expire_grant), and every user whose ActiveUntil has passed is disabled
// (set_user_state), so that change-stream subscribers learn the access
// began or ended. It returns the batch's revision and
// how many grants it recorded; with none due it writes nothing and
// returns 0, 0. Each grant's expiry is recorded once, also across restarts.
func (ix *Index) ExpireDue(ctx context.Context) (uint64, int, error) {
	req := &writeReq{ctx: ctx, actor: SystemActor, expire: true}
	rev, err := ix.enqueue(ctx, req)
	if err != nil {
		return 0, 0, fmt.Errorf("expire due grants: %w", err)
	}
	return rev, len(req.muts), nil
}

// NextExpiry returns the earliest expiry not yet recorded, and false when
// no grant awaits one. (The heap's top is pruned of grants gone or
// recorded at every commit.)
func (ix *Index) NextExpiry() (time.Time, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(ix.exp) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ix.exp[0].at).UTC(), true
}

// expiryRetry is how long RunExpiry waits after a failed write.
const expiryRetry = time.Second

// RunExpiry records expiries as they fall due, until ctx ends or the index
// is closed: it sleeps until the earliest pending expiry (woken early when
// a grant with an expiry is added) and then calls ExpireDue. Errors are
// passed to onErr (which may be nil) and retried after a second.
func (ix *Index) RunExpiry(ctx context.Context, onErr func(error)) {
	for {
		wait := time.Duration(-1)
		if _, _, err := ix.ExpireDue(ctx); err != nil {
			if ctx.Err() != nil || ix.isClosed() {
				return
			}
			if onErr != nil {
				onErr(err)
			}
			wait = expiryRetry
		} else if next, ok := ix.NextExpiry(); ok {
			wait = max(next.Sub(ix.opts.Clock.Now()), 0)
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if wait >= 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
		case <-ix.stop:
		case <-ix.expWake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil || ix.isClosed() {
			return
		}
	}
}

// isClosed reports whether Close has been called.
func (ix *Index) isClosed() bool {
	select {
	case <-ix.stop:
		return true
	default:
		return false
	}
}
