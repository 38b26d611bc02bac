package graph

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Access streams follow the effective access of a few watched users: after
// each committed primitive mutation, what each of them gained and lost.
//
// What a user has is stated as regions, never as lists of records: a
// folder subtree with its members, one user, or the capabilities, each
// optionally minus some subtrees and users. A change is computed where it
// can happen only (the subtree a grant targets, a moved folder's subtree,
// one user...), by comparing the state before the primitive with the state
// after it: the primitive is undone and redone in place, on the index's
// shadow copy (shadow.go), as many times as the comparison needs.
//
// Within a candidate subtree, the folders fall into zones: a zone starts at
// the candidate itself, at the target of one of the user's grants or at a
// lock's target, and runs down to the next such folder. Every folder of a
// zone has the zone's access, before and after, so the folders' change is
// the zones' change. A user placed in one folder only, with no grant or
// lock of its own, has its folder's access; the others (extra groups, locks
// on them, the watched user) are evaluated one by one where a zone changed.
//
// Access streams count a grant until its expiry is recorded (expiredMark),
// so that they follow committed changes and never the clock.

// AccessRegion is a set of resources and rights over it. On is a folder
// (its subtree and every member of it), a user, or the zero Ref for the
// capabilities; Except lists folders (with their subtrees and members) and
// users that are not part of it. A region is read against the tree as it is
// right after the change that reports it.
type AccessRegion struct {
	Rights []string `json:"rights"`
	On     Ref      `json:"on,omitzero"`
	Except []Ref    `json:"except,omitempty"`
}

// AccessChange is what one mutation of a commit changed in a watched user's
// effective access. Gained and Lost never overlap. Access to a record that
// is deleted ends with it and is not listed.
type AccessChange struct {
	User string
	// Mutation is the index in Commit.Mutations of the change that caused
	// it; -1 for the access a stream starts from.
	Mutation int
	Gained   []AccessRegion
	Lost     []AccessRegion
}

// applyWatched applies a committed batch to s primitive by primitive and
// returns users' access changes. On error nothing is applied.
func applyWatched(s *state, muts []Mutation, users []string) ([]AccessChange, error) {
	t := &txn{s: s}
	var out []AccessChange
	for i := range muts {
		if err := t.apply(&muts[i]); err != nil {
			t.rollbackTo(0)
			return nil, err
		}
		out = append(out, t.accessChanges(users, i)...)
	}
	return out, nil
}

// startAccess is everything user has in s, as the Gained regions of a
// change with Mutation -1. The user must exist.
func startAccess(s *state, user string) AccessChange {
	j := &accessJob{w: user, full: true, rights: ^rightSet(0), caps: true}
	j.v2 = s.viewerOf(user, &s.scratch().after)
	j.v1 = s.viewerOf("", &s.scratch().before) // nobody: nothing before
	j.addReach(&j.v2)
	j.run(s, func() {})
	return j.change(s, -1)
}

