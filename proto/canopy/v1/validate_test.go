package canopyv1

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	folder := &ObjectRef{Kind: ObjectKind_OBJECT_KIND_FOLDER, Id: "f"}
	op := &Mutation{Op: &Mutation_RemoveLock{RemoveLock: &RemoveLock{Id: "l"}}}
	tests := []struct {
		msg  interface{ Validate() error }
		want string // "" when valid
	}{
		{&CheckRequest{User: "u", Right: "read", Resource: folder}, ""},
		{&CheckRequest{User: "u", Right: "console"}, ""},
		{&CheckRequest{Right: "read"}, "user is required"},
		{&CheckRequest{User: "u", Right: "read", Resource: &ObjectRef{Id: "f"}}, `resource "f": kind`},
		{&CheckRequest{User: "u", Right: "read", Resource: &ObjectRef{Kind: ObjectKind_OBJECT_KIND_USER}}, "resource.id is required"},
		{&CheckRequest{User: strings.Repeat("u", 300), Right: "read"}, "longer than 256"},
		{&BatchCheckRequest{}, "at least one check"},
		// A malformed item is its own result's error (CheckItem.Problem).
		{&BatchCheckRequest{Items: []*CheckItem{{User: "u", Right: "r"}, {User: "u"}}}, ""},
		{&LookupResourcesRequest{User: "u", Right: "r"}, "kind must be"},
		{&LookupResourcesRequest{User: "u", Right: "r", Kind: ObjectKind_OBJECT_KIND_USER, PageSize: MaxPageSize + 1}, "page_size"},
		{&WriteRequest{}, "at least one"},
		{&WriteRequest{Mutations: []*Mutation{op, {}}}, "mutations[1] sets no operation"},
		{&WriteRequest{Mutations: []*Mutation{op}}, ""},
		{&ListUsersRequest{Folder: "f", PageSize: 10}, ""},
		{&ListGrantsRequest{Holder: &ObjectRef{Kind: 7, Id: "x"}}, "holder"},
		{&EffectiveAccessRequest{}, "user is required"},
	}
	for _, tc := range tests {
		err := tc.msg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%T %v: got %v, want %q", tc.msg, tc.msg, err, tc.want)
		}
	}
}

// TestValidateAllocatesNothing: a valid check, alone or in a batch, is
// validated with no allocation (a field is named only when it is wrong).
func TestValidateAllocatesNothing(t *testing.T) {
	ref := &ObjectRef{Kind: ObjectKind_OBJECT_KIND_FOLDER, Id: "f"}
	check := &CheckRequest{User: "u", Right: "read", Resource: ref}
	batch := &BatchCheckRequest{Items: []*CheckItem{{User: "u", Right: "read", Resource: ref}, {User: "v", Right: "read"}}}
	if n := testing.AllocsPerRun(100, func() {
		if check.Validate() != nil || batch.Validate() != nil || batch.Items[0].Problem() != nil || batch.Items[1].Problem() != nil {
			t.Fatal("valid requests refused")
		}
	}); n != 0 {
		t.Errorf("validating a check, a batch and its items allocates %v times", n)
	}
	bad := &CheckItem{User: "u", Right: "read", Resource: &ObjectRef{Kind: ObjectKind_OBJECT_KIND_USER}}
	if err := bad.Problem(); err == nil || err.Error() != "resource.id is required" {
		t.Errorf("an item whose resource has no id: %v", err)
	}
	if err := (&CheckItem{User: "u"}).Problem(); err == nil || err.Error() != "right is required" {
		t.Errorf("an item with no right: %v", err)
	}
}
