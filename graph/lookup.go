package graph

import (
	"slices"
	"sort"
)

// Page is one page of a lookup: ids in ascending order, and Next, the
// cursor to pass as after for the next page (empty when this page is the
// last).
type Page struct {
	IDs      []string
	Next     string
	Revision uint64
}

// page sorts ids and returns those after the cursor, at most limit of them
// (limit <= 0 means all).
func page(ids []string, after string, limit int, rev uint64) Page {
	sort.Strings(ids)
	ids = ids[sort.Search(len(ids), func(i int) bool { return ids[i] > after }):]
	p := Page{Revision: rev}
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
		p.Next = ids[limit-1]
	}
	p.IDs = slices.Clone(ids)
	return p
}

// reaching returns the grants that reach user u (held by u or by a folder
// u is a member of), in effect at now (with pending, also those whose
// start is still to come) and giving one of the rights in want.
func (s *state) reaching(u *userNode, want rightSet, now int64, pending bool) []int32 {
	var out []int32
	pick := func(list []heldGrant) {
		for _, h := range list {
			if h.rights.meets(want) && !h.expired(now) && (pending || h.started(now)) {
				out = append(out, h.grant)
			}
		}
	}
	pick(s.heldBy(u))
	var holders slotSet
	holders.reset()
	s.addMember(&holders, u)
	for i := 0; i < holders.len(); i++ {
		pick(*s.held.at(holders.at(i)))
	}
	return out
}

// locked reports whether a lock covering folder xf or user xu denies right.
func (s *state) locked(right int, xf, xu int32) bool {
	c := checker{s: s, right: right, xf: xf, xu: xu}
	c.coverResource()
	return c.lockedBy(false) != none
}

// LookupResources returns the folders (kind KindFolder) or users (kind
// KindUser) that user has right on now, sorted by id, after the cursor,
// at most limit (<= 0 for all). An inactive user has nothing; an unknown
// user or right is an error.
//
// Cost: it walks every subtree the user's grants reach and tests each
// resource found against the locks above it, then sorts; each page repeats
// the walk.
func (ix *Index) LookupResources(user, right string, kind Kind, after string, limit int) (Page, error) {
	return ix.lookupResources(nil, user, right, kind, after, limit)
}

// lookupResources is LookupResources for a caller confined to o. What a
// user's grants reach lies in the user's organisation, so only the user
// is checked.
func (ix *Index) lookupResources(o Orgs, user, right string, kind Kind, after string, limit int) (Page, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	s := v.s
	const op = "lookup_resources"
	if err := o.see(s, op, UserRef(user)); err != nil {
		return Page{}, err
	}
	slot, ok := s.cat.lookup(right)
	if !ok {
		return Page{}, newErr(op, right, ErrUnknownRight, "right is not in the catalogue")
	}
	if kind != KindFolder && kind != KindUser {
		return Page{}, newErr(op, user, ErrInvalid, "resource kind must be folder or user")
	}
	ui, ok := s.users.get(user)
	if !ok {
		return Page{}, newErr(op, user, ErrNotFound, "no such user")
	}
	u := s.user(ui)
	now := ix.opts.Clock.Now().UnixNano()
	if !s.activeAt(u, now) {
		return Page{Revision: v.rev}, nil
	}
	want := s.cat.grantedBy[slot]
	grants := s.reaching(u, want, now, false)
	folderSeen := make(map[int32]bool)
	userSeen := make(map[int32]bool)
	var sub []int32
	for _, gi := range grants {
		g := s.grant(gi)
		switch g.tkind {
		case KindUser:
			userSeen[g.target] = true
		case KindFolder:
			if folderSeen[g.target] {
				continue
			}
			sub = s.subtree(sub[:0], g.target)
			for _, f := range sub {
				folderSeen[f] = true
				if kind == KindUser {
					for m := range s.placed(f) {
						userSeen[m] = true
					}
				}
			}
		}
	}
	if s.cat.self.meets(want) {
		userSeen[ui] = true
	}
	var ids []string
	if kind == KindFolder {
		for f := range folderSeen {
			if !s.locked(slot, f, none) {
				ids = append(ids, s.folderID(f))
			}
		}
	} else {
		for m := range userSeen {
			if !s.locked(slot, none, m) {
				ids = append(ids, s.userID(m))
			}
		}
	}
	return page(ids, after, limit, v.rev), nil
}

// LookupSubjects returns the active users who have right on resource x now
// (the zero Ref: everyone holding the capability), sorted by id, after the
// cursor, at most limit (<= 0 for all).
func (ix *Index) LookupSubjects(right string, x Ref, after string, limit int) (Page, error) {
	return ix.lookupSubjects(nil, right, x, after, limit)
}

