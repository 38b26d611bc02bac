package graph_test

import (
	"context"
	"fmt"
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
		if len(c.Touched) != len(c.Mutations) {
			t.Fatalf("%s: %d scopes for %d mutations", tc.name, len(c.Touched), len(c.Mutations))
		}
		if tc.name == "delete a root" {
			// The rule, then b1, then b: each placed where it was.
			want := [][]string{{"b", "b1"}, {"b", "b1"}, {"b"}}
			for i := range c.Mutations {
				if sc, _ := c.Scope(i); !slices.Equal(sc, want[i]) {
					t.Fatalf("%s: mutation %v has scope %v, want %v", tc.name, c.Mutations[i], sc, want[i])
				}
			}
			continue
		}
		got, kept := c.Scope(0)
		if !slices.Equal(got, tc.scope) || kept != (tc.scope != nil) {
			t.Errorf("%s: scope %v, want %v", tc.name, got, tc.scope)
		}
	}
}

// TestScopesCostWhatTheyChange: a chain of folders created in one batch
// keeps one place per folder, not every ancestor of every folder, and a
// folder moved within the batch is placed where it was each time.
func TestScopesCostWhatTheyChange(t *testing.T) {
	log := newCommitLog()
	ix := openLogged(t, graphtest.NewClock(graphtest.Start), nil, log)
	const deep = 90
	batch := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "f0"}}}
	for i := 1; i < deep; i++ {
		batch = append(batch, graph.Mutation{CreateFolder: &graph.Folder{ID: fmt.Sprint("f", i), Parent: fmt.Sprint("f", i-1)}})
	}
	batch = append(batch,
		graph.Mutation{CreateFolder: &graph.Folder{ID: "side", Parent: "f0"}},
		graph.Mutation{MoveFolder: &graph.Move{ID: fmt.Sprint("f", deep-1), To: "side"}},
	)
	if _, err := ix.Write(context.Background(), "test", batch, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	c := log.last()
	touched := 0
	for _, tc := range c.Touched {
		touched += len(tc)
	}
	// deep chain places, side, and the moved folder's new place.
	if len(c.Places) != deep+2 || touched != deep+1+2 {
		t.Fatalf("%d places and %d touched for a chain of %d: want %d and %d", len(c.Places), touched, deep, deep+2, deep+3)
	}
	want := []string{"f0", "side"}
	for i := 1; i < deep; i++ {
		want = append(want, fmt.Sprint("f", i))
	}
	slices.Sort(want)
	if got, _ := c.Scope(len(c.Mutations) - 1); !slices.Equal(got, want) {
		t.Errorf("the move's scope: %v", got)
	}
	if !c.InScope(len(c.Mutations)-1, func(f string) bool { return f == "side" }) || c.InScope(0, func(f string) bool { return f == "side" }) {
		t.Error("InScope does not follow the places")
	}
}

// TestOldScopes: scopes as a log written before places kept them select
// the same changes once converted.
func TestOldScopes(t *testing.T) {
	old := [][]string{{"a", "a1"}, nil, {}}
	places, touched := graph.PlacesFromScopes(old)
	c := graph.Commit{Mutations: make([]graph.Mutation, 3), Places: places, Touched: touched}
	for _, tc := range []struct {
		i      int
		folder string
		want   bool
	}{{0, "a1", true}, {0, "a", true}, {0, "b", false}, {1, "b", true}, {2, "a", false}} {
		if got := c.InScope(tc.i, func(f string) bool { return f == tc.folder }); got != tc.want {
			t.Errorf("mutation %d in %s: %v", tc.i, tc.folder, got)
		}
	}
	if (&graph.Commit{Mutations: make([]graph.Mutation, 1)}).InScope(0, func(string) bool { return false }) != true {
		t.Error("a commit with no scopes must pass every place filter")
	}
}

// TestInOrgs: a confined stream is strict where a place filter is lenient:
// a change with no scope is shown only when it is one to the whole
// service.
func TestInOrgs(t *testing.T) {
	places, touched := graph.PlacesFromScopes([][]string{{"a", "a1"}, {"b"}, nil, nil})
	c := graph.Commit{Mutations: []graph.Mutation{
		{RenameFolder: &graph.Rename{ID: "a1"}}, {RenameFolder: &graph.Rename{ID: "b"}},
		{PutRight: &graph.Right{Name: "r"}}, {RenameFolder: &graph.Rename{ID: "c"}},
	}, Places: places, Touched: touched}
	a := graph.OrgsOf("a")
	for i, want := range []bool{true, false, true, false} {
		if got := c.InOrgs(i, a); got != want {
			t.Errorf("mutation %d in a: %v, want %v", i, got, want)
		}
	}
	old := graph.Commit{Mutations: c.Mutations} // a log that kept no scopes
	for i, want := range []bool{false, false, true, false} {
		if got := old.InOrgs(i, a); got != want {
			t.Errorf("mutation %d of a commit with no scopes in a: %v, want %v", i, got, want)
		}
	}
}
