package graph

// The writes of the folder trees and their placement rules (txn, apply.go).

import (
	"fmt"
	"slices"
	"sort"
)

func (t *txn) createFolder(op string, f Folder) error {
	s := t.s
	_, taken := s.folders.get(f.ID)
	if err := checkNewID(op, "folder", f.ID, taken); err != nil {
		return err
	}
	if err := checkText(op, f.ID, "name", f.Name); err != nil {
		return err
	}
	if err := checkLabels(op, f.ID, f.Labels); err != nil {
		return err
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
	i := s.folders.insert(f.ID, folderNode{id: s.txt.put(f.ID), name: s.txt.put(f.Name), labels: cloneLabels(f.Labels)})
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
	if err := checkText(op, r.ID, "name", r.Name); err != nil {
		return err
	}
	n := t.s.folder(i)
	old := t.s.txt.get(n.name)
	t.s.txt.drop(n.name)
	n.name = t.s.txt.put(r.Name)
	t.record(Mutation{RenameFolder: &r}, Mutation{RenameFolder: &Rename{ID: r.ID, Name: old}})
	return nil
}

func (t *txn) relabelFolder(op string, r Relabel) error {
	i, err := t.lookupFolder(op, r.ID)
	if err != nil {
		return err
	}
	if err := checkLabels(op, r.ID, r.Labels); err != nil {
		return err
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
	t.record(Mutation{MoveFolder: &m}, Mutation{MoveFolder: &Move{ID: m.ID, To: s.folderID(old)}})
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
		if r, ok := s.allowed(s.userClass(u), under); !ok {
			return newErr(op, id, ErrPlacement, "user %q (class %q) would become a member of %q, whose rule admits only %v",
				s.userID(u), s.userClass(u), s.folderID(r), s.folder(r).rule)
		}
	}
	return nil
}

// sortedChildren returns the children of f sorted by id.
func (s *state) sortedChildren(f int32) []int32 {
	c := slices.Clone(s.folder(f).children)
	sort.Slice(c, func(a, b int) bool { return s.folderID(c[a]) < s.folderID(c[b]) })
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
		return newErr(op, d.ID, ErrNotEmpty, "folder is the home of %d users, such as %q", len(n.homes), s.userID(n.homes[0]))
	case len(n.extras) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "folder is an extra group of %d users, such as %q", len(n.extras), s.userID(n.extras[0]))
	case len(*s.held.at(i)) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "grant %q names the folder", s.grantID((*s.held.at(i))[0].grant))
	case len(n.on) > 0:
		return newErr(op, d.ID, ErrNotEmpty, "grant %q names the folder", s.grantID(n.on[0]))
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
	s.txt.drop(s.folder(i).id, s.folder(i).name)
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
			users = append(users, s.userID(u))
		}
		for _, u := range n.extras {
			memberships = append(memberships, member{s.userID(u), s.folderID(d)})
		}
		for _, h := range *s.held.at(d) {
			grants = append(grants, s.grantID(h.grant))
		}
		for _, g := range n.on {
			grants = append(grants, s.grantID(g))
		}
		for _, l := range n.locks {
			locks = append(locks, s.lock(l).l.ID)
		}
		if n.rule != nil {
			rules = append(rules, s.folderID(d))
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
		steps = append(steps, Mutation{DeleteFolder: &Delete{ID: s.folderID(sub[k])}})
	}
	for k := range steps {
		if err := t.apply(&steps[k]); err != nil {
			return fmt.Errorf("cascade of folder %q: %w", id, err)
		}
	}
	return nil
}

func (t *txn) checkPlacement(op, id, class string, folders ...int32) error {
	for _, f := range folders {
		if r, ok := t.s.allowed(class, f); !ok {
			return newErr(op, id, ErrPlacement, "class %q may not be a member of %q, whose rule admits only %v",
				class, t.s.folderID(r), t.s.folder(r).rule)
		}
	}
	return nil
}

func (t *txn) setRule(op string, r PlacementRule) error {
	s := t.s
	f, err := t.lookupFolder(op, r.Folder)
	if err != nil {
		return err
	}
	for _, c := range r.Classes {
		if err := checkClass(op, r.Folder, c); err != nil {
			return err
		}
	}
	r.Classes = sortedSet(r.Classes)
	if r.Classes == nil {
		r.Classes = []string{}
	}
	for u := range s.placedBelow(f) {
		if _, ok := slices.BinarySearch(r.Classes, s.userClass(u)); !ok {
			return newErr(op, r.Folder, ErrPlacement, "member %q has class %q, which the rule %v would exclude",
				s.userID(u), s.userClass(u), r.Classes)
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
