package server

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// badRequest is a malformed request found while converting it; it maps to
// InvalidArgument.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &badRequest{msg: fmt.Sprintf(format, graph.ClipArgs(args)...)}
}

func refFromPB(r *pb.ObjectRef, what string) (graph.Ref, error) {
	if r == nil {
		return graph.Ref{}, nil
	}
	switch r.GetKind() {
	case pb.ObjectKind_OBJECT_KIND_FOLDER:
		return graph.FolderRef(r.GetId()), nil
	case pb.ObjectKind_OBJECT_KIND_USER:
		return graph.UserRef(r.GetId()), nil
	case pb.ObjectKind_OBJECT_KIND_UNSPECIFIED:
		if r.GetId() == "" {
			return graph.Ref{}, nil
		}
	}
	return graph.Ref{}, invalidf("%s %q: kind must be OBJECT_KIND_FOLDER or OBJECT_KIND_USER", what, r.GetId())
}

// RefToPB returns the wire form of a reference (nil for none).
func RefToPB(r graph.Ref) *pb.ObjectRef {
	switch r.Kind {
	case graph.KindFolder:
		return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, Id: r.ID}
	case graph.KindUser:
		return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: r.ID}
	}
	return nil
}

func kindFromPB(k pb.ObjectKind) graph.Kind {
	switch k {
	case pb.ObjectKind_OBJECT_KIND_FOLDER:
		return graph.KindFolder
	case pb.ObjectKind_OBJECT_KIND_USER:
		return graph.KindUser
	}
	return graph.KindNone
}

var statesFromPB = map[pb.UserState]graph.State{
	pb.UserState_USER_STATE_UNSPECIFIED: "",
	pb.UserState_USER_STATE_ACTIVE:      graph.StateActive,
	pb.UserState_USER_STATE_DISABLED:    graph.StateDisabled,
	pb.UserState_USER_STATE_ARCHIVED:    graph.StateArchived,
}

func stateToPB(s graph.State) pb.UserState {
	switch s {
	case graph.StateActive:
		return pb.UserState_USER_STATE_ACTIVE
	case graph.StateDisabled:
		return pb.UserState_USER_STATE_DISABLED
	case graph.StateArchived:
		return pb.UserState_USER_STATE_ARCHIVED
	}
	return pb.UserState_USER_STATE_UNSPECIFIED
}

func stateFromPB(s pb.UserState, id string) (graph.State, error) {
	v, ok := statesFromPB[s]
	if !ok {
		return "", invalidf("user %q: unknown state %d", id, s)
	}
	return v, nil
}

func folderToPB(f graph.Folder) *pb.Folder {
	return &pb.Folder{Id: f.ID, Name: f.Name, Parent: f.Parent, Labels: f.Labels}
}

func folderFromPB(f *pb.Folder) *graph.Folder {
	return &graph.Folder{ID: f.GetId(), Name: f.GetName(), Parent: f.GetParent(), Labels: f.GetLabels()}
}

func userToPB(u graph.User) *pb.User {
	return &pb.User{Id: u.ID, Name: u.Name, Class: u.Class, State: stateToPB(u.State), Home: u.Home, ExtraGroups: u.Extras, ActiveUntil: timeToPB(u.ActiveUntil)}
}

func userFromPB(u *pb.User) (*graph.User, error) {
	st, err := stateFromPB(u.GetState(), u.GetId())
	if err != nil {
		return nil, err
	}
	until, err := timeFromPB(u.GetActiveUntil(), "user", u.GetId(), "active_until")
	if err != nil {
		return nil, err
	}
	return &graph.User{ID: u.GetId(), Name: u.GetName(), Class: u.GetClass(), State: st, Home: u.GetHome(), Extras: u.GetExtraGroups(), ActiveUntil: until}, nil
}

// timeToPB is a time on the wire: unset for the zero time.
func timeToPB(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// timeFromPB reads field of the kind's record id: the zero time when
// unset, and an error naming the record when it is not a valid time.
func timeFromPB(ts *timestamppb.Timestamp, kind, id, field string) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, invalidf("%s %q: %s: %v", kind, id, field, err)
	}
	return ts.AsTime(), nil
}

