package graph

import "fmt"

// Mutation is one change in a write batch. Exactly one field is set.
//
// A batch is applied in order, each mutation checked against the state the
// earlier ones left, and all of it or none of it takes effect. Deletions with
// Cascade are expanded, when the batch is written, into the plain removals
// they imply, so the committed batch (the one in the change log) lists every
// entity it removed.
type Mutation struct {
	CreateFolder  *Folder        `json:"create_folder,omitempty"`
	RenameFolder  *Rename        `json:"rename_folder,omitempty"`
	RelabelFolder *Relabel       `json:"relabel_folder,omitempty"`
	MoveFolder    *Move          `json:"move_folder,omitempty"`
	DeleteFolder  *Delete        `json:"delete_folder,omitempty"`
	CreateUser    *User          `json:"create_user,omitempty"`
	UpdateUser    *UserUpdate    `json:"update_user,omitempty"`
	MoveUser      *Move          `json:"move_user,omitempty"`
	SetUserState  *StateChange   `json:"set_user_state,omitempty"`
	DeleteUser    *Delete        `json:"delete_user,omitempty"`
	AddExtraGroup *Membership    `json:"add_extra_group,omitempty"`
	DelExtraGroup *Membership    `json:"remove_extra_group,omitempty"`
	AddGrant      *Grant         `json:"add_grant,omitempty"`
	RemoveGrant   *Delete        `json:"remove_grant,omitempty"`
	AddLock       *Lock          `json:"add_lock,omitempty"`
	RemoveLock    *Delete        `json:"remove_lock,omitempty"`
	SetRule       *PlacementRule `json:"set_placement_rule,omitempty"`
	RemoveRule    *Delete        `json:"remove_placement_rule,omitempty"`
	PutRight      *Right         `json:"put_right,omitempty"`
	DeleteRight   *Delete        `json:"delete_right,omitempty"`
	SetSelfRights *SelfRights    `json:"set_self_rights,omitempty"`
}

// Rename sets a folder's display name.
type Rename struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Relabel replaces a folder's labels.
type Relabel struct {
	ID     string            `json:"id"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Move gives a folder a new parent, or a user a new home folder.
type Move struct {
	ID string `json:"id"`
	To string `json:"to"`
}

// Delete removes the entity with ID. With Cascade, deleting a folder also
// removes everything below it, the users whose home is there, the extra
// groups, grants, locks and rules that name any of it; deleting a user also
// removes the grants and locks that name the user. Without Cascade such a
// deletion is refused with ErrNotEmpty.
type Delete struct {
	ID      string `json:"id"`
	Cascade bool   `json:"cascade,omitempty"`
}

// UserUpdate replaces a user's name and class.
type UserUpdate struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Class string `json:"class"`
}

// StateChange sets a user's state.
type StateChange struct {
	ID    string `json:"id"`
	State State  `json:"state"`
}

// Membership places User in Folder as an extra group, or takes it out.
type Membership struct {
	User   string `json:"user"`
	Folder string `json:"folder"`
}

// op returns the name of the mutation's operation and the id it names, for
// error messages; ok is false when the mutation sets no field or several.
func (m *Mutation) op() (name, id string, ok bool) {
	n := 0
	set := func(isSet bool, op, i string) {
		if isSet {
			n++
			name, id = op, i
		}
	}
	set(m.CreateFolder != nil, "create_folder", idOf(m.CreateFolder, func(f *Folder) string { return f.ID }))
	set(m.RenameFolder != nil, "rename_folder", idOf(m.RenameFolder, func(r *Rename) string { return r.ID }))
	set(m.RelabelFolder != nil, "relabel_folder", idOf(m.RelabelFolder, func(r *Relabel) string { return r.ID }))
	set(m.MoveFolder != nil, "move_folder", idOf(m.MoveFolder, func(v *Move) string { return v.ID }))
	set(m.DeleteFolder != nil, "delete_folder", idOf(m.DeleteFolder, func(d *Delete) string { return d.ID }))
	set(m.CreateUser != nil, "create_user", idOf(m.CreateUser, func(u *User) string { return u.ID }))
	set(m.UpdateUser != nil, "update_user", idOf(m.UpdateUser, func(u *UserUpdate) string { return u.ID }))
	set(m.MoveUser != nil, "move_user", idOf(m.MoveUser, func(v *Move) string { return v.ID }))
	set(m.SetUserState != nil, "set_user_state", idOf(m.SetUserState, func(s *StateChange) string { return s.ID }))
	set(m.DeleteUser != nil, "delete_user", idOf(m.DeleteUser, func(d *Delete) string { return d.ID }))
	set(m.AddExtraGroup != nil, "add_extra_group", idOf(m.AddExtraGroup, func(g *Membership) string { return g.User }))
	set(m.DelExtraGroup != nil, "remove_extra_group", idOf(m.DelExtraGroup, func(g *Membership) string { return g.User }))
	set(m.AddGrant != nil, "add_grant", idOf(m.AddGrant, func(g *Grant) string { return g.ID }))
	set(m.RemoveGrant != nil, "remove_grant", idOf(m.RemoveGrant, func(d *Delete) string { return d.ID }))
	set(m.AddLock != nil, "add_lock", idOf(m.AddLock, func(l *Lock) string { return l.ID }))
	set(m.RemoveLock != nil, "remove_lock", idOf(m.RemoveLock, func(d *Delete) string { return d.ID }))
	set(m.SetRule != nil, "set_placement_rule", idOf(m.SetRule, func(r *PlacementRule) string { return r.Folder }))
	set(m.RemoveRule != nil, "remove_placement_rule", idOf(m.RemoveRule, func(d *Delete) string { return d.ID }))
	set(m.PutRight != nil, "put_right", idOf(m.PutRight, func(r *Right) string { return r.Name }))
	set(m.DeleteRight != nil, "delete_right", idOf(m.DeleteRight, func(d *Delete) string { return d.ID }))
	set(m.SetSelfRights != nil, "set_self_rights", "")
	return name, id, n == 1
}

func idOf[T any](p *T, id func(*T) string) string {
	if p == nil {
		return ""
	}
	return id(p)
}

// String describes the mutation by operation and id, for logs and errors.
func (m Mutation) String() string {
	name, id, ok := m.op()
	if !ok {
		return "invalid mutation"
	}
	return fmt.Sprintf("%s %q", name, id)
}
