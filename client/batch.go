package client

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// Batch is a write built up one mutation at a time, then committed with
// Commit as one atomic batch: all of it, or none and an error naming the
// offending id. Each method appends a mutation and returns the batch, so
// calls chain. A Batch is not safe for concurrent use.
type Batch struct {
	c   *Client
	req pb.WriteRequest
}

// Batch starts an empty batch to be committed through c.
func (c *Client) Batch() *Batch { return &Batch{c: c} }

func (b *Batch) add(m *pb.Mutation) *Batch {
	b.req.Mutations = append(b.req.Mutations, m)
	return b
}

// Add appends mutations as they are.
func (b *Batch) Add(m ...*pb.Mutation) *Batch {
	b.req.Mutations = append(b.req.Mutations, m...)
	return b
}

// IfRevision makes the batch fail with FailedPrecondition, changing
// nothing, unless the store is at rev when it is validated. Such a batch
// is retried when the server is unavailable: a repeat of one that did
// commit fails instead of applying twice.
func (b *Batch) IfRevision(rev uint64) *Batch {
	b.pre().Revision = rev
	return b
}

// AsUser writes the batch on behalf of user: each mutation is also
// allowed only when user holds the rights it needs (a refusal is
// PermissionDenied naming the mutation, the right and the object), and
// the change log records user beside the caller.
func (b *Batch) AsUser(user string) *Batch {
	b.req.AsUser = user
	return b
}

// IfFoldersExist, IfUsersExist, IfFoldersAbsent and IfUsersAbsent add
// preconditions on the existence of folders and users.
func (b *Batch) IfFoldersExist(ids ...string) *Batch {
	b.pre().FoldersExist = append(b.pre().FoldersExist, ids...)
	return b
}

// IfUsersExist: see IfFoldersExist.
func (b *Batch) IfUsersExist(ids ...string) *Batch {
	b.pre().UsersExist = append(b.pre().UsersExist, ids...)
	return b
}

// IfFoldersAbsent: see IfFoldersExist.
func (b *Batch) IfFoldersAbsent(ids ...string) *Batch {
	b.pre().FoldersAbsent = append(b.pre().FoldersAbsent, ids...)
	return b
}

// IfUsersAbsent: see IfFoldersExist.
func (b *Batch) IfUsersAbsent(ids ...string) *Batch {
	b.pre().UsersAbsent = append(b.pre().UsersAbsent, ids...)
	return b
}

func (b *Batch) pre() *pb.Preconditions {
	if b.req.Preconditions == nil {
		b.req.Preconditions = &pb.Preconditions{}
	}
	return b.req.Preconditions
}

// CreateFolder adds a folder under parent ("" for a new organisation).
func (b *Batch) CreateFolder(id, name, parent string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id, Name: name, Parent: parent}}})
}

// RenameFolder sets a folder's display name.
func (b *Batch) RenameFolder(id, name string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_RenameFolder{RenameFolder: &pb.RenameFolder{Id: id, Name: name}}})
}

// RelabelFolder replaces a folder's labels.
func (b *Batch) RelabelFolder(id string, labels map[string]string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_RelabelFolder{RelabelFolder: &pb.RelabelFolder{Id: id, Labels: labels}}})
}

// MoveFolder gives a folder a new parent in its organisation.
func (b *Batch) MoveFolder(id, to string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_MoveFolder{MoveFolder: &pb.MoveFolder{Id: id, To: to}}})
}

// DeleteFolder removes a folder; with cascade, everything below it and
// everything naming any of it.
func (b *Batch) DeleteFolder(id string, cascade bool) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_DeleteFolder{DeleteFolder: &pb.DeleteFolder{Id: id, Cascade: cascade}}})
}

// CreateUser adds an active user with a home folder and extra groups.
func (b *Batch) CreateUser(id, name, class, home string, extraGroups ...string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: id, Name: name, Class: class, Home: home, ExtraGroups: extraGroups}}})
}

// UpdateUser replaces a user's name and class.
func (b *Batch) UpdateUser(id, name, class string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_UpdateUser{UpdateUser: &pb.UpdateUser{Id: id, Name: name, Class: class}}})
}

// MoveUser gives a user a new home folder.
func (b *Batch) MoveUser(id, to string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_MoveUser{MoveUser: &pb.MoveUser{Id: id, To: to}}})
}

// SetUserState activates, disables or archives a user.
func (b *Batch) SetUserState(id string, state pb.UserState) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_SetUserState{SetUserState: &pb.SetUserState{Id: id, State: state}}})
}

// DeleteUser removes a user; with cascade, the grants and locks naming it too.
func (b *Batch) DeleteUser(id string, cascade bool) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_DeleteUser{DeleteUser: &pb.DeleteUser{Id: id, Cascade: cascade}}})
}

