package graph

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// txn applies mutations to a state, one at a time, each checked against the
// state the earlier ones left. It records the primitive mutations it applied
// (cascades expanded) and, for each, the inverse that undoes it, so a failed
// or trial batch can be rolled back exactly.
//
// apply is the one function that changes the index: a batch written here, a
// batch replayed from the journal and the records loaded at start all pass
// through it. It never reads the clock, so replaying a batch gives the same
// state on every node.
type txn struct {
	s    *state
	done []Mutation // primitives applied, in order
	undo []Mutation // undo[i] reverses done[i]
	// forget skips recording, for loading at start, which is never undone.
	forget bool
	// scoped also records each primitive's scope (scopes[i] for done[i]),
	// for the change log, as places of table, which the writer replaces
	// for each batch (scope.go).
	scoped bool
	scopes [][]int32
	table  *scopeTable
	// maxDepth, when positive, is the most levels a tree may have (its
	// root is level 1); set for written batches only, so that a store or a
	// feed deeper than today's limit still loads and applies.
	maxDepth int
	// orgs, when not nil, confines the batch to these organisations:
	// every primitive's scope must lie in them (confine.go). It needs
	// scoped.
	orgs Orgs
}

// applyBatch applies muts in order. On error it rolls back what it applied
// and returns an error naming the mutation's position.
func (t *txn) applyBatch(muts []Mutation) error {
	mark := len(t.done)
	for i := range muts {
		from := len(t.done)
		err := t.apply(&muts[i])
		for k := from; err == nil && t.orgs != nil && k < len(t.done); k++ {
			err = t.confined(k)
		}
		if err != nil {
			t.rollbackTo(mark)
			if e, ok := err.(*Error); ok && len(muts) > 1 {
				e.Msg = strings.TrimPrefix(fmt.Sprintf("%s (mutation %d)", e.Msg, i), " ")
			}
			return err
		}
	}
	return nil
}

// rollbackTo undoes every primitive applied after the first mark ones.
func (t *txn) rollbackTo(mark int) {
	for i := len(t.undo) - 1; i >= mark; i-- {
		u := &txn{s: t.s}
		if err := u.apply(&t.undo[i]); err != nil {
			panic(fmt.Sprintf("graph: undo of %v failed: %v", t.done[i], err))
		}
	}
	t.done, t.undo = t.done[:mark], t.undo[:mark]
	if t.scoped {
		t.scopes = t.scopes[:mark]
	}
}

func (t *txn) record(m Mutation, inverse Mutation) {
	if t.forget {
		return
	}
	t.done = append(t.done, m)
	t.undo = append(t.undo, inverse)
	if t.scoped {
		t.scopes = append(t.scopes, t.table.scopeOf(t.s, &m, &inverse))
	}
}

// apply checks and applies one mutation.
func (t *txn) apply(m *Mutation) error {
	if m.unexpire != nil {
		return t.setExpired(m.unexpire.ID, false)
	}
	w := m.which()
	if w < 0 {
		return newErr("write", "", ErrInvalid, "a mutation must set exactly one operation")
	}
	op := opNames[w]
	switch {
	case m.CreateFolder != nil:
		return t.createFolder(op, *m.CreateFolder)
	case m.RenameFolder != nil:
		return t.renameFolder(op, *m.RenameFolder)
	case m.RelabelFolder != nil:
		return t.relabelFolder(op, *m.RelabelFolder)
	case m.MoveFolder != nil:
		return t.moveFolder(op, *m.MoveFolder)
	case m.DeleteFolder != nil:
		return t.deleteFolder(op, *m.DeleteFolder)
	case m.CreateUser != nil:
		return t.createUser(op, *m.CreateUser)
	case m.UpdateUser != nil:
		return t.updateUser(op, *m.UpdateUser)
	case m.MoveUser != nil:
		return t.moveUser(op, *m.MoveUser)
	case m.SetUserState != nil:
		return t.setUserState(op, *m.SetUserState)
	case m.DeleteUser != nil:
		return t.deleteUser(op, *m.DeleteUser)
	case m.AddExtraGroup != nil:
		return t.addExtra(op, *m.AddExtraGroup)
	case m.DelExtraGroup != nil:
		return t.removeExtra(op, *m.DelExtraGroup)
	case m.AddGrant != nil:
		return t.addGrant(op, *m.AddGrant)
	case m.RemoveGrant != nil:
		return t.removeGrant(op, *m.RemoveGrant)
	case m.AddLock != nil:
		return t.addLock(op, *m.AddLock)
	case m.RemoveLock != nil:
		return t.removeLock(op, *m.RemoveLock)
	case m.SetRule != nil:
		return t.setRule(op, *m.SetRule)
	case m.RemoveRule != nil:
		return t.removeRule(op, *m.RemoveRule)
	case m.PutRight != nil:
		return t.putRight(op, *m.PutRight)
	case m.DeleteRight != nil:
		return t.deleteRight(op, *m.DeleteRight)
	case m.SetSelfRights != nil:
		return t.setSelfRights(op, *m.SetSelfRights)
	case m.ExpireGrant != nil:
		return t.expireGrant(op, *m.ExpireGrant)
	}
	return newErr(op, "", ErrInvalid, "unhandled mutation")
}