func grantToPB(g graph.Grant) *pb.Grant {
	return &pb.Grant{Id: g.ID, Holder: RefToPB(g.Holder), Target: RefToPB(g.Target), Rights: g.Rights, Reason: g.Reason, Expired: g.Expired,
		ExpiresAt: timeToPB(g.ExpiresAt), StartsAt: timeToPB(g.StartsAt), Started: g.Started}
}

func grantFromPB(g *pb.Grant) (*graph.Grant, error) {
	holder, err := refFromPB(g.GetHolder(), "holder")
	if err != nil {
		return nil, err
	}
	target, err := refFromPB(g.GetTarget(), "target")
	if err != nil {
		return nil, err
	}
	out := &graph.Grant{ID: g.GetId(), Holder: holder, Target: target, Rights: g.GetRights(), Reason: g.GetReason(), Expired: g.GetExpired(), Started: g.GetStarted()}
	if out.ExpiresAt, err = timeFromPB(g.GetExpiresAt(), "grant", g.GetId(), "expires_at"); err != nil {
		return nil, err
	}
	if out.StartsAt, err = timeFromPB(g.GetStartsAt(), "grant", g.GetId(), "starts_at"); err != nil {
		return nil, err
	}
	return out, nil
}

func lockToPB(l graph.Lock) *pb.Lock {
	return &pb.Lock{Id: l.ID, Target: RefToPB(l.Target), Rights: l.Rights, Reason: l.Reason}
}

func lockFromPB(l *pb.Lock) (*graph.Lock, error) {
	target, err := refFromPB(l.GetTarget(), "target")
	if err != nil {
		return nil, err
	}
	return &graph.Lock{ID: l.GetId(), Target: target, Rights: l.GetRights(), Reason: l.GetReason()}, nil
}

func ruleToPB(r *graph.PlacementRule) *pb.PlacementRule {
	if r == nil {
		return nil
	}
	return &pb.PlacementRule{Folder: r.Folder, Classes: r.Classes}
}

// MutationFromPB converts a mutation from the wire to the index's form,
// refusing one that is malformed with an error naming its position i in
// its batch or stream.
func MutationFromPB(m *pb.Mutation, i int) (graph.Mutation, error) { return mutationFromPB(m, i) }

