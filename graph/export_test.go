package graph_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// TestExportRebuilds: on random worlds, what Export emits, written into a
// new index in chunks, rebuilds exactly the same state.
func TestExportRebuilds(t *testing.T) {
	for i := 0; i < propertyCases(t, 50); i++ {
		seed := graphtest.Seed(t, i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newGen(seed)
			g.now = graphtest.Start
			ix := graphtest.Open(t, graphtest.NewClock(g.now), nil)
			g.m = newRef()
			g.build(t, ix)
			for step := 0; step < 40; step++ {
				batch := g.batch()
				if next, err := g.m.write(batch, g.now); err == nil {
					if _, err := ix.Write(context.Background(), "t", batch, graph.Preconditions{}); err != nil {
						t.Fatal(err)
					}
					g.m = next
				}
			}
			// Let some grants expire before the export: import keeps them.
			clock := graphtest.NewClock(g.now.Add(100 * time.Hour))
			var muts []graph.Mutation
			snap, err := ix.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			if err := snap.Mutations(func(m graph.Mutation) error { muts = append(muts, m); return nil }); err != nil {
				t.Fatal(err)
			}
			fresh := graphtest.Open(t, clock, nil)
			for len(muts) > 0 {
				n := min(7, len(muts))
				if _, err := fresh.Import(context.Background(), "import", muts[:n]); err != nil {
					t.Fatalf("import: %v", err)
				}
				muts = muts[n:]
			}
			if d := sameState(modelOf(t, fresh), modelOf(t, ix)); d != "" {
				t.Fatal(d)
			}
		})
	}
}