// --- folders ---

func (t *txn) createFolder(op string, f Folder) error {
	s := t.s
	if !validID(f.ID) {
		return newErr(op, f.ID, ErrInvalid, "folder id must be 1 to %d bytes of text", MaxIDLen)
	}
	if _, ok := s.folders.get(f.ID); ok {
		return newErr(op, f.ID, ErrAlreadyExists, "folder exists")
	}
	if !validText(f.Name) {
		return newErr(op, f.ID, ErrInvalid, "name too long or not UTF-8")
	}
	if k, ok := validLabels(f.Labels); !ok {
		return newErr(op, f.ID, ErrInvalid, "label %q: keys are short lower-case words, at most %d labels", k, MaxLabels)
	}
	parent := none
	if f.Parent != "" {
		p, ok := s.folders.get(f.Parent)
		if !ok {
			return newErr(op, f.ID, ErrNotFound, "parent folder %q does not exist", f.Parent)
		}
		parent = p
		if err := t.checkDepth(op, f.ID, s.depth(p)+1); err != nil {
			return err
		}
	}
	i := s.folders.insert(f.ID, folderNode{id: f.ID, name: f.Name, labels: cloneLabels(f.Labels)})
	s.setUp(i, parent)
	if parent != none {
		s.addChild(parent, i)
	}
	f.Labels = cloneLabels(f.Labels)
	t.record(Mutation{CreateFolder: &f}, Mutation{DeleteFolder: &Delete{ID: f.ID}})
	return nil
}

func (t *txn) lookupFolder(op, id string) (int32, error) {
	i, ok := t.s.folders.get(id)
	if !ok {
		return none, newErr(op, id, ErrNotFound, "no such folder")
	}
	return i, nil
}

func (t *txn) renameFolder(op string, r Rename) error {
	i, err := t.lookupFolder(op, r.ID)
	if err != nil {
		return err
	}
	if !validText(r.Name) {
		return newErr(op, r.ID, ErrInvalid, "name too long or not UTF-8")
	}
	n := t.s.folder(i)
	old := n.name
	n.name = r.Name
	t.record(Mutation{RenameFolder: &r}, Mutation{RenameFolder: &Rename{ID: r.ID, Name: old}})
	return nil
}

func (t *txn) relabelFolder(op string, r Relabel) error {
	i, err := t.lookupFolder(op, r.ID)
	if err != nil {
		return err
	}
	if k, ok := validLabels(r.Labels); !ok {
		return newErr(op, r.ID, ErrInvalid, "label %q: keys are short lower-case words, at most %d labels", k, MaxLabels)
	}
	n := t.s.folder(i)
	old := n.labels
	n.labels = cloneLabels(r.Labels)
	r.Labels = cloneLabels(r.Labels)
	t.record(Mutation{RelabelFolder: &r}, Mutation{RelabelFolder: &Relabel{ID: r.ID, Labels: old}})
	return nil
}