// mutationFromPB converts one mutation of a write batch; i is its position.
func mutationFromPB(m *pb.Mutation, i int) (graph.Mutation, error) {
	var out graph.Mutation
	var err error
	switch op := m.GetOp().(type) {
	case *pb.Mutation_CreateFolder:
		out.CreateFolder = folderFromPB(op.CreateFolder)
	case *pb.Mutation_RenameFolder:
		out.RenameFolder = &graph.Rename{ID: op.RenameFolder.GetId(), Name: op.RenameFolder.GetName()}
	case *pb.Mutation_RelabelFolder:
		out.RelabelFolder = &graph.Relabel{ID: op.RelabelFolder.GetId(), Labels: op.RelabelFolder.GetLabels()}
	case *pb.Mutation_MoveFolder:
		out.MoveFolder = &graph.Move{ID: op.MoveFolder.GetId(), To: op.MoveFolder.GetTo()}
	case *pb.Mutation_DeleteFolder:
		out.DeleteFolder = &graph.Delete{ID: op.DeleteFolder.GetId(), Cascade: op.DeleteFolder.GetCascade()}
	case *pb.Mutation_CreateUser:
		out.CreateUser, err = userFromPB(op.CreateUser)
	case *pb.Mutation_UpdateUser:
		out.UpdateUser = &graph.UserUpdate{ID: op.UpdateUser.GetId(), Name: op.UpdateUser.GetName(), Class: op.UpdateUser.GetClass()}
	case *pb.Mutation_MoveUser:
		out.MoveUser = &graph.Move{ID: op.MoveUser.GetId(), To: op.MoveUser.GetTo()}
	case *pb.Mutation_SetUserState:
		var st graph.State
		st, err = stateFromPB(op.SetUserState.GetState(), op.SetUserState.GetId())
		var until time.Time
		if err == nil {
			until, err = timeFromPB(op.SetUserState.GetActiveUntil(), "user", op.SetUserState.GetId(), "active_until")
		}
		out.SetUserState = &graph.StateChange{ID: op.SetUserState.GetId(), State: st, ActiveUntil: until}
	case *pb.Mutation_DeleteUser:
		out.DeleteUser = &graph.Delete{ID: op.DeleteUser.GetId(), Cascade: op.DeleteUser.GetCascade()}
	case *pb.Mutation_AddExtraGroup:
		out.AddExtraGroup = &graph.Membership{User: op.AddExtraGroup.GetUser(), Folder: op.AddExtraGroup.GetFolder()}
	case *pb.Mutation_RemoveExtraGroup:
		out.DelExtraGroup = &graph.Membership{User: op.RemoveExtraGroup.GetUser(), Folder: op.RemoveExtraGroup.GetFolder()}
	case *pb.Mutation_AddGrant:
		out.AddGrant, err = grantFromPB(op.AddGrant)
	case *pb.Mutation_RemoveGrant:
		out.RemoveGrant = &graph.Delete{ID: op.RemoveGrant.GetId()}
	case *pb.Mutation_ExpireGrant:
		out.ExpireGrant = &graph.Delete{ID: op.ExpireGrant.GetId()}
	case *pb.Mutation_StartGrant:
		out.StartGrant = &graph.Delete{ID: op.StartGrant.GetId()}
	case *pb.Mutation_AddLock:
		out.AddLock, err = lockFromPB(op.AddLock)
	case *pb.Mutation_RemoveLock:
		out.RemoveLock = &graph.Delete{ID: op.RemoveLock.GetId()}
	case *pb.Mutation_SetPlacementRule:
		out.SetRule = &graph.PlacementRule{Folder: op.SetPlacementRule.GetFolder(), Classes: op.SetPlacementRule.GetClasses()}
	case *pb.Mutation_RemovePlacementRule:
		out.RemoveRule = &graph.Delete{ID: op.RemovePlacementRule.GetFolder()}
	case *pb.Mutation_PutRight:
		out.PutRight = &graph.Right{Name: op.PutRight.GetName(), Implies: op.PutRight.GetImplies()}
	case *pb.Mutation_DeleteRight:
		out.DeleteRight = &graph.Delete{ID: op.DeleteRight.GetName()}
	case *pb.Mutation_SetSelfRights:
		out.SetSelfRights = &graph.SelfRights{Rights: op.SetSelfRights.GetRights()}
	default:
		return out, invalidf("mutation %d sets no operation", i)
	}
	if err != nil {
		return out, invalidf("mutation %d: %v", i, err)
	}
	return out, nil
}

