package etcdstore_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/graph/orggen"
	"github.com/canopy-authz/canopy/store/etcdstore"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
)

// benchNodes opens n indexes over one etcd member (on this machine's
// disk) under one prefix, with a folder to write users into.
func benchNodes(b *testing.B, n int) []*graph.Index {
	b.Helper()
	c := etcdtest.Start(b, 1)
	var out []*graph.Index
	for range n {
		s, err := etcdstore.Open(context.Background(), c.Client(b), etcdstore.Options{Prefix: "/b/"})
		if err != nil {
			b.Fatal(err)
		}
		ix, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(graphtest.Start), Journal: s})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(ix.Close)
		out = append(out, ix)
	}
	rev, err := out[0].Write(context.Background(), "bench", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "root"}}}, graph.Preconditions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, ix := range out {
		if err := ix.WaitFor(context.Background(), rev); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// benchWrites has 128 callers write one user each at a time, spread over
// the nodes, and reports acknowledged writes per second (each after
// etcd's quorum has it on disk) and the acknowledgement's median and p99.
func benchWrites(b *testing.B, nodes []*graph.Index) {
	var n atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			k := n.Add(1)
			t0 := time.Now()
			if _, err := nodes[int(k)%len(nodes)].Write(context.Background(), "bench", []graph.Mutation{{CreateUser: &graph.User{ID: fmt.Sprint("u", k), Class: "staff", Home: "root"}}}, graph.Preconditions{}); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
	}
}

// BenchmarkWriteOneNode: every write through one node.
func BenchmarkWriteOneNode(b *testing.B) { benchWrites(b, benchNodes(b, 1)) }

// BenchmarkWriteThreeNodes: writes spread over three nodes, whose appends
// conflict and are validated again.
func BenchmarkWriteThreeNodes(b *testing.B) { benchWrites(b, benchNodes(b, 3)) }

// BenchmarkVisibleOnAnotherNode: one write at a time on node A, timed
// from its call to the moment node B has applied its revision; reports
// the median and p99.
func BenchmarkVisibleOnAnotherNode(b *testing.B) {
	nodes := benchNodes(b, 2)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		rev, err := nodes[0].Write(context.Background(), "bench", []graph.Mutation{{CreateUser: &graph.User{ID: fmt.Sprint("v", i), Class: "staff", Home: "root"}}}, graph.Preconditions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := nodes[1].WaitFor(context.Background(), rev); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}

// BenchmarkJoin measures a node joining: the DESIGN.md organisation (a
// tenth unless CANOPY_BENCH_FULL=1) written through one node, a snapshot
// of it put, then a new node opened over the store, timed.
func BenchmarkJoin(b *testing.B) {
	shape := orggen.Design().Scale(0.1)
	if os.Getenv("CANOPY_BENCH_FULL") != "" {
		shape = orggen.Design()
	}
	c := etcdtest.Start(b, 1)
	ctx := context.Background()
	s, err := etcdstore.Open(ctx, c.Client(b), etcdstore.Options{Prefix: "/j/"})
	if err != nil {
		b.Fatal(err)
	}
	first, err := graph.Open(ctx, graph.Options{Clock: graphtest.NewClock(orggen.Start), Journal: s})
	if err != nil {
		b.Fatal(err)
	}
	defer first.Close()
	start := time.Now()
	for _, batch := range orggen.Generate(shape, 20_000).Batches {
		if _, err := first.Import(ctx, "bench", batch); err != nil {
			b.Fatal(err)
		}
	}
	recs, rev, err := first.Records()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.PutSnapshot(ctx, rev, recs); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote and snapshotted %d records at revision %d in %s", len(recs), rev, time.Since(start).Round(time.Millisecond))
	recs = nil
	b.ResetTimer()
	for range b.N {
		ix, err := graph.Open(ctx, graph.Options{Clock: graphtest.NewClock(orggen.Start), Journal: s})
		if err != nil {
			b.Fatal(err)
		}
		if ix.Revision() != rev {
			b.Fatalf("joined at %d, want %d", ix.Revision(), rev)
		}
		ix.Close()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/join")
}
