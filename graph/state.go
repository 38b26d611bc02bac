package graph

import (
	"iter"
	"math"
	"slices"
	"time"
)

// none marks an absent slot (no parent, no target).
const none int32 = -1

// folderNode is a folder and the edges that start or end at it. Slots in the
// lists are unordered; anything that answers callers sorts by id.
type folderNode struct {
	id, name text // in the side's texts
	labels   map[string]string
	children []int32
	homes    []int32 // users whose home folder this is
	extras   []int32 // users with this folder as an extra group
	// childAt is this folder's place in its parent's children, so that
	// it leaves the list in one step however long the list is.
	childAt int32
	on      []int32  // grants whose target is this folder
	locks   []int32  // locks whose target is this folder
	rule    []string // allowed classes, sorted; nil when there is no rule
}

// userNode is a user. The fields a check reads come first, to share one
// cache line.
//
// A node holds no pointer, so that the pages of a million of them are
// memory the collector passes over without reading it: with one pointer
// in each, it read every node of both sides each cycle. Its extra groups
// (sorted by folder id) are kept in the node, up to inlineExtras of them;
// the lists few users have (more extra groups, the grants it holds, the
// grants and locks that name it) are its links, kept apart (state.links).
type userNode struct {
	home   int32
	active bool  // state == StateActive
	timed  bool  // active until a time (userLinks.until)
	nx     uint8 // extra groups in ex, or extrasApart
	ex     [inlineExtras]int32
	links  int32 // 1 + its slot in the state's links; 0 when it has none
	// homeAt is the user's place in its home's homes, and extraAt(u)[k]
	// its place in the extras of folder extras(u)[k]: removing the user
	// from a folder of any size is one step.
	homeAt int32
	exAt   [inlineExtras]int32
	// The user's id, name and class, kept in the side's texts, and its
	// state (states[state]).
	id, name, class text
	state           uint8
}

// states are the user states, by their number in a node.
var states = [...]State{StateActive, StateDisabled, StateArchived}

// stateNumber returns the number of state s, which is valid.
func stateNumber(s State) uint8 { return uint8(slices.Index(states[:], s)) }

// inlineExtras is how many extra groups a user keeps in its node.
const inlineExtras = 3

// extrasApart, as a node's count of extra groups, says that they are in
// its links.
const extrasApart = 0xff

// userLinks are the lists of a user that most users do not have.
type userLinks struct {
	held            []heldGrant // grants whose holder is the user
	on              []int32     // grants whose target is the user
	locks           []int32     // locks whose target is the user
	extras, extraAt []int32     // its extra groups, when more than inlineExtras
	until           int64       // User.ActiveUntil in unix nanoseconds, when timed
	untilAt         instant     // User.ActiveUntil as given
}

// activeAt reports whether user u is active at now: its state is active
// and its ActiveUntil, if any, is still to come.
func (s *state) activeAt(u *userNode, now int64) bool {
	return u.active && (!u.timed || now < s.linksOf(u).until)
}

// activeUntil returns user u's ActiveUntil, the zero time for none.
func (s *state) activeUntil(u *userNode) time.Time {
	if !u.timed {
		return time.Time{}
	}
	return s.linksOf(u).untilAt.time()
}

// setActiveUntil sets user u's ActiveUntil (the zero time for none).
func (s *state) setActiveUntil(u *userNode, at time.Time) {
	if at.IsZero() {
		if u.timed {
			l := s.linksOf(u)
			l.until, l.untilAt = 0, instant{}
			s.timed--
		}
		u.timed = false
		return
	}
	l := s.ownLinks(u)
	l.until, l.untilAt = unixNano(at), instantOf(at)
	if !u.timed {
		s.timed++
	}
	u.timed = true
}

// linksOf returns user u's links, or nil when it has none.
func (s *state) linksOf(u *userNode) *userLinks {
	if u.links == 0 {
		return nil
	}
	return s.links.at(u.links - 1)
}

