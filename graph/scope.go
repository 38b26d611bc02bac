package graph

import "slices"

// Scopes say where in the trees a committed change happened, so that a
// change stream can be filtered by organisation or by subtree, also when it
// is replayed long after the tree has changed.
//
// The scope of a primitive mutation is the set of folders it touches, each
// with every folder above it at the moment it was applied: a change lies in
// the subtree of F exactly when F is in its scope, and in an organisation
// exactly when the organisation's root is.
//
// A commit keeps its scopes compactly, so that their cost is proportional
// to the commit and not to its size times the depth of the tree: its
// Places hold every path from a root down to a touched folder once, each
// place naming its parent place, and Touched[i] names the places mutation
// i touched. A thousand folders created in a chain cost a thousand places,
// not half a million names. What a mutation touches:
//
//   - a folder change: the folder (a move: at its old place and its new);
//   - a user change: the user's home and extra groups (a move, a removed
//     extra group: the old ones as well);
//   - a grant: its holder and its target (a user: the user's placements);
//   - a lock: its target; a placement rule: its folder;
//   - the rights catalogue and the self rights: nothing. Their scope is nil,
//     meaning every organisation: they change decisions everywhere.

// Place is one folder of a commit's scope table (Commit.Places): its id
// and the index of the place above it at the time, -1 for a root. A folder
// that moved within the batch has a place for each of its positions.
type Place struct {
	ID     string `json:"id"`
	Parent int32  `json:"parent"`
}

// scopeTable builds a commit's places, each path once.
type scopeTable struct {
	places []Place
	index  map[Place]int32
	// bySlot remembers the place of a folder slot while no folder of the
	// batch has moved or gone; scopeOf forgets it all when one does.
	bySlot map[int32]int32
}

func newScopeTable() *scopeTable {
	return &scopeTable{index: map[Place]int32{}, bySlot: map[int32]int32{}}
}

// place returns the index of the place for id under parent, adding it.
func (t *scopeTable) place(id string, parent int32) int32 {
	p := Place{ID: id, Parent: parent}
	if k, ok := t.index[p]; ok {
		return k
	}
	k := int32(len(t.places))
	t.places = append(t.places, p)
	t.index[p] = k
	return k
}

// path returns the place of folder slot f as the tree is now, adding it
// and every folder above it.
func (t *scopeTable) path(s *state, f int32) int32 {
	if k, ok := t.bySlot[f]; ok {
		return k
	}
	parent := int32(-1)
	if up := s.up[f]; up != none {
		parent = t.path(s, up)
	}
	k := t.place(s.folderID(f), parent)
	t.bySlot[f] = k
	return k
}