func (t *txn) moveFolder(op string, m Move) error {
	s := t.s
	i, err := t.lookupFolder(op, m.ID)
	if err != nil {
		return err
	}
	if m.To == "" {
		return newErr(op, m.ID, ErrInvalid, "a folder cannot be made a root: its organisation never changes")
	}
	to, ok := s.folders.get(m.To)
	if !ok {
		return newErr(op, m.ID, ErrNotFound, "destination folder %q does not exist", m.To)
	}
	old := s.up[i]
	if old == none {
		return newErr(op, m.ID, ErrCrossOrg, "%q is the root of an organisation and cannot move under %q", m.ID, m.To)
	}
	if s.root(to) != s.root(i) {
		return newErr(op, m.ID, ErrCrossOrg, "destination %q is in another organisation", m.To)
	}
	if s.isAncestor(i, to) {
		return newErr(op, m.ID, ErrCycle, "destination %q is %q or lies below it", m.To, m.ID)
	}
	if t.maxDepth > 0 {
		if err := t.checkDepth(op, m.ID, s.depth(to)+s.height(i)); err != nil {
			return err
		}
	}
	if err := t.checkSubtreePlacement(op, m.ID, i, to); err != nil {
		return err
	}
	if old != to {
		s.dropChild(old, i)
		s.addChild(to, i)
		s.up[i] = to
	}
	t.record(Mutation{MoveFolder: &m}, Mutation{MoveFolder: &Move{ID: m.ID, To: s.folder(old).id}})
	return nil
}

// checkDepth refuses a tree that would be levels deep, past the limit.
func (t *txn) checkDepth(op, id string, levels int) error {
	if t.maxDepth > 0 && levels > t.maxDepth {
		return newErr(op, id, ErrInvalid, "the tree would be %d levels deep; the most allowed is %d (--max-depth)", levels, t.maxDepth)
	}
	return nil
}

// checkSubtreePlacement checks that every member of folder f's subtree may
// be a member of folder under and everything above it.
func (t *txn) checkSubtreePlacement(op, id string, f, under int32) error {
	s := t.s
	ruled := false
	for a := under; a != none; a = s.up[a] {
		if s.folder(a).rule != nil {
			ruled = true
			break
		}
	}
	if !ruled {
		return nil
	}
	for u := range s.placedBelow(f) {
		if r, ok := s.allowed(s.user(u).class, under); !ok {
			return newErr(op, id, ErrPlacement, "user %q (class %q) would become a member of %q, whose rule admits only %v",
				s.user(u).id, s.user(u).class, s.folder(r).id, s.folder(r).rule)
		}
	}
	return nil
}

// sortedChildren returns the children of f sorted by id.
func (s *state) sortedChildren(f int32) []int32 {
	c := slices.Clone(s.folder(f).children)
	sort.Slice(c, func(a, b int) bool { return s.folder(c[a]).id < s.folder(c[b]).id })
	return c
}

func (t *txn) deleteFolder(op string, d Delete) error {
	s := t.s
	i, err := t.lookupFolder(op, d.ID)
	if err != nil {
		return err
	}
	if d.Cascade {
		return t.cascadeFolder(d.ID, i)
	}
	n := s.folder(i)
	switch {
	case len(n.children) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "folder has %d child folders (delete them first, or cascade)", len(n.children))
	case len(n.homes) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "folder is the home of %d users, such as %q", len(n.homes), s.user(n.homes[0]).id)
	case len(n.extras) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "folder is an extra group of %d users, such as %q", len(n.extras), s.user(n.extras[0]).id)
	case len(*s.held.at(i)) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "grant %q names the folder", s.grant((*s.held.at(i))[0].grant).g.ID)
	case len(n.on) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "grant %q names the folder", s.grant(n.on[0]).g.ID)
	case len(n.locks) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "lock %q names the folder", s.lock(n.locks[0]).l.ID)
	}
	if n.rule != nil {
		// A rule belongs to its folder: it goes with it.
		if err := t.apply(&Mutation{RemoveRule: &Delete{ID: d.ID}}); err != nil {
			return err
		}
	}
	view := s.folderView(i)
	if s.up[i] != none {
		s.dropChild(s.up[i], i)
	}
	s.folders.remove(d.ID, i)
	s.up[i], *s.held.at(i) = none, nil
	t.record(Mutation{DeleteFolder: &Delete{ID: d.ID}}, Mutation{CreateFolder: &view})
	return nil
}