// ownLinks returns user u's links, giving it empty ones first if it has
// none.
func (s *state) ownLinks(u *userNode) *userLinks {
	if u.links == 0 {
		if k := len(s.freeLinks); k > 0 {
			u.links = s.freeLinks[k-1] + 1
			s.freeLinks = s.freeLinks[:k-1]
		} else {
			u.links = s.links.push(userLinks{}) + 1
		}
	}
	return s.links.at(u.links - 1)
}

// dropLinks frees user u's links, as it leaves.
func (s *state) dropLinks(u *userNode) {
	if u.links != 0 {
		*s.links.at(u.links - 1) = userLinks{}
		s.freeLinks = append(s.freeLinks, u.links-1)
		u.links = 0
	}
}

// heldBy returns the grants user u holds.
func (s *state) heldBy(u *userNode) []heldGrant {
	if l := s.linksOf(u); l != nil {
		return l.held
	}
	return nil
}

// grantsOn returns the grants whose target is user u.
func (s *state) grantsOn(u *userNode) []int32 {
	if l := s.linksOf(u); l != nil {
		return l.on
	}
	return nil
}

// locksOn returns the locks whose target is user u.
func (s *state) locksOn(u *userNode) []int32 {
	if l := s.linksOf(u); l != nil {
		return l.locks
	}
	return nil
}

// extras returns user u's extra groups (folder slots, sorted by folder
// id). The slice may be the node's own memory: change it only through
// setExtras, or in place.
func (s *state) extras(u *userNode) []int32 {
	if u.nx == extrasApart {
		return s.linksOf(u).extras
	}
	return u.ex[:u.nx]
}

// extraAt returns user u's place in each of its extra groups' lists, in
// the order of extras; it may be written in place.
func (s *state) extraAt(u *userNode) []int32 {
	if u.nx == extrasApart {
		return s.linksOf(u).extraAt
	}
	return u.exAt[:u.nx]
}

// setExtras makes extras, with places at, user u's extra groups. They may
// be the slices extras and extraAt returned, changed.
func (s *state) setExtras(u *userNode, extras, at []int32) {
	if len(extras) > inlineExtras {
		l := s.ownLinks(u)
		l.extras, l.extraAt = slices.Clone(extras), slices.Clone(at)
		u.nx = extrasApart
		return
	}
	copy(u.ex[:], extras)
	copy(u.exAt[:], at)
	if u.nx == extrasApart {
		l := s.linksOf(u)
		l.extras, l.extraAt = nil, nil
	}
	u.nx = uint8(len(extras))
}

// heldGrant is a grant as its holder lists it: what a check needs to test
// it, inline, so that scanning a holder's grants reads one contiguous list.
// A grant never changes after it is added, so the copy cannot go stale.
type heldGrant struct {
	rights  rightSet
	expires int64 // unix nanoseconds; 0 for never
	starts  int64 // unix nanoseconds; 0 once it applies (startsOf)
	target  int32 // none for a capability
	grant   int32 // the grant's slot
	tkind   Kind
}

func (h *heldGrant) expired(now int64) bool { return h.expires != 0 && now >= h.expires }

// started reports whether the grant has begun to apply at now.
func (h *heldGrant) started(now int64) bool { return h.starts == 0 || now >= h.starts }

// inEffect reports whether the grant applies at now: started, unexpired.
func (h *heldGrant) inEffect(now int64) bool { return h.started(now) && !h.expired(now) }

// expiredMark is the expiry a grant is given, inside the index, once its
// expiry is recorded (Grant.Expired): the earliest instant after the epoch.
// Decisions, made at real times, find it expired as before; access
// streams, which evaluate at streamNow, find a grant in effect exactly
// until its expiry is recorded, so they follow committed changes only and
// never the clock.
const expiredMark int64 = 1

// streamNow is the time access streams evaluate grants at.
const streamNow = expiredMark

// expiresOf returns a grant's expiry as the index keeps it: unix
// nanoseconds, 0 for never, expiredMark once recorded.
func expiresOf(g Grant) int64 {
	if g.Expired {
		return expiredMark
	}
	return unixNano(g.ExpiresAt)
}

