package graph

// Acting as a user: a batch written on behalf of user U is allowed only
// when, before each of its mutations, in the state the earlier ones left,
// U holds the rights that mutation needs (DESIGN.md section 5):
//
//	create a folder under P                       edit on P
//	rename, relabel or delete folder X            edit on X
//	move folder X under Q                         edit on X and on Q
//	create a user in folder F (and extra groups)  edit on F (and on each)
//	update, disable, enable, archive, delete V    edit on V
//	move user V to F; add or remove extra group F edit on V and on F
//	add or remove a grant with target T           assign on T, and every right of the grant on T
//	add or remove a capability grant of holder H  assign on H, and every capability granted
//	add or remove a lock on T                     assign on T
//	placement rules, the catalogue, self rights,
//	a new organisation                            never on behalf of a user
//
// "Holds" is the decision rule's own answer (Check allowed), at the
// batch's decision time.

// actingAs is the user a batch is written for and the decision time.
type actingAs struct {
	user string
	now  int64
}

// need is one right a mutation needs on one object.
type need struct {
	right string
	x     Ref
}

// mayAct refuses m, naming the right that is missing and the object,
// unless t.as holds every right m needs in t's state.
func (t *txn) mayAct(m *Mutation) error {
	op, id, _ := m.op()
	needs, never := t.needs(m)
	if never != "" {
		return newErr(op, id, ErrNotAllowed, "%s is never written on behalf of a user (acting as %s)", never, t.as.user)
	}
	for _, n := range needs {
		c := checker{now: t.as.now}
		r, err := t.s.resolveCheck(nil, "act", t.as.user, n.right, n.x, &c)
		if err != nil {
			return err
		}
		if r == 0 {
			r = c.decide(nil)
		}
		if r != ReasonAllowed {
			what := "nothing (a capability)"
			if !n.x.IsZero() {
				what = n.x.String()
			}
			return newErr(op, id, ErrNotAllowed, "acting as %s, who lacks %s on %s (%s)", t.as.user, n.right, what, r)
		}
	}
	return nil
}

// needs lists the rights m needs, or says what m is when it is never
// written on behalf of a user.
func (t *txn) needs(m *Mutation) (out []need, never string) {
	edit := func(x Ref) { out = append(out, need{"edit", x}) }
	grant := func(g Grant) {
		on := g.Target
		if on.IsZero() {
			on = g.Holder // a capability: assign on its holder
		}
		out = append(out, need{"assign", on})
		for _, r := range g.Rights {
			out = append(out, need{r, g.Target})
		}
	}
	switch {
	case m.CreateFolder != nil:
		if m.CreateFolder.Parent == "" {
			return nil, "a new organisation"
		}
		edit(FolderRef(m.CreateFolder.Parent))
	case m.RenameFolder != nil:
		edit(FolderRef(m.RenameFolder.ID))
	case m.RelabelFolder != nil:
		edit(FolderRef(m.RelabelFolder.ID))
	case m.DeleteFolder != nil:
		edit(FolderRef(m.DeleteFolder.ID))
	case m.MoveFolder != nil:
		edit(FolderRef(m.MoveFolder.ID))
		edit(FolderRef(m.MoveFolder.To))
	case m.CreateUser != nil:
		edit(FolderRef(m.CreateUser.Home))
		for _, f := range m.CreateUser.Extras {
			edit(FolderRef(f))
		}
	case m.UpdateUser != nil:
		edit(UserRef(m.UpdateUser.ID))
	case m.SetUserState != nil:
		edit(UserRef(m.SetUserState.ID))
	case m.DeleteUser != nil:
		edit(UserRef(m.DeleteUser.ID))
	case m.MoveUser != nil:
		edit(UserRef(m.MoveUser.ID))
		edit(FolderRef(m.MoveUser.To))
	case m.AddExtraGroup != nil:
		edit(UserRef(m.AddExtraGroup.User))
		edit(FolderRef(m.AddExtraGroup.Folder))
	case m.DelExtraGroup != nil:
		edit(UserRef(m.DelExtraGroup.User))
		edit(FolderRef(m.DelExtraGroup.Folder))
	case m.AddGrant != nil:
		grant(*m.AddGrant)
	case m.RemoveGrant != nil:
		if i, ok := t.s.grants.get(m.RemoveGrant.ID); ok {
			grant(t.s.grantView(i))
		} // else apply says it does not exist
	case m.AddLock != nil:
		out = append(out, need{"assign", m.AddLock.Target})
	case m.RemoveLock != nil:
		if i, ok := t.s.locks.get(m.RemoveLock.ID); ok {
			out = append(out, need{"assign", t.s.lockView(i).Target})
		}
	case m.SetRule != nil, m.RemoveRule != nil:
		return nil, "a placement rule"
	case m.PutRight != nil, m.DeleteRight != nil:
		return nil, "the rights catalogue"
	case m.SetSelfRights != nil:
		return nil, "the self rights"
	case m.ExpireGrant != nil:
		return nil, "a grant's expiry"
	}
	return out, ""
}
