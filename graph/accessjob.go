package graph

// The work of an access stream: one watched user's access compared before
// and after one primitive (accessJob), over the zones it may have changed
// (accessstream.go explains the method).

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

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
	case m.ExpireGrant != nil, m.StartGrant != nil:
		if g, ok := s.grants.get(m.markedGrant()); ok {
			return grant(s.grantView(g))
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
		for _, e := range s.extras(n) {
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
				f = s.extras(n)[k-1]
			}
			b := j.v2.bits(f)
			a1.reach, a1.lock = a1.reach|b.reach, a1.lock|b.lock
			a2.reach, a2.lock = a2.reach|b.reach, a2.lock|b.lock
		}
		a1.reach |= j.v1.onU[u]
		a2.reach |= j.v2.onU[u]
		for _, l := range s.locksOn(n) {
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
		return n.nx > 0 || len(s.grantsOn(n)) > 0 || len(s.locksOn(n)) > 0 || u == j.v2.w
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
		rg := region{on: FolderRef(s.folderID(f)), zone: k}
		in[k] = len(out)
		stack := slices.Clone(j.children[k])
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if moved(j.z1[c], j.z2[c]) {
				in[c] = len(out)
				stack = append(stack, j.children[c]...)
			} else {
				rg.except = append(rg.except, FolderRef(s.folderID(j.zones[c])))
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
				out[x].except = append(out[x].except, UserRef(s.userID(u)))
			}
		}
		if want && !covered {
			out = append(out, region{on: UserRef(s.userID(u)), zone: -1})
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