// startsOf returns a grant's start as the index keeps it: unix
// nanoseconds until its start is recorded (Grant.Started), 0 when it has
// none or once recorded. Access streams, at streamNow, find a grant with
// a start not in effect exactly until its start is recorded, as for
// expiries.
func startsOf(g Grant) int64 {
	if g.Started || g.StartsAt.IsZero() {
		return 0
	}
	return unixNano(g.StartsAt)
}

// grantNode is a grant with its references resolved to slots.
type grantNode struct {
	rights  rightSet
	expires int64 // unix nanoseconds; 0 for never
	starts  int64 // startsOf
	target  int32 // none for a capability
	holder  int32
	// heldAt and onAt are the grant's places in its holder's list and in
	// its target's (or the capabilities), so that it leaves both in one
	// step.
	heldAt, onAt int32
	// The rest of the grant, with no pointer (a time.Time holds one): its
	// id and reason in the side's texts, its holder's and target's kinds
	// (their ids are those of the slots), its rights in rights.
	hkind, tkind Kind
	marked       bool    // Grant.Expired: the expiry is recorded
	started      bool    // Grant.Started: the start is recorded
	expiresAt    instant // Grant.ExpiresAt
	startsAt     instant // Grant.StartsAt
	id, reason   text
}

// instant is a time.Time in UTC without its location, a time the
// collector need not read: seconds since the zero time (January 1 of year
// 1), so that the zero instant is the zero time, and nanoseconds.
type instant struct {
	sec  int64
	nsec int32
}

// zeroToUnix is the Unix time of the zero time.
const zeroToUnix = -62135596800

// instantOf returns t as an instant.
func instantOf(t time.Time) instant { return instant{t.Unix() - zeroToUnix, int32(t.Nanosecond())} }

// time returns the instant in UTC.
func (i instant) time() time.Time { return time.Unix(i.sec+zeroToUnix, int64(i.nsec)).UTC() }

func (g *grantNode) expired(now int64) bool { return g.expires != 0 && now >= g.expires }

// inEffect reports whether the grant applies at now: started, unexpired.
func (g *grantNode) inEffect(now int64) bool {
	return (g.starts == 0 || now >= g.starts) && !g.expired(now)
}

// expiry is the grant's expiry as the index keeps it (expiresOf).
func (g *grantNode) expiry() int64 {
	if g.marked {
		return expiredMark
	}
	return unixNano(g.expiresAt.time())
}

// grantID returns the id of grant slot i.
func (s *state) grantID(i int32) string { return s.txt.get(s.grant(i).id) }

// ref returns the reference to slot i of kind k: a folder, a user, or
// the zero Ref for none.
func (s *state) ref(k Kind, i int32) Ref {
	switch k {
	case KindFolder:
		return FolderRef(s.folderID(i))
	case KindUser:
		return UserRef(s.userID(i))
	}
	return Ref{}
}

// lockNode is a lock with its target resolved to a slot.
type lockNode struct {
	l      Lock
	target int32
	rights rightSet
	at     int32 // its place in its target's locks
}

// table is a slot allocator: ids map to dense slots, freed slots are
// reused. The ids are found through an open-addressing array of cells
// (idIndex), not a Go map: the cells hold no pointer (a map of a million
// string keys is a million pointers for the collector to visit each
// cycle, per side), and the id compared is the node's own.
type table[T any] struct {
	ids   idIndex
	nodes paged[T]
	live  []bool
	free  []int32
	key   func(*T) string // the node's id
}

func newTable[T any](key func(*T) string) table[T] {
	return table[T]{ids: newIDIndex(0), key: key}
}

func (t *table[T]) get(id string) (int32, bool) {
	return t.ids.find(id, func(i int32) bool { return t.key(t.nodes.at(i)) == id })
}

func (t *table[T]) insert(id string, n T) int32 {
	var i int32
	if k := len(t.free); k > 0 {
		i = t.free[k-1]
		t.free = t.free[:k-1]
		*t.nodes.at(i) = n
		t.live[i] = true
	} else {
		i = t.nodes.push(n)
		t.live = append(t.live, true)
	}
	t.ids.add(id, i)
	return i
}