// MutationToPB returns the wire form of a mutation: for Watch, and for tools
// that hold graph mutations, such as scenario files.
func MutationToPB(m graph.Mutation) *pb.Mutation {
	switch {
	case m.CreateFolder != nil:
		return &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: folderToPB(*m.CreateFolder)}}
	case m.RenameFolder != nil:
		return &pb.Mutation{Op: &pb.Mutation_RenameFolder{RenameFolder: &pb.RenameFolder{Id: m.RenameFolder.ID, Name: m.RenameFolder.Name}}}
	case m.RelabelFolder != nil:
		return &pb.Mutation{Op: &pb.Mutation_RelabelFolder{RelabelFolder: &pb.RelabelFolder{Id: m.RelabelFolder.ID, Labels: m.RelabelFolder.Labels}}}
	case m.MoveFolder != nil:
		return &pb.Mutation{Op: &pb.Mutation_MoveFolder{MoveFolder: &pb.MoveFolder{Id: m.MoveFolder.ID, To: m.MoveFolder.To}}}
	case m.DeleteFolder != nil:
		return &pb.Mutation{Op: &pb.Mutation_DeleteFolder{DeleteFolder: &pb.DeleteFolder{Id: m.DeleteFolder.ID, Cascade: m.DeleteFolder.Cascade}}}
	case m.CreateUser != nil:
		return &pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: userToPB(*m.CreateUser)}}
	case m.UpdateUser != nil:
		return &pb.Mutation{Op: &pb.Mutation_UpdateUser{UpdateUser: &pb.UpdateUser{Id: m.UpdateUser.ID, Name: m.UpdateUser.Name, Class: m.UpdateUser.Class}}}
	case m.MoveUser != nil:
		return &pb.Mutation{Op: &pb.Mutation_MoveUser{MoveUser: &pb.MoveUser{Id: m.MoveUser.ID, To: m.MoveUser.To}}}
	case m.SetUserState != nil:
		return &pb.Mutation{Op: &pb.Mutation_SetUserState{SetUserState: &pb.SetUserState{Id: m.SetUserState.ID, State: stateToPB(m.SetUserState.State), ActiveUntil: timeToPB(m.SetUserState.ActiveUntil)}}}
	case m.DeleteUser != nil:
		return &pb.Mutation{Op: &pb.Mutation_DeleteUser{DeleteUser: &pb.DeleteUser{Id: m.DeleteUser.ID, Cascade: m.DeleteUser.Cascade}}}
	case m.AddExtraGroup != nil:
		return &pb.Mutation{Op: &pb.Mutation_AddExtraGroup{AddExtraGroup: &pb.Membership{User: m.AddExtraGroup.User, Folder: m.AddExtraGroup.Folder}}}
	case m.DelExtraGroup != nil:
		return &pb.Mutation{Op: &pb.Mutation_RemoveExtraGroup{RemoveExtraGroup: &pb.Membership{User: m.DelExtraGroup.User, Folder: m.DelExtraGroup.Folder}}}
	case m.AddGrant != nil:
		return &pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: grantToPB(*m.AddGrant)}}
	case m.RemoveGrant != nil:
		return &pb.Mutation{Op: &pb.Mutation_RemoveGrant{RemoveGrant: &pb.RemoveGrant{Id: m.RemoveGrant.ID}}}
	case m.ExpireGrant != nil:
		return &pb.Mutation{Op: &pb.Mutation_ExpireGrant{ExpireGrant: &pb.ExpireGrant{Id: m.ExpireGrant.ID}}}
	case m.StartGrant != nil:
		return &pb.Mutation{Op: &pb.Mutation_StartGrant{StartGrant: &pb.StartGrant{Id: m.StartGrant.ID}}}
	case m.AddLock != nil:
		return &pb.Mutation{Op: &pb.Mutation_AddLock{AddLock: lockToPB(*m.AddLock)}}
	case m.RemoveLock != nil:
		return &pb.Mutation{Op: &pb.Mutation_RemoveLock{RemoveLock: &pb.RemoveLock{Id: m.RemoveLock.ID}}}
	case m.SetRule != nil:
		return &pb.Mutation{Op: &pb.Mutation_SetPlacementRule{SetPlacementRule: &pb.PlacementRule{Folder: m.SetRule.Folder, Classes: m.SetRule.Classes}}}
	case m.RemoveRule != nil:
		return &pb.Mutation{Op: &pb.Mutation_RemovePlacementRule{RemovePlacementRule: &pb.RemovePlacementRule{Folder: m.RemoveRule.ID}}}
	case m.PutRight != nil:
		return &pb.Mutation{Op: &pb.Mutation_PutRight{PutRight: &pb.Right{Name: m.PutRight.Name, Implies: m.PutRight.Implies}}}
	case m.DeleteRight != nil:
		return &pb.Mutation{Op: &pb.Mutation_DeleteRight{DeleteRight: &pb.DeleteRight{Name: m.DeleteRight.ID}}}
	case m.SetSelfRights != nil:
		return &pb.Mutation{Op: &pb.Mutation_SetSelfRights{SetSelfRights: &pb.SelfRights{Rights: m.SetSelfRights.Rights}}}
	}
	return &pb.Mutation{}
}

func reasonToPB(r graph.Reason) pb.Reason {
	switch r {
	case graph.ReasonAllowed:
		return pb.Reason_REASON_ALLOWED
	case graph.ReasonUnknownUser:
		return pb.Reason_REASON_UNKNOWN_USER
	case graph.ReasonNotActive:
		return pb.Reason_REASON_USER_NOT_ACTIVE
	case graph.ReasonNoGrant:
		return pb.Reason_REASON_NO_GRANT
	case graph.ReasonExpired:
		return pb.Reason_REASON_EXPIRED
	case graph.ReasonLocked:
		return pb.Reason_REASON_LOCKED
	}
	return pb.Reason_REASON_UNSPECIFIED
}
