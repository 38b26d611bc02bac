package graph

import (
	"maps"
	"slices"
)

// clone returns a deep copy of s: changing either never changes the other.
// Strings, labels, placement rules and the rights of a grant or lock are
// shared, since they are replaced and never changed in place.
//
// The many short lists of the nodes (children, members, grants...) are
// copied into one backing array per kind of list, each capped at its own
// length, so that an append to one reallocates it rather than write over
// the next. A million users cost a few large allocations, not millions.
func (s *state) clone() *state {
	c := &state{
		folders: cloneTable(&s.folders),
		up:      slices.Clone(s.up),
		users:   cloneTable(&s.users),
		grants:  cloneTable(&s.grants),
		locks:   cloneTable(&s.locks),
		caps:    slices.Clone(s.caps),
		cat:     s.cat.clone(),
		rules:   s.rules,
	}
	fs := c.folders.nodes
	copyLists(fs, func(n *folderNode) *[]int32 { return &n.children })
	copyLists(fs, func(n *folderNode) *[]int32 { return &n.homes })
	copyLists(fs, func(n *folderNode) *[]int32 { return &n.extras })
	copyLists(fs, func(n *folderNode) *[]int32 { return &n.on })
	copyLists(fs, func(n *folderNode) *[]int32 { return &n.locks })
	us := c.users.nodes
	copyLists(us, func(n *userNode) *[]int32 { return &n.extras })
	copyLists(us, func(n *userNode) *[]heldGrant { return &n.held })
	copyLists(us, func(n *userNode) *[]int32 { return &n.on })
	copyLists(us, func(n *userNode) *[]int32 { return &n.locks })
	c.held = slices.Clone(s.held)
	copyLists(c.held, func(l *[]heldGrant) *[]heldGrant { return l })
	return c
}

// cloneTable copies a table's index and nodes; the nodes' lists are still
// shared and are copied by the caller.
func cloneTable[T any](t *table[T]) table[T] {
	return table[T]{byID: maps.Clone(t.byID), nodes: slices.Clone(t.nodes), live: slices.Clone(t.live), free: slices.Clone(t.free)}
}

// copyLists gives the list that field picks out of every node its own copy,
// all of them cut from one array.
func copyLists[N, E any](nodes []N, field func(*N) *[]E) {
	total := 0
	for i := range nodes {
		total += len(*field(&nodes[i]))
	}
	buf := make([]E, 0, total)
	for i := range nodes {
		l := field(&nodes[i])
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