func (t *table[T]) remove(id string, i int32) {
	t.ids.drop(id, i)
	var zero T
	*t.nodes.at(i) = zero
	t.live[i] = false
	t.free = append(t.free, i)
}

func (t *table[T]) len() int { return t.ids.n }

// all yields the id and slot of every live node, in slot order.
func (t *table[T]) all() iter.Seq2[string, int32] {
	return func(yield func(string, int32) bool) {
		for i, live := range t.live {
			if live && !yield(t.key(t.nodes.at(int32(i))), int32(i)) {
				return
			}
		}
	}
}

// reserve makes room for n more entries, so that loading a large state
// does not copy the tables again and again as they grow.
func (t *table[T]) reserve(n int) {
	if n <= 0 {
		return
	}
	t.nodes.reserve(n)
	t.live = slices.Grow(t.live, n)
	t.ids.reserve(t.ids.n + n)
}

// state is everything the index holds. It is changed only by txn.apply.
type state struct {
	folders table[folderNode]
	// up[f] is the parent of folder slot f (none for a root). It sits apart
	// from the nodes so that walking up a tree, which every check does,
	// reads a few cache lines instead of one node per level.
	up []int32
	// held[f] lists the grants whose holder is folder slot f, kept apart
	// from the nodes for the same reason as up.
	held paged[[]heldGrant]
	// heldSum[f] sums up the grants in held[f], so that a check passes
	// over the folders whose grants cannot decide it (most of those it
	// walks: most checks are denials) by reading an array that stays in
	// cache, not each folder's list. It is the folder's own, not
	// inherited: moving a folder does not change it. heldGone[f] counts
	// the grants that left held[f] since heldSum[f] was last exact
	// (heldSummary); it is apart because checks never read it.
	heldSum  []heldSummary
	heldGone []int32
	users    table[userNode]
	// links are the users' lists that most users do not have (userLinks),
	// by slot; freeLinks are the slots free for reuse.
	links     paged[userLinks]
	freeLinks []int32
	grants    table[grantNode]
	locks     table[lockNode]
	caps      []int32 // grants with no target
	cat       catalogue
	rules     int   // number of placement rules
	timed     int   // number of users with an ActiveUntil (userNode.timed)
	txt       texts // the ids and names of folders, users and grants

	// jobs is not data: memory the access jobs run on this state reuse
	// (accessstream.go). It is never copied.
	jobs *accessScratch
}

func newState() *state {
	s := &state{
		locks: newTable(func(n *lockNode) string { return n.l.ID }),
		cat:   newCatalogue(),
	}
	s.folders, s.users, s.grants = newTable(s.folderKey), newTable(s.userKey), newTable(s.grantKey)
	return s
}

// compactTexts moves the strings of the live folders, users and grants
// to fresh blocks when the old ones are mostly dead bytes (texts), so that
// a service that renames, deletes or has writes refused forever keeps its
// texts in proportion to what is live. It costs one pass over the nodes,
// once more bytes died than live: O(1) a byte dropped.
// Strings already handed out keep the old blocks alive while they last.
func (s *state) compactTexts() {
	if !s.txt.wasteful() {
		return
	}
	var x texts
	for i, live := range s.folders.live {
		if n := s.folder(int32(i)); live {
			n.id, n.name = x.put(s.txt.get(n.id)), x.put(s.txt.get(n.name))
		}
	}
	for i, live := range s.users.live {
		if n := s.user(int32(i)); live {
			n.id, n.name, n.class = x.put(s.txt.get(n.id)), x.put(s.txt.get(n.name)), x.put(s.txt.get(n.class))
		}
	}
	for i, live := range s.grants.live {
		if n := s.grant(int32(i)); live {
			n.id, n.reason = x.put(s.txt.get(n.id)), x.put(s.txt.get(n.reason))
		}
	}
	s.txt = x
}

// folderKey returns a folder's id, from this state's texts.
func (s *state) folderKey(n *folderNode) string { return s.txt.get(n.id) }

// userKey returns a user's id, from this state's texts.
func (s *state) userKey(n *userNode) string { return s.txt.get(n.id) }

