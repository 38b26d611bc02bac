package graph

// The writes of grants and locks (txn, apply.go).

import "time"

// resolve finds the slot r names and the root of its organisation.
func (t *txn) resolve(op, id, what string, r Ref) (slot, org int32, err error) {
	s := t.s
	switch r.Kind {
	case KindFolder:
		f, ok := s.folders.get(r.ID)
		if !ok {
			return none, none, newErr(op, id, ErrNotFound, "%s folder %q does not exist", what, r.ID)
		}
		return f, s.root(f), nil
	case KindUser:
		u, ok := s.users.get(r.ID)
		if !ok {
			return none, none, newErr(op, id, ErrNotFound, "%s user %q does not exist", what, r.ID)
		}
		return u, s.root(s.user(u).home), nil
	case KindNone:
		if r.ID != "" {
			return none, none, newErr(op, id, ErrInvalid, "%s %q does not say whether it is a folder or a user", what, r.ID)
		}
		return none, none, nil
	}
	return none, none, newErr(op, id, ErrInvalid, "%s has an unknown kind %d", what, r.Kind)
}

func (t *txn) rights(op, id string, names []string) (rightSet, []string, error) {
	if len(names) == 0 {
		return rightSet(0), nil, newErr(op, id, ErrInvalid, "no rights given")
	}
	names = sortedSet(names)
	set, bad, ok := t.s.cat.set(names)
	if !ok {
		return set, nil, newErr(op, id, ErrUnknownRight, "right %q is not in the catalogue", bad)
	}
	return set, names, nil
}

func (t *txn) addGrant(op string, g Grant) error {
	s := t.s
	_, taken := s.grants.get(g.ID)
	if err := checkNewID(op, "grant", g.ID, taken); err != nil {
		return err
	}
	if g.Holder.IsZero() {
		return newErr(op, g.ID, ErrInvalid, "a grant needs a holder (a user or a folder)")
	}
	if err := checkText(op, g.ID, "reason", g.Reason); err != nil {
		return err
	}
	holder, horg, err := t.resolve(op, g.ID, "holder", g.Holder)
	if err != nil {
		return err
	}
	target, torg, err := t.resolve(op, g.ID, "target", g.Target)
	if err != nil {
		return err
	}
	if target != none && horg != torg {
		return newErr(op, g.ID, ErrCrossOrg, "holder %v and target %v are in different organisations", g.Holder, g.Target)
	}
	set, names, err := t.rights(op, g.ID, g.Rights)
	if err != nil {
		return err
	}
	g.Rights = names
	if !g.ExpiresAt.IsZero() {
		g.ExpiresAt = g.ExpiresAt.UTC()
	} else if g.Expired {
		return newErr(op, g.ID, ErrInvalid, "a grant that never expires cannot be marked expired")
	}
	if !g.StartsAt.IsZero() {
		g.StartsAt = g.StartsAt.UTC()
		if !g.ExpiresAt.IsZero() && !g.StartsAt.Before(g.ExpiresAt) {
			return newErr(op, g.ID, ErrInvalid, "the grant starts at %s, not before it expires at %s",
				g.StartsAt.Format(time.RFC3339Nano), g.ExpiresAt.Format(time.RFC3339Nano))
		}
	} else if g.Started {
		return newErr(op, g.ID, ErrInvalid, "a grant with no start cannot be marked started")
	}
	exp, start := expiresOf(g), startsOf(g)
	i := s.grants.insert(g.ID, grantNode{holder: holder, target: target, rights: set, expires: exp, starts: start,
		hkind: g.Holder.Kind, tkind: g.Target.Kind, marked: g.Expired, started: g.Started,
		expiresAt: instantOf(g.ExpiresAt), startsAt: instantOf(g.StartsAt), id: s.txt.put(g.ID), reason: s.txt.put(g.Reason)})
	s.listGrant(i, heldGrant{rights: set, expires: exp, starts: start, target: target, grant: i, tkind: g.Target.Kind})
	t.record(Mutation{AddGrant: &g}, Mutation{RemoveGrant: &Delete{ID: g.ID}})
	return nil
}

