package graph_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// TestTextsCompacted: a side's ids and names stay in proportion to what
// is live while renames, updates, deletions and refused writes leave
// megabytes of dead bytes behind (Places holds the spare to that after
// every write, and the counts of dead bytes to the nodes), and every id
// and name reads back as the reference has it.
func TestTextsCompacted(t *testing.T) {
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), nil)
	m := newRef()
	write := func(refused bool, muts ...graph.Mutation) {
		t.Helper()
		m = placedWrite(t, ix, m, refused, muts...)
	}
	long := func(round, k int) string { return fmt.Sprintf("%d-%d-%s", round, k, strings.Repeat("x", 900)) }
	write(false, graph.Mutation{CreateFolder: &graph.Folder{ID: "root"}}, graph.Mutation{CreateUser: &graph.User{ID: "keep", Class: "staff", Home: "root"}})
	for round := range 30 {
		var muts []graph.Mutation
		for k := range 40 {
			muts = append(muts,
				graph.Mutation{RenameFolder: &graph.Rename{ID: "root", Name: long(round, k)}},
				graph.Mutation{UpdateUser: &graph.UserUpdate{ID: "keep", Name: long(round, k), Class: "staff"}})
		}
		for k := range 20 {
			id := fmt.Sprint("u", round, "-", k)
			muts = append(muts,
				graph.Mutation{CreateUser: &graph.User{ID: id, Name: long(round, k), Class: "staff", Home: "root"}},
				graph.Mutation{AddGrant: &graph.Grant{ID: "g" + id, Holder: graph.UserRef(id), Target: graph.FolderRef("root"), Rights: []string{"read"}, Reason: long(round, k)}})
		}
		write(false, muts...)
		muts = nil
		for k := range 20 {
			muts = append(muts, graph.Mutation{DeleteUser: &graph.Delete{ID: fmt.Sprint("u", round, "-", k), Cascade: true}})
		}
		write(false, muts...)
		muts = nil
		for k := range 40 {
			muts = append(muts, graph.Mutation{CreateFolder: &graph.Folder{ID: fmt.Sprint("tried", k), Name: long(round, k), Parent: "root"}})
		}
		muts = append(muts, graph.Mutation{CreateFolder: &graph.Folder{ID: "nowhere-child", Parent: "nowhere"}})
		write(true, muts...)
	}
	if d := sameState(modelOf(t, ix), m); d != "" {
		t.Fatal(d)
	}
}
