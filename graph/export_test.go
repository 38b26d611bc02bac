package graph_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// builtWorld is a random world of the seed, built in a fresh index at the
// test start time, with its generator.
func builtWorld(t *testing.T, seed uint64) (*gen, *graph.Index) {
	t.Helper()
	g := newGen(seed)
	g.now = graphtest.Start
	ix := graphtest.Open(t, graphtest.NewClock(g.now), nil)
	g.m = newRef()
	g.build(t, ix)
	return g, ix
}

// TestExportRebuilds: on random worlds, what Export emits, written into a
// new index in chunks, rebuilds exactly the same state.
func TestExportRebuilds(t *testing.T) {
	for i := 0; i < propertyCases(t, 50); i++ {
		seed := graphtest.Seed(t, i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g, ix := builtWorld(t, seed)
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

// TestRestoreInChunks: on random worlds, the records loaded at start in
// any order and in small chunks, so that decoding runs ahead of applying
// and kinds share chunks, rebuild exactly the same state.
func TestRestoreInChunks(t *testing.T) {
	defer graph.SetRecordChunk(graph.SetRecordChunk(5))
	for i := 0; i < propertyCases(t, 30); i++ {
		seed := graphtest.Seed(t, i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g, ix := builtWorld(t, seed)
			recs, rev, err := ix.Records()
			if err != nil {
				t.Fatal(err)
			}
			if i%2 == 1 {
				g.r.Shuffle(len(recs), func(a, b int) { recs[a], recs[b] = recs[b], recs[a] })
			}
			again, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(g.now), Journal: memRecords{recs, rev}})
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if got := again.Revision(); got != rev {
				t.Fatalf("restored at revision %d, want %d", got, rev)
			}
			if d := sameState(modelOf(t, again), modelOf(t, ix)); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestCreationRecords: the records of what a snapshot emits, loaded at
// the snapshot's revision, are the state itself.
func TestCreationRecords(t *testing.T) {
	for i := 0; i < propertyCases(t, 20); i++ {
		seed := graphtest.Seed(t, i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g, ix := builtWorld(t, seed)
			snap, err := ix.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			var recs []graph.Record
			if err := snap.Mutations(func(m graph.Mutation) error {
				r, err := graph.CreationRecord(m)
				recs = append(recs, r)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			again, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(g.now), Journal: memRecords{recs, snap.Revision}})
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if d := sameState(modelOf(t, again), modelOf(t, ix)); d != "" || again.Revision() != snap.Revision {
				t.Fatalf("at revision %d (want %d): %s", again.Revision(), snap.Revision, d)
			}
		})
	}
	if _, err := graph.CreationRecord(graph.Mutation{MoveUser: &graph.Move{ID: "u", To: "f"}}); !errors.Is(err, graph.ErrInvalid) {
		t.Fatalf("a move's record: %v", err)
	}
}

// TestRestoreRefusesUnknownKinds: records of no known kind, alone in their
// chunk, are refused at start, naming the kind.
func TestRestoreRefusesUnknownKinds(t *testing.T) {
	defer graph.SetRecordChunk(graph.SetRecordChunk(5))
	_, ix := builtWorld(t, 1)
	recs, rev, err := ix.Records()
	if err != nil {
		t.Fatal(err)
	}
	// Five of them first, so that the first chunk holds nothing else.
	var widgets []graph.Record
	for i := range 5 {
		widgets = append(widgets, graph.Record{Kind: "widget", ID: fmt.Sprint("w", i), Value: []byte(`{}`)})
	}
	recs = append(widgets, recs...)
	_, err = graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(graphtest.Start), Journal: memRecords{recs, rev}})
	if err == nil || !strings.Contains(err.Error(), "widget") {
		t.Fatalf("records of no known kind: %v", err)
	}
}
