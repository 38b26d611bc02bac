package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// FuzzWrite feeds arbitrary batches (as change-log JSON) to an index
// holding the refusal world and to the reference: they must agree on
// refusing, and on the whole state after; a refused batch changes nothing.
// Seeded from the refusal table and the scenario files' shape.
func FuzzWrite(f *testing.F) {
	seeds := [][]graph.Mutation{
		{{CreateFolder: &graph.Folder{ID: "x", Parent: "a", Labels: map[string]string{"k": "v"}}}},
		{{MoveFolder: &graph.Move{ID: "a11", To: "adm"}}},
		{{DeleteFolder: &graph.Delete{ID: "a1", Cascade: true}}},
		{{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "a1", Extras: []string{"b1"}}}},
		{{AddGrant: &graph.Grant{ID: "g", Holder: graph.FolderRef("a1"), Target: graph.UserRef("c"), Rights: []string{"edit"}}}},
		{{AddLock: &graph.Lock{ID: "l", Target: graph.UserRef("c")}}, {DeleteUser: &graph.Delete{ID: "c", Cascade: true}}},
		{{PutRight: &graph.Right{Name: "x", Implies: []string{"edit"}}}, {SetSelfRights: &graph.SelfRights{Rights: []string{"x"}}}},
		{{SetRule: &graph.PlacementRule{Folder: "a1", Classes: []string{"candidate"}}}, {RemoveRule: &graph.Delete{ID: "adm"}}},
		{{CreateFolder: &graph.Folder{ID: "caf\u00e9", Parent: "a"}}, {CreateUser: &graph.User{ID: "cafe\u0301", Class: "staff", Home: "a"}}},
		{{AddLock: &graph.Lock{ID: "l\u200b", Target: graph.UserRef("c")}}},
	}
	for _, s := range seeds {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var batch []graph.Mutation
		if json.Unmarshal(data, &batch) != nil || len(batch) == 0 {
			return
		}
		for _, m := range batch {
			if g := m.AddGrant; g != nil && !g.ExpiresAt.IsZero() {
				return // the clock's rule is covered elsewhere
			}
		}
		ix := refusalWorld(t)
		ref := modelOf(t, ix)
		// Two users' access is followed, so the write is also replayed,
		// undone and redone on the shadow copy.
		ctx := context.Background()
		for _, u := range []string{"s", "c"} {
			w, err := ix.WatchAccess(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
		}
		before, rev, _ := ix.Records()
		_, err := ix.Write(ctx, "fuzz", batch, graph.Preconditions{})
		next, refErr := ref.write(batch, graphtest.Start)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("index error %v, reference error %v, batch %s", err, refErr, data)
		}
		if err != nil {
			after, rev2, _ := ix.Records()
			if rev2 != rev || len(after) != len(before) {
				t.Fatalf("refused batch changed the index")
			}
			return
		}
		if d := sameState(modelOf(t, ix), next); d != "" {
			t.Fatalf("batch %s: %s", data, d)
		}
		// A watch starts once the shadow has caught up with the index.
		if w, err := ix.WatchAccess(ctx, "s"); err == nil {
			w.Stop()
		} else if !errors.Is(err, graph.ErrNotFound) {
			t.Fatal(err)
		}
		want, wantRev, _ := ix.Records()
		if got, gotRev := graph.ShadowRecords(ix); gotRev != wantRev || !reflect.DeepEqual(got, want) {
			t.Fatalf("batch %s: the shadow at revision %d differs from the index at %d", data, gotRev, wantRev)
		}
	})
}

// memRecords is a journal that hands out fixed records at start.
type memRecords struct {
	recs []graph.Record
	rev  uint64
}

func (j memRecords) Load(fn func(graph.Record) error) (uint64, error) {
	for _, r := range j.recs {
		if err := fn(r); err != nil {
			return 0, err
		}
	}
	return j.rev, nil
}

func (memRecords) Append(context.Context, uint64, []graph.Commit) error { return nil }

// FuzzRestore loads arbitrary records at start, beside a valid set: the
// index either loads them or says why, and never panics.
func FuzzRestore(f *testing.F) {
	f.Add("folder", "x", []byte(`{"id":"x","parent":"a"}`))
	f.Add("user", "u", []byte(`{"id":"u","class":"staff","state":"active","home":"a1"}`))
	f.Add("grant", "g", []byte(`{"id":"g","holder":{"kind":"user","id":"c"},"rights":["read"]}`))
	f.Add("right", "r", []byte(`{"name":"r","implies":["r"]}`))
	f.Add("rule", "a", []byte(`{"folder":"a","classes":[]}`))
	f.Add("folder", "a", []byte(`{"id":"a","parent":"a11"}`))
	f.Add("lock", "l", []byte(`{"id":"l","target":{"kind":"folder","id":"nope"}}`))
	f.Fuzz(func(t *testing.T, kind, id string, value []byte) {
		base, rev, _ := refusalWorld(t).Records()
		recs := append(base, graph.Record{Kind: graph.RecordKind(kind), ID: id, Value: value})
		ix, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(graphtest.Start), Journal: memRecords{recs, rev}})
		if err == nil {
			ix.Close()
		}
	})
}
