package graph_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// TestManyExtraGroups: a user in more extra groups than its node keeps
// inline, growing past that number and shrinking back, is decided as the
// reference decides, and every list place stays right on both sides.
func TestManyExtraGroups(t *testing.T) {
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), nil)
	m := newRef()
	write := func(muts ...graph.Mutation) {
		t.Helper()
		m = placedWrite(t, ix, m, false, muts...)
		if d := sameState(modelOf(t, ix), m); d != "" {
			t.Fatal(d)
		}
	}
	muts := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "root"}}}
	var groups []string
	for i := range 8 {
		id := fmt.Sprint("g", i)
		groups = append(groups, id)
		muts = append(muts,
			graph.Mutation{CreateFolder: &graph.Folder{ID: id, Parent: "root"}},
			graph.Mutation{CreateFolder: &graph.Folder{ID: "doc" + id, Parent: "root"}},
			graph.Mutation{AddGrant: &graph.Grant{ID: "grant" + id, Holder: graph.FolderRef(id), Target: graph.FolderRef("doc" + id), Rights: []string{"read"}}})
	}
	muts = append(muts, graph.Mutation{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "root", Extras: groups[:5]}})
	write(muts...)
	checkAll := func() {
		t.Helper()
		allowed := 0
		for _, g := range groups {
			compareCheck(t, ix, m, graphtest.Start, "u", "read", graph.FolderRef("doc"+g))
			if d, _ := ix.Check("u", "read", graph.FolderRef("doc"+g)); d.Allowed {
				allowed++
			}
		}
		if want := len(m.users["u"].Extras); allowed != want {
			t.Fatalf("u reads %d documents, one through each of its %d extra groups", allowed, want)
		}
	}
	checkAll()
	for _, g := range []string{"g1", "g3", "g0"} { // five, four, three, two
		write(graph.Mutation{DelExtraGroup: &graph.Membership{User: "u", Folder: g}})
		checkAll()
	}
	for _, g := range []string{"g7", "g0", "g6", "g1"} { // three, four, five, six
		write(graph.Mutation{AddExtraGroup: &graph.Membership{User: "u", Folder: g}})
		checkAll()
	}
	write(graph.Mutation{DeleteFolder: &graph.Delete{ID: "g6", Cascade: true}}) // removes the user from it
	checkAll()
	write(graph.Mutation{DeleteUser: &graph.Delete{ID: "u"}})
}

// placedWrite writes muts to ix and to the reference m, at
// graphtest.Start, and fails the test unless both refuse (refused) or
// both accept them, or unless graph.Places holds after; it returns the
// reference after the write.
func placedWrite(t *testing.T, ix *graph.Index, m *refModel, refused bool, muts ...graph.Mutation) *refModel {
	t.Helper()
	next, refErr := m.write(muts, graphtest.Start)
	_, err := ix.Write(context.Background(), "t", muts, graph.Preconditions{})
	if (err != nil) != refused || (refErr != nil) != refused {
		t.Fatalf("refused %v: index %v, reference %v", refused, err, refErr)
	}
	if err := graph.Places(ix); err != nil {
		t.Fatal(err)
	}
	if refused {
		return m
	}
	return next
}
