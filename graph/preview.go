package graph

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Previews: what a batch would do to access, without committing it
// (DESIGN.md section 5). The batch is validated exactly as a write is
// (the same refusals, preconditions, acting-as rules and confinement),
// on the index's shadow (shadow.go), so that neither the writer nor any
// reader waits for it. Then its primitives are applied one at a time,
// and for each one the access of every user it may change is compared
// before and after, by the access streams' own jobs (accessjob.go), and
// stated in their regions. Last, everything is undone: the shadow is left
// as it was.
//
// The users a primitive may change are found from the index's lists:
// the members of a grant's holder, the holders of the grants that reach
// a moved or created record (and their members), and so on (see
// affected). Each is then compared exactly, so a user listed here whose
// access does not change reports nothing.
//
// As in access streams, a grant counts until its expiry is recorded, and
// access to a record ends with it unlisted: the access of a user deleted
// too.

// PreviewRequest is a batch to preview: what Write would be given.
type PreviewRequest struct {
	Actor     string
	AsUser    string // preview the batch written on behalf of this user; "" for none
	Mutations []Mutation
	Pre       Preconditions
	// Limit is how many users' changes are listed (the first by id; <= 0:
	// DefaultPreviewLimit). The counts are always whole.
	Limit int
}

// DefaultPreviewLimit is how many users' changes a preview lists when the
// request does not say.
const DefaultPreviewLimit = 100

// Preview is what a batch would change in access, had it been committed
// at Revision.
type Preview struct {
	// Revision is the revision the batch was validated against.
	Revision uint64
	// Changes are the listed users' changes, by user id, and for each
	// user in the batch's order.
	Changes []PreviewChange
	// Users is how many users' access would change; Listed how many of
	// them Changes holds.
	Users, Listed int
	// Totals is, per right (sorted), how many records would be gained
	// and lost over every user and every change: each folder and user a
	// region covers (in the state its part leaves) counts one, and so do
	// the capabilities.
	Totals []AccessTotal
}

// PreviewChange is what one part of a batch would change in one user's
// access. Its Mutation is the index in the batch of the mutation it is
// part of; Cause is the part itself (a mutation, or one step of a
// cascade), the Part-th of the batch's parts in the order a commit would
// list them (Commit.Mutations). Its regions are read against the state
// right after the part.
type PreviewChange struct {
	AccessChange
	Part  int
	Cause Mutation
}

// AccessTotal counts the records a preview's changes gain and lose for
// one right.
type AccessTotal struct {
	Right        string
	Gained, Lost int
}

// Preview validates a batch as Write would and returns what it would
// change in access, committing nothing. A batch Write would refuse is
// refused with the same error. The first preview makes the index's
// shadow, as WatchAccess does.
func (ix *Index) Preview(ctx context.Context, req PreviewRequest) (Preview, error) {
	return ix.preview(ctx, nil, req)
}

// Preview is Index.Preview, confined like Write.
func (c *Confined) Preview(ctx context.Context, req PreviewRequest) (Preview, error) {
	return c.ix.preview(ctx, c.orgs, req)
}

