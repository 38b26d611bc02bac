package graph

// Scopes say where in the trees a committed change happened, so that a
// change stream can be filtered by organisation or by subtree, also when it
// is replayed long after the tree has changed.
//
// The scope of a primitive mutation is the set of folders it touches, each
// with every folder above it at the moment it was applied: a change lies in
// the subtree of F exactly when F is in its scope, and in an organisation
// exactly when the organisation's root is. What a mutation touches:
//
//   - a folder change: the folder (a move: at its old place and its new);
//   - a user change: the user's home and extra groups (a move, a removed
//     extra group: the old ones as well);
//   - a grant: its holder and its target (a user: the user's placements);
//   - a lock: its target; a placement rule: its folder;
//   - the rights catalogue and the self rights: nothing. Their scope is nil,
//     meaning every organisation: they change decisions everywhere.

// scopeOf returns the scope of primitive m, which has just been applied;
// inv is its inverse, which still names what m removed or replaced.
func (s *state) scopeOf(m, inv *Mutation) []string {
	var set slotSet
	set.reset()
	folder := func(id string) {
		if f, ok := s.folders.get(id); ok {
			set.addUp(s.up, f)
		}
	}
	user := func(id string) {
		if u, ok := s.users.get(id); ok {
			s.addMember(&set, s.user(u))
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
			ref(s.grant(g).g.Holder)
			ref(s.grant(g).g.Target)
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
		folder(inv.CreateFolder.Parent)
		return append(ids(s, &set), m.DeleteFolder.ID)
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
	return ids(s, &set)
}

// ids returns the ids of the folders in set, in the order added.
func ids(s *state, set *slotSet) []string {
	out := make([]string, set.len())
	for i := range out {
		out[i] = s.folder(set.at(i)).id
	}
	return out
}
