package graph_test

import (
	"context"
	"slices"
	"testing"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// TestScopes: each kind of change is placed where it happened, a move both
// where it came from and where it went, and the catalogue nowhere (the
// whole service).
func TestScopes(t *testing.T) {
	ctx := context.Background()
	log := newCommitLog()
	ix := openLogged(t, graphtest.NewClock(graphtest.Start), nil, log)
	type M = graph.Mutation
	if _, err := ix.Write(ctx, "test", []M{
		{CreateFolder: &graph.Folder{ID: "a"}},
		{CreateFolder: &graph.Folder{ID: "a1", Parent: "a"}},
		{CreateFolder: &graph.Folder{ID: "a11", Parent: "a1"}},
		{CreateFolder: &graph.Folder{ID: "a2", Parent: "a"}},
		{CreateFolder: &graph.Folder{ID: "b"}},
		{CreateFolder: &graph.Folder{ID: "b1", Parent: "b"}},
		{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "a11", Extras: []string{"a2"}}},
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		m     M
		scope []string // sorted; nil: the whole service
	}{
		{"create folder", M{CreateFolder: &graph.Folder{ID: "a12", Parent: "a1"}}, []string{"a", "a1", "a12"}},
		{"rename", M{RenameFolder: &graph.Rename{ID: "a11", Name: "x"}}, []string{"a", "a1", "a11"}},
		{"move folder", M{MoveFolder: &graph.Move{ID: "a12", To: "a2"}}, []string{"a", "a1", "a12", "a2"}},
		{"create user", M{CreateUser: &graph.User{ID: "w", Class: "staff", Home: "a12"}}, []string{"a", "a12", "a2"}},
		{"move user", M{MoveUser: &graph.Move{ID: "w", To: "a11"}}, []string{"a", "a1", "a11", "a12", "a2"}},
		{"add extra group", M{AddExtraGroup: &graph.Membership{User: "w", Folder: "a2"}}, []string{"a", "a1", "a11", "a2"}},
		{"remove extra group", M{DelExtraGroup: &graph.Membership{User: "w", Folder: "a2"}}, []string{"a", "a1", "a11", "a2"}},
		{"disable", M{SetUserState: &graph.StateChange{ID: "u", State: graph.StateDisabled}}, []string{"a", "a1", "a11", "a2"}},
		{"grant", M{AddGrant: &graph.Grant{ID: "g", Holder: graph.FolderRef("a12"), Target: graph.UserRef("w"), Rights: []string{"read"}}}, []string{"a", "a1", "a11", "a12", "a2"}},
		{"remove grant", M{RemoveGrant: &graph.Delete{ID: "g"}}, []string{"a", "a1", "a11", "a12", "a2"}},
		{"lock", M{AddLock: &graph.Lock{ID: "l", Target: graph.FolderRef("b1")}}, []string{"b", "b1"}},
		{"remove lock", M{RemoveLock: &graph.Delete{ID: "l"}}, []string{"b", "b1"}},
		{"rule", M{SetRule: &graph.PlacementRule{Folder: "b1", Classes: []string{"staff"}}}, []string{"b", "b1"}},
		{"delete folder", M{DeleteFolder: &graph.Delete{ID: "a12"}}, []string{"a", "a12", "a2"}},
		{"delete user", M{DeleteUser: &graph.Delete{ID: "w"}}, []string{"a", "a1", "a11"}},
		{"catalogue", M{PutRight: &graph.Right{Name: "audit"}}, nil},
		{"delete a root", M{DeleteFolder: &graph.Delete{ID: "b", Cascade: true}}, nil}, // checked below
	}
	for _, tc := range tests {
		if _, err := ix.Write(ctx, "test", []M{tc.m}, graph.Preconditions{}); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c := log.last()
		if len(c.Scopes) != len(c.Mutations) {
			t.Fatalf("%s: %d scopes for %d mutations", tc.name, len(c.Scopes), len(c.Mutations))
		}
		if tc.name == "delete a root" {
			// The rule, then b1, then b: each placed where it was.
			want := [][]string{{"b", "b1"}, {"b", "b1"}, {"b"}}
			for i, sc := range c.Scopes {
				if slices.Sort(sc); !slices.Equal(sc, want[i]) {
					t.Fatalf("%s: mutation %v has scope %v, want %v", tc.name, c.Mutations[i], sc, want[i])
				}
			}
			continue
		}
		got := c.Scopes[0]
		slices.Sort(got)
		if !slices.Equal(got, tc.scope) || (got == nil) != (tc.scope == nil) {
			t.Errorf("%s: scope %v, want %v", tc.name, got, tc.scope)
		}
	}
}