func (t *txn) removeGrant(op string, d Delete) error {
	s := t.s
	i, ok := s.grants.get(d.ID)
	if !ok {
		return newErr(op, d.ID, ErrNotFound, "no such grant")
	}
	view := s.grantView(i)
	s.unlistGrant(i)
	s.txt.drop(s.grant(i).id, s.grant(i).reason)
	s.grants.remove(d.ID, i)
	t.record(Mutation{RemoveGrant: &Delete{ID: d.ID}}, Mutation{AddGrant: &view})
	return nil
}

// markGrant records that a grant reached its start or its expiry (kind
// dueStart or dueExpiry). Whether that time has passed depends on the
// clock, so it is checked when the batch is made (Index.ExpireDue), never
// here.
func (t *txn) markGrant(op string, d Delete, kind dueKind) error {
	i, ok := t.s.grants.get(d.ID)
	if !ok {
		return newErr(op, d.ID, ErrNotFound, "no such grant")
	}
	g := t.s.grant(i)
	has, done, none, what := g.expiresAt != instant{}, g.marked, "the grant never expires", "expiry"
	if kind == dueStart {
		has, done, none, what = g.startsAt != instant{}, g.started, "the grant has no start", "start"
	}
	switch {
	case !has:
		return newErr(op, d.ID, ErrInvalid, "%s", none)
	case done:
		return newErr(op, d.ID, ErrAlreadyExists, "the grant's %s is already recorded", what)
	}
	return t.setMark(d.ID, kind, true)
}

// setMark sets or clears a grant's Started (kind dueStart) or Expired
// (dueExpiry) flag, in the grant and in its holder's copy, and records
// the change when it sets it.
func (t *txn) setMark(id string, kind dueKind, on bool) error {
	s := t.s
	i, ok := s.grants.get(id)
	if !ok {
		return newErr("mark_grant", id, ErrNotFound, "no such grant")
	}
	n := s.grant(i)
	held := &(*s.heldList(n))[n.heldAt]
	if kind == dueStart {
		n.started, n.starts = on, 0
		if !on {
			n.starts = unixNano(n.startsAt.time())
		}
		held.starts = n.starts
		if on {
			t.record(Mutation{StartGrant: &Delete{ID: id}}, Mutation{unstart: &Delete{ID: id}})
		}
		return nil
	}
	n.marked = on
	n.expires = n.expiry()
	held.expires = n.expires
	if on {
		t.record(Mutation{ExpireGrant: &Delete{ID: id}}, Mutation{unexpire: &Delete{ID: id}})
	}
	return nil
}

func (t *txn) addLock(op string, l Lock) error {
	s := t.s
	_, taken := s.locks.get(l.ID)
	if err := checkNewID(op, "lock", l.ID, taken); err != nil {
		return err
	}
	if l.Target.IsZero() {
		return newErr(op, l.ID, ErrInvalid, "a lock needs a target (a folder or a user)")
	}
	if err := checkText(op, l.ID, "reason", l.Reason); err != nil {
		return err
	}
	target, _, err := t.resolve(op, l.ID, "target", l.Target)
	if err != nil {
		return err
	}
	if len(l.Rights) == 0 {
		l.Rights = DefaultLockRights
	}
	set, names, err := t.rights(op, l.ID, l.Rights)
	if err != nil {
		return err
	}
	l.Rights = names
	i := s.locks.insert(l.ID, lockNode{l: l, target: target, rights: set})
	list := s.lockList(s.lock(i))
	s.lock(i).at = int32(len(*list))
	*list = append(*list, i)
	t.record(Mutation{AddLock: &l}, Mutation{RemoveLock: &Delete{ID: l.ID}})
	return nil
}

func (t *txn) removeLock(op string, d Delete) error {
	s := t.s
	i, ok := s.locks.get(d.ID)
	if !ok {
		return newErr(op, d.ID, ErrNotFound, "no such lock")
	}
	n := s.lock(i)
	view := s.lockView(i)
	s.lock(unlist(s.lockList(n), n.at)).at = n.at
	s.locks.remove(d.ID, i)
	t.record(Mutation{RemoveLock: &Delete{ID: d.ID}}, Mutation{AddLock: &view})
	return nil
}