// accessChanges compares, for each user, the state before the last
// primitive t applied (the i-th of its batch) with the state after it.
func (t *txn) accessChanges(users []string, i int) []AccessChange {
	s := t.s
	last := len(t.done) - 1
	m, inv := t.done[last], t.undo[last]
	var jobs []*accessJob
	for _, w := range users {
		if j := s.accessPlan(&m, &inv, w); j != nil {
			jobs = append(jobs, j)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	after := true
	flip := func() {
		if after {
			t.rollbackTo(last)
		} else if err := t.apply(&m); err != nil {
			panic(fmt.Sprintf("graph: redo of %v failed: %v", m, err))
		}
		after = !after
	}
	var out []AccessChange
	for _, j := range jobs {
		// One job at a time: each flips the state an even number of times.
		j.v2 = s.viewerOf(j.w, &s.scratch().after)
		j.addReach(&j.v2)
		flip()
		j.v1 = s.viewerOf(j.w, &s.scratch().before)
		j.addReach(&j.v1)
		flip()
		j.run(s, flip)
		if ch := j.change(s, i); len(ch.Gained)+len(ch.Lost) > 0 {
			out = append(out, ch)
		}
	}
	return out
}

// access is what a viewer has on one resource, as sets of rights: reached
// by a grant, denied by a lock, and allowed (reached, not denied, and the
// viewer active).
type access struct{ reach, lock, allowed rightSet }

// viewer is a watched user as one state sees them: the rights the grants
// reaching them (unexpired at streamNow) give, expanded, by target, and
// what each folder gives them, worked out once per folder.
type viewer struct {
	s      *state
	w      int32 // none when the user does not exist
	active bool
	self   rightSet
	onF    map[int32]rightSet // folder target -> rights of the grants on it
	onU    map[int32]rightSet // user target -> rights of the grants on it
	caps   rightSet
	memo   *folderMemo[access] // folder -> reach and lock from it and above (allowed unset)
}

// viewerOf returns user id as s sees them, remembering what folders give
// them in memo, which it resets.
func (s *state) viewerOf(id string, memo *folderMemo[access]) viewer {
	memo.reset(len(s.up))
	v := viewer{s: s, w: none, onF: map[int32]rightSet{}, onU: map[int32]rightSet{}, memo: memo}
	u, ok := s.users.get(id)
	if !ok {
		return v
	}
	n := s.user(u)
	v.w, v.active, v.self = u, n.active, s.cat.expand(s.cat.self)
	for _, gi := range s.reaching(n, ^rightSet(0), streamNow) {
		g := s.grant(gi)
		rights := s.cat.expand(g.rights)
		switch g.g.Target.Kind {
		case KindFolder:
			v.onF[g.target] |= rights
		case KindUser:
			v.onU[g.target] |= rights
		default:
			v.caps |= rights
		}
	}
	return v
}

// folderTargets returns the folders the viewer's grants target, in slot
// order (so that a job's zones come out the same way every time).
func (v *viewer) folderTargets() []int32 { return slices.Sorted(maps.Keys(v.onF)) }

// deniedBy returns the rights a lock on rights denies: those that are or
// imply one of them.
func (s *state) deniedBy(rights rightSet) rightSet {
	var out rightSet
	rights.each(func(r int) { out.union(s.cat.grantedBy[r]) })
	return out
}

func (v *viewer) finish(a access) access {
	a.allowed = 0
	if v.w != none && v.active {
		a.allowed = a.reach &^ a.lock
	}
	return a
}

// bits returns what reaches and what locks folder f (which must exist),
// from f and every folder above it.
func (v *viewer) bits(f int32) access {
	if a, ok := v.memo.get(f); ok {
		return a
	}
	var a access
	if p := v.s.up[f]; p != none {
		a = v.bits(p)
	}
	a.reach |= v.onF[f]
	for _, l := range v.s.folder(f).locks {
		a.lock |= v.s.deniedBy(v.s.lock(l).rights)
	}
	v.memo.put(f, a)
	return a
}

// folderAccess is what the viewer has on folder f, which must exist.
func (v *viewer) folderAccess(f int32) access { return v.finish(v.bits(f)) }

// userAccess is what the viewer has on user u, which must exist: what its
// home and extra groups give, and what names the user.
func (v *viewer) userAccess(u int32) access {
	s := v.s
	n := s.user(u)
	a := v.bits(n.home)
	for _, e := range n.extras {
		b := v.bits(e)
		a.reach |= b.reach
		a.lock |= b.lock
	}
	a.reach |= v.onU[u]
	if u == v.w {
		a.reach |= v.self
	}
	for _, l := range n.locks {
		a.lock |= s.deniedBy(s.lock(l).rights)
	}
	return v.finish(a)
}

// capAccess is the viewer's capabilities.
func (v *viewer) capAccess() access { return v.finish(access{reach: v.caps}) }

// reachMask is every right any of the viewer's grants or self rights give.
func (v *viewer) reachMask() rightSet {
	r := v.self | v.caps
	for _, rights := range v.onF {
		r |= rights
	}
	for _, rights := range v.onU {
		r |= rights
	}
	return r
}

// accessJob compares one watched user's access before and after one
// primitive, over the candidates the primitive may have changed.
type accessJob struct {
	w      string
	full   bool     // the user changed as a subject: everything they reach
	broad  bool     // implications changed: every irregular user is examined
	rights rightSet // the rights that may have changed
	folder []int32  // candidate subtrees
	user   []int32  // candidate users
	caps   bool     // the capabilities may have changed

	v1, v2 viewer // before and after

	zones    []int32       // zone starts: candidates first, then targets inside them
	zoneOf   map[int32]int // zone start -> index in zones
	up       []int         // index of the zone containing each zone's start, or -1
	children [][]int       // the zones each zone contains directly
	z1, z2   []access
	users    []int32 // users evaluated one by one
	u1, u2   []access
	placedIn [][]int // for each of users, the zone of its home and of each extra group (-1: none)
	c1, c2   access
}

// accessPlan returns the job comparing w's access across primitive m (just
// applied; inv undoes it), or nil when m cannot change it.
//
// Nothing outside the user's organisation is ever in it: every grant that
// reaches the user is held by the user or by one of the user's folders,
// and targets the same organisation. So unless the user changed as a
// subject, candidates elsewhere are dropped, and with them, in a service
// of many tenants, most of the work.
func (s *state) accessPlan(m, inv *Mutation, w string) *accessJob {
	j := s.planFor(m, inv, w)
	if j == nil || j.full {
		return j
	}
	wi, ok := s.users.get(w)
	if !ok {
		return nil // absent before and after: nothing either way
	}
	org := s.root(s.user(wi).home)
	j.folder = slices.DeleteFunc(j.folder, func(f int32) bool { return s.root(f) != org })
	j.user = slices.DeleteFunc(j.user, func(u int32) bool { return s.root(s.user(u).home) != org })
	if len(j.folder) == 0 && len(j.user) == 0 && !j.caps {
		return nil
	}
	return j
}

// planFor is accessPlan before the organisation filter.
func (s *state) planFor(m, inv *Mutation, w string) *accessJob {
	wi, wok := s.users.get(w)
	j := &accessJob{w: w, rights: ^rightSet(0)}
	full := func() *accessJob { j.full, j.caps = true, true; return j }
	folder := func(id string) *accessJob {
		if f, ok := s.folders.get(id); ok {
			j.folder = append(j.folder, f)
		}
		return j
	}
	user := func(id string) *accessJob {
		if u, ok := s.users.get(id); ok {
			j.user = append(j.user, u)
		}
		return j
	}
	reaches := func(h Ref) bool {
		if !wok {
			return false
		}
		if h.Kind == KindUser {
			return h.ID == w
		}
		f, ok := s.folders.get(h.ID)
		return ok && s.isMember(s.user(wi), f)
	}
	target := func(t Ref) *accessJob {
		switch t.Kind {
		case KindFolder:
			return folder(t.ID)
		case KindUser:
			return user(t.ID)
		}
		j.caps = true
		return j
	}
	grant := func(g Grant) *accessJob {
		if !reaches(g.Holder) {
			return nil
		}
		set, _, _ := s.cat.set(g.Rights)
		j.rights = s.cat.expand(set)
		return target(g.Target)
	}
	switch {
	case m.CreateFolder != nil:
		return folder(m.CreateFolder.ID)
	case m.MoveFolder != nil:
		if f, ok := s.folders.get(m.MoveFolder.ID); ok && wok && s.isMember(s.user(wi), f) {
			full()
		}
		return folder(m.MoveFolder.ID)
	case m.CreateUser != nil:
		if m.CreateUser.ID == w {
			return full()
		}
		return user(m.CreateUser.ID)
	case m.MoveUser != nil, m.AddExtraGroup != nil, m.DelExtraGroup != nil:
		id := ""
		switch {
		case m.MoveUser != nil:
			id = m.MoveUser.ID
		case m.AddExtraGroup != nil:
			id = m.AddExtraGroup.User
		default:
			id = m.DelExtraGroup.User
		}
		if id == w {
			return full()
		}
		return user(id)
	case m.SetUserState != nil:
		if m.SetUserState.ID == w {
			return full()
		}
	case m.DeleteUser != nil:
		if m.DeleteUser.ID == w {
			return full()
		}
	case m.AddGrant != nil:
		return grant(*m.AddGrant)
	case m.RemoveGrant != nil:
		return grant(*inv.AddGrant)
	case m.ExpireGrant != nil:
		if g, ok := s.grants.get(m.ExpireGrant.ID); ok {
			return grant(s.grant(g).g)
		}
	case m.AddLock != nil, m.RemoveLock != nil:
		l := m.AddLock
		if l == nil {
			l = inv.AddLock
		}
		set, _, _ := s.cat.set(l.Rights)
		j.rights = s.deniedBy(set)
		return target(l.Target)
	case m.PutRight != nil, m.DeleteRight != nil:
		j.broad = true
		return full()
	case m.SetSelfRights != nil:
		if wok {
			return user(w)
		}
	}
	return nil
}

// addReach adds to the candidates everything the viewer's grants reach,
// for a job on the user as a subject.
func (j *accessJob) addReach(v *viewer) {
	if !j.full || v.w == none {
		return
	}
	j.folder = append(j.folder, v.folderTargets()...)
	j.user = append(j.user, slices.Sorted(maps.Keys(v.onU))...)
	j.user = append(j.user, v.w)
}

// run evaluates the job. The state is after the primitive when it is
// called and when it returns; flip switches between before and after.
func (j *accessJob) run(s *state, flip func()) {
	j.folder = liveOnes(s.folders.live, j.folder)
	j.zonesOf(s)
	n := len(j.zones)
	if n > 0 || j.caps {
		j.zoneAccess(s, flip)
	}
	// Users are of two sorts. Those the primitive names (and the watched
	// user, and everyone when the catalogue changed) are evaluated in each
	// state. For the others nothing about the
	// user itself changed, only their folders: their access in each state
	// is what the zones of their home and extra groups give (a folder in
	// no zone gives the same before and after), with what names them.
	users := j.examined(s)
	zoneAt := &s.scratch().zones
	zoneAt.reset(len(s.up))
	placed := func(u int32) []int {
		n := s.user(u)
		zs := []int{j.zoneAt(s, zoneAt, n.home)}
		for _, e := range n.extras {
			zs = append(zs, j.zoneAt(s, zoneAt, e))
		}
		return zs
	}
	named := map[int32]bool{j.v2.w: true}
	for _, u := range j.user {
		named[u] = true
	}
	var slow []int32
	for _, u := range users {
		if named[u] || j.v1.w == u || j.broad { // implications changed: locks mean other things now
			slow = append(slow, u)
			continue
		}
		zs := placed(u)
		n := s.user(u)
		var a1, a2 access
		for k, z := range zs {
			if z >= 0 {
				a1.reach, a1.lock = a1.reach|j.z1[z].reach, a1.lock|j.z1[z].lock
				a2.reach, a2.lock = a2.reach|j.z2[z].reach, a2.lock|j.z2[z].lock
				continue
			}
			f := n.home
			if k > 0 {
				f = n.extras[k-1]
			}
			b := j.v2.bits(f)
			a1.reach, a1.lock = a1.reach|b.reach, a1.lock|b.lock
			a2.reach, a2.lock = a2.reach|b.reach, a2.lock|b.lock
		}
		a1.reach |= j.v1.onU[u]
		a2.reach |= j.v2.onU[u]
		for _, l := range n.locks {
			d := s.deniedBy(s.lock(l).rights)
			a1.lock, a2.lock = a1.lock|d, a2.lock|d
		}
		a1, a2 = j.v1.finish(a1), j.v2.finish(a2)
		// Keep those the zones' regions would get wrong. A user whose
		// change, right by right, is that of every zone it is placed in
		// needs nothing of its own: when those zones moved, the deepest
		// region among them holds the user with no hole above it (a hole
		// is a zone that did not move); when they did not, no region
		// holds the user. Any other may need excepting or adding.
		if !j.sameAsZones(a1, a2, zs) {
			j.users = append(j.users, u)
			j.u1 = append(j.u1, a1)
			j.u2 = append(j.u2, a2)
			j.placedIn = append(j.placedIn, zs)
		}
	}
	if len(slow) == 0 {
		return
	}
	flip()
	u1 := make([]access, len(slow))
	for k, u := range slow {
		if s.users.live[u] {
			u1[k] = j.v1.userAccess(u)
		}
	}
	flip()
	for k, u := range slow {
		if !s.users.live[u] {
			continue
		}
		j.users = append(j.users, u)
		j.u1 = append(j.u1, u1[k])
		j.u2 = append(j.u2, j.v2.userAccess(u))
		j.placedIn = append(j.placedIn, placed(u))
	}
}

// sameAsZones reports whether a user's change (a1 to a2) is, for every
// right of the job, the change of each zone in zs (those below 0 are in no
// zone and do not count).
func (j *accessJob) sameAsZones(a1, a2 access, zs []int) bool {
	gained, lost := a2.allowed&^a1.allowed&j.rights, a1.allowed&^a2.allowed&j.rights
	for _, z := range zs {
		if z < 0 {
			continue
		}
		z1, z2 := j.z1[z].allowed, j.z2[z].allowed
		if z2&^z1&j.rights != gained || z1&^z2&j.rights != lost {
			return false
		}
	}
	return true
}

// zoneAt returns the zone folder f lies in, or -1, remembering the answer
// for every folder on the way up.
func (j *accessJob) zoneAt(s *state, memo *folderMemo[int32], f int32) int {
	if z, ok := j.zoneOf[f]; ok {
		return z
	}
	if z, ok := memo.get(f); ok {
		return int(z)
	}
	z := -1
	if p := s.up[f]; p != none {
		z = j.zoneAt(s, memo, p)
	}
	memo.put(f, int32(z))
	return z
}

// zoneAccess evaluates the zones and the capabilities, after and before.
func (j *accessJob) zoneAccess(s *state, flip func()) {
	n := len(j.zones)
	j.z2 = make([]access, n)
	for k, f := range j.zones {
		j.z2[k] = j.v2.folderAccess(f)
	}
	if j.caps {
		j.c2 = j.v2.capAccess()
	}
	flip()
	j.z1 = make([]access, n)
	for k, f := range j.zones {
		if s.folders.live[f] {
			j.z1[k] = j.v1.folderAccess(f)
		}
	}
	if j.caps {
		j.c1 = j.v1.capAccess()
	}
	flip()
}

// liveOnes returns the slots of list that are live, each once.
func liveOnes(live []bool, list []int32) []int32 {
	var out []int32
	for _, x := range list {
		if int(x) < len(live) && live[x] && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// lockScanCost is what testing one lock against the candidates costs, in
// folders walked: below it, walking the candidate subtrees is cheaper.
var lockScanCost = 12

// zonesOf finds the zone starts: the candidate folders, and every folder
// inside one of them that is the target of the viewer's grants (before or
// after) or of a lock on the job's rights. It links each zone to the zone
// containing its start.
func (j *accessJob) zonesOf(s *state) {
	j.zoneOf = map[int32]int{}
	add := func(f int32) {
		if _, ok := j.zoneOf[f]; !ok {
			j.zoneOf[f] = len(j.zones)
			j.zones = append(j.zones, f)
		}
	}
	for _, f := range j.folder {
		add(f)
	}
	if len(j.zones) == 0 {
		return
	}
	cands := len(j.zones)
	inside := func(f int32) bool {
		for a := f; a != none; a = s.up[a] {
			if k, ok := j.zoneOf[a]; ok && k < cands {
				return true
			}
		}
		return false
	}
	for _, v := range []*viewer{&j.v1, &j.v2} {
		for _, f := range v.folderTargets() {
			if s.folders.live[f] && inside(f) {
				add(f)
			}
		}
	}
	lock := func(li int32) {
		if l := s.lock(li); s.deniedBy(l.rights).meets(j.rights) {
			add(l.target)
		}
	}
	// The locks inside the candidates: found by walking the candidate
	// subtrees when they are small, else by testing every lock.
	budget := lockScanCost * s.locks.len()
	var walk []int32
	for k := 0; k < cands && budget >= 0; k++ {
		walk = append(walk[:0], j.zones[k])
		for i := 0; i < len(walk) && budget >= 0; i++ {
			budget--
			for _, li := range s.folder(walk[i]).locks {
				lock(li)
			}
			walk = append(walk, s.folder(walk[i]).children...)
		}
	}
	if budget < 0 {
		for li, ok := range s.locks.live {
			if ok && s.lock(int32(li)).l.Target.Kind == KindFolder && inside(s.lock(int32(li)).target) {
				lock(int32(li))
			}
		}
	}
	j.up = make([]int, len(j.zones))
	j.children = make([][]int, len(j.zones))
	for k, f := range j.zones {
		j.up[k] = -1
		for a := s.up[f]; a != none; a = s.up[a] {
			if p, ok := j.zoneOf[a]; ok {
				j.up[k] = p
				j.children[p] = append(j.children[p], k)
				break
			}
		}
	}
}

func (j *accessJob) changed(a, b access) bool {
	return ((a.reach^b.reach)|(a.lock^b.lock)|(a.allowed^b.allowed))&j.rights != 0
}

// examined returns the users to evaluate one by one: the candidates, and
// the users placed in a changed zone whose access may differ from their
// folder's (extra groups, grants or locks of their own, the watched user).
func (j *accessJob) examined(s *state) []int32 {
	out := liveOnes(s.users.live, j.user)
	seen := map[int32]bool{}
	for _, u := range out {
		seen[u] = true
	}
	irregular := func(u int32) bool {
		n := s.user(u)
		return len(n.extras) > 0 || len(n.on) > 0 || len(n.locks) > 0 || u == j.v2.w
	}
	var walk []int32
	for k, f := range j.zones {
		if !j.broad && !j.changed(j.z1[k], j.z2[k]) {
			continue
		}
		// The zone: f's subtree down to the next zone starts.
		walk = append(walk[:0], f)
		for i := 0; i < len(walk); i++ {
			d := walk[i]
			for u := range s.placed(d) {
				if !seen[u] && irregular(u) {
					seen[u] = true
					out = append(out, u)
				}
			}
			for _, c := range s.folder(d).children {
				if _, start := j.zoneOf[c]; !start {
					walk = append(walk, c)
				}
			}
		}
	}
	return out
}

// region is an AccessRegion under construction, for one right.
type region struct {
	on     Ref
	except []Ref
	zone   int // the zone it starts at, for a subtree; -1 otherwise
}

// regions returns the regions over which right r was gained (gain) or
// lost, in the state after the primitive.
func (j *accessJob) regions(s *state, r int, gain bool) []region {
	bit := rightSet(1) << uint(r)
	moved := func(a, b access) bool {
		was, is := a.allowed&bit != 0, b.allowed&bit != 0
		if gain {
			return !was && is
		}
		return was && !is
	}
	var out []region
	// A region starts at each zone that moved under one that did not, and
	// takes in the zones below that moved too; the first that did not is
	// a hole, excepted with everything under it.
	in := make([]int, len(j.zones)) // the region a zone is part of, or -1
	for k := range in {
		in[k] = -1
	}
	for k, f := range j.zones {
		if !moved(j.z1[k], j.z2[k]) || j.up[k] >= 0 && moved(j.z1[j.up[k]], j.z2[j.up[k]]) {
			continue
		}
		rg := region{on: FolderRef(s.folder(f).id), zone: k}
		in[k] = len(out)
		stack := slices.Clone(j.children[k])
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if moved(j.z1[c], j.z2[c]) {
				in[c] = len(out)
				stack = append(stack, j.children[c]...)
			} else {
				rg.except = append(rg.except, FolderRef(s.folder(j.zones[c]).id))
			}
		}
		out = append(out, rg)
	}
	// under reports whether zone z lies in zone top's subtree.
	under := func(z, top int) bool {
		for ; z >= 0; z = j.up[z] {
			if z == top {
				return true
			}
		}
		return false
	}
	// A user is in a region when placed in one of its zones and not placed
	// under one of its holes (the zones under its start that it lacks).
	for k, u := range j.users {
		if !s.users.live[u] {
			continue
		}
		want := moved(j.u1[k], j.u2[k])
		covered := false
		var seen []int // the regions this user was tested against
		for _, z := range j.placedIn[k] {
			if z < 0 || in[z] < 0 || slices.Contains(seen, in[z]) {
				continue
			}
			x := in[z]
			seen = append(seen, x)
			holed := slices.ContainsFunc(j.placedIn[k], func(z2 int) bool { return z2 >= 0 && in[z2] != x && under(z2, out[x].zone) })
			if holed {
				continue
			}
			covered = true
			if !want {
				out[x].except = append(out[x].except, UserRef(s.user(u).id))
			}
		}
		if want && !covered {
			out = append(out, region{on: UserRef(s.user(u).id), zone: -1})
		}
	}
	if j.caps && moved(j.c1, j.c2) {
		out = append(out, region{zone: -1})
	}
	return out
}

// change assembles the job's result, merging the regions of different
// rights that cover the same resources.
func (j *accessJob) change(s *state, i int) AccessChange {
	ch := AccessChange{User: j.w, Mutation: i}
	for _, gain := range []bool{true, false} {
		type key struct {
			on     Ref
			except string
		}
		merged := map[key]*AccessRegion{}
		var order []key
		(j.rights & j.mask()).each(func(r int) {
			if r >= len(s.cat.names) || s.cat.names[r] == "" {
				return
			}
			for _, rg := range j.regions(s, r, gain) {
				slices.SortFunc(rg.except, compareRefs)
				rg.except = slices.Compact(rg.except)
				var b strings.Builder
				for _, e := range rg.except {
					b.WriteString(e.String())
					b.WriteByte(0)
				}
				k := key{rg.on, b.String()}
				if merged[k] == nil {
					merged[k] = &AccessRegion{On: rg.on, Except: rg.except}
					order = append(order, k)
				}
				merged[k].Rights = append(merged[k].Rights, s.cat.names[r])
			}
		})
		var list []AccessRegion
		for _, k := range order {
			a := merged[k]
			slices.Sort(a.Rights)
			list = append(list, *a)
		}
		slices.SortFunc(list, func(a, b AccessRegion) int {
			return cmp.Or(compareRefs(a.On, b.On), slices.Compare(a.Rights, b.Rights))
		})
		if gain {
			ch.Gained = list
		} else {
			ch.Lost = list
		}
	}
	return ch
}

// mask is every right that was reached before or after: no other right can
// have changed.
func (j *accessJob) mask() rightSet { return j.v1.reachMask() | j.v2.reachMask() }

func compareRefs(a, b Ref) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), strings.Compare(a.ID, b.ID))
}

