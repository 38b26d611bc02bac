package main

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// TestMutationLineNamesEveryOperation: every operation of the API's
// Mutation, even one added later, is written by its own name, never as
// an empty mutation.
func TestMutationLineNamesEveryOperation(t *testing.T) {
	op := (&pb.Mutation{}).ProtoReflect().Descriptor().Oneofs().ByName("op")
	for i := 0; i < op.Fields().Len(); i++ {
		f := op.Fields().Get(i)
		m := (&pb.Mutation{}).ProtoReflect()
		m.Set(f, protoreflect.ValueOfMessage(m.NewField(f).Message()))
		if got := mutationLine(m.Interface().(*pb.Mutation)); !strings.HasPrefix(got, string(f.Name())) {
			t.Errorf("%s is written %q", f.Name(), got)
		}
	}
	if got := mutationLine(&pb.Mutation{}); got != "an empty mutation" {
		t.Errorf("no operation is written %q", got)
	}
}

// TestMutationLine: what people read of a change.
func TestMutationLine(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 12, 24, 17, 0, 0, 0, time.UTC))
	user := func(id string) *pb.ObjectRef { return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: id} }
	folder := func(id string) *pb.ObjectRef { return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, Id: id} }
	for _, c := range []struct {
		m    *pb.Mutation
		want string
	}{
		{&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "acme", Name: "Acme"}}}, `create_folder acme: "Acme" as an organisation`},
		{&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "it1", Parent: "acme", Labels: map[string]string{"b": "2", "a": "1"}}}}, `create_folder it1: under acme labels a=1,b=2`},
		{&pb.Mutation{Op: &pb.Mutation_DeleteFolder{DeleteFolder: &pb.DeleteFolder{Id: "it1", Cascade: true}}}, `delete_folder it1: with everything below it`},
		{&pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: "inspector", Class: "external", State: pb.UserState_USER_STATE_ACTIVE, Home: "external", ExtraGroups: []string{"ofsted"}, ActiveUntil: at}}}, `create_user inspector: class external, active, in external and ofsted until 2026-12-24T17:00:00Z`},
		{&pb.Mutation{Op: &pb.Mutation_SetUserState{SetUserState: &pb.SetUserState{Id: "inspector", State: pb.UserState_USER_STATE_DISABLED}}}, `set_user_state inspector: disabled`},
		{&pb.Mutation{Op: &pb.Mutation_RemoveExtraGroup{RemoveExtraGroup: &pb.Membership{User: "lea", Folder: "ofsted"}}}, `remove_extra_group lea: leaves ofsted`},
		{&pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: &pb.Grant{Id: "visit", Holder: user("inspector"), Target: folder("ofsted"), Rights: []string{"trainee_assessor", "view_all_in_group"}, StartsAt: at, ExpiresAt: at, Reason: "Ofsted visit"}}},
			`add_grant visit: user/inspector gets trainee_assessor,view_all_in_group on folder/ofsted from 2026-12-24T17:00:00Z until 2026-12-24T17:00:00Z (Ofsted visit)`},
		{&pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: &pb.Grant{Id: "c", Holder: folder("staff"), Rights: []string{"console"}}}}, `add_grant c: folder/staff gets console`},
		{&pb.Mutation{Op: &pb.Mutation_AddLock{AddLock: &pb.Lock{Id: "exam", Target: folder("it2")}}}, `add_lock exam: denies edit on folder/it2`},
		{&pb.Mutation{Op: &pb.Mutation_SetSelfRights{SetSelfRights: &pb.SelfRights{Rights: []string{"read"}}}}, `set_self_rights: read`},
		{&pb.Mutation{Op: &pb.Mutation_ExpireGrant{ExpireGrant: &pb.ExpireGrant{Id: "visit"}}}, `expire_grant visit`},
	} {
		if got := mutationLine(c.m); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}
