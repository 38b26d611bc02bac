package graph

// A watched user's access as one state gives it (viewer), for access
// streams (accessstream.go).

import (
	"maps"
	"slices"
)

// access is what a viewer has on one resource, as sets of rights: reached
// by a grant, denied by a lock, and allowed (reached, not denied, and the
// viewer active).
type access struct{ reach, lock, allowed rightSet }

// viewer is a watched user as one state sees them: the rights the grants
// reaching them (unexpired at streamNow) give, expanded, by target, and
// what each folder gives them, worked out once per folder.
type viewer struct {
	s      *state
	w      int32 // none when the user does not exist
	active bool
	self   rightSet
	onF    map[int32]rightSet // folder target -> rights of the grants on it
	onU    map[int32]rightSet // user target -> rights of the grants on it
	caps   rightSet
	memo   *folderMemo[access] // folder -> reach and lock from it and above (allowed unset)
}

// viewerOf returns user id as s sees them, remembering what folders give
// them in memo, which it resets.
func (s *state) viewerOf(id string, memo *folderMemo[access]) viewer {
	memo.reset(len(s.up))
	v := viewer{s: s, w: none, onF: map[int32]rightSet{}, onU: map[int32]rightSet{}, memo: memo}
	u, ok := s.users.get(id)
	if !ok {
		return v
	}
	n := s.user(u)
	v.w, v.active, v.self = u, n.active, s.cat.expand(s.cat.self)
	for _, gi := range s.reaching(n, ^rightSet(0), streamNow, false) {
		g := s.grant(gi)
		rights := s.cat.expand(g.rights)
		switch g.tkind {
		case KindFolder:
			v.onF[g.target] |= rights
		case KindUser:
			v.onU[g.target] |= rights
		default:
			v.caps |= rights
		}
	}
	return v
}

// folderTargets returns the folders the viewer's grants target, in slot
// order (so that a job's zones come out the same way every time).
func (v *viewer) folderTargets() []int32 { return slices.Sorted(maps.Keys(v.onF)) }

// deniedBy returns the rights a lock on rights denies: those that are or
// imply one of them.
func (s *state) deniedBy(rights rightSet) rightSet {
	var out rightSet
	rights.each(func(r int) { out.union(s.cat.grantedBy[r]) })
	return out
}

func (v *viewer) finish(a access) access {
	a.allowed = 0
	if v.w != none && v.active {
		a.allowed = a.reach &^ a.lock
	}
	return a
}

// bits returns what reaches and what locks folder f (which must exist),
// from f and every folder above it.
func (v *viewer) bits(f int32) access {
	if a, ok := v.memo.get(f); ok {
		return a
	}
	var a access
	if p := v.s.up[f]; p != none {
		a = v.bits(p)
	}
	a.reach |= v.onF[f]
	for _, l := range v.s.folder(f).locks {
		a.lock |= v.s.deniedBy(v.s.lock(l).rights)
	}
	v.memo.put(f, a)
	return a
}

// folderAccess is what the viewer has on folder f, which must exist.
func (v *viewer) folderAccess(f int32) access { return v.finish(v.bits(f)) }

// userAccess is what the viewer has on user u, which must exist: what its
// home and extra groups give, and what names the user.
func (v *viewer) userAccess(u int32) access {
	s := v.s
	n := s.user(u)
	a := v.bits(n.home)
	for _, e := range s.extras(n) {
		b := v.bits(e)
		a.reach |= b.reach
		a.lock |= b.lock
	}
	a.reach |= v.onU[u]
	if u == v.w {
		a.reach |= v.self
	}
	for _, l := range s.locksOn(n) {
		a.lock |= s.deniedBy(s.lock(l).rights)
	}
	return v.finish(a)
}

// capAccess is the viewer's capabilities.
func (v *viewer) capAccess() access { return v.finish(access{reach: v.caps}) }

// reachMask is every right any of the viewer's grants or self rights give.
func (v *viewer) reachMask() rightSet {
	r := v.self | v.caps
	for _, rights := range v.onF {
		r |= rights
	}
	for _, rights := range v.onU {
		r |= rights
	}
	return r
}
