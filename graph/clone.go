package graph

import (
	"maps"
	"slices"
	"unsafe"
)

// clone returns a deep copy of s: changing either never changes the other.
// Strings, labels, placement rules and the rights of a grant or lock are
// shared, since they are replaced and never changed in place.
//
// The many short lists of the nodes (children, members, grants...) are
// copied into one backing array per kind of list, each capped at its own
// length, so that an append to one reallocates it rather than write over
// the next. A million users cost a few large allocations, not millions.
//
// The copy takes its arrays from r when they fit (r may be nil): most of
// what copying a large state costs is allocating fresh memory, which r
// lets the caller do beforehand, elsewhere.
func (s *state) clone(r *room) *state {
	if r == nil {
		r = &room{}
	}
	c := &state{
		folders:   cloneTable(&s.folders, &r.folders),
		up:        cloneInto(&r.ints, s.up),
		users:     cloneTable(&s.users, &r.users),
		grants:    cloneTable(&s.grants, &r.grants),
		links:     s.links.cloneInto(&r.links),
		freeLinks: slices.Clone(s.freeLinks),
		locks:     cloneTable(&s.locks, &r.locks),
		caps:      cloneInto(&r.ints, s.caps),
		heldSum:   slices.Clone(s.heldSum),
		heldGone:  slices.Clone(s.heldGone),
		cat:       s.cat.clone(),
		rules:     s.rules,
		timed:     s.timed,
		txt:       s.txt.share(),
	}
	c.folders.key, c.users.key, c.grants.key = c.folderKey, c.userKey, c.grantKey
	for _, l := range folderLists {
		copyLists(&c.folders.nodes, &r.ints, l)
	}
	for _, l := range linkLists {
		copyLists(&c.links, &r.ints, l)
	}
	copyLists(&c.links, &r.held, linksHeld)
	c.held = s.held.cloneInto(&r.heldLists)
	copyLists(&c.held, &r.held, func(l *[]heldGrant) *[]heldGrant { return l })
	return c
}

// The nodes' lists, named once for copying them (clone) and for measuring
// them (roomNeeded).
var (
	folderLists = [...]func(*folderNode) *[]int32{
		func(n *folderNode) *[]int32 { return &n.children },
		func(n *folderNode) *[]int32 { return &n.homes },
		func(n *folderNode) *[]int32 { return &n.extras },
		func(n *folderNode) *[]int32 { return &n.on },
		func(n *folderNode) *[]int32 { return &n.locks },
	}
	linkLists = [...]func(*userLinks) *[]int32{
		func(n *userLinks) *[]int32 { return &n.on },
		func(n *userLinks) *[]int32 { return &n.locks },
		func(n *userLinks) *[]int32 { return &n.extras },
		func(n *userLinks) *[]int32 { return &n.extraAt },
	}
	linksHeld = func(n *userLinks) *[]heldGrant { return &n.held }
)

// room is memory for a copy of a state (state.clone), allocated before
// the copy: each field is a pool, of length 0, that the copy cuts its
// arrays (and the pages of its paged arrays) from.
type room struct {
	folders   []folderNode
	users     []userNode
	links     []userLinks
	grants    []grantNode
	locks     []lockNode
	ints      []int32     // up, caps and every int32 list of the nodes
	held      []heldGrant // every list of held grants
	heldLists [][]heldGrant
}

// roomSize is how many of each a room holds.
type roomSize struct{ folders, users, links, grants, locks, ints, held, heldLists int }

// roomNeeded measures the room a copy of s needs.
func (s *state) roomNeeded() roomSize {
	z := roomSize{folders: pagesFor(s.folders.nodes.len()), users: pagesFor(s.users.nodes.len()), links: pagesFor(s.links.len()), grants: pagesFor(s.grants.nodes.len()),
		locks: pagesFor(s.locks.nodes.len()), ints: len(s.up) + len(s.caps), heldLists: pagesFor(s.held.len())}
	for _, n := range s.folders.nodes.all() {
		for _, l := range folderLists {
			z.ints += len(*l(n))
		}
	}
	for _, n := range s.links.all() {
		for _, l := range linkLists {
			z.ints += len(*l(n))
		}
		z.held += len(*linksHeld(n))
	}
	for _, l := range s.held.all() {
		z.held += len(*l)
	}
	return z
}

// newRoom allocates room for z, and a little more for what is written
// before the copy is made, and touches every page of it: fresh memory is
// mapped lazily, and the first write to each page is what costs (on this
// project's machine, 0.9 s of the 1.0 s that copying a million users
// takes when nothing is prepared).
func newRoom(z roomSize) *room {
	spare := func(n int) int { return n + n/50 + 64 }
	return &room{
		folders:   faultedIn[folderNode](spare(z.folders)),
		users:     faultedIn[userNode](spare(z.users)),
		links:     faultedIn[userLinks](spare(z.links)),
		grants:    faultedIn[grantNode](spare(z.grants)),
		locks:     faultedIn[lockNode](spare(z.locks)),
		ints:      faultedIn[int32](spare(z.ints)),
		held:      faultedIn[heldGrant](spare(z.held)),
		heldLists: faultedIn[[]heldGrant](spare(z.heldLists)),
	}
}

// faultedIn returns an empty slice of capacity n whose every page has been
// written to.
func faultedIn[E any](n int) []E {
	s := make([]E, n)
	var zero E
	step := max(1, pageSize/int(unsafe.Sizeof(zero)))
	for i := 0; i < n; i += step {
		s[i] = zero
	}
	return s[:0]
}

// pageSize is the smallest page the memory is mapped in.
const pageSize = 4096

// take cuts an empty slice of capacity n from pool, or allocates one when
// the pool has not that much left.
func take[E any](pool *[]E, n int) []E {
	at := len(*pool)
	if cap(*pool)-at < n {
		return make([]E, 0, n)
	}
	*pool = (*pool)[:at+n]
	return (*pool)[at : at : at+n]
}

// cloneInto copies src into an array cut from pool.
func cloneInto[E any](pool *[]E, src []E) []E {
	if src == nil {
		return nil
	}
	return append(take(pool, len(src)), src...)
}

// cloneTable copies a table's index and nodes, the nodes into pages cut
// from pool; the nodes' lists are still shared and are copied by the
// caller.
func cloneTable[T any](t *table[T], pool *[]T) table[T] {
	return table[T]{ids: t.ids.clone(), nodes: t.nodes.cloneInto(pool), live: slices.Clone(t.live), free: slices.Clone(t.free), key: t.key}
}

// copyLists gives the list that field picks out of every node its own copy,
// all of them cut from one array, itself cut from pool.
func copyLists[N, E any](nodes *paged[N], pool *[]E, field func(*N) *[]E) {
	total := 0
	for _, n := range nodes.all() {
		total += len(*field(n))
	}
	buf := take(pool, total)
	for _, n := range nodes.all() {
		l := field(n)
		if len(*l) == 0 {
			*l = nil
			continue
		}
		at := len(buf)
		buf = append(buf, *l...)
		*l = buf[at:len(buf):len(buf)]
	}
}

// clone returns a copy of the catalogue that shares nothing it changes.
func (c *catalogue) clone() catalogue {
	return catalogue{
		slot:      maps.Clone(c.slot),
		names:     slices.Clone(c.names),
		implies:   slices.Clone(c.implies),
		closure:   slices.Clone(c.closure),
		grantedBy: slices.Clone(c.grantedBy),
		self:      c.self,
	}
}
