package graph

import "slices"

// GetFolder returns folder id and its placement rule (nil when it has none).
func (ix *Index) GetFolder(id string) (Folder, *PlacementRule, uint64, error) {
	return ix.getFolder(lens{}, id)
}

func (ix *Index) getFolder(l lens, id string) (Folder, *PlacementRule, uint64, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	l, err := ix.focus(v.s, "get_folder", l)
	if err != nil {
		return Folder{}, nil, v.rev, err
	}
	if err := l.orgs.see(v.s, "get_folder", FolderRef(id)); err != nil {
		return Folder{}, nil, v.rev, err
	}
	i, ok := v.s.folders.get(id)
	if !ok {
		return Folder{}, nil, v.rev, newErr("get_folder", id, ErrNotFound, "no such folder")
	}
	if err := l.mayRead(v.s, "get_folder", FolderRef(id)); err != nil {
		return Folder{}, nil, v.rev, err
	}
	var rule *PlacementRule
	if r := v.s.folder(i).rule; r != nil {
		rule = &PlacementRule{Folder: id, Classes: slices.Clone(r)}
	}
	return v.s.folderView(i), rule, v.rev, nil
}

// roots returns the slots of the organisations' root folders, in slot
// order. It visits every folder: organisations are listed rarely.
func (s *state) roots() []int32 {
	var out []int32
	for f, live := range s.folders.live {
		if live && s.up[f] == none {
			out = append(out, int32(f))
		}
	}
	return out
}

// Catalogue returns the rights catalogue sorted by name, each right with
// the rights it directly implies (sorted), the self rights, and the
// revision they are at.
func (ix *Index) Catalogue() ([]Right, SelfRights, uint64) {
	v := ix.read()
	defer v.mu.RUnlock()
	c := &v.s.cat
	names := make([]string, 0, len(c.slot))
	for n := range c.slot {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Right, len(names))
	for k, n := range names {
		out[k] = Right{Name: n, Implies: c.list(c.implies[c.slot[n]])}
	}
	return out, SelfRights{Rights: c.list(c.self)}, v.rev
}

// GetUser returns user id.
func (ix *Index) GetUser(id string) (User, uint64, error) {
	return ix.getUser(lens{}, id)
}

func (ix *Index) getUser(l lens, id string) (User, uint64, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	l, err := ix.focus(v.s, "get_user", l)
	if err != nil {
		return User{}, v.rev, err
	}
	if err := l.orgs.see(v.s, "get_user", UserRef(id)); err != nil {
		return User{}, v.rev, err
	}
	i, ok := v.s.users.get(id)
	if !ok {
		return User{}, v.rev, newErr("get_user", id, ErrNotFound, "no such user")
	}
	if err := l.mayRead(v.s, "get_user", UserRef(id)); err != nil {
		return User{}, v.rev, err
	}
	return v.s.userView(i), v.rev, nil
}

// ListFolders returns the children of parent (with subtree, everything
// below it) sorted by id, after the cursor, at most limit (<= 0: all), and
// the cursor of the next page ("" when this is the last). An empty parent
// stands above the organisations: its children are their roots, and its
// subtree is every folder.
func (ix *Index) ListFolders(parent string, subtree bool, after string, limit int) ([]Folder, string, uint64, error) {
	return ix.listFolders(lens{}, parent, subtree, after, limit)
}

func (ix *Index) listFolders(l lens, parent string, subtree bool, after string, limit int) ([]Folder, string, uint64, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	s, o := v.s, l.orgs
	l, err := ix.focus(v.s, "list_folders", l)
	if err != nil {
		return nil, "", v.rev, err
	}
	if parent != "" {
		if err := o.see(s, "list_folders", FolderRef(parent)); err != nil {
			return nil, "", v.rev, err
		}
	}
	var slots []int32
	switch p, ok := s.folders.get(parent); {
	case parent == "":
		for _, r := range s.roots() {
			if !o.hasFolder(s, r) {
				continue
			}
			if subtree {
				slots = s.subtree(slots, r)
			} else {
				slots = append(slots, r)
			}
		}
	case !ok:
		return nil, "", v.rev, newErr("list_folders", parent, ErrNotFound, "no such folder")
	case subtree:
		slots = s.subtree(nil, p)[1:]
	default:
		slots = slices.Clone(s.folder(p).children)
	}
	ids := make([]string, 0, len(slots))
	for _, f := range slots {
		if id := s.folderID(f); l.reads(s, FolderRef(id)) {
			ids = append(ids, id)
		}
	}
	pg := page(ids, after, limit, v.rev)
	out := make([]Folder, len(pg.IDs))
	for k, id := range pg.IDs {
		i, _ := s.folders.get(id)
		out[k] = s.folderView(i)
	}
	return out, pg.Next, v.rev, nil
}

// FolderCounts are what is placed at one folder itself, not below it.
type FolderCounts struct {
	Children int // folders directly below it
	Users    int // users whose home it is
	Members  int // users with it as an extra group
	Grants   int // grants whose target it is
	Locks    int // locks on it
}

// FolderCounts returns what is placed at folder id, and the revision.
func (ix *Index) FolderCounts(id string) (FolderCounts, uint64, error) {
	return ix.folderCounts(lens{}, id)
}

