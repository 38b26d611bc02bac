package main

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// mutationLine writes a mutation for people, on one line: its operation
// as the API names it, the id it names, then what it sets, in words
// ("add_grant visit: user/inspector gets view_reports on folder/ofsted
// until 2026-12-24T17:00:00Z"). -o json prints the mutation itself.
func mutationLine(m *pb.Mutation) string {
	var w words
	switch op := m.GetOp().(type) {
	case *pb.Mutation_CreateFolder:
		f := op.CreateFolder
		w.op("create_folder", f.GetId())
		w.quoted(f.GetName())
		if f.GetParent() == "" {
			w.add("as an organisation")
		} else {
			w.add("under " + f.GetParent())
		}
		if len(f.GetLabels()) > 0 {
			w.add("labels " + labels(f.GetLabels()))
		}
	case *pb.Mutation_RenameFolder:
		w.op("rename_folder", op.RenameFolder.GetId())
		w.add("to")
		w.quoted(op.RenameFolder.GetName())
	case *pb.Mutation_RelabelFolder:
		w.op("relabel_folder", op.RelabelFolder.GetId())
		w.add("labels " + labels(op.RelabelFolder.GetLabels()))
	case *pb.Mutation_MoveFolder:
		w.op("move_folder", op.MoveFolder.GetId())
		w.add("under " + op.MoveFolder.GetTo())
	case *pb.Mutation_DeleteFolder:
		w.op("delete_folder", op.DeleteFolder.GetId())
		if op.DeleteFolder.GetCascade() {
			w.add("with everything below it")
		}
	case *pb.Mutation_CreateUser:
		u := op.CreateUser
		w.op("create_user", u.GetId())
		w.quoted(u.GetName())
		w.add("class " + orDash(u.GetClass()) + ", " + stateWord(u.GetState()) + ", in " + u.GetHome())
		if len(u.GetExtraGroups()) > 0 {
			w.add("and " + strings.Join(u.GetExtraGroups(), ","))
		}
		w.time("until", u.GetActiveUntil())
	case *pb.Mutation_UpdateUser:
		w.op("update_user", op.UpdateUser.GetId())
		w.quoted(op.UpdateUser.GetName())
		if c := op.UpdateUser.GetClass(); c != "" {
			w.add("class " + c)
		}
	case *pb.Mutation_MoveUser:
		w.op("move_user", op.MoveUser.GetId())
		w.add("to " + op.MoveUser.GetTo())
	case *pb.Mutation_SetUserState:
		w.op("set_user_state", op.SetUserState.GetId())
		w.add(stateWord(op.SetUserState.GetState()))
		w.time("until", op.SetUserState.GetActiveUntil())
	case *pb.Mutation_DeleteUser:
		w.op("delete_user", op.DeleteUser.GetId())
		if op.DeleteUser.GetCascade() {
			w.add("with the grants and locks naming it")
		}
	case *pb.Mutation_AddExtraGroup:
		w.op("add_extra_group", op.AddExtraGroup.GetUser())
		w.add("joins " + op.AddExtraGroup.GetFolder())
	case *pb.Mutation_RemoveExtraGroup:
		w.op("remove_extra_group", op.RemoveExtraGroup.GetUser())
		w.add("leaves " + op.RemoveExtraGroup.GetFolder())
	case *pb.Mutation_AddGrant:
		g := op.AddGrant
		w.op("add_grant", g.GetId())
		w.add(refString(g.GetHolder()) + " gets " + strings.Join(g.GetRights(), ","))
		if g.GetTarget() != nil {
			w.add("on " + refString(g.GetTarget()))
		}
		w.time("from", g.GetStartsAt())
		w.time("until", g.GetExpiresAt())
		if g.GetReason() != "" {
			w.add("(" + g.GetReason() + ")")
		}
	case *pb.Mutation_RemoveGrant:
		w.op("remove_grant", op.RemoveGrant.GetId())
	case *pb.Mutation_AddLock:
		l := op.AddLock
		w.op("add_lock", l.GetId())
		rights := "edit"
		if len(l.GetRights()) > 0 {
			rights = strings.Join(l.GetRights(), ",")
		}
		w.add("denies " + rights + " on " + refString(l.GetTarget()))
		if l.GetReason() != "" {
			w.add("(" + l.GetReason() + ")")
		}
	case *pb.Mutation_RemoveLock:
		w.op("remove_lock", op.RemoveLock.GetId())
	case *pb.Mutation_SetPlacementRule:
		w.op("set_placement_rule", op.SetPlacementRule.GetFolder())
		w.add("admits " + orDash(strings.Join(op.SetPlacementRule.GetClasses(), ",")))
	case *pb.Mutation_RemovePlacementRule:
		w.op("remove_placement_rule", op.RemovePlacementRule.GetFolder())
	case *pb.Mutation_PutRight:
		w.op("put_right", op.PutRight.GetName())
		if len(op.PutRight.GetImplies()) > 0 {
			w.add("implies " + strings.Join(op.PutRight.GetImplies(), ","))
		}
	case *pb.Mutation_DeleteRight:
		w.op("delete_right", op.DeleteRight.GetName())
	case *pb.Mutation_SetSelfRights:
		w.op("set_self_rights", "")
		w.add(orDash(strings.Join(op.SetSelfRights.GetRights(), ",")))
	case *pb.Mutation_ExpireGrant:
		w.op("expire_grant", op.ExpireGrant.GetId())
	case *pb.Mutation_StartGrant:
		w.op("start_grant", op.StartGrant.GetId())
	default:
		return "an empty mutation"
	}
	return w.String()
}

// words builds a mutation's line: "op id: word word".
type words struct {
	b    strings.Builder
	more bool // whether anything follows the op yet
}

// op begins the line with the operation and the id it names.
func (w *words) op(name, id string) {
	w.b.WriteString(name)
	if id != "" {
		w.b.WriteString(" " + id)
	}
}

// add appends a phrase.
func (w *words) add(s string) {
	if w.more {
		w.b.WriteString(" ")
	} else {
		w.b.WriteString(": ")
		w.more = true
	}
	w.b.WriteString(s)
}

// quoted appends a name in quotes, or nothing for none.
func (w *words) quoted(s string) {
	if s != "" {
		w.add(fmt.Sprintf("%q", s))
	}
}

// time appends "word TIME", or nothing when t is unset.
func (w *words) time(word string, t *timestamppb.Timestamp) {
	if t != nil {
		w.add(word + " " + timeText(t))
	}
}

// String returns the line.
func (w *words) String() string { return w.b.String() }
