package graph

// The writes of users and their extra groups (txn, apply.go).

import (
	"slices"
	"strings"
	"time"
)

func (t *txn) createUser(op string, u User) error {
	s := t.s
	_, taken := s.users.get(u.ID)
	if err := checkNewID(op, "user", u.ID, taken); err != nil {
		return err
	}
	if err := checkText(op, u.ID, "name", u.Name); err != nil {
		return err
	}
	if err := checkClass(op, u.ID, u.Class); err != nil {
		return err
	}
	if u.State == "" {
		u.State = StateActive
	}
	if !u.State.valid() {
		return newErr(op, u.ID, ErrInvalid, "state %q is not active, disabled or archived", u.State)
	}
	if !u.ActiveUntil.IsZero() {
		if u.State != StateActive {
			return newErr(op, u.ID, ErrInvalid, "only an active user may be active until a time, not a %s one", u.State)
		}
		u.ActiveUntil = u.ActiveUntil.UTC()
	}
	home, ok := s.folders.get(u.Home)
	if !ok {
		return newErr(op, u.ID, ErrNotFound, "home folder %q does not exist", u.Home)
	}
	org := s.root(home)
	extras := make([]int32, 0, len(u.Extras))
	u.Extras = slices.Clone(u.Extras)
	slices.Sort(u.Extras)
	for k, e := range u.Extras {
		if k > 0 && u.Extras[k-1] == e {
			return newErr(op, u.ID, ErrInvalid, "extra group %q listed twice", e)
		}
		f, ok := s.folders.get(e)
		if !ok {
			return newErr(op, u.ID, ErrNotFound, "extra group %q does not exist", e)
		}
		if s.root(f) != org {
			return newErr(op, u.ID, ErrCrossOrg, "extra group %q is in another organisation than home %q", e, u.Home)
		}
		extras = append(extras, f)
	}
	if len(u.Extras) == 0 {
		u.Extras = nil
	}
	if err := t.checkPlacement(op, u.ID, u.Class, append([]int32{home}, extras...)...); err != nil {
		return err
	}
	i := s.users.insert(u.ID, userNode{id: s.txt.put(u.ID), name: s.txt.put(u.Name), class: s.txt.put(u.Class), state: stateNumber(u.State), active: u.State == StateActive, home: home})
	s.addHome(home, i)
	at := make([]int32, len(extras))
	for k, e := range extras {
		at[k] = s.addExtra(e, i)
	}
	s.setExtras(s.user(i), extras, at)
	s.setActiveUntil(s.user(i), u.ActiveUntil)
	t.record(Mutation{CreateUser: &u}, Mutation{DeleteUser: &Delete{ID: u.ID}})
	return nil
}

func (t *txn) lookupUser(op, id string) (int32, error) {
	i, ok := t.s.users.get(id)
	if !ok {
		return none, newErr(op, id, ErrNotFound, "no such user")
	}
	return i, nil
}

func (t *txn) updateUser(op string, u UserUpdate) error {
	i, err := t.lookupUser(op, u.ID)
	if err != nil {
		return err
	}
	if err := checkText(op, u.ID, "name", u.Name); err != nil {
		return err
	}
	if err := checkClass(op, u.ID, u.Class); err != nil {
		return err
	}
	n := t.s.user(i)
	if err := t.checkPlacement(op, u.ID, u.Class, append([]int32{n.home}, t.s.extras(n)...)...); err != nil {
		return err
	}
	inv := UserUpdate{ID: u.ID, Name: t.s.txt.get(n.name), Class: t.s.txt.get(n.class)}
	t.s.txt.drop(n.name, n.class)
	n.name, n.class = t.s.txt.put(u.Name), t.s.txt.put(u.Class)
	t.record(Mutation{UpdateUser: &u}, Mutation{UpdateUser: &inv})
	return nil
}

func (t *txn) moveUser(op string, m Move) error {
	s := t.s
	i, err := t.lookupUser(op, m.ID)
	if err != nil {
		return err
	}
	to, ok := s.folders.get(m.To)
	if !ok {
		return newErr(op, m.ID, ErrNotFound, "destination folder %q does not exist", m.To)
	}
	n := s.user(i)
	if s.root(to) != s.root(n.home) {
		return newErr(op, m.ID, ErrCrossOrg, "destination %q is in another organisation", m.To)
	}
	if err := t.checkPlacement(op, m.ID, s.txt.get(n.class), to); err != nil {
		return err
	}
	old := n.home
	if old != to {
		s.dropHome(old, i)
		s.addHome(to, i)
		n.home = to
	}
	t.record(Mutation{MoveUser: &m}, Mutation{MoveUser: &Move{ID: m.ID, To: s.folderID(old)}})
	return nil
}