// cascadeFolder deletes folder f's subtree and everything that names it, as
// a sequence of plain deletions in a fixed order.
func (t *txn) cascadeFolder(id string, f int32) error {
	s := t.s
	// Parents before children, siblings by id; deleted in reverse.
	sub := []int32{f}
	for k := 0; k < len(sub); k++ {
		sub = append(sub, s.sortedChildren(sub[k])...)
	}
	var users, grants, locks, rules []string
	type member struct{ user, folder string }
	var memberships []member
	for _, d := range sub {
		n := s.folder(d)
		for _, u := range n.homes {
			users = append(users, s.user(u).id)
		}
		for _, u := range n.extras {
			memberships = append(memberships, member{s.user(u).id, n.id})
		}
		for _, h := range *s.held.at(d) {
			grants = append(grants, s.grant(h.grant).g.ID)
		}
		for _, g := range n.on {
			grants = append(grants, s.grant(g).g.ID)
		}
		for _, l := range n.locks {
			locks = append(locks, s.lock(l).l.ID)
		}
		if n.rule != nil {
			rules = append(rules, n.id)
		}
	}
	users, grants, locks, rules = sortedSet(users), sortedSet(grants), sortedSet(locks), sortedSet(rules)
	sort.Slice(memberships, func(a, b int) bool {
		if memberships[a].user != memberships[b].user {
			return memberships[a].user < memberships[b].user
		}
		return memberships[a].folder < memberships[b].folder
	})
	var steps []Mutation
	for _, g := range grants {
		steps = append(steps, Mutation{RemoveGrant: &Delete{ID: g}})
	}
	for _, l := range locks {
		steps = append(steps, Mutation{RemoveLock: &Delete{ID: l}})
	}
	homed := map[string]bool{}
	for _, u := range users {
		homed[u] = true
	}
	for _, m := range memberships {
		if !homed[m.user] { // a deleted user's extras go with the user
			steps = append(steps, Mutation{DelExtraGroup: &Membership{User: m.user, Folder: m.folder}})
		}
	}
	for _, u := range users {
		steps = append(steps, Mutation{DeleteUser: &Delete{ID: u, Cascade: true}})
	}
	for _, r := range rules {
		steps = append(steps, Mutation{RemoveRule: &Delete{ID: r}})
	}
	for k := len(sub) - 1; k >= 0; k-- {
		steps = append(steps, Mutation{DeleteFolder: &Delete{ID: s.folder(sub[k]).id}})
	}
	for k := range steps {
		if err := t.apply(&steps[k]); err != nil {
			return fmt.Errorf("cascade of folder %q: %w", id, err)
		}
	}
	return nil
}

// --- users ---

func (t *txn) checkPlacement(op, id, class string, folders ...int32) error {
	for _, f := range folders {
		if r, ok := t.s.allowed(class, f); !ok {
			return newErr(op, id, ErrPlacement, "class %q may not be a member of %q, whose rule admits only %v",
				class, t.s.folder(r).id, t.s.folder(r).rule)
		}
	}
	return nil
}

