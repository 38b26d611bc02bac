package graph_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// memJournal is an in-memory graph.Journal that keeps every commit, so the
// test can replay the committed history.
type memJournal struct {
	mu      sync.Mutex // guards commits and groups
	commits []graph.Commit
	groups  int
}

func (j *memJournal) Load(func(graph.Record) error) (uint64, error) { return 0, nil }

func (j *memJournal) Append(_ context.Context, base uint64, cs []graph.Commit) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if uint64(len(j.commits)) != base {
		return fmt.Errorf("append at %d, journal at %d: %w", base, len(j.commits), graph.ErrConflict)
	}
	j.commits = append(j.commits, cs...)
	j.groups++
	return nil
}

// TestConcurrentWritesAndReads runs writers and readers together. Each
// batch creates a pair of users; a reader must see both or neither. Some
// batches are refused (duplicate ids). At the end the reference, replaying
// the journal in revision order, must hold exactly what the index holds,
// and every acknowledged revision must be distinct.
func TestConcurrentWritesAndReads(t *testing.T) {
	j := &memJournal{}
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), j)
	if _, err := ix.Write(context.Background(), "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "root"}}}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	const writers, perWriter = 8, 60
	var revs sync.Map
	var refused atomic.Int64
	done := make(chan struct{})
	var readers sync.WaitGroup
	var torn atomic.Int64
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				for w := 0; w < writers; w++ {
					for n := 0; n < perWriter; n += 7 {
						reqs := []graph.CheckRequest{
							{User: fmt.Sprintf("a%d-%d", w, n), Right: "read", Resource: graph.FolderRef("root")},
							{User: fmt.Sprintf("b%d-%d", w, n), Right: "read", Resource: graph.FolderRef("root")},
						}
						ds, errs, _ := ix.CheckMany(reqs)
						if errs != nil {
							t.Error(errs)
							return
						}
						if (ds[0].Reason == graph.ReasonUnknownUser) != (ds[1].Reason == graph.ReasonUnknownUser) {
							torn.Add(1)
						}
					}
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perWriter; n++ {
				id := n
				if n%10 == 9 {
					id = n - 1 // a duplicate: the whole batch is refused
				}
				batch := []graph.Mutation{
					{CreateUser: &graph.User{ID: fmt.Sprintf("a%d-%d", w, id), Class: "staff", Home: "root"}},
					{CreateUser: &graph.User{ID: fmt.Sprintf("b%d-%d", w, id), Class: "staff", Home: "root"}},
					{AddGrant: &graph.Grant{ID: fmt.Sprintf("g%d-%d", w, id), Holder: graph.UserRef(fmt.Sprintf("a%d-%d", w, id)), Target: graph.FolderRef("root"), Rights: []string{"read"}}},
				}
				rev, err := ix.Write(context.Background(), "t", batch, graph.Preconditions{})
				if err != nil {
					refused.Add(1)
					continue
				}
				if _, dup := revs.LoadOrStore(rev, true); dup {
					t.Errorf("revision %d acknowledged twice", rev)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if torn.Load() > 0 {
		t.Fatalf("readers saw %d half-applied batches", torn.Load())
	}
	if want := int64(writers * perWriter / 10); refused.Load() != want {
		t.Fatalf("%d batches refused, want %d", refused.Load(), want)
	}
	ref := newRef()
	for _, c := range j.commits {
		var err error
		if ref, err = ref.write(c.Mutations, graphtest.Start); err != nil {
			t.Fatalf("reference refuses committed revision %d", c.Revision)
		}
	}
	if d := sameState(modelOf(t, ix), ref); d != "" {
		t.Fatal(d)
	}
	if uint64(len(j.commits)) != ix.Revision() {
		t.Fatalf("journal holds %d commits, index at revision %d", len(j.commits), ix.Revision())
	}
	t.Logf("%d commits in %d groups", len(j.commits), j.groups)
}