// grantKey returns a grant's id, from this state's texts.
func (s *state) grantKey(n *grantNode) string { return s.txt.get(n.id) }

// reserve makes room for that many more of each entity, so that loading a
// large state does not copy the tables again and again as they grow.
func (s *state) reserve(folders, users, grants, locks int) {
	s.folders.reserve(folders)
	s.up = slices.Grow(s.up, folders)
	s.held.reserve(folders)
	s.users.reserve(users)
	s.grants.reserve(grants)
	s.locks.reserve(locks)
}

func (s *state) folder(i int32) *folderNode { return s.folders.nodes.at(i) }

// folderID returns the id of folder slot i.
func (s *state) folderID(i int32) string { return s.txt.get(s.folder(i).id) }

// setUp records folder slot i's parent.
func (s *state) setUp(i, parent int32) {
	for int(i) >= len(s.up) {
		s.up = append(s.up, none)
		s.held.push(nil)
		s.heldSum = append(s.heldSum, heldSummary{})
		s.heldGone = append(s.heldGone, 0)
	}
	s.up[i] = parent
}
func (s *state) user(i int32) *userNode { return s.users.nodes.at(i) }

// userID returns the id of user slot i.
func (s *state) userID(i int32) string { return s.txt.get(s.user(i).id) }

// userClass returns the class of user slot i.
func (s *state) userClass(i int32) string { return s.txt.get(s.user(i).class) }
func (s *state) grant(i int32) *grantNode { return s.grants.nodes.at(i) }
func (s *state) lock(i int32) *lockNode   { return s.locks.nodes.at(i) }

// root returns the root of folder f's organisation.
func (s *state) root(f int32) int32 {
	for s.up[f] != none {
		f = s.up[f]
	}
	return f
}

// depth returns folder f's level: 1 for a root, 2 for its children...
func (s *state) depth(f int32) int {
	n := 0
	for ; f != none; f = s.up[f] {
		n++
	}
	return n
}

// height returns how many levels folder f's subtree has (1: f alone). It
// visits the subtree.
func (s *state) height(f int32) int {
	level, h := []int32{f}, 0
	for len(level) > 0 {
		h++
		var next []int32
		for _, x := range level {
			next = append(next, s.folder(x).children...)
		}
		level = next
	}
	return h
}

// isAncestor reports whether a is f or lies above it.
func (s *state) isAncestor(a, f int32) bool {
	for ; f != none; f = s.up[f] {
		if f == a {
			return true
		}
	}
	return false
}

// isMember reports whether user u is a member of folder f: its home or an
// extra group is f or lies below it.
func (s *state) isMember(u *userNode, f int32) bool {
	if s.isAncestor(f, u.home) {
		return true
	}
	for _, e := range s.extras(u) {
		if s.isAncestor(f, e) {
			return true
		}
	}
	return false
}

// placed yields the users whose home or an extra group is folder f; a user
// placed there both ways comes twice.
func (s *state) placed(f int32) iter.Seq[int32] {
	return func(yield func(int32) bool) {
		n := s.folder(f)
		for _, list := range [2][]int32{n.homes, n.extras} {
			for _, u := range list {
				if !yield(u) {
					return
				}
			}
		}
	}
}

// placedBelow yields the users placed in f or in any folder below it: the
// members of f. A user placed in several of them comes more than once.
func (s *state) placedBelow(f int32) iter.Seq[int32] {
	return func(yield func(int32) bool) {
		for _, d := range s.subtree(nil, f) {
			for u := range s.placed(d) {
				if !yield(u) {
					return
				}
			}
		}
	}
}

// subtree appends f and every folder below it to out, parents before children.
func (s *state) subtree(out []int32, f int32) []int32 {
	start := len(out)
	out = append(out, f)
	for i := start; i < len(out); i++ {
		out = append(out, s.folder(out[i]).children...)
	}
	return out
}

// allowed reports whether class may be a member of folder f and everything
// above it; when not, it returns the folder whose rule refuses.
func (s *state) allowed(class string, f int32) (int32, bool) {
	if s.rules == 0 {
		return none, true
	}
	for ; f != none; f = s.up[f] {
		r := s.folder(f).rule
		if r != nil {
			if _, ok := slices.BinarySearch(r, class); !ok {
				return f, false
			}
		}
	}
	return none, true
}

