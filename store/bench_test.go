package store_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/graph/orggen"
	"github.com/canopy-authz/canopy/store"
)

// BenchmarkWrite measures acknowledged writes per second: 64 callers per
// core each write one user at a time, and a write returns only after the
// fsync of the group it was committed in.
func BenchmarkWrite(b *testing.B) {
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ix, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(graphtest.Start), Journal: db})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	if _, err := ix.Write(context.Background(), "bench", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "root"}}}, graph.Preconditions{}); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("u%d", n.Add(1))
			if _, err := ix.Write(context.Background(), "bench", []graph.Mutation{{CreateUser: &graph.User{ID: id, Class: "staff", Home: "root"}}}, graph.Preconditions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkRebuild measures start-up: the index rebuilt from the bbolt file
// holding the DESIGN.md organisation (a tenth of it unless
// CANOPY_BENCH_FULL=1).
func BenchmarkRebuild(b *testing.B) {
	shape := orggen.Design().Scale(0.1)
	if os.Getenv("CANOPY_BENCH_FULL") != "" {
		shape = orggen.Design()
	}
	dir := b.TempDir()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	clock := graphtest.NewClock(orggen.Start)
	ix, err := graph.Open(context.Background(), graph.Options{Clock: clock, Journal: db})
	if err != nil {
		b.Fatal(err)
	}
	org := orggen.Generate(shape, 20_000)
	start := time.Now()
	for _, batch := range org.Batches {
		if _, err := ix.Write(context.Background(), "bench", batch, graph.Preconditions{}); err != nil {
			b.Fatal(err)
		}
	}
	load := time.Since(start)
	ix.Close()
	size, _ := db.Size()
	db.Close()
	b.Logf("wrote %d folders, %d users, %d grants, %d locks in %s; file %d MiB",
		shape.Folders, shape.Users, shape.Grants, shape.Locks, load.Round(time.Millisecond), size>>20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db, err := store.Open(dir, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ix, err := graph.Open(context.Background(), graph.Options{Clock: clock, Journal: db})
		if err != nil {
			b.Fatal(err)
		}
		ix.Close()
		db.Close()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/rebuild")
	b.ReportMetric(float64(size>>20), "file-MiB")
}

// BenchmarkHistory measures History on the trail of the DESIGN.md
// organisation (a tenth of it unless CANOPY_BENCH_FULL=1), imported: one
// user's history (its creation and the grants naming it), and the newest
// page of 100 of an organisation's root folder, whose history holds the
// creation of everything directly in it.
func BenchmarkHistory(b *testing.B) {
	shape := orggen.Design().Scale(0.1)
	if os.Getenv("CANOPY_BENCH_FULL") != "" {
		shape = orggen.Design()
	}
	db, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ix, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(orggen.Start), Journal: db})
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	org := orggen.Generate(shape, 20_000)
	for _, batch := range org.Batches {
		if _, err := ix.Write(context.Background(), "bench", batch, graph.Preconditions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		q    graph.HistoryQuery
	}{
		{"user", graph.HistoryQuery{Object: graph.Object{Kind: graph.RecordUser, ID: org.Users[len(org.Users)/2]}, Limit: 100}},
		{"root", graph.HistoryQuery{Object: graph.Object{Kind: graph.RecordFolder, ID: org.Folders[0]}, Limit: 100}},
		{"actor", graph.HistoryQuery{Actor: "bench", Limit: 100}},
	} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				p, err := db.History(context.Background(), c.q)
				if err != nil {
					b.Fatal(err)
				}
				n = len(p.Entries)
			}
			b.ReportMetric(float64(n), "entries")
		})
	}
}
