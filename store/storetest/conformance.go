package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/scenario"
)

// Store is what every Canopy store offers: the journal the index writes
// to and loads from, and the change log the server reads.
type Store interface {
	graph.Journal
	ReadLog(from uint64, max int) ([]graph.Commit, error)
	Revision() (uint64, error)
	OldestRevision() (uint64, error)
}

// Backend makes an empty store for one test and returns how to open it:
// open returns a handle on that same store and a function that closes
// the handle. A test closes one handle before it opens the next, which
// is how a restart is tested.
type Backend func(t *testing.T) (open func(t *testing.T) (Store, func()))

// Run holds a backend to the contract every store keeps, the same tests
// for every backend.
func Run(t *testing.T, b Backend) {
	t.Run("AppendConflictStoresNothing", func(t *testing.T) { appendConflictStoresNothing(t, b(t)) })
	t.Run("LogKeepsCommits", func(t *testing.T) { logKeepsCommits(t, b(t)) })
	t.Run("Restart", func(t *testing.T) { restart(t, b(t)) })
	t.Run("ExpiryRecordedOnceAcrossRestart", func(t *testing.T) { expiryOnce(t, b(t)) })
}

// FolderCommit is a commit at revision rev creating a folder for each id,
// with its records.
func FolderCommit(rev uint64, ids ...string) graph.Commit {
	c := graph.Commit{Revision: rev, Time: graphtest.Start.Add(time.Duration(rev) * time.Second), Actor: "a"}
	for _, id := range ids {
		c.Mutations = append(c.Mutations, graph.Mutation{CreateFolder: &graph.Folder{ID: id}})
		c.Records = append(c.Records, graph.Record{Kind: graph.RecordFolder, ID: id, Value: []byte(`{"id":"` + id + `"}`)})
	}
	return c
}