// Entity views: the public form of a node, copied so callers may keep it.

func (s *state) folderView(i int32) Folder {
	n := s.folder(i)
	f := Folder{ID: s.txt.get(n.id), Name: s.txt.get(n.name), Labels: cloneLabels(n.labels)}
	if p := s.up[i]; p != none {
		f.Parent = s.folderID(p)
	}
	return f
}

func (s *state) userView(i int32) User {
	n := s.user(i)
	u := User{ID: s.txt.get(n.id), Name: s.txt.get(n.name), Class: s.txt.get(n.class), State: states[n.state], Home: s.folderID(n.home)}
	u.ActiveUntil = s.activeUntil(n)
	for _, e := range s.extras(n) {
		u.Extras = append(u.Extras, s.folderID(e))
	}
	return u
}

// ends returns grant slot i's holder and target.
func (s *state) ends(i int32) (holder, target Ref) {
	n := s.grant(i)
	return s.ref(n.hkind, n.holder), s.ref(n.tkind, n.target)
}

func (s *state) grantView(i int32) Grant {
	n := s.grant(i)
	holder, target := s.ends(i)
	return Grant{ID: s.txt.get(n.id), Holder: holder, Target: target, Rights: s.cat.list(n.rights),
		ExpiresAt: n.expiresAt.time(), Reason: s.txt.get(n.reason), Expired: n.marked,
		StartsAt: n.startsAt.time(), Started: n.started}
}

func (s *state) lockView(i int32) Lock {
	l := s.lock(i).l
	l.Rights = slices.Clone(l.Rights)
	return l
}