// AddExtraGroup places a user in a folder besides its home.
func (b *Batch) AddExtraGroup(user, folder string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_AddExtraGroup{AddExtraGroup: &pb.Membership{User: user, Folder: folder}}})
}

// RemoveExtraGroup takes a user out of an extra group.
func (b *Batch) RemoveExtraGroup(user, folder string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_RemoveExtraGroup{RemoveExtraGroup: &pb.Membership{User: user, Folder: folder}}})
}

// AddGrant gives holder rights on target (nil: capabilities).
func (b *Batch) AddGrant(id string, holder, target *pb.ObjectRef, rights ...string) *Batch {
	return b.AddGrantWith(&pb.Grant{Id: id, Holder: holder, Target: target, Rights: rights})
}

// AddGrantUntil is AddGrant with an expiry and a reason.
func (b *Batch) AddGrantUntil(id string, holder, target *pb.ObjectRef, expires time.Time, reason string, rights ...string) *Batch {
	return b.AddGrantWith(&pb.Grant{Id: id, Holder: holder, Target: target, Rights: rights, ExpiresAt: timestamppb.New(expires), Reason: reason})
}

// AddGrantWith adds a grant given whole.
func (b *Batch) AddGrantWith(g *pb.Grant) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: g}})
}

// RemoveGrant removes a grant.
func (b *Batch) RemoveGrant(id string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_RemoveGrant{RemoveGrant: &pb.RemoveGrant{Id: id}}})
}

// AddLock denies rights (none given: edit) on target, whatever grants say.
func (b *Batch) AddLock(id string, target *pb.ObjectRef, reason string, rights ...string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_AddLock{AddLock: &pb.Lock{Id: id, Target: target, Rights: rights, Reason: reason}}})
}

// RemoveLock removes a lock.
func (b *Batch) RemoveLock(id string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_RemoveLock{RemoveLock: &pb.RemoveLock{Id: id}}})
}

// SetPlacementRule limits the classes of users that may be members of a
// folder and everything below it.
func (b *Batch) SetPlacementRule(folder string, classes ...string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_SetPlacementRule{SetPlacementRule: &pb.PlacementRule{Folder: folder, Classes: classes}}})
}

// RemovePlacementRule removes a folder's placement rule.
func (b *Batch) RemovePlacementRule(folder string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_RemovePlacementRule{RemovePlacementRule: &pb.RemovePlacementRule{Folder: folder}}})
}

// PutRight adds a right to the catalogue, or replaces what it implies.
func (b *Batch) PutRight(name string, implies ...string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_PutRight{PutRight: &pb.Right{Name: name, Implies: implies}}})
}

// DeleteRight removes a right nothing uses.
func (b *Batch) DeleteRight(name string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_DeleteRight{DeleteRight: &pb.DeleteRight{Name: name}}})
}

// SetSelfRights sets the rights every active user has on their own record.
func (b *Batch) SetSelfRights(rights ...string) *Batch {
	return b.add(&pb.Mutation{Op: &pb.Mutation_SetSelfRights{SetSelfRights: &pb.SelfRights{Rights: rights}}})
}

// Len is how many mutations the batch holds.
func (b *Batch) Len() int { return len(b.req.Mutations) }

// Request is the WriteRequest the batch will send. It is the batch's own:
// changing it changes the batch.
func (b *Batch) Request() *pb.WriteRequest { return &b.req }

// Commit writes the batch and returns the revision it was committed at,
// which the client remembers (see Fresh).
func (b *Batch) Commit(ctx context.Context) (uint64, error) {
	r, err := b.c.DirectoryService.Write(ctx, &b.req)
	if err != nil {
		return 0, err
	}
	b.c.saw(r.GetRevision())
	return r.GetRevision(), nil
}

// Write applies mutations as one atomic batch and returns its revision.
func (c *Client) Write(ctx context.Context, mutations ...*pb.Mutation) (uint64, error) {
	return c.Batch().Add(mutations...).Commit(ctx)
}

// Preview validates the batch exactly as Commit would and returns what it
// would change in access, committing nothing: for the first limit users
// by id (0: the server's 100), what each would gain and lose, with the
// full counts. A batch Commit would refuse is refused with the same error.
func (b *Batch) Preview(ctx context.Context, limit int) (*pb.Preview, error) {
	req := proto.Clone(&b.req).(*pb.WriteRequest)
	req.DryRun, req.PreviewLimit = true, uint32(max(limit, 0))
	r, err := b.c.DirectoryService.Write(ctx, req)
	if err != nil {
		return nil, err
	}
	b.c.saw(r.GetPreview().GetRevision())
	return r.GetPreview(), nil
}