// appendConflictStoresNothing: an append after a revision the store is
// not at is refused with graph.ErrConflict and changes nothing.
func appendConflictStoresNothing(t *testing.T, open func(*testing.T) (Store, func())) {
	s, _ := open(t)
	ctx := context.Background()
	if err := s.Append(ctx, 0, []graph.Commit{FolderCommit(1, "x")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		base uint64
		c    graph.Commit
	}{{0, FolderCommit(1, "y")}, {5, FolderCommit(6, "y")}, {1, FolderCommit(1, "y")}, {1, FolderCommit(3, "y")}} {
		if err := s.Append(ctx, tc.base, []graph.Commit{tc.c}); !errors.Is(err, graph.ErrConflict) {
			t.Fatalf("append base %d revision %d: %v, want a conflict", tc.base, tc.c.Revision, err)
		}
	}
	if rev, err := s.Revision(); rev != 1 || err != nil {
		t.Fatalf("revision after refused appends: %d, %v", rev, err)
	}
	log, err := s.ReadLog(1, 100)
	if err != nil || len(log) != 1 || log[0].Mutations[0].CreateFolder.ID != "x" {
		t.Fatalf("log after refused appends: %+v, %v", log, err)
	}
}

// logKeepsCommits: the log gives back every commit as appended, but its
// records, from any revision and in pages; a large commit too.
func logKeepsCommits(t *testing.T, open func(*testing.T) (Store, func())) {
	s, _ := open(t)
	ctx := context.Background()
	if oldest, err := s.OldestRevision(); oldest != 1 || err != nil {
		t.Fatalf("oldest revision of an empty log: %d, %v", oldest, err)
	}
	var want []graph.Commit
	rev := uint64(0)
	for g, size := range []int{1, 5000, 3} {
		var group []graph.Commit
		for range 2 {
			var ids []string
			for i := range size {
				ids = append(ids, fmt.Sprintf("g%d-r%d-%d", g, rev+uint64(len(group))+1, i))
			}
			c := FolderCommit(rev+uint64(len(group))+1, ids...)
			c.Places = []graph.Place{{ID: ids[0], Parent: -1}}
			c.Touched = make([][]int32, len(ids))
			c.Touched[0] = []int32{0}
			group = append(group, c)
		}
		if err := s.Append(ctx, rev, group); err != nil {
			t.Fatal(err)
		}
		rev += uint64(len(group))
		for _, c := range group {
			c.Records = nil
			want = append(want, c)
		}
	}
	if got, err := s.Revision(); got != rev || err != nil {
		t.Fatalf("revision %d, %v; want %d", got, err, rev)
	}
	for from := uint64(1); from <= rev; from++ {
		got, err := s.ReadLog(from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want[from-1:]) {
			t.Fatalf("from %d: read %d commits, want %d, or they differ", from, len(got), len(want[from-1:]))
		}
	}
	if got, _ := s.ReadLog(2, 3); len(got) != 3 || got[0].Revision != 2 || got[2].Revision != 4 {
		t.Fatalf("a page of 3 from 2: %d commits", len(got))
	}
	if got, _ := s.ReadLog(rev+1, 10); len(got) != 0 {
		t.Fatalf("past the head: %d commits", len(got))
	}
}

// loadExamples writes every example scenario's batches into ix, in its own
// organisations, skipping the batches the scenario expects refused.
func loadExamples(t *testing.T, ix *graph.Index) {
	t.Helper()
	for _, name := range scenario.Examples() {
		f, err := scenario.Example(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, step := range f.Steps {
			if len(step.Write) == 0 || step.Error != "" {
				continue
			}
			if _, err := ix.Write(context.Background(), "test", step.Write, graph.Preconditions{}); err != nil {
				t.Fatalf("%s step %d: %v", name, i, err)
			}
		}
	}
}

// Answers is every check the index can be asked about its own entities,
// each with its revision and reason.
func Answers(t *testing.T, ix *graph.Index) []string {
	t.Helper()
	recs, rev, err := ix.Records()
	if err != nil {
		t.Fatal(err)
	}
	var users, rights []string
	var res []graph.Ref
	for _, r := range recs {
		switch r.Kind {
		case graph.RecordUser:
			users = append(users, r.ID)
			res = append(res, graph.UserRef(r.ID))
		case graph.RecordFolder:
			res = append(res, graph.FolderRef(r.ID))
		case graph.RecordRight:
			rights = append(rights, r.ID)
		}
	}
	res = append(res, graph.Ref{})
	var out []string
	for _, u := range users {
		for _, r := range rights {
			for _, x := range res {
				d, err := ix.Check(u, r, x)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, fmt.Sprintf("%d %s %s %v %s", rev, u, r, x, d.Reason))
			}
		}
	}
	return out
}

// restart writes, closes, reopens, and finds every record, the revision
// and every answer the same, and the log one entry per revision.
func restart(t *testing.T, open func(*testing.T) (Store, func())) {
	clock := graphtest.NewClock(graphtest.Start)
	s, closeS := open(t)
	ix, err := graph.Open(context.Background(), graph.Options{Clock: clock, Journal: s})
	if err != nil {
		t.Fatal(err)
	}
	loadExamples(t, ix)
	// Moves, cascades and removals, whose records are deletions and rewrites.
	muts := [][]graph.Mutation{
		{{MoveFolder: &graph.Move{ID: "it3", To: "it1"}}},
		{{DeleteFolder: &graph.Delete{ID: "it2", Cascade: true}}},
		{{RemoveLock: &graph.Delete{ID: "qa-lea"}}, {SetRule: &graph.PlacementRule{Folder: "candidates", Classes: []string{"candidate"}}}},
		{{PutRight: &graph.Right{Name: "view_reports", Implies: []string{"read"}}}, {SetSelfRights: &graph.SelfRights{Rights: []string{"read", "view_reports"}}}},
	}
	for _, m := range muts {
		if _, err := ix.Write(context.Background(), "test", m, graph.Preconditions{}); err != nil {
			t.Fatal(err)
		}
	}
	before, rev, _ := ix.Records()
	want := Answers(t, ix)
	ix.Close()
	closeS()

	s2, _ := open(t)
	ix2, err := graph.Open(context.Background(), graph.Options{Clock: clock, Journal: s2})
	if err != nil {
		t.Fatal(err)
	}
	defer ix2.Close()
	after, rev2, _ := ix2.Records()
	if rev2 != rev || !reflect.DeepEqual(before, after) {
		t.Fatalf("after restart: revision %d (want %d), records equal: %v", rev2, rev, reflect.DeepEqual(before, after))
	}
	if got := Answers(t, ix2); !reflect.DeepEqual(got, want) {
		t.Fatal("after restart the answers differ")
	}
	if n := len(want); n < 1000 {
		t.Fatalf("only %d answers compared", n)
	}
	log, err := s2.ReadLog(1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(log)) != rev || log[0].Actor != "system" || log[len(log)-1].Revision != rev {
		t.Fatalf("log has %d entries for revision %d", len(log), rev)
	}
}

// expiryOnce: an expiry recorded before a restart is not recorded again
// after it, and one that fell due while the server was down is recorded
// at the next ExpireDue.
func expiryOnce(t *testing.T, open func(*testing.T) (Store, func())) {
	ctx := context.Background()
	clock := graphtest.NewClock(graphtest.Start)
	s, closeS := open(t)
	ix := graphtest.Open(t, clock, s)
	grant := func(id string, d time.Duration) graph.Mutation {
		return graph.Mutation{AddGrant: &graph.Grant{ID: id, Holder: graph.UserRef("u"), Rights: []string{"read"}, ExpiresAt: graphtest.Start.Add(d)}}
	}
	if _, err := ix.Write(ctx, "test", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "o"}},
		{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "o"}},
		grant("early", time.Hour), grant("late", 3*time.Hour),
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if _, n, err := ix.ExpireDue(ctx); n != 1 || err != nil {
		t.Fatalf("before restart: %d recorded, %v; want 1", n, err)
	}
	ix.Close()
	closeS()

	clock.Advance(2 * time.Hour)
	s, _ = open(t)
	ix = graphtest.Open(t, clock, s)
	rev, n, err := ix.ExpireDue(ctx)
	if n != 1 || err != nil {
		t.Fatalf("after restart: %d recorded, %v; want only late", n, err)
	}
	log, err := s.ReadLog(rev, 1)
	if err != nil || len(log) != 1 || len(log[0].Mutations) != 1 || log[0].Mutations[0].ExpireGrant.ID != "late" || log[0].Actor != graph.SystemActor {
		t.Fatalf("log entry %d: %+v, %v", rev, log, err)
	}
}