func cloneLabels(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// addChild appends folder f to the children of folder p.
func (s *state) addChild(p, f int32) {
	n := s.folder(p)
	s.folder(f).childAt = int32(len(n.children))
	n.children = append(n.children, f)
}

// unlist removes the entry at place at from *list, moving the last entry
// into its place, and returns the entry moved, for the caller to record
// its new place (at). Every list of the state leaves this way: one step,
// whatever its length.
func unlist[T any](list *[]T, at int32) T {
	l := *list
	last := l[len(l)-1]
	l[at] = last
	*list = l[:len(l)-1]
	return last
}

// dropChild removes folder f from the children of folder p, its parent.
func (s *state) dropChild(p, f int32) {
	at := s.folder(f).childAt
	s.folder(unlist(&s.folder(p).children, at)).childAt = at
}

// addHome appends user u to the homes of folder f.
func (s *state) addHome(f, u int32) {
	n := s.folder(f)
	s.user(u).homeAt = int32(len(n.homes))
	n.homes = append(n.homes, u)
}

// dropHome removes user u from the homes of folder f, its home.
func (s *state) dropHome(f, u int32) {
	at := s.user(u).homeAt
	s.user(unlist(&s.folder(f).homes, at)).homeAt = at
}

// addExtra appends user u to the extras of folder f and returns its place
// there, for the user's extraAt.
func (s *state) addExtra(f, u int32) int32 {
	n := s.folder(f)
	n.extras = append(n.extras, u)
	return int32(len(n.extras) - 1)
}

// dropExtra removes user u, which is at place at, from the extras of
// folder f; f must still be among u's extras.
func (s *state) dropExtra(f, u, at int32) {
	w := s.user(unlist(&s.folder(f).extras, at))
	s.extraAt(w)[slices.Index(s.extras(w), f)] = at
}

// heldList returns the list of grants held by grant n's holder.
func (s *state) heldList(n *grantNode) *[]heldGrant {
	if n.hkind == KindFolder {
		return s.held.at(n.holder)
	}
	return &s.ownLinks(s.user(n.holder)).held
}

// onList returns the list of grants on grant n's target: a folder's, a
// user's, or, with no target, the capabilities.
func (s *state) onList(n *grantNode) *[]int32 {
	switch n.tkind {
	case KindFolder:
		return &s.folder(n.target).on
	case KindUser:
		return &s.ownLinks(s.user(n.target)).on
	}
	return &s.caps
}

// lockList returns the list of locks on lock n's target.
func (s *state) lockList(n *lockNode) *[]int32 {
	if n.l.Target.Kind == KindFolder {
		return &s.folder(n.target).locks
	}
	return &s.ownLinks(s.user(n.target)).locks
}

// listGrant appends grant slot i, as h, to its holder's and its target's
// lists.
func (s *state) listGrant(i int32, h heldGrant) {
	n := s.grant(i)
	held, on := s.heldList(n), s.onList(n)
	n.heldAt, n.onAt = int32(len(*held)), int32(len(*on))
	*held = append(*held, h)
	*on = append(*on, i)
	if n.hkind == KindFolder {
		s.heldSum[n.holder].add(&h)
	}
}

// unlistGrant removes grant slot i from both its lists.
func (s *state) unlistGrant(i int32) {
	n := s.grant(i)
	held := s.heldList(n)
	s.grant(unlist(held, n.heldAt).grant).heldAt = n.heldAt
	s.grant(unlist(s.onList(n), n.onAt)).onAt = n.onAt
	if n.hkind == KindFolder {
		s.heldLeft(n.holder, *held)
	}
}

// heldSummary is what a list of held grants gives, and where, in short:
// every right of its grants, and a signature of their targets (one bit of
// targetBit per grant). A check whose resource's signature (every
// folder covering it, and a user resource itself) shares no bit with the
// list's cannot be decided by any grant in the list.
//
// It may say more than the list gives, never less: a grant leaving the
// list leaves its bits until the list is summed up again, which happens
// once as many grants have left as the list still holds. Summing up at
// every removal made a cascade or rollback over a folder's n grants cost
// n²/2 (100,000 grants: 24 s); this way each removal costs O(1) on
// average and the summary is at most twice as stale as it is long.
type heldSummary struct {
	rights  rightSet
	targets uint64
}

func (m *heldSummary) add(h *heldGrant) {
	m.rights |= h.rights
	m.targets |= targetBit(h.tkind, h.target)
}

// heldLeft notes that a grant left the held grants of folder f, of which
// list remains, and sums them up again once as many left as remain.
func (s *state) heldLeft(f int32, list []heldGrant) {
	s.heldGone[f]++
	if int(s.heldGone[f]) >= len(list) {
		s.heldSum[f], s.heldGone[f] = summarize(list), 0
	}
}

// summarize returns the exact summary of list.
func summarize(list []heldGrant) heldSummary {
	var m heldSummary
	for i := range list {
		m.add(&list[i])
	}
	return m
}

// covers reports whether m says at least what exact, list's exact
// summary, says.
func (m heldSummary) covers(exact heldSummary) bool {
	return exact.rights&^m.rights == 0 && exact.targets&^m.targets == 0
}

// targetBit is the bit that stands for target slot t, of kind k, in
// signatures: bit 0 for no target (a capability), one of the others
// chosen by a hash of the slot and kind for a folder or a user.
func targetBit(k Kind, t int32) uint64 {
	if k != KindFolder && k != KindUser {
		return 1
	}
	h := (uint32(t)*2 + uint32(k&1)) * 2654435761
	return 1 << (1 + (h>>26)%63)
}

// unixNano returns expiry t in Unix nanoseconds, as the index keeps
// expiries: 0 for the zero time (never), and for any other time a value
// that is not 0, saturated outside the years 1678 to 2262 that int64
// nanoseconds hold, and the epoch counted 1 ns early. time.UnixNano alone
// wraps around outside those years, which made a grant that expires in
// 2300 expired already, and gives the epoch 0, "never".
func unixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(lastNano):
		return math.MaxInt64
	case t.Before(firstNano):
		return math.MinInt64
	}
	if n := t.UnixNano(); n != 0 {
		return n
	}
	return -1 // the epoch: expired as it is, and not "never"
}

// firstNano and lastNano are the first and last times that int64 Unix
// nanoseconds hold.
var firstNano, lastNano = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