// lookupSubjects is LookupSubjects for a caller confined to o: a resource
// lies in one organisation, and so does everyone who reaches it; the
// holders of a capability are kept to o's.
func (ix *Index) lookupSubjects(o Orgs, right string, x Ref, after string, limit int) (Page, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	s := v.s
	if err := o.see(s, "lookup_subjects", x); err != nil {
		return Page{}, err
	}
	c := checker{now: ix.opts.Clock.Now().UnixNano()}
	if err := s.resolveResource("lookup_subjects", right, x, &c); err != nil {
		return Page{}, err
	}
	var onList []int32
	c.coverResource()
	switch {
	case c.xu != none:
		onList = s.grantsOn(s.user(c.xu))
	case c.xf == none:
		onList = s.caps
	}
	if (c.xf != none || c.xu != none) && c.lockedBy(false) != none {
		return Page{Revision: v.rev}, nil
	}
	want := s.cat.grantedBy[c.right]
	subjects := make(map[int32]bool)
	consider := func(list []int32) {
		for _, gi := range list {
			g := s.grant(gi)
			if !g.rights.meets(want) || !g.inEffect(c.now) {
				continue
			}
			if g.hkind == KindUser {
				subjects[g.holder] = true
				continue
			}
			for m := range s.placedBelow(g.holder) {
				subjects[m] = true
			}
		}
	}
	consider(onList)
	for i := 0; i < c.cover.len(); i++ {
		consider(s.folder(c.cover.at(i)).on)
	}
	if c.xu != none && s.cat.self.meets(want) {
		subjects[c.xu] = true
	}
	var ids []string
	for m := range subjects {
		if s.activeAt(s.user(m), c.now) && o.hasUser(s, m) {
			ids = append(ids, s.userID(m))
		}
	}
	return page(ids, after, limit, v.rev), nil
}

// Access is everything that reaches one user: the grants held by the user
// or by a folder the user is a member of, unexpired now (among them those
// whose start is still to come: Grant.StartsAt says when), and the user's
// self rights. Nothing is allowed while the user is not active, whatever
// the entries say.
type Access struct {
	Revision   uint64
	User       User
	Entries    []AccessEntry // by grant id
	SelfRights []string      // with everything they imply
}

// AccessEntry is one grant that reaches the user and what it covers.
type AccessEntry struct {
	Grant Grant
	// Via runs from the user's home or extra group up to the holder folder;
	// empty when the grant is held by the user.
	Via []string
	// Rights are the grant's rights with everything they imply.
	Rights []string
	// Locks are the locks that deny one of Rights on something the grant
	// covers, by id.
	Locks []Lock
}

// EffectiveAccess returns what reaches user now. An unknown user is an error.
func (ix *Index) EffectiveAccess(user string) (Access, error) {
	return ix.effectiveAccess(nil, user)
}

func (ix *Index) effectiveAccess(o Orgs, user string) (Access, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	s := v.s
	if err := o.see(s, "effective_access", UserRef(user)); err != nil {
		return Access{}, err
	}
	ui, ok := s.users.get(user)
	if !ok {
		return Access{}, newErr("effective_access", user, ErrNotFound, "no such user")
	}
	u := s.user(ui)
	now := ix.opts.Clock.Now().UnixNano()
	a := Access{Revision: v.rev, User: s.userView(ui), SelfRights: s.cat.list(s.cat.expand(s.cat.self))}
	grants := s.reaching(u, ^rightSet(0), now, true)
	for _, gi := range grants {
		g := s.grant(gi)
		e := AccessEntry{Grant: s.grantView(gi)}
		if g.hkind == KindFolder {
			e.Via = pathUp(s, u, g.holder)
		}
		rights := s.cat.expand(g.rights)
		e.Rights = s.cat.list(rights)
		for li, live := range s.locks.live {
			if live && s.lock(int32(li)).rights.meets(rights) && s.overlaps(g, s.lock(int32(li))) {
				e.Locks = append(e.Locks, s.lockView(int32(li)))
			}
		}
		sort.Slice(e.Locks, func(i, j int) bool { return e.Locks[i].ID < e.Locks[j].ID })
		a.Entries = append(a.Entries, e)
	}
	sort.Slice(a.Entries, func(i, j int) bool { return a.Entries[i].Grant.ID < a.Entries[j].Grant.ID })
	return a, nil
}

// overlaps reports whether some folder or user is covered by both the grant
// and the lock.
func (s *state) overlaps(g *grantNode, l *lockNode) bool {
	gk, lk := g.tkind, l.l.Target.Kind
	switch {
	case gk == KindNone:
		return false
	case gk == KindUser && lk == KindUser:
		return g.target == l.target
	case gk == KindUser:
		return s.isMember(s.user(g.target), l.target)
	case lk == KindUser:
		return s.isMember(s.user(l.target), g.target)
	}
	// Two folders: nested subtrees overlap; disjoint ones overlap when a user
	// is a member of both.
	if s.isAncestor(g.target, l.target) || s.isAncestor(l.target, g.target) {
		return true
	}
	for m := range s.placedBelow(l.target) {
		if s.isMember(s.user(m), g.target) {
			return true
		}
	}
	return false
}
