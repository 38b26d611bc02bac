package graph_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// TestFolderCountsAgreeWithTheReference: after random writes, what the
// index counts at each folder (children, homes, extra members, grants
// and locks on it) is what the reference's maps hold, and a confined
// view counts only its own organisations' folders.
func TestFolderCountsAgreeWithTheReference(t *testing.T) {
	compared := 0
	for i := 0; i < propertyCases(t, 20); i++ {
		seed := graphtest.Seed(t, i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newGen(seed)
			g.now = graphtest.Start
			ix := openWith(t, graph.Options{Clock: graphtest.NewClock(g.now)})
			g.m = newRef()
			g.build(t, ix)
			for range 30 {
				batch := g.batch()
				if _, err := ix.Write(context.Background(), "t", batch, graph.Preconditions{}); err == nil {
					g.m = mustWrite(t, g.m, batch, g.now)
				}
			}
			for id := range g.m.folders {
				var want graph.FolderCounts
				for _, f := range g.m.folders {
					if f.Parent == id {
						want.Children++
					}
				}
				for _, u := range g.m.users {
					if u.Home == id {
						want.Users++
					}
					for _, e := range u.Extras {
						if e == id {
							want.Members++
						}
					}
				}
				for _, gr := range g.m.grants {
					if gr.Target == graph.FolderRef(id) {
						want.Grants++
					}
				}
				for _, l := range g.m.locks {
					if l.Target == graph.FolderRef(id) {
						want.Locks++
					}
				}
				got, _, err := ix.FolderCounts(id)
				if err != nil || got != want {
					t.Fatalf("folder %s: %+v, %v; the reference %+v", id, got, err, want)
				}
				root := g.m.root(id)
				if _, _, err := ix.Confine(graph.OrgsOf(root)).FolderCounts(id); err != nil {
					t.Fatalf("folder %s in its own organisation %s: %v", id, root, err)
				}
				if _, _, err := ix.Confine(graph.OrgsOf(root + "-other")).FolderCounts(id); err == nil {
					t.Fatalf("folder %s counted for another organisation", id)
				}
				compared++
			}
			if _, _, err := ix.FolderCounts("nowhere"); err == nil {
				t.Fatal("a folder that does not exist was counted")
			}
		})
	}
	if compared == 0 {
		t.Fatal("no folder compared")
	}
	t.Logf("%d folders' counts compared", compared)
}