// accessScratch is memory access jobs reuse from one to the next: they
// run one at a time, on the shadow's goroutine. Maps that grew to a
// hundred thousand folders for every large job were half of what the
// jobs cost.
type accessScratch struct {
	before, after folderMemo[access] // the viewers' (viewer.memo)
	zones         folderMemo[int32]  // the zone of each folder met (accessJob.zoneAt)
}

// scratch returns s's access scratch, making it on first use.
func (s *state) scratch() *accessScratch {
	if s.jobs == nil {
		s.jobs = &accessScratch{}
	}
	return s.jobs
}

// folderMemo remembers a value per folder slot for one job. A slot's
// value counts only when its stamp is the current generation, so
// starting afresh costs nothing however many folders the last job met.
type folderMemo[V any] struct {
	gen   uint32
	stamp []uint32
	val   []V
}

// reset forgets every value, with room for n folder slots.
func (m *folderMemo[V]) reset(n int) {
	m.grow(n)
	if m.gen++; m.gen == 0 { // wrapped: old stamps could match again
		clear(m.stamp)
		m.gen = 1
	}
}

func (m *folderMemo[V]) grow(n int) {
	if n > len(m.stamp) {
		n += n / 8
		m.stamp = append(m.stamp, make([]uint32, n-len(m.stamp))...)
		m.val = append(m.val, make([]V, n-len(m.val))...)
	}
}

func (m *folderMemo[V]) get(f int32) (V, bool) {
	if int(f) < len(m.stamp) && m.stamp[f] == m.gen {
		return m.val[f], true
	}
	var zero V
	return zero, false
}

func (m *folderMemo[V]) put(f int32, v V) {
	m.grow(int(f) + 1)
	m.stamp[f], m.val[f] = m.gen, v
}
