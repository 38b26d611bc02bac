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
		r, err := t.s.holds(nil, "act", t.as.user, n.right, n.x, t.as.now)
		if err != nil {
			return err
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

// holds decides whether user may exercise right on x at time now, for a
// caller confined to o: the decision rule's own answer, as Check gives it.
func (s *state) holds(o Orgs, op, user, right string, x Ref, now int64) (Reason, error) {
	c := checker{now: now}
	r, err := s.resolveCheck(o, op, user, right, x, &c)
	if err != nil || r != 0 {
		return r, err
	}
	return c.decide(nil), nil
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
	case m.StartGrant != nil:
		return nil, "a grant's start"
	}
	return out, ""
}

// Reading as a user: directory reads made for user U return only what U
// may read. A get of a record U may not read is refused (ErrNotAllowed)
// naming it; a list leaves such records out, before it is paged, so the
// pages hold only what U may read. A grant is read through what it is on
// (its target; a capability grant's holder), a lock through its target.
// Everything is decided at the read's one revision and decision time.

// lens is who reads the directory: the organisations the caller is
// confined to (nil: every one) and the user it reads for ("": no user,
// every record), with the read's decision time.
type lens struct {
	orgs Orgs
	as   string
	now  int64
}

// focus sets the decision time of a read for a user, and refuses the read
// when that user is outside the caller's organisations or unknown.
func (ix *Index) focus(s *state, op string, l lens) (lens, error) {
	if l.as == "" {
		return l, nil
	}
	if err := l.orgs.see(s, op, UserRef(l.as)); err != nil {
		return l, err
	}
	if _, ok := s.users.get(l.as); !ok {
		return l, newErr(op, l.as, ErrNotFound, "reading as a user who does not exist")
	}
	l.now = ix.opts.Clock.Now().UnixNano()
	return l, nil
}

// reads reports whether the lens's user may read x (always, with none).
func (l lens) reads(s *state, x Ref) bool {
	return l.mayRead(s, "read", x) == nil
}

// readsGrant reports whether the lens's user may read grant slot g: read
// on its target, or on its holder when it grants capabilities.
func (l lens) readsGrant(s *state, g int32) bool {
	if l.as == "" {
		return true
	}
	holder, on := s.ends(g)
	if on.IsZero() {
		on = holder
	}
	return l.reads(s, on)
}

// mayRead refuses x, naming it and the reason, unless the lens's user may
// read it.
func (l lens) mayRead(s *state, op string, x Ref) error {
	if l.as == "" {
		return nil
	}
	r, err := s.holds(l.orgs, op, l.as, "read", x, l.now)
	if err != nil {
		return err
	}
	if r != ReasonAllowed {
		return newErr(op, x.ID, ErrNotAllowed, "reading as %s, who lacks read on %s (%s)", l.as, x, r)
	}
	return nil
}

// Reader is the directory as one user may read it (see the comment above
// lens): the reads of Index, each returning only what the user may read.
// It is cheap to make, one for each call.
type Reader struct {
	ix *Index
	l  lens
}

// ReadAs returns the directory as user may read it.
func (ix *Index) ReadAs(user string) *Reader {
	return &Reader{ix: ix, l: lens{as: user}}
}

// ReadAs returns the directory of the caller's organisations as user may
// read it; user must be of those organisations.
func (c *Confined) ReadAs(user string) *Reader {
	return &Reader{ix: c.ix, l: lens{orgs: c.orgs, as: user}}
}

// GetFolder is Index.GetFolder, refused when the user may not read it.
func (r *Reader) GetFolder(id string) (Folder, *PlacementRule, uint64, error) {
	return r.ix.getFolder(r.l, id)
}

// GetUser is Index.GetUser, refused when the user may not read it.
func (r *Reader) GetUser(id string) (User, uint64, error) {
	return r.ix.getUser(r.l, id)
}

// ListFolders is Index.ListFolders with only the folders the user may read.
func (r *Reader) ListFolders(parent string, subtree bool, after string, limit int) ([]Folder, string, uint64, error) {
	return r.ix.listFolders(r.l, parent, subtree, after, limit)
}

// ListUsers is Index.ListUsers with only the users the user may read.
func (r *Reader) ListUsers(folder string, subtree bool, after string, limit int) ([]User, string, uint64, error) {
	return r.ix.listUsers(r.l, folder, subtree, after, limit)
}

// ListGrants is Index.ListGrants with only the grants the user may read.
func (r *Reader) ListGrants(holder, target Ref, after string, limit int) ([]Grant, string, uint64, error) {
	return r.ix.listGrants(r.l, holder, target, after, limit)
}

// ListLocks is Index.ListLocks with only the locks the user may read.
func (r *Reader) ListLocks(target Ref, after string, limit int) ([]Lock, string, uint64, error) {
	return r.ix.listLocks(r.l, target, after, limit)
}
