package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/store"
	"github.com/canopy-authz/canopy/store/storetest"
)

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
