package graph_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/graph/orggen"
)

// benchShape is DESIGN.md section 4's organisation with
// CANOPY_BENCH_FULL=1, and a tenth of it otherwise.
func benchShape() orggen.Shape {
	if os.Getenv("CANOPY_BENCH_FULL") != "" {
		return orggen.Design()
	}
	return orggen.Design().Scale(0.1)
}

// benchWorld is built once per process and shared by the benchmarks.
var benchWorld struct {
	once    sync.Once
	ix      *graph.Index
	checks  []graph.CheckRequest
	build   time.Duration
	heapMiB float64
	err     error
	// movable and under: two children of one tenant root, for moves.
	movable, under string
	// accessed receives the revision of every commit the index hands to
	// OnAccess (while a user is watched).
	accessed chan uint64
}

func loadBenchWorld(b *testing.B) {
	b.Helper()
	benchWorld.once.Do(func() {
		shape := benchShape()
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		org := orggen.Generate(shape, 0)
		checks := org.Checks(200_000, 7)
		clock := graphtest.NewClock(orggen.Start)
		benchWorld.accessed = make(chan uint64, 1<<16)
		onAccess := func(cs []graph.Commit) {
			for _, c := range cs {
				select {
				case benchWorld.accessed <- c.Revision:
				default: // nobody waits for it
				}
			}
		}
		ix, err := graph.Open(context.Background(), graph.Options{Clock: clock, OnAccess: onAccess})
		if err != nil {
			benchWorld.err = err
			return
		}
		start := time.Now()
		for _, batch := range org.Batches {
			if _, err := ix.Write(context.Background(), "bench", batch, graph.Preconditions{}); err != nil {
				benchWorld.err = err
				return
			}
		}
		benchWorld.build = time.Since(start)
		for _, batch := range org.Batches {
			for _, m := range batch {
				if f := m.CreateFolder; f != nil && f.Parent == "t0" {
					if benchWorld.movable == "" {
						benchWorld.movable = f.ID
					} else if benchWorld.under == "" {
						benchWorld.under = f.ID
					}
				}
			}
		}
		org = nil
		runtime.GC()
		runtime.ReadMemStats(&m1)
		benchWorld.ix, benchWorld.checks = ix, checks
		benchWorld.heapMiB = float64(m1.HeapAlloc-m0.HeapAlloc) / (1 << 20)
		st := ix.Stats()
		b.Logf("organisation: %d folders, %d users, %d grants, %d locks; built by writes in %s; heap %.0f MiB",
			st.Folders, st.Users, st.Grants, st.Locks, benchWorld.build.Round(time.Millisecond), benchWorld.heapMiB)
	})
	if benchWorld.err != nil {
		b.Fatal(benchWorld.err)
	}
}

