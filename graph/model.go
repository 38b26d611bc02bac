package graph

import (
	"fmt"
	"time"
)

// Kind says what a Ref names.
type Kind uint8

// The kinds of thing a Ref can name. The zero Kind means "nothing": a grant
// without a target (a capability) or a check with no resource.
const (
	KindNone Kind = iota
	KindFolder
	KindUser
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case KindFolder:
		return "folder"
	case KindUser:
		return "user"
	default:
		return "none"
	}
}

// MarshalText encodes the kind as its name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes "folder", "user", or "none" (or "").
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "folder":
		*k = KindFolder
	case "user":
		*k = KindUser
	case "none", "":
		*k = KindNone
	default:
		return fmt.Errorf("unknown kind %q", b)
	}
	return nil
}

// Ref names a folder or a user. The zero Ref names nothing.
type Ref struct {
	Kind Kind   `json:"kind,omitzero"`
	ID   string `json:"id,omitempty"`
}

// FolderRef returns a Ref naming folder id.
func FolderRef(id string) Ref { return Ref{Kind: KindFolder, ID: id} }

// UserRef returns a Ref naming user id.
func UserRef(id string) Ref { return Ref{Kind: KindUser, ID: id} }

// IsZero reports whether r names nothing.
func (r Ref) IsZero() bool { return r.Kind == KindNone }

// String returns "kind:id", or "none".
func (r Ref) String() string {
	if r.IsZero() {
		return "none"
	}
	return r.Kind.String() + ":" + r.ID
}

// State is a user's life-cycle state. Only active users are allowed anything.
type State string

// The user states.
const (
	StateActive   State = "active"
	StateDisabled State = "disabled"
	StateArchived State = "archived"
)

func (s State) valid() bool {
	return s == StateActive || s == StateDisabled || s == StateArchived
}

// Folder is a node of an organisation's tree. A folder with an empty Parent
// is the root of an organisation.
type Folder struct {
	ID     string            `json:"id"`
	Name   string            `json:"name,omitempty"`
	Parent string            `json:"parent,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// User is a person placed in the tree: one home folder and any number of
// extra groups (folders of the same organisation). Extras is kept sorted.
type User struct {
	ID     string   `json:"id"`
	Name   string   `json:"name,omitempty"`
	Class  string   `json:"class"`
	State  State    `json:"state"`
	Home   string   `json:"home"`
	Extras []string `json:"extras,omitempty"`
	// ActiveUntil, when set, is when an active user stops being active:
	// decisions find the user not active from then on, and the service
	// records it by setting the state to disabled (as SystemActor). Only an
	// active user may have it.
	ActiveUntil time.Time `json:"active_until,omitzero"`
}

// Grant gives its Holder (a user, or every member of a folder) Rights on its
// Target (a folder subtree with its members, one user, or nothing for
// capabilities) until ExpiresAt, when that is set.
type Grant struct {
	ID        string    `json:"id"`
	Holder    Ref       `json:"holder"`
	Target    Ref       `json:"target,omitzero"`
	Rights    []string  `json:"rights"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	// Expired is set by the service once it has committed the grant's
	// expire_grant change, announcing that the expiry was reached. For
	// decisions a grant is expired from ExpiresAt on whether or not this is
	// set (and always once it is); the flag keeps the announcement from
	// being made twice, and access streams count the grant until it is set.
	Expired bool `json:"expired,omitempty"`
	// StartsAt, when set, is when the grant begins to apply: before it,
	// decisions pass over it. It must come before ExpiresAt.
	StartsAt time.Time `json:"starts_at,omitzero"`
	// Started is set by the service once it has committed the grant's
	// start_grant change, announcing that it began to apply (as Expired
	// announces its end); access streams count the grant from then on.
	Started bool `json:"started,omitempty"`
}

// Lock denies Rights on its Target (a folder subtree with its members, or one
// user), whatever any grant says.
type Lock struct {
	ID     string   `json:"id"`
	Target Ref      `json:"target"`
	Rights []string `json:"rights"`
	Reason string   `json:"reason,omitempty"`
}

// PlacementRule limits the user classes that may be members of Folder and of
// every folder below it.
type PlacementRule struct {
	Folder  string   `json:"folder"`
	Classes []string `json:"classes"`
}

// Right is an entry of the rights catalogue: a verb and the rights it
// directly implies. Implication is transitive.
type Right struct {
	Name    string   `json:"name"`
	Implies []string `json:"implies,omitempty"`
}

// SelfRights are the rights every active user has on their own user record.
type SelfRights struct {
	Rights []string `json:"rights"`
}

// DefaultLockRights is what a lock denies when it names no rights.
var DefaultLockRights = []string{"edit"}

// Bootstrap returns the mutations that give a new, empty store the default
// catalogue (read; edit and assign each implying read) and the default self
// right (read). They are committed as the store's first batch, so that the
// defaults are stored data like everything else.
func Bootstrap() []Mutation {
	return []Mutation{
		{PutRight: &Right{Name: "read"}},
		{PutRight: &Right{Name: "edit", Implies: []string{"read"}}},
		{PutRight: &Right{Name: "assign", Implies: []string{"read"}}},
		{SetSelfRights: &SelfRights{Rights: []string{"read"}}},
	}
}
