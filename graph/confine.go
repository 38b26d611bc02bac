package graph

import "context"

// Confinement: a reader or writer limited to some organisations (a token
// scoped to them) sees and changes only their records. Everything outside
// them is refused with ErrOutside, in the same words whether or not the
// record exists elsewhere, so that a confined caller learns nothing of
// other organisations through reads, checks, lookups or streams. Lists,
// lookups and exports leave out what lies outside. The rights catalogue
// and the self rights are shared by every organisation: a confined caller
// reads them, and may not change them.
//
// Ids are one namespace across the service, so a confined writer can
// still learn that an id is taken (creating it is refused as existing).

// Orgs is a set of organisations, named by the ids of their root
// folders: what a caller is confined to. Inside the package a nil Orgs
// stands for every organisation, an unconfined call.
type Orgs map[string]bool

// OrgsOf returns the set of the organisations whose roots are named.
func OrgsOf(roots ...string) Orgs {
	o := make(Orgs, len(roots))
	for _, r := range roots {
		o[r] = true
	}
	return o
}

// hasFolder reports whether folder slot f lies in o.
func (o Orgs) hasFolder(s *state, f int32) bool {
	return o == nil || o[s.folderID(s.root(f))]
}

// hasUser reports whether user slot u is placed in o.
func (o Orgs) hasUser(s *state, u int32) bool {
	return o == nil || o.hasFolder(s, s.user(u).home)
}

// hasGrant reports whether grant slot g lies in o (its holder's
// organisation, which is its target's too).
func (o Orgs) hasGrant(s *state, g int32) bool {
	if o == nil {
		return true
	}
	n := s.grant(g)
	if n.hkind == KindFolder {
		return o.hasFolder(s, n.holder)
	}
	return o.hasUser(s, n.holder)
}

// hasLock reports whether lock slot l lies in o (its target's organisation).
func (o Orgs) hasLock(s *state, l int32) bool {
	if o == nil {
		return true
	}
	n := s.lock(l)
	if n.l.Target.Kind == KindFolder {
		return o.hasFolder(s, n.target)
	}
	return o.hasUser(s, n.target)
}

// see returns nil when o is every organisation, r is zero, or r names a
// record of o; otherwise the refusal, the same whether the record is
// another organisation's or nobody's. A kind other than folder and user
// is left to the caller's own check.
func (o Orgs) see(s *state, op string, r Ref) error {
	if o == nil {
		return nil
	}
	switch r.Kind {
	case KindFolder:
		if f, ok := s.folders.get(r.ID); ok && o.hasFolder(s, f) {
			return nil
		}
	case KindUser:
		if u, ok := s.users.get(r.ID); ok && o.hasUser(s, u) {
			return nil
		}
	default:
		return nil
	}
	return outside(op, r)
}

// outside is the refusal of a record a confined caller may not see.
func outside(op string, r Ref) error {
	return newErr(op, r.ID, ErrOutside, "no %s of the caller's organisations has this id", r.Kind)
}

// placeIn reports whether place k of a commit's table lies in o: whether
// its root is one of o's.
func (o Orgs) placeIn(places []Place, k int32) bool {
	for p := places[k].Parent; p >= 0 && int(p) < len(places); p = places[k].Parent {
		k = p
	}
	return o[places[k].ID]
}

// Confined is the index as a caller confined to some organisations sees
// it: the same reads and writes as Index, limited to those organisations
// (see the comment at the top of confine.go). It is cheap to make, one
// for each call.
type Confined struct {
	ix   *Index
	orgs Orgs
}

// Confine returns the index as seen by a caller confined to the
// organisations o (none at all when o is empty or nil). Naming a folder
// that is not a root, or that does not exist, confines the caller to
// nothing there: confinement is by root id, checked at each call. o must
// not change afterwards.
func (ix *Index) Confine(o Orgs) *Confined {
	if o == nil {
		o = Orgs{}
	}
	return &Confined{ix: ix, orgs: o}
}

// GetFolder is Index.GetFolder, confined.
func (c *Confined) GetFolder(id string) (Folder, *PlacementRule, uint64, error) {
	return c.ix.getFolder(lens{orgs: c.orgs}, id)
}

// GetUser is Index.GetUser, confined.
func (c *Confined) GetUser(id string) (User, uint64, error) {
	return c.ix.getUser(lens{orgs: c.orgs}, id)
}

// ListFolders is Index.ListFolders, confined: an empty parent lists the
// caller's organisations only.
func (c *Confined) ListFolders(parent string, subtree bool, after string, limit int) ([]Folder, string, uint64, error) {
	return c.ix.listFolders(lens{orgs: c.orgs}, parent, subtree, after, limit)
}

// FolderCounts is Index.FolderCounts, confined.
func (c *Confined) FolderCounts(id string) (FolderCounts, uint64, error) {
	return c.ix.folderCounts(lens{orgs: c.orgs}, id)
}

// ListUsers is Index.ListUsers, confined.
func (c *Confined) ListUsers(folder string, subtree bool, after string, limit int) ([]User, string, uint64, error) {
	return c.ix.listUsers(lens{orgs: c.orgs}, folder, subtree, after, limit)
}

// ListGrants is Index.ListGrants, confined: it lists the grants of the
// caller's organisations only.
func (c *Confined) ListGrants(holder, target Ref, after string, limit int) ([]Grant, string, uint64, error) {
	return c.ix.listGrants(lens{orgs: c.orgs}, holder, target, after, limit)
}