func (t *txn) createUser(op string, u User) error {
	s := t.s
	if !validID(u.ID) {
		return newErr(op, u.ID, ErrInvalid, "user id must be 1 to %d bytes of text", MaxIDLen)
	}
	if _, ok := s.users.get(u.ID); ok {
		return newErr(op, u.ID, ErrAlreadyExists, "user exists")
	}
	if !validText(u.Name) {
		return newErr(op, u.ID, ErrInvalid, "name too long or not UTF-8")
	}
	if !validWord(u.Class) {
		return newErr(op, u.ID, ErrInvalid, "class %q must be a short lower-case word", u.Class)
	}
	if u.State == "" {
		u.State = StateActive
	}
	if !u.State.valid() {
		return newErr(op, u.ID, ErrInvalid, "state %q is not active, disabled or archived", u.State)
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
	i := s.users.insert(u.ID, userNode{id: u.ID, name: u.Name, class: u.Class, state: u.State, active: u.State == StateActive, home: home, extras: extras,
		extraAt: make([]int32, len(extras))})
	s.addHome(home, i)
	for k, e := range extras {
		s.user(i).extraAt[k] = s.addExtra(e, i)
	}
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
	if !validText(u.Name) {
		return newErr(op, u.ID, ErrInvalid, "name too long or not UTF-8")
	}
	if !validWord(u.Class) {
		return newErr(op, u.ID, ErrInvalid, "class %q must be a short lower-case word", u.Class)
	}
	n := t.s.user(i)
	if err := t.checkPlacement(op, u.ID, u.Class, append([]int32{n.home}, n.extras...)...); err != nil {
		return err
	}
	inv := UserUpdate{ID: u.ID, Name: n.name, Class: n.class}
	n.name, n.class = u.Name, u.Class
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
	if err := t.checkPlacement(op, m.ID, n.class, to); err != nil {
		return err
	}
	old := n.home
	if old != to {
		s.dropHome(old, i)
		s.addHome(to, i)
		n.home = to
	}
	t.record(Mutation{MoveUser: &m}, Mutation{MoveUser: &Move{ID: m.ID, To: s.folder(old).id}})
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
	n := t.s.user(i)
	old := n.state
	n.state, n.active = c.State, c.State == StateActive
	t.record(Mutation{SetUserState: &c}, Mutation{SetUserState: &StateChange{ID: c.ID, State: old}})
	return nil
}

func (t *txn) deleteUser(op string, d Delete) error {
	s := t.s
	i, err := t.lookupUser(op, d.ID)
	if err != nil {
		return err
	}
	n := s.user(i)
	if len(n.held)+len(n.on)+len(n.locks) > 0 {
		if !d.Cascade {
			return newErr(op, d.ID, ErrNotEmpty, "grants or locks name the user (remove them first, or cascade)")
		}
		var grants, locks []string
		for _, h := range n.held {
			grants = append(grants, s.grant(h.grant).g.ID)
		}
		for _, g := range n.on {
			grants = append(grants, s.grant(g).g.ID)
		}
		for _, l := range n.locks {
			locks = append(locks, s.lock(l).l.ID)
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
	for k, e := range n.extras {
		s.dropExtra(e, i, n.extraAt[k])
	}
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
	k, found := slices.BinarySearchFunc(n.extras, m.Folder, func(e int32, id string) int { return strings.Compare(s.folder(e).id, id) })
	if found {
		return newErr(op, m.User, ErrAlreadyExists, "folder %q is already an extra group of the user", m.Folder)
	}
	if err := t.checkPlacement(op, m.User, n.class, f); err != nil {
		return err
	}
	n.extras = slices.Insert(n.extras, k, f)
	n.extraAt = slices.Insert(n.extraAt, k, s.addExtra(f, i))
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
	k, found := slices.BinarySearchFunc(n.extras, m.Folder, func(e int32, id string) int { return strings.Compare(s.folder(e).id, id) })
	if !found {
		return newErr(op, m.User, ErrNotFound, "folder %q is not an extra group of the user", m.Folder)
	}
	f := n.extras[k]
	s.dropExtra(f, i, n.extraAt[k])
	n.extras = slices.Delete(n.extras, k, k+1)
	n.extraAt = slices.Delete(n.extraAt, k, k+1)
	t.record(Mutation{DelExtraGroup: &m}, Mutation{AddExtraGroup: &m})
	return nil
}

// --- grants and locks ---

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
	if !validID(g.ID) {
		return newErr(op, g.ID, ErrInvalid, "grant id must be 1 to %d bytes of text", MaxIDLen)
	}
	if _, ok := s.grants.get(g.ID); ok {
		return newErr(op, g.ID, ErrAlreadyExists, "grant exists")
	}
	if g.Holder.IsZero() {
		return newErr(op, g.ID, ErrInvalid, "a grant needs a holder (a user or a folder)")
	}
	if !validText(g.Reason) {
		return newErr(op, g.ID, ErrInvalid, "reason too long or not UTF-8")
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
	exp := expiresOf(g)
	i := s.grants.insert(g.ID, grantNode{g: g, holder: holder, target: target, rights: set, expires: exp})
	s.listGrant(i, heldGrant{rights: set, expires: exp, target: target, grant: i, tkind: g.Target.Kind})
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
	s.grants.remove(d.ID, i)
	t.record(Mutation{RemoveGrant: &Delete{ID: d.ID}}, Mutation{AddGrant: &view})
	return nil
}

// expireGrant marks a grant as announced expired. Whether its expiry has
// passed depends on the clock, so that is checked when the batch is made
// (Index.ExpireDue), never here.
func (t *txn) expireGrant(op string, d Delete) error {
	i, ok := t.s.grants.get(d.ID)
	if !ok {
		return newErr(op, d.ID, ErrNotFound, "no such grant")
	}
	g := &t.s.grant(i).g
	switch {
	case g.ExpiresAt.IsZero():
		return newErr(op, d.ID, ErrInvalid, "the grant never expires")
	case g.Expired:
		return newErr(op, d.ID, ErrAlreadyExists, "the grant's expiry is already recorded")
	}
	return t.setExpired(d.ID, true)
}

// setExpired sets or clears a grant's Expired flag, in the grant and in
// its holder's copy, and records the change.
func (t *txn) setExpired(id string, expired bool) error {
	s := t.s
	i, ok := s.grants.get(id)
	if !ok {
		return newErr("expire_grant", id, ErrNotFound, "no such grant")
	}
	n := s.grant(i)
	n.g.Expired = expired
	n.expires = expiresOf(n.g)
	(*s.heldList(n))[n.heldAt].expires = n.expires
	if expired {
		t.record(Mutation{ExpireGrant: &Delete{ID: id}}, Mutation{unexpire: &Delete{ID: id}})
	}
	return nil
}

func (t *txn) addLock(op string, l Lock) error {
	s := t.s
	if !validID(l.ID) {
		return newErr(op, l.ID, ErrInvalid, "lock id must be 1 to %d bytes of text", MaxIDLen)
	}
	if _, ok := s.locks.get(l.ID); ok {
		return newErr(op, l.ID, ErrAlreadyExists, "lock exists")
	}
	if l.Target.IsZero() {
		return newErr(op, l.ID, ErrInvalid, "a lock needs a target (a folder or a user)")
	}
	if !validText(l.Reason) {
		return newErr(op, l.ID, ErrInvalid, "reason too long or not UTF-8")
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

// --- placement rules ---

func (t *txn) setRule(op string, r PlacementRule) error {
	s := t.s
	f, err := t.lookupFolder(op, r.Folder)
	if err != nil {
		return err
	}
	for _, c := range r.Classes {
		if !validWord(c) {
			return newErr(op, r.Folder, ErrInvalid, "class %q must be a short lower-case word", c)
		}
	}
	r.Classes = sortedSet(r.Classes)
	if r.Classes == nil {
		r.Classes = []string{}
	}
	for u := range s.placedBelow(f) {
		if _, ok := slices.BinarySearch(r.Classes, s.user(u).class); !ok {
			return newErr(op, r.Folder, ErrPlacement, "member %q has class %q, which the rule %v would exclude",
				s.user(u).id, s.user(u).class, r.Classes)
		}
	}
	n := s.folder(f)
	inv := Mutation{RemoveRule: &Delete{ID: r.Folder}}
	if n.rule != nil {
		inv = Mutation{SetRule: &PlacementRule{Folder: r.Folder, Classes: n.rule}}
	} else {
		s.rules++
	}
	n.rule = r.Classes
	t.record(Mutation{SetRule: &r}, inv)
	return nil
}

func (t *txn) removeRule(op string, d Delete) error {
	f, err := t.lookupFolder(op, d.ID)
	if err != nil {
		return err
	}
	n := t.s.folder(f)
	if n.rule == nil {
		return newErr(op, d.ID, ErrNotFound, "folder has no placement rule")
	}
	old := n.rule
	n.rule = nil
	t.s.rules--
	t.record(Mutation{RemoveRule: &Delete{ID: d.ID}}, Mutation{SetRule: &PlacementRule{Folder: d.ID, Classes: old}})
	return nil
}

// --- the catalogue ---

func (t *txn) putRight(op string, r Right) error {
	c := &t.s.cat
	if !validWord(r.Name) {
		return newErr(op, r.Name, ErrInvalid, "a right's name is a short lower-case word")
	}
	r.Implies = sortedSet(r.Implies)
	if len(r.Implies) == 0 {
		r.Implies = nil
	}
	implies, bad, ok := c.set(r.Implies)
	if !ok {
		return newErr(op, r.Name, ErrUnknownRight, "implied right %q is not in the catalogue", bad)
	}
	slot, exists := c.lookup(r.Name)
	if exists {
		var cycle string
		implies.each(func(j int) {
			if cycle == "" && c.closure[j].has(slot) { // j implies the right already
				cycle = c.names[j]
			}
		})
		if cycle != "" {
			return newErr(op, r.Name, ErrCycle, "%q implies %q already", cycle, r.Name)
		}
	}
	inv := Mutation{DeleteRight: &Delete{ID: r.Name}}
	if exists {
		inv = Mutation{PutRight: &Right{Name: r.Name, Implies: c.list(c.implies[slot])}}
	} else {
		slot = -1
		for k, n := range c.names {
			if n == "" {
				slot = k
				break
			}
		}
		if slot < 0 {
			if len(c.names) == MaxRights {
				return newErr(op, r.Name, ErrInvalid, "the catalogue holds at most %d rights", MaxRights)
			}
			slot = len(c.names)
			c.names = append(c.names, "")
			c.implies = append(c.implies, rightSet(0))
		}
		c.names[slot] = r.Name
		c.slot[r.Name] = slot
	}
	c.implies[slot] = implies
	c.recompute()
	t.record(Mutation{PutRight: &r}, inv)
	return nil
}

func (t *txn) deleteRight(op string, d Delete) error {
	s := t.s
	c := &s.cat
	slot, ok := c.lookup(d.ID)
	if !ok {
		return newErr(op, d.ID, ErrUnknownRight, "right %q is not in the catalogue", d.ID)
	}
	for k, n := range c.names {
		if n != "" && c.implies[k].has(slot) {
			return newErr(op, d.ID, ErrNotEmpty, "right %q implies it", n)
		}
	}
	if c.self.has(slot) {
		return newErr(op, d.ID, ErrNotEmpty, "it is a self right")
	}
	for i, live := range s.grants.live {
		if g := s.grant(int32(i)); live && g.rights.has(slot) {
			return newErr(op, d.ID, ErrNotEmpty, "grant %q uses it", g.g.ID)
		}
	}
	for i, live := range s.locks.live {
		if l := s.lock(int32(i)); live && l.rights.has(slot) {
			return newErr(op, d.ID, ErrNotEmpty, "lock %q uses it", l.l.ID)
		}
	}
	inv := Mutation{PutRight: &Right{Name: d.ID, Implies: c.list(c.implies[slot])}}
	delete(c.slot, d.ID)
	c.names[slot] = ""
	c.implies[slot] = rightSet(0)
	c.recompute()
	t.record(Mutation{DeleteRight: &Delete{ID: d.ID}}, inv)
	return nil
}

func (t *txn) setSelfRights(op string, r SelfRights) error {
	c := &t.s.cat
	names := sortedSet(r.Rights)
	set, bad, ok := c.set(names)
	if !ok {
		return newErr(op, "", ErrUnknownRight, "right %q is not in the catalogue", bad)
	}
	inv := Mutation{SetSelfRights: &SelfRights{Rights: c.list(c.self)}}
	c.self = set
	r.Rights = names
	t.record(Mutation{SetSelfRights: &r}, inv)
	return nil
}
