package graph_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// bigBatch returns a batch creating folder parent under root and n-1
// children under it; with refused set, its last mutation names a parent
// that does not exist, so the whole batch is refused after the others are
// applied.
func bigBatch(root, parent string, n int, refused bool) []graph.Mutation {
	muts := []graph.Mutation{{CreateFolder: &graph.Folder{ID: parent, Parent: root}}}
	for i := 1; i < n; i++ {
		muts = append(muts, graph.Mutation{CreateFolder: &graph.Folder{ID: fmt.Sprintf("%s-%d", parent, i), Parent: parent}})
	}
	if refused {
		muts[n-1].CreateFolder.Parent = "nowhere"
	}
	return muts
}

// TestReadersSeeWholeLargeBatches: readers run while large batches are
// committed and refused. Each sees a batch whole or not at all (a
// parent's children are all there or the parent is not), never a refused
// batch, and never a revision going back.
func TestReadersSeeWholeLargeBatches(t *testing.T) {
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), &memJournal{})
	ctx := context.Background()
	if _, err := ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "root"}}}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	const batches, size = 12, 5000
	var written atomic.Int32 // batches the writer has finished, committed or refused
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	var reads atomic.Int64
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				default:
				}
				b := k % batches
				fs, _, rev, err := ix.ListFolders(fmt.Sprint("b", b), false, "", 0)
				reads.Add(1)
				if rev < last {
					errs <- fmt.Errorf("the revision went back from %d to %d", last, rev)
					return
				}
				last = rev
				switch {
				case errors.Is(err, graph.ErrNotFound):
				case err != nil:
					errs <- err
					return
				case b%2 == 1:
					errs <- fmt.Errorf("refused batch %d seen at revision %d", b, rev)
					return
				case len(fs) != size-1:
					errs <- fmt.Errorf("batch %d seen torn at revision %d: %d of %d children", b, rev, len(fs), size-1)
					return
				}
			}
		}()
	}
	for b := range batches {
		_, err := ix.Write(ctx, "t", bigBatch("root", fmt.Sprint("b", b), size, b%2 == 1), graph.Preconditions{})
		if (err == nil) != (b%2 == 0) {
			t.Fatalf("batch %d: %v", b, err)
		}
		written.Add(1)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d reads through %d batches of %d, half of them refused", reads.Load(), batches, size)
}

// TestChecksDoNotWaitForLargeWrites: the longest a check takes while a
// large batch is written, committed or refused, is a small part of the
// time the write takes (a ratio in one run, not an absolute time): checks
// run on the published side while the writer works on the other.
func TestChecksDoNotWaitForLargeWrites(t *testing.T) {
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), &memJournal{})
	ctx := context.Background()
	if _, err := ix.Write(ctx, "t", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "root"}},
		{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "root"}},
		{AddGrant: &graph.Grant{ID: "g", Holder: graph.UserRef("u"), Target: graph.FolderRef("root"), Rights: []string{"read"}}},
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	for _, refused := range []bool{false, true} {
		stop := make(chan struct{})
		longest := make(chan time.Duration)
		go func() {
			var worst time.Duration
			for {
				select {
				case <-stop:
					longest <- worst
					return
				default:
				}
				start := time.Now()
				if d, err := ix.Check("u", "read", graph.FolderRef("root")); err != nil || !d.Allowed {
					panic(fmt.Sprint("check: ", d, err))
				}
				worst = max(worst, time.Since(start))
			}
		}()
		start := time.Now()
		_, err := ix.Write(ctx, "t", bigBatch("root", fmt.Sprint("big-", refused), 20_000, refused), graph.Preconditions{})
		took := time.Since(start)
		close(stop)
		worst := <-longest
		if (err == nil) == refused {
			t.Fatalf("refused=%v: %v", refused, err)
		}
		t.Logf("a write of 20,000 (refused: %v) took %v; the longest check meanwhile %v", refused, took, worst)
		if worst > took/4 {
			t.Fatalf("a check waited %v during a write of %v (refused: %v): checks wait for the writer", worst, took, refused)
		}
	}
}