// BenchmarkCheck reports ns/op over the checks, and the median and p99 of
// 200,000 checks timed one by one (timer overhead included).
func BenchmarkCheck(b *testing.B) {
	loadBenchWorld(b)
	ix, checks := benchWorld.ix, benchWorld.checks
	lat := make([]time.Duration, len(checks))
	allowed := 0
	for i, c := range checks {
		t0 := time.Now()
		d, err := ix.Check(c.User, c.Right, c.Resource)
		lat[i] = time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	slices.Sort(lat)
	checkN(b, ix, checks)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(100*float64(allowed)/float64(len(checks)), "%allowed")
	b.ReportMetric(benchWorld.heapMiB, "index-MiB")
}

// checkN times b.N checks, one after another, cycling through checks.
func checkN(b *testing.B, ix *graph.Index, checks []graph.CheckRequest) {
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := &checks[i%len(checks)]
		if _, err := ix.Check(c.User, c.Right, c.Resource); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// BenchmarkCheckParallel runs checks from every core at once.
func BenchmarkCheckParallel(b *testing.B) {
	loadBenchWorld(b)
	ix, checks := benchWorld.ix, benchWorld.checks
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c := &checks[i%len(checks)]
			i += 7
			if _, err := ix.Check(c.User, c.Right, c.Resource); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCheckMany decides 1,000 checks per call at one revision, as
// BatchCheck does.
func BenchmarkCheckMany(b *testing.B) {
	loadBenchWorld(b)
	ix, checks := benchWorld.ix, benchWorld.checks
	const n = 1000
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := (i * n) % (len(checks) - n)
		if _, errs, _ := ix.CheckMany(checks[off : off+n]); errs != nil {
			b.Fatal(errs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/check")
}

// BenchmarkExplain is Check with the path.
func BenchmarkExplain(b *testing.B) {
	loadBenchWorld(b)
	ix, checks := benchWorld.ix, benchWorld.checks
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := &checks[i%len(checks)]
		if _, err := ix.Explain(c.User, c.Right, c.Resource); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMoveFolder moves a top-level folder, with its whole subtree and
// every member, under its sibling and back: one write each time, in memory
// (no journal), whatever the folder holds.
func BenchmarkMoveFolder(b *testing.B) {
	loadBenchWorld(b)
	ix := benchWorld.ix
	for i := 0; i < b.N; i++ {
		to := benchWorld.under
		if i%2 == 1 {
			to = "t0"
		}
		if _, err := ix.Write(context.Background(), "bench", []graph.Mutation{{MoveFolder: &graph.Move{ID: benchWorld.movable, To: to}}}, graph.Preconditions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCascadeGrants deletes, with cascade, a folder that holds n
// grants (n = 25,000, 50,000, 100,000), in memory: each of its grants
// leaves its holder's list, so the time should grow as n, not n².
func BenchmarkCascadeGrants(b *testing.B) {
	for _, n := range []int{25_000, 50_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				b.StopTimer()
				ix := graphtest.Open(b, graphtest.NewClock(graphtest.Start), nil)
				muts := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "r"}}, {CreateFolder: &graph.Folder{ID: "h", Parent: "r"}}, {CreateFolder: &graph.Folder{ID: "x", Parent: "r"}}}
				if _, err := ix.Write(ctx, "bench", muts, graph.Preconditions{}); err != nil {
					b.Fatal(err)
				}
				muts = nil
				for i := range n {
					muts = append(muts, graph.Mutation{AddGrant: &graph.Grant{ID: fmt.Sprint("g", i), Holder: graph.FolderRef("h"), Target: graph.FolderRef("x"), Rights: []string{"read"}}})
				}
				if _, err := ix.Write(ctx, "bench", muts, graph.Preconditions{}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := ix.Write(ctx, "bench", []graph.Mutation{{DeleteFolder: &graph.Delete{ID: "h", Cascade: true}}}, graph.Preconditions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// churnSeed numbers the churns of BenchmarkWriteWatched, which the
// benchmark framework runs several times on one organisation.
var churnSeed uint64

// BenchmarkWriteWatched measures one churn write (a user moved, a grant or
// lock added or removed; orggen.Churn), in memory, with no user watched and
// with 100 users' access streamed (WatchAccess). The write's own time
// (p50, p99, max) should not depend on the watches, since their work is
// done on the shadow; access-* is the time from the write's call to its
// access changes being handed on, one write at a time (each write waits
// for the one before to be handed on, so nothing queues); copy-µs is how
// long the writer waits for the shadow's copy of the state (its memory
// allocated beforehand), copy-cold-µs the same with nothing allocated.
// It changes the shared organisation, so it runs last.
func BenchmarkWriteWatched(b *testing.B) {
	loadBenchWorld(b)
	ix := benchWorld.ix
	org := orggen.Generate(benchShape(), 0) // the same ids, for the churn
	for _, watchers := range []int{0, 100} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			var focus []string
			var starts []time.Duration // each stream's start (the first may copy the state)
			for i := range watchers {
				u := org.Users[(i*7919)%len(org.Users)]
				t0 := time.Now()
				w, err := ix.WatchAccess(context.Background(), u)
				if err != nil {
					b.Fatal(err)
				}
				starts = append(starts, time.Since(t0))
				defer w.Stop()
				focus = append(focus, u)
			}

			churnSeed++
			churn := orggen.NewChurn(org, focus, churnSeed)
			var lat, acc []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch, undo := churn.Next()
				t0 := time.Now()
				rev, err := ix.Write(context.Background(), "bench", batch, graph.Preconditions{})
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				churn.Committed(undo)
				if watchers > 0 {
					for r := uint64(0); r < rev; r = <-benchWorld.accessed {
					}
					acc = append(acc, time.Since(t0))
				}
			}
			b.StopTimer()
			report := func(prefix string, d []time.Duration) {
				slices.Sort(d)
				b.ReportMetric(float64(d[len(d)/2].Microseconds()), prefix+"p50-µs")
				b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), prefix+"p99-µs")
				b.ReportMetric(float64(d[len(d)-1].Microseconds()), prefix+"max-µs")
			}
			report("", lat)
			if watchers > 0 { // reported last: ResetTimer drops metrics
				report("access-", acc)
				report("start-", starts)
				prepared, cold := graph.TimeCopy(ix)
				b.ReportMetric(float64(prepared.Microseconds()), "copy-µs")
				b.ReportMetric(float64(cold.Microseconds()), "copy-cold-µs")
			}
		})
	}
}

// BenchmarkCheckDuringWrite times checks one by one while the writer
// writes 100,000-mutation batches (CANOPY_BENCH_BULK sets another size), one committed (folders under a new
// parent) and one refused (its last mutation invalid, so all of it is
// applied to the spare and rolled back) in turn, until two of each are
// written, and reports the checks' median, p99 and longest, the longest
// write, and ns/op of checks while the writes go on. It runs last: the
// committed batches grow the shared organisation.
func BenchmarkCheckDuringWrite(b *testing.B) {
	loadBenchWorld(b)
	ix, checks := benchWorld.ix, benchWorld.checks
	size := 100_000
	if s := os.Getenv("CANOPY_BENCH_BULK"); s != "" { // to compare with a build that cannot do 100,000 in reasonable time
		fmt.Sscan(s, &size)
	}
	var batches [][]graph.Mutation
	for k := range 4 {
		batches = append(batches, bigBatch("t0", fmt.Sprintf("bulk-%d-%d", b.N, k), size, k%2 == 1))
	}
	var written atomic.Int32
	var longestWrite atomic.Int64
	stop := make(chan struct{})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			muts := batches[k%len(batches)]
			if k >= len(batches) {
				muts = batches[1] // refused batches can be written again
			}
			t0 := time.Now()
			_, err := ix.Write(context.Background(), "bench", muts, graph.Preconditions{})
			if refused := k%2 == 1 || k >= len(batches); (err != nil) != refused {
				panic(fmt.Sprint("bulk write: ", err))
			}
			longestWrite.Store(max(longestWrite.Load(), int64(time.Since(t0))))
			written.Add(1)
		}
	}()
	var lat []time.Duration
	for i := 0; written.Load() < int32(len(batches)); i++ {
		c := &checks[i%len(checks)]
		t0 := time.Now()
		if _, err := ix.Check(c.User, c.Right, c.Resource); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	checkN(b, ix, checks)
	close(stop)
	<-wrote
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "max-ns")
	b.ReportMetric(float64(len(lat)), "checks-timed")
	b.ReportMetric(time.Duration(longestWrite.Load()).Seconds(), "longest-write-s")
}

// BenchmarkCollect times a full garbage collection with the organisation
// loaded and nothing else running: the mark work the index gives the
// collector each cycle, which checks share the cores with.
func BenchmarkCollect(b *testing.B) {
	loadBenchWorld(b)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		runtime.GC()
	}
	runtime.ReadMemStats(&after)
	n := float64(after.NumGC - before.NumGC)
	b.ReportMetric(float64(after.HeapAlloc)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(after.HeapObjects)/1e6, "heap-Mobjects")
	b.ReportMetric(float64(after.PauseTotalNs-before.PauseTotalNs)/n/1e3, "pause-us")
	runtime.KeepAlive(benchWorld.ix)
}

// BenchmarkSnapshot copies the whole organisation: its records encoded,
// then decoded on every core. Start-up decodes the same records, so this
// is the decode half of start-up without the store.
func BenchmarkSnapshot(b *testing.B) {
	loadBenchWorld(b)
	for b.Loop() {
		if _, err := benchWorld.ix.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreviewMove previews moving a child of a tenant's root, with
// every member below it, under its sibling: the users whose access would
// change, found and compared exactly, on the shadow. It reports the users
// affected and the members of the moved folder.
func BenchmarkPreviewMove(b *testing.B) {
	loadBenchWorld(b)
	ix := benchWorld.ix
	_, _, _, err := ix.ListUsers(benchWorld.movable, true, "", 0)
	if err != nil {
		b.Fatal(err)
	}
	members, _, _, _ := ix.ListUsers(benchWorld.movable, true, "", 0)
	req := graph.PreviewRequest{Actor: "bench", Mutations: []graph.Mutation{{MoveFolder: &graph.Move{ID: benchWorld.movable, To: benchWorld.under}}}}
	if _, err := ix.Preview(context.Background(), req); err != nil { // makes the shadow
		b.Fatal(err)
	}
	b.ResetTimer()
	var p graph.Preview
	for i := 0; i < b.N; i++ {
		if p, err = ix.Preview(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(p.Users), "users-affected")
	b.ReportMetric(float64(len(members)), "members")
}