func (t *txn) setUserState(op string, c StateChange) error {
	i, err := t.lookupUser(op, c.ID)
	if err != nil {
		return err
	}
	if !c.State.valid() {
		return newErr(op, c.ID, ErrInvalid, "state %q is not active, disabled or archived", c.State)
	}
	if !c.ActiveUntil.IsZero() {
		if c.State != StateActive {
			return newErr(op, c.ID, ErrInvalid, "only an active user may be active until a time, not a %s one", c.State)
		}
		c.ActiveUntil = c.ActiveUntil.UTC()
	}
	n := t.s.user(i)
	old := StateChange{ID: c.ID, State: states[n.state], ActiveUntil: t.s.activeUntil(n)}
	n.state, n.active = stateNumber(c.State), c.State == StateActive
	t.s.setActiveUntil(n, c.ActiveUntil)
	t.record(Mutation{SetUserState: &c}, Mutation{SetUserState: &old})
	return nil
}

func (t *txn) deleteUser(op string, d Delete) error {
	s := t.s
	i, err := t.lookupUser(op, d.ID)
	if err != nil {
		return err
	}
	n := s.user(i)
	if l := s.linksOf(n); l != nil && len(l.held)+len(l.on)+len(l.locks) > 0 {
		if !d.Cascade {
			return newErr(op, d.ID, ErrNotEmpty, "grants or locks name the user (remove them first, or cascade)")
		}
		var grants, locks []string
		for _, h := range l.held {
			grants = append(grants, s.grantID(h.grant))
		}
		for _, g := range l.on {
			grants = append(grants, s.grantID(g))
		}
		for _, k := range l.locks {
			locks = append(locks, s.lock(k).l.ID)
		}
		for _, g := range sortedSet(grants) {
			if err := t.apply(&Mutation{RemoveGrant: &Delete{ID: g}}); err != nil {
				return err
			}
		}
		for _, l := range sortedSet(locks) {
			if err := t.apply(&Mutation{RemoveLock: &Delete{ID: l}}); err != nil {
				return err
			}
		}
		n = s.user(i)
	}
	view := s.userView(i)
	s.dropHome(n.home, i)
	for k, e := range s.extras(n) {
		s.dropExtra(e, i, s.extraAt(n)[k])
	}
	s.setActiveUntil(n, time.Time{}) // before its links go
	s.dropLinks(n)
	s.txt.drop(n.id, n.name, n.class)
	s.users.remove(d.ID, i)
	t.record(Mutation{DeleteUser: &Delete{ID: d.ID}}, Mutation{CreateUser: &view})
	return nil
}

func (t *txn) addExtra(op string, m Membership) error {
	s := t.s
	i, err := t.lookupUser(op, m.User)
	if err != nil {
		return err
	}
	f, ok := s.folders.get(m.Folder)
	if !ok {
		return newErr(op, m.User, ErrNotFound, "folder %q does not exist", m.Folder)
	}
	n := s.user(i)
	if s.root(f) != s.root(n.home) {
		return newErr(op, m.User, ErrCrossOrg, "folder %q is in another organisation", m.Folder)
	}
	k, found := slices.BinarySearchFunc(s.extras(n), m.Folder, func(e int32, id string) int { return strings.Compare(s.folderID(e), id) })
	if found {
		return newErr(op, m.User, ErrAlreadyExists, "folder %q is already an extra group of the user", m.Folder)
	}
	if err := t.checkPlacement(op, m.User, s.txt.get(n.class), f); err != nil {
		return err
	}
	at := s.addExtra(f, i)
	s.setExtras(n, slices.Insert(slices.Clone(s.extras(n)), k, f), slices.Insert(slices.Clone(s.extraAt(n)), k, at))
	t.record(Mutation{AddExtraGroup: &m}, Mutation{DelExtraGroup: &m})
	return nil
}

func (t *txn) removeExtra(op string, m Membership) error {
	s := t.s
	i, err := t.lookupUser(op, m.User)
	if err != nil {
		return err
	}
	n := s.user(i)
	k, found := slices.BinarySearchFunc(s.extras(n), m.Folder, func(e int32, id string) int { return strings.Compare(s.folderID(e), id) })
	if !found {
		return newErr(op, m.User, ErrNotFound, "folder %q is not an extra group of the user", m.Folder)
	}
	f := s.extras(n)[k]
	s.dropExtra(f, i, s.extraAt(n)[k])
	s.setExtras(n, slices.Delete(slices.Clone(s.extras(n)), k, k+1), slices.Delete(slices.Clone(s.extraAt(n)), k, k+1))
	t.record(Mutation{DelExtraGroup: &m}, Mutation{AddExtraGroup: &m})
	return nil
}
