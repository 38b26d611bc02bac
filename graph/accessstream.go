package graph

import (
	"fmt"
)

// Access streams follow the effective access of a few watched users: after
// each committed primitive mutation, what each of them gained and lost.
//
// What a user has is stated as regions, never as lists of records: a
// folder subtree with its members, one user, or the capabilities, each
// optionally minus some subtrees and users. A change is computed where it
// can happen only (the subtree a grant targets, a moved folder's subtree,
// one user...), by comparing the state before the primitive with the state
// after it: the primitive is undone and redone in place, on the index's
// shadow copy (shadow.go), as many times as the comparison needs.
//
// Within a candidate subtree, the folders fall into zones: a zone starts at
// the candidate itself, at the target of one of the user's grants or at a
// lock's target, and runs down to the next such folder. Every folder of a
// zone has the zone's access, before and after, so the folders' change is
// the zones' change. A user placed in one folder only, with no grant or
// lock of its own, has its folder's access; the others (extra groups, locks
// on them, the watched user) are evaluated one by one where a zone changed.
//
// Access streams count a grant until its expiry is recorded (expiredMark),
// so that they follow committed changes and never the clock.

// AccessRegion is a set of resources and rights over it. On is a folder
// (its subtree and every member of it), a user, or the zero Ref for the
// capabilities; Except lists folders (with their subtrees and members) and
// users that are not part of it. A region is read against the tree as it is
// right after the change that reports it.
type AccessRegion struct {
	Rights []string `json:"rights"`
	On     Ref      `json:"on,omitzero"`
	Except []Ref    `json:"except,omitempty"`
}

// AccessChange is what one mutation of a commit changed in a watched user's
// effective access. Gained and Lost never overlap. Access to a record that
// is deleted ends with it and is not listed.
type AccessChange struct {
	User string
	// Mutation is the index in Commit.Mutations of the change that caused
	// it; -1 for the access a stream starts from.
	Mutation int
	Gained   []AccessRegion
	Lost     []AccessRegion
}

// applyWatched applies a committed batch to s primitive by primitive and
// returns users' access changes. On error nothing is applied.
func applyWatched(s *state, muts []Mutation, users []string) ([]AccessChange, error) {
	t := &txn{s: s}
	var out []AccessChange
	for i := range muts {
		if err := t.apply(&muts[i]); err != nil {
			t.rollbackTo(0)
			return nil, err
		}
		out = append(out, t.accessChanges(users, i)...)
	}
	return out, nil
}

// startAccess is everything user has in s, as the Gained regions of a
// change with Mutation -1. The user must exist.
func startAccess(s *state, user string) AccessChange {
	j := &accessJob{w: user, full: true, rights: ^rightSet(0), caps: true}
	j.v2 = s.viewerOf(user, &s.scratch().after)
	j.v1 = s.viewerOf("", &s.scratch().before) // nobody: nothing before
	j.addReach(&j.v2)
	j.run(s, func() {})
	return j.change(s, -1)
}

// accessChanges compares, for each user, the state before the last
// primitive t applied (the i-th of its batch) with the state after it.
func (t *txn) accessChanges(users []string, i int) []AccessChange {
	s := t.s
	last := len(t.done) - 1
	m, inv := t.done[last], t.undo[last]
	var jobs []*accessJob
	for _, w := range users {
		if j := s.accessPlan(&m, &inv, w); j != nil {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	after := true
	flip := func() {
		if after {
			t.rollbackTo(last)
		} else if err := t.apply(&m); err != nil {
			panic(fmt.Sprintf("graph: redo of %v failed: %v", m, err))
		}
		after = !after
	}
	var out []AccessChange
	for _, j := range jobs {
		// One job at a time: each flips the state an even number of times.
		j.v2 = s.viewerOf(j.w, &s.scratch().after)
		j.addReach(&j.v2)
		flip()
		j.v1 = s.viewerOf(j.w, &s.scratch().before)
		j.addReach(&j.v1)
		flip()
		j.run(s, flip)
		if ch := j.change(s, i); len(ch.Gained)+len(ch.Lost) > 0 {
			out = append(out, ch)
		}
	}
	return out
}

// lockScanCost is what testing one lock against the candidates costs, in
// folders walked: below it, walking the candidate subtrees is cheaper.
var lockScanCost = 12

// accessScratch is memory access jobs reuse from one to the next: they
// run one at a time, on the shadow's goroutine. Maps that grew to a
// hundred thousand folders for every large job were half of what the
// jobs cost.
type accessScratch struct {
	before, after folderMemo[access] // the viewers' (viewer.memo)
	zones         folderMemo[int32]  // the zone of each folder met (accessJob.zoneAt)
}

// scratch returns s's access scratch, making it on first use.
func (s *state) scratch() *accessScratch {
	if s.jobs == nil {
		s.jobs = &accessScratch{}
	}
	return s.jobs
}

// folderMemo remembers a value per folder slot for one job. A slot's
// value counts only when its stamp is the current generation, so
// starting afresh costs nothing however many folders the last job met.
type folderMemo[V any] struct {
	gen   uint32
	stamp []uint32
	val   []V
}

// reset forgets every value, with room for n folder slots.
func (m *folderMemo[V]) reset(n int) {
	m.grow(n)
	if m.gen++; m.gen == 0 { // wrapped: old stamps could match again
		clear(m.stamp)
		m.gen = 1
	}
}

func (m *folderMemo[V]) grow(n int) {
	if n > len(m.stamp) {
		n += n / 8
		m.stamp = append(m.stamp, make([]uint32, n-len(m.stamp))...)
		m.val = append(m.val, make([]V, n-len(m.val))...)
	}
}

func (m *folderMemo[V]) get(f int32) (V, bool) {
	if int(f) < len(m.stamp) && m.stamp[f] == m.gen {
		return m.val[f], true
	}
	var zero V
	return zero, false
}

func (m *folderMemo[V]) put(f int32, v V) {
	m.grow(int(f) + 1)
	m.stamp[f], m.val[f] = m.gen, v
}
