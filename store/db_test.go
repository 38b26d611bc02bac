package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/scenario"
	"github.com/canopy-authz/canopy/store"
	"github.com/canopy-authz/canopy/store/storetest"
)

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

// answers is every check the index can be asked about its own entities.
func answers(t *testing.T, ix *graph.Index) []string {
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

// TestRestart writes, closes, reopens, and finds every record, the
// revision and every answer the same.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	clock := graphtest.NewClock(graphtest.Start)
	db, closeDB := storetest.Open(t, dir)
	ix, err := graph.Open(context.Background(), graph.Options{Clock: clock, Journal: db})
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
	want := answers(t, ix)
	ix.Close()
	closeDB()

	db2, _ := storetest.Open(t, dir)
	ix2, err := graph.Open(context.Background(), graph.Options{Clock: clock, Journal: db2})
	if err != nil {
		t.Fatal(err)
	}
	defer ix2.Close()
	after, rev2, _ := ix2.Records()
	if rev2 != rev || !reflect.DeepEqual(before, after) {
		t.Fatalf("after restart: revision %d (want %d), records equal: %v", rev2, rev, reflect.DeepEqual(before, after))
	}
	if got := answers(t, ix2); !reflect.DeepEqual(got, want) {
		t.Fatal("after restart the answers differ")
	}
	if n := len(want); n < 1000 {
		t.Fatalf("only %d answers compared", n)
	}
	// The log has one entry per revision, the bootstrap first.
	log, err := db2.ReadLog(1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(log)) != rev || log[0].Actor != "system" || log[len(log)-1].Revision != rev {
		t.Fatalf("log has %d entries for revision %d", len(log), rev)
	}
}

func TestAppendConflictStoresNothing(t *testing.T) {
	db, _ := storetest.Open(t, "")
	c := graph.Commit{Revision: 1, Time: graphtest.Start, Actor: "a", Records: []graph.Record{{Kind: graph.RecordFolder, ID: "x", Value: []byte(`{"id":"x"}`)}}}
	if err := db.Append(context.Background(), 0, []graph.Commit{c}); err != nil {
		t.Fatal(err)
	}
	c2 := c
	c2.Revision = 2
	c2.Records = []graph.Record{{Kind: graph.RecordFolder, ID: "y", Value: []byte(`{"id":"y"}`)}}
	for _, tc := range []struct {
		base uint64
		c    graph.Commit
	}{{0, c2}, {5, c2}, {1, c}} {
		if err := db.Append(context.Background(), tc.base, []graph.Commit{tc.c}); !errors.Is(err, graph.ErrConflict) {
			t.Fatalf("append base %d revision %d: %v, want a conflict", tc.base, tc.c.Revision, err)
		}
	}
	var ids []string
	rev, err := db.Load(func(r graph.Record) error { ids = append(ids, r.ID); return nil })
	if err != nil || rev != 1 || !reflect.DeepEqual(ids, []string{"x"}) {
		t.Fatalf("after refused appends: revision %d, records %v, %v", rev, ids, err)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	dir := t.TempDir()
	storetest.Open(t, dir)
	start := time.Now()
	_, err := store.Open(dir, store.Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, store.ErrInUse) {
		t.Fatalf("second open: %v, want ErrInUse", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second open took %s", d)
	}
}

// FuzzKeys: any 8 bytes are a revision key that encodes back to itself,
// anything else is refused, and key order is revision order.
func FuzzKeys(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		rev, err := store.ParseRevKey(b)
		if len(b) != 8 {
			if err == nil {
				t.Fatalf("%x: want an error", b)
			}
			return
		}
		if err != nil || string(store.RevKey(rev)) != string(b) {
			t.Fatalf("%x: decoded %d, %v", b, rev, err)
		}
		if rev > 0 && string(store.RevKey(rev-1)) >= string(b) {
			t.Fatalf("keys of %d and %d are not in order", rev-1, rev)
		}
	})
}

// TestExpiryRecordedOnceAcrossRestart: an expiry recorded before a restart
// is not recorded again after it, and one that fell due while the server
// was down is recorded at the next ExpireDue.
func TestExpiryRecordedOnceAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := graphtest.NewClock(graphtest.Start)
	db, closeDB := storetest.Open(t, dir)
	ix := graphtest.Open(t, clock, db)
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
	closeDB()

	clock.Advance(2 * time.Hour)
	db, _ = storetest.Open(t, dir)
	ix = graphtest.Open(t, clock, db)
	rev, n, err := ix.ExpireDue(ctx)
	if n != 1 || err != nil {
		t.Fatalf("after restart: %d recorded, %v; want only late", n, err)
	}
	log, err := db.ReadLog(rev, 1)
	if err != nil || len(log) != 1 || len(log[0].Mutations) != 1 || log[0].Mutations[0].ExpireGrant.ID != "late" || log[0].Actor != graph.SystemActor {
		t.Fatalf("log entry %d: %+v, %v", rev, log, err)
	}
}

// TestOldLogScopes: an entry written before places were kept, with its
// scopes as lists of folders, reads back as places that select the same
// changes.
func TestOldLogScopes(t *testing.T) {
	dir := t.TempDir()
	db, closeDB := storetest.Open(t, dir)
	muts := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "a"}}, {PutRight: &graph.Right{Name: "x"}}}
	if err := db.Append(context.Background(), 0, []graph.Commit{{Revision: 1, Time: time.Unix(1, 0).UTC(), Actor: "old", Mutations: muts}}); err != nil {
		t.Fatal(err)
	}
	closeDB()
	// Rewrite the entry as an old server wrote it.
	old, err := json.Marshal(map[string]any{"revision": 1, "time": time.Unix(1, 0).UTC(), "actor": "old", "mutations": muts, "scopes": [][]string{{"a"}, nil}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bolt.Open(filepath.Join(dir, store.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 8)
	binary.BigEndian.PutUint64(key, 1)
	if err := b.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("log")).Put(key, old) }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	db, _ = storetest.Open(t, dir)
	commits, err := db.ReadLog(1, 1)
	if err != nil || len(commits) != 1 {
		t.Fatalf("read: %v, %v", commits, err)
	}
	c := commits[0]
	inA := func(f string) bool { return f == "a" }
	if !c.InScope(0, inA) || !c.InScope(1, func(string) bool { return false }) || c.InScope(0, func(f string) bool { return f == "b" }) {
		t.Fatalf("old scopes read as %+v / %+v", c.Places, c.Touched)
	}
}