func (ix *Index) preview(ctx context.Context, o Orgs, req PreviewRequest) (Preview, error) {
	w := &writeReq{ctx: ctx, actor: req.Actor, muts: req.Mutations, pre: req.Pre, orgs: o, as: req.AsUser}
	if err := ix.checkBatch(w); err != nil {
		return Preview{}, err
	}
	target := ix.Revision()
	ix.shMu.Lock()
	sh, err := ix.liveShadow(ctx)
	ix.shMu.Unlock()
	if err != nil {
		return Preview{}, err
	}
	defer func() {
		ix.shMu.Lock()
		ix.retireIfIdle(sh) // it may have been made for this call alone
		ix.shMu.Unlock()
	}()
	if err := sh.waitFor(ctx, target); err != nil {
		return Preview{}, fmt.Errorf("preview: %w", err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return ix.previewOn(ctx, sh.s, sh.rev, w, req.Limit)
}

// previewOn previews w on state s at revision rev and leaves s as it was.
func (ix *Index) previewOn(ctx context.Context, s *state, rev uint64, w *writeReq, limit int) (Preview, error) {
	now := ix.opts.Clock.Now().UTC()
	t := &txn{s: s, scoped: true, maxDepth: ix.opts.MaxDepth}
	var ends []int
	t.ends = &ends
	if err := ix.validate(t, w, rev, now); err != nil {
		return Preview{}, err
	}
	prims := slices.Clone(t.done)
	t.rollbackTo(0)

	p := Preview{Revision: rev}
	byUser := map[string][]PreviewChange{}
	totals := map[string]*AccessTotal{}
	r := &txn{s: s}
	defer r.rollbackTo(0)
	mut := 0
	for k := range prims {
		if err := ctx.Err(); err != nil {
			return Preview{}, fmt.Errorf("preview: %w", err)
		}
		for mut < len(ends)-1 && k >= ends[mut] {
			mut++
		}
		users := s.affected(&prims[k], nil)
		if err := r.apply(&prims[k]); err != nil {
			return Preview{}, fmt.Errorf("preview: replay of mutation %d: %w", mut, err)
		}
		users = append(users, s.affected(&prims[k], &r.undo[len(r.undo)-1])...)
		slices.Sort(users)
		sizes := map[string]int{}
		for _, ch := range r.accessChanges(slices.Compact(users), mut) {
			if _, ok := s.users.get(ch.User); !ok {
				continue // deleted: a user's access ends with them, unlisted
			}
			byUser[ch.User] = append(byUser[ch.User], PreviewChange{AccessChange: ch, Part: k, Cause: prims[k]})
			for _, a := range ch.Gained {
				s.addTotals(totals, a, s.regionSize(a, sizes), true)
			}
			for _, a := range ch.Lost {
				s.addTotals(totals, a, s.regionSize(a, sizes), false)
			}
		}
	}
	if limit <= 0 {
		limit = DefaultPreviewLimit
	}
	p.Users = len(byUser)
	for _, u := range slices.Sorted(maps.Keys(byUser)) {
		if p.Listed == limit {
			break
		}
		p.Changes = append(p.Changes, byUser[u]...)
		p.Listed++
	}
	for _, right := range slices.Sorted(maps.Keys(totals)) {
		p.Totals = append(p.Totals, *totals[right])
	}
	return p, nil
}

// affected returns the ids of the users whose access primitive m may
// change, in the state as it is: before m when inv is nil, after it (inv
// undoing it) otherwise. It may return more than those, and the same one
// twice; never fewer.
func (s *state) affected(m, inv *Mutation) []string {
	a := affectedSet{s: s, ids: map[int32]bool{}, grants: map[int32]bool{}, over: map[int32]bool{}}
	after := inv != nil
	user := func(id string) int32 {
		if u, ok := s.users.get(id); ok {
			return u
		}
		return none
	}
	folder := func(id string) int32 {
		if f, ok := s.folders.get(id); ok {
			return f
		}
		return none
	}
	switch {
	case m.CreateFolder != nil:
		if after {
			a.walkUp(folder(m.CreateFolder.ID))
		}
	case m.MoveFolder != nil:
		if f := folder(m.MoveFolder.ID); f != none {
			a.walkUp(f)
			a.within(f)
		}
	case m.CreateUser != nil:
		if after {
			a.onUser(user(m.CreateUser.ID))
		}
	case m.MoveUser != nil:
		a.onUser(user(m.MoveUser.ID))
	case m.AddExtraGroup != nil:
		a.onUser(user(m.AddExtraGroup.User))
	case m.DelExtraGroup != nil:
		a.onUser(user(m.DelExtraGroup.User))
	case m.SetUserState != nil:
		a.add(user(m.SetUserState.ID))
	case m.DeleteUser != nil:
		a.add(user(m.DeleteUser.ID))
	case m.AddGrant != nil:
		a.holder(m.AddGrant.Holder)
	case m.RemoveGrant != nil:
		if !after {
			if g, ok := s.grants.get(m.RemoveGrant.ID); ok {
				a.holder(s.grantView(g).Holder)
			}
		}
	case m.ExpireGrant != nil, m.StartGrant != nil:
		if g, ok := s.grants.get(m.markedGrant()); ok {
			a.holder(s.grantView(g).Holder)
		}
	case m.AddLock != nil, m.RemoveLock != nil:
		l := m.AddLock
		if m.RemoveLock != nil {
			l = nil
			if li, ok := s.locks.get(m.RemoveLock.ID); ok {
				v := s.lockView(li)
				l = &v
			}
		}
		if l != nil {
			switch l.Target.Kind {
			case KindFolder:
				if f := folder(l.Target.ID); f != none {
					a.walkUp(f)
					a.within(f)
				}
			case KindUser:
				a.onUser(user(l.Target.ID))
			}
		}
	case m.PutRight != nil, m.DeleteRight != nil, m.SetSelfRights != nil:
		for u, live := range s.users.live {
			if live {
				a.add(int32(u))
			}
		}
	}
	out := make([]string, 0, len(a.ids))
	for u := range a.ids {
		out = append(out, s.userID(u))
	}
	return out
}

// affectedSet gathers user slots for affected. Each grant's members are
// added once, and each folder's grants above it walked once: the members
// of a moved folder share most of them.
type affectedSet struct {
	s      *state
	ids    map[int32]bool
	grants map[int32]bool // grants whose members were added
	over   map[int32]bool // folders walked up from
}

func (a *affectedSet) add(u int32) {
	if u != none {
		a.ids[u] = true
	}
}

// membersOf adds the members of folder f.
func (a *affectedSet) membersOf(f int32) {
	for u := range a.s.placedBelow(f) {
		a.add(u)
	}
}

// holder adds the users a grant held by h reaches.
func (a *affectedSet) holder(h Ref) {
	switch h.Kind {
	case KindUser:
		if u, ok := a.s.users.get(h.ID); ok {
			a.add(u)
		}
	case KindFolder:
		if f, ok := a.s.folders.get(h.ID); ok {
			a.membersOf(f)
		}
	}
}

// grant adds the users grant slot g reaches.
func (a *affectedSet) grant(g int32) {
	if a.grants[g] {
		return
	}
	a.grants[g] = true
	n := a.s.grant(g)
	if n.hkind == KindUser {
		a.add(n.holder)
	} else {
		a.membersOf(n.holder)
	}
}

// walkUp adds the users reached by the grants on folder f and above it.
func (a *affectedSet) walkUp(f int32) {
	for ; f != none && !a.over[f]; f = a.s.up[f] {
		a.over[f] = true
		for _, g := range a.s.folder(f).on {
			a.grant(g)
		}
	}
}

// within adds the users reached by the grants on the folders below f,
// and for each member of f, the member and the users reached by any grant
// that covers them (through another folder too: a lock or a move here
// changes what those grants give on them).
func (a *affectedSet) within(f int32) {
	s := a.s
	for _, d := range s.subtree(nil, f) {
		for _, g := range s.folder(d).on {
			a.grant(g)
		}
	}
	for u := range s.placedBelow(f) {
		a.onUser(u)
	}
}

// onUser adds user u and the users reached by the grants on u and on the
// folders u is a member of.
func (a *affectedSet) onUser(u int32) {
	if u == none {
		return
	}
	a.add(u)
	s := a.s
	n := s.user(u)
	for _, g := range s.grantsOn(n) {
		a.grant(g)
	}
	a.walkUp(n.home)
	for _, e := range s.extras(n) {
		a.walkUp(e)
	}
}

// addTotals adds n records, gained or lost, to the totals of region a's
// rights.
func (s *state) addTotals(totals map[string]*AccessTotal, a AccessRegion, n int, gain bool) {
	for _, right := range a.Rights {
		t := totals[right]
		if t == nil {
			t = &AccessTotal{Right: right}
			totals[right] = t
		}
		if gain {
			t.Gained += n
		} else {
			t.Lost += n
		}
	}
}

// regionSize counts the records region a covers in s: folders and users,
// and one for the capabilities. Sizes are remembered in memo by region.
func (s *state) regionSize(a AccessRegion, memo map[string]int) int {
	switch a.On.Kind {
	case KindNone:
		return 1
	case KindUser:
		if _, ok := s.users.get(a.On.ID); ok {
			return 1
		}
		return 0
	}
	var key strings.Builder
	key.WriteString(a.On.String())
	for _, e := range a.Except {
		key.WriteByte(0)
		key.WriteString(e.String())
	}
	if n, ok := memo[key.String()]; ok {
		return n
	}
	top, ok := s.folders.get(a.On.ID)
	if !ok {
		return 0
	}
	var holes []int32
	users := map[int32]bool{}
	for _, e := range a.Except {
		switch e.Kind {
		case KindFolder:
			if f, ok := s.folders.get(e.ID); ok {
				holes = append(holes, f)
			}
		case KindUser:
			if u, ok := s.users.get(e.ID); ok {
				users[u] = false
			}
		}
	}
	n := 0
	walk := []int32{top}
	for len(walk) > 0 {
		f := walk[len(walk)-1]
		walk = walk[:len(walk)-1]
		if slices.Contains(holes, f) {
			continue
		}
		n++
		for u := range s.placed(f) {
			if _, seen := users[u]; seen {
				continue
			}
			in := true
			for _, h := range holes {
				if s.isMember(s.user(u), h) {
					in = false
					break
				}
			}
			users[u] = in
			if in {
				n++
			}
		}
		walk = append(walk, s.folder(f).children...)
	}
	memo[key.String()] = n
	return n
}
