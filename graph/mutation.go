package graph

import (
	"fmt"
	"time"
)

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
	// ExpireGrant records that a grant has reached its expiry. Only the
	// service writes it (Index.ExpireDue), as the actor "system"; it
	// changes no decision, since a grant is expired from its ExpiresAt on,
	// but it tells change-stream subscribers that the access ended.
	ExpireGrant *Delete `json:"expire_grant,omitempty"`
	// StartGrant records that a grant has reached its StartsAt, as
	// ExpireGrant records its expiry: written by the service alone.
	StartGrant *Delete `json:"start_grant,omitempty"`

	// unexpire undoes ExpireGrant in a rolled-back batch. It is never
	// committed, so it is neither exported nor encoded.
	unexpire *Delete
	// unstart undoes StartGrant in a rolled-back batch, likewise.
	unstart *Delete
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

// StateChange sets a user's state, and with it ActiveUntil (only for the
// state active; the zero time for none).
type StateChange struct {
	ID          string    `json:"id"`
	State       State     `json:"state"`
	ActiveUntil time.Time `json:"active_until,omitzero"`
}

// Membership places User in Folder as an extra group, or takes it out.
type Membership struct {
	User   string `json:"user"`
	Folder string `json:"folder"`
}

// opNames names the operations, in the order which tests them.
var opNames = [...]string{
	"create_folder", "rename_folder", "relabel_folder", "move_folder", "delete_folder",
	"create_user", "update_user", "move_user", "set_user_state", "delete_user",
	"add_extra_group", "remove_extra_group", "add_grant", "remove_grant", "add_lock", "remove_lock",
	"set_placement_rule", "remove_placement_rule", "put_right", "delete_right", "set_self_rights",
	"expire_grant", "start_grant",
}

// which returns the index in opNames of the one operation m sets, or -1
// when it sets none or several. It is cheap: apply calls it for every
// mutation, a million times at start-up.
func (m *Mutation) which() int {
	w := -1
	for i, set := range [len(opNames)]bool{
		m.CreateFolder != nil, m.RenameFolder != nil, m.RelabelFolder != nil, m.MoveFolder != nil, m.DeleteFolder != nil,
		m.CreateUser != nil, m.UpdateUser != nil, m.MoveUser != nil, m.SetUserState != nil, m.DeleteUser != nil,
		m.AddExtraGroup != nil, m.DelExtraGroup != nil, m.AddGrant != nil, m.RemoveGrant != nil, m.AddLock != nil, m.RemoveLock != nil,
		m.SetRule != nil, m.RemoveRule != nil, m.PutRight != nil, m.DeleteRight != nil, m.SetSelfRights != nil,
		m.ExpireGrant != nil, m.StartGrant != nil,
	} {
		if set {
			if w >= 0 {
				return -1
			}
			w = i
		}
	}
	return w
}

// markedGrant returns the grant a start_grant or expire_grant names, ""
// for any other mutation.
func (m *Mutation) markedGrant() string {
	switch {
	case m.ExpireGrant != nil:
		return m.ExpireGrant.ID
	case m.StartGrant != nil:
		return m.StartGrant.ID
	}
	return ""
}

// op returns the name of the mutation's operation and the id it names, for
// messages; ok is false when the mutation sets no field or several.
func (m *Mutation) op() (name, id string, ok bool) {
	w := m.which()
	if w < 0 {
		return "", "", false
	}
	if m.SetSelfRights == nil { // the self rights have no id
		_, id = touched(m)
	}
	return opNames[w], id, true
}

// String describes the mutation by operation and id, for logs and errors.
func (m Mutation) String() string {
	name, id, ok := m.op()
	if !ok {
		return "invalid mutation"
	}
	return fmt.Sprintf("%s %q", name, Clip(id))
}