// scopeOf returns the places primitive m touched (see the package
// comment above), which has just been applied; inv is its inverse, which
// still names what m removed or replaced. It returns nil for a change to
// the whole service, and an empty list for one that touched nothing.
func (t *scopeTable) scopeOf(s *state, m, inv *Mutation) []int32 {
	if (m.MoveFolder != nil || m.DeleteFolder != nil) && len(t.bySlot) > 0 {
		t.bySlot = map[int32]int32{} // paths below have changed, or a slot may be reused
	}
	out := []int32{}
	folder := func(id string) {
		if f, ok := s.folders.get(id); ok {
			out = append(out, t.path(s, f))
		}
	}
	member := func(u *userNode) {
		out = append(out, t.path(s, u.home))
		for _, e := range s.extras(u) {
			out = append(out, t.path(s, e))
		}
	}
	user := func(id string) {
		if u, ok := s.users.get(id); ok {
			member(s.user(u))
		}
	}
	ref := func(r Ref) {
		switch r.Kind {
		case KindFolder:
			folder(r.ID)
		case KindUser:
			user(r.ID)
		}
	}
	grant := func(id string) {
		if g, ok := s.grants.get(id); ok {
			holder, target := s.ends(g)
			ref(holder)
			ref(target)
		}
	}
	switch {
	case m.CreateFolder != nil:
		folder(m.CreateFolder.ID)
	case m.RenameFolder != nil:
		folder(m.RenameFolder.ID)
	case m.RelabelFolder != nil:
		folder(m.RelabelFolder.ID)
	case m.MoveFolder != nil:
		folder(m.MoveFolder.ID)
		folder(inv.MoveFolder.To)
	case m.DeleteFolder != nil:
		// Gone now: its place was under its parent.
		parent := int32(-1)
		if p, ok := s.folders.get(inv.CreateFolder.Parent); ok {
			parent = t.path(s, p)
		}
		out = append(out, t.place(m.DeleteFolder.ID, parent))
	case m.CreateUser != nil:
		user(m.CreateUser.ID)
	case m.UpdateUser != nil:
		user(m.UpdateUser.ID)
	case m.MoveUser != nil:
		user(m.MoveUser.ID)
		folder(inv.MoveUser.To)
	case m.SetUserState != nil:
		user(m.SetUserState.ID)
	case m.DeleteUser != nil:
		folder(inv.CreateUser.Home)
		for _, e := range inv.CreateUser.Extras {
			folder(e)
		}
	case m.AddExtraGroup != nil:
		user(m.AddExtraGroup.User)
	case m.DelExtraGroup != nil:
		user(m.DelExtraGroup.User)
		folder(m.DelExtraGroup.Folder)
	case m.AddGrant != nil:
		grant(m.AddGrant.ID)
	case m.RemoveGrant != nil:
		ref(inv.AddGrant.Holder)
		ref(inv.AddGrant.Target)
	case m.ExpireGrant != nil:
		grant(m.ExpireGrant.ID)
	case m.StartGrant != nil:
		grant(m.StartGrant.ID)
	case m.AddLock != nil:
		ref(m.AddLock.Target)
	case m.RemoveLock != nil:
		ref(inv.AddLock.Target)
	case m.SetRule != nil:
		folder(m.SetRule.Folder)
	case m.RemoveRule != nil:
		folder(m.RemoveRule.ID)
	default: // the catalogue and the self rights
		return nil
	}
	return out
}

// InScope reports whether mutation i of the commit touched a folder for
// which in is true, or one below such a folder where it then was. A
// change to the whole service (no places) is in every scope, and so is
// every change of a commit that kept no scopes (a log written before they
// were kept).
func (c *Commit) InScope(i int, in func(folder string) bool) bool {
	if len(c.Touched) != len(c.Mutations) || c.Touched[i] == nil {
		return true
	}
	for _, k := range c.Touched[i] {
		for ; k >= 0 && int(k) < len(c.Places); k = c.Places[k].Parent {
			if in(c.Places[k].ID) {
				return true
			}
		}
	}
	return false
}

// InOrgs reports whether mutation i of the commit may be shown to a
// caller confined to o: a change to the whole service (the catalogue, the
// self rights) is, since it changes decisions in o too; any other change
// is when it touched a folder of o. Unlike InScope it is strict: a change
// of a commit that kept no scopes is not shown, since nothing says where
// it was.
func (c *Commit) InOrgs(i int, o Orgs) bool {
	m := &c.Mutations[i]
	if m.PutRight != nil || m.DeleteRight != nil || m.SetSelfRights != nil {
		return true
	}
	if len(c.Touched) != len(c.Mutations) || c.Touched[i] == nil {
		return false
	}
	for _, k := range c.Touched[i] {
		if int(k) < len(c.Places) && o.placeIn(c.Places, k) {
			return true
		}
	}
	return false
}

// Scope returns the folders of mutation i's scope, sorted, and whether
// the commit kept one for it (false for a change to the whole service, or
// an old log's). It is for tests and tools; streams filter with InScope.
func (c *Commit) Scope(i int) ([]string, bool) {
	if len(c.Touched) != len(c.Mutations) || c.Touched[i] == nil {
		return nil, false
	}
	set := map[string]bool{}
	for _, k := range c.Touched[i] {
		for ; k >= 0 && int(k) < len(c.Places); k = c.Places[k].Parent {
			set[c.Places[k].ID] = true
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, true
}

// PlacesFromScopes converts the scopes of a log written before places were
// kept (each a list of folders, ancestors included) to places and touched
// lists that select exactly the same changes: every listed folder a place
// of its own.
func PlacesFromScopes(scopes [][]string) ([]Place, [][]int32) {
	t := newScopeTable()
	touched := make([][]int32, len(scopes))
	for i, sc := range scopes {
		if sc == nil {
			continue
		}
		touched[i] = []int32{}
		for _, id := range sc {
			touched[i] = append(touched[i], t.place(id, -1))
		}
	}
	return t.places, touched
}