// ListLocks is Index.ListLocks, confined.
func (c *Confined) ListLocks(target Ref, after string, limit int) ([]Lock, string, uint64, error) {
	return c.ix.listLocks(lens{orgs: c.orgs}, target, after, limit)
}

// Check is Index.Check, confined: a user or resource outside the caller's
// organisations, or unknown, is refused with ErrOutside, not decided.
func (c *Confined) Check(user, right string, x Ref) (Decision, error) {
	v := c.ix.read()
	defer v.mu.RUnlock()
	return v.decide(c.orgs, user, right, x, c.ix.opts.Clock.Now().UnixNano())
}

// CheckMany is Index.CheckMany, confined: a request outside the
// organisations gets its own error.
func (c *Confined) CheckMany(reqs []CheckRequest) ([]Decision, []error, uint64) {
	return c.ix.checkMany(c.orgs, reqs)
}

// Explain is Index.Explain, confined.
func (c *Confined) Explain(user, right string, x Ref) (Explanation, error) {
	return c.ix.explain(c.orgs, user, right, x)
}

// LookupResources is Index.LookupResources, confined.
func (c *Confined) LookupResources(user, right string, kind Kind, after string, limit int) (Page, error) {
	return c.ix.lookupResources(c.orgs, user, right, kind, after, limit)
}

// LookupSubjects is Index.LookupSubjects, confined: the holders of a
// capability are those of the caller's organisations.
func (c *Confined) LookupSubjects(right string, x Ref, after string, limit int) (Page, error) {
	return c.ix.lookupSubjects(c.orgs, right, x, after, limit)
}

// EffectiveAccess is Index.EffectiveAccess, confined.
func (c *Confined) EffectiveAccess(user string) (Access, error) {
	return c.ix.effectiveAccess(c.orgs, user)
}

// Records is Index.Records, confined: the records of the caller's
// organisations, with the rights catalogue and the self rights they use.
func (c *Confined) Records() ([]Record, uint64, error) {
	return c.ix.records(c.orgs)
}

// Snapshot is Index.Snapshot, confined like Records.
func (c *Confined) Snapshot() (*Snapshot, error) {
	return c.ix.snapshot(c.orgs)
}

// WatchAccess is Index.WatchAccess, confined: the user must be one of
// the caller's organisations.
func (c *Confined) WatchAccess(ctx context.Context, user string) (*AccessWatch, error) {
	return c.ix.watchAccess(ctx, c.orgs, user)
}

// Stats is Index.Stats with the counts of the caller's organisations. It
// visits all of their folders, and every grant and lock.
func (c *Confined) Stats() Stats {
	st := c.ix.Stats()
	v := c.ix.read()
	defer v.mu.RUnlock()
	s := v.s
	st.Revision = v.rev
	st.Folders, st.Users, st.Grants, st.Locks, st.Rules = 0, 0, 0, 0, 0
	for _, r := range s.roots() {
		if !c.orgs[s.folderID(r)] {
			continue
		}
		for _, f := range s.subtree(nil, r) {
			st.Folders++
			st.Users += len(s.folder(f).homes)
			if s.folder(f).rule != nil {
				st.Rules++
			}
		}
	}
	for g, live := range s.grants.live {
		if live && c.orgs.hasGrant(s, int32(g)) {
			st.Grants++
		}
	}
	for l, live := range s.locks.live {
		if live && c.orgs.hasLock(s, int32(l)) {
			st.Locks++
		}
	}
	return st
}

// Write is Index.Write, confined: a batch any of whose changes touches a
// folder outside the caller's organisations, or changes the rights
// catalogue or the self rights (which every organisation shares), is
// refused whole with ErrOutside. A new organisation may be created only
// when its root is one the caller is confined to.
func (c *Confined) Write(ctx context.Context, actor string, muts []Mutation, pre Preconditions) (uint64, error) {
	return c.ix.write(ctx, &writeReq{ctx: ctx, actor: actor, muts: muts, pre: pre, orgs: c.orgs})
}

// WriteAs is Index.WriteAs, confined like Write.
func (c *Confined) WriteAs(ctx context.Context, actor, user string, muts []Mutation, pre Preconditions) (uint64, error) {
	if user == "" {
		return 0, newErr("write", actor, ErrInvalid, "acting as nobody: name the user")
	}
	return c.ix.write(ctx, &writeReq{ctx: ctx, actor: actor, as: user, muts: muts, pre: pre, orgs: c.orgs})
}

// Import is Index.Import, confined like Write.
func (c *Confined) Import(ctx context.Context, actor string, muts []Mutation) (uint64, error) {
	return c.ix.write(ctx, &writeReq{ctx: ctx, actor: actor, muts: muts, importing: true, orgs: c.orgs})
}

// confined refuses primitive i of the transaction, just applied, when it
// reaches outside t.orgs.
func (t *txn) confined(i int) error {
	op, id, _ := t.done[i].op()
	sc := t.scopes[i]
	if sc == nil {
		return newErr(op, id, ErrOutside, "the rights catalogue and the self rights are shared by every organisation; a caller confined to some may not change them")
	}
	for _, k := range sc {
		if !t.orgs.placeIn(t.table.places, k) {
			return newErr(op, id, ErrOutside, "the change reaches a folder outside the caller's organisations")
		}
	}
	return nil
}