func (ix *Index) folderCounts(l lens, id string) (FolderCounts, uint64, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	if err := l.orgs.see(v.s, "folder_counts", FolderRef(id)); err != nil {
		return FolderCounts{}, v.rev, err
	}
	f, ok := v.s.folders.get(id)
	if !ok {
		return FolderCounts{}, v.rev, newErr("folder_counts", id, ErrNotFound, "no such folder")
	}
	n := v.s.folder(f)
	return FolderCounts{Children: len(n.children), Users: len(n.homes), Members: len(n.extras), Grants: len(n.on), Locks: len(n.locks)}, v.rev, nil
}

// ListUsers returns the users whose home or an extra group is folder (with
// subtree, any folder below it too), sorted by id, paged like ListFolders.
func (ix *Index) ListUsers(folder string, subtree bool, after string, limit int) ([]User, string, uint64, error) {
	return ix.listUsers(lens{}, folder, subtree, after, limit)
}

func (ix *Index) listUsers(l lens, folder string, subtree bool, after string, limit int) ([]User, string, uint64, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	s := v.s
	l, err := ix.focus(v.s, "list_users", l)
	if err != nil {
		return nil, "", v.rev, err
	}
	if err := l.orgs.see(s, "list_users", FolderRef(folder)); err != nil {
		return nil, "", v.rev, err
	}
	f, ok := s.folders.get(folder)
	if !ok {
		return nil, "", v.rev, newErr("list_users", folder, ErrNotFound, "no such folder")
	}
	users := s.placed(f)
	if subtree {
		users = s.placedBelow(f)
	}
	seen := map[int32]bool{}
	var ids []string
	for u := range users {
		if !seen[u] {
			seen[u] = true
			if id := s.userID(u); l.reads(s, UserRef(id)) {
				ids = append(ids, id)
			}
		}
	}
	pg := page(ids, after, limit, v.rev)
	out := make([]User, len(pg.IDs))
	for k, id := range pg.IDs {
		i, _ := s.users.get(id)
		out[k] = s.userView(i)
	}
	return out, pg.Next, v.rev, nil
}

// ListGrants returns the grants held by holder and on target (a zero Ref
// matches any), sorted by id, paged like ListFolders.
func (ix *Index) ListGrants(holder, target Ref, after string, limit int) ([]Grant, string, uint64, error) {
	return ix.listGrants(lens{}, holder, target, after, limit)
}

func (ix *Index) listGrants(l lens, holder, target Ref, after string, limit int) ([]Grant, string, uint64, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	s, o := v.s, l.orgs
	l, err := ix.focus(v.s, "list_grants", l)
	if err != nil {
		return nil, "", v.rev, err
	}
	for _, r := range []Ref{holder, target} {
		if err := o.see(s, "list_grants", r); err != nil {
			return nil, "", v.rev, err
		}
		if err := s.checkRef("list_grants", r); err != nil {
			return nil, "", v.rev, err
		}
	}
	var ids []string
	for id, i := range s.grants.all() {
		h, t := s.ends(i)
		if (holder.IsZero() || h == holder) && (target.IsZero() || t == target) && o.hasGrant(s, i) && l.readsGrant(s, i) {
			ids = append(ids, id)
		}
	}
	pg := page(ids, after, limit, v.rev)
	out := make([]Grant, len(pg.IDs))
	for k, id := range pg.IDs {
		i, _ := s.grants.get(id)
		out[k] = s.grantView(i)
	}
	return out, pg.Next, v.rev, nil
}

// ListLocks returns the locks on target (a zero Ref matches any), sorted by
// id, paged like ListFolders.
func (ix *Index) ListLocks(target Ref, after string, limit int) ([]Lock, string, uint64, error) {
	return ix.listLocks(lens{}, target, after, limit)
}

func (ix *Index) listLocks(l lens, target Ref, after string, limit int) ([]Lock, string, uint64, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	s, o := v.s, l.orgs
	l, err := ix.focus(v.s, "list_locks", l)
	if err != nil {
		return nil, "", v.rev, err
	}
	if err := o.see(s, "list_locks", target); err != nil {
		return nil, "", v.rev, err
	}
	if err := s.checkRef("list_locks", target); err != nil {
		return nil, "", v.rev, err
	}
	var ids []string
	for id, i := range s.locks.all() {
		if (target.IsZero() || s.lock(i).l.Target == target) && o.hasLock(s, i) && l.reads(s, s.lock(i).l.Target) {
			ids = append(ids, id)
		}
	}
	pg := page(ids, after, limit, v.rev)
	out := make([]Lock, len(pg.IDs))
	for k, id := range pg.IDs {
		i, _ := s.locks.get(id)
		out[k] = s.lockView(i)
	}
	return out, pg.Next, v.rev, nil
}

// checkRef refuses a filter naming something that does not exist.
func (s *state) checkRef(op string, r Ref) error {
	switch r.Kind {
	case KindNone:
		return nil
	case KindFolder:
		if _, ok := s.folders.get(r.ID); !ok {
			return newErr(op, r.ID, ErrNotFound, "no such folder")
		}
	case KindUser:
		if _, ok := s.users.get(r.ID); !ok {
			return newErr(op, r.ID, ErrNotFound, "no such user")
		}
	default:
		return newErr(op, r.ID, ErrInvalid, "unknown kind %d", r.Kind)
	}
	return nil
}
