package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/store"
	"github.com/canopy-authz/canopy/store/etcdstore"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
)

// refTrailEntry is one primitive mutation of the reference's audit trail.
type refTrailEntry struct {
	mark     graph.HistoryMark
	time     time.Time
	actor    string
	actedFor string
	mutation []byte // JSON
	subjects []graph.Object
	orgs     []string // nil: the whole service
}

// refSubjects says what primitive mu touches, read from m before it is
// applied, as DESIGN.md section 5 and graph/history.go define it, and
// which organisations it is in: the roots of the folders it names and of
// the placements of the users it names, before and after.
func refSubjects(m *refModel, mu graph.Mutation) ([]graph.Object, func(before, after *refModel) []string) {
	var out []graph.Object
	add := func(k graph.RecordKind, id string) {
		o := graph.Object{Kind: k, ID: id}
		if id != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	ref := func(r graph.Ref) {
		switch r.Kind {
		case graph.KindFolder:
			add(graph.RecordFolder, r.ID)
		case graph.KindUser:
			add(graph.RecordUser, r.ID)
		}
	}
	user := func(u graph.User) {
		add(graph.RecordUser, u.ID)
		add(graph.RecordFolder, u.Home)
		for _, e := range u.Extras {
			add(graph.RecordFolder, e)
		}
	}
	grant := func(g graph.Grant) {
		add(graph.RecordGrant, g.ID)
		ref(g.Holder)
		ref(g.Target)
	}
	whole := false
	switch {
	case mu.CreateFolder != nil:
		add(graph.RecordFolder, mu.CreateFolder.ID)
		add(graph.RecordFolder, mu.CreateFolder.Parent)
	case mu.RenameFolder != nil:
		add(graph.RecordFolder, mu.RenameFolder.ID)
	case mu.RelabelFolder != nil:
		add(graph.RecordFolder, mu.RelabelFolder.ID)
	case mu.MoveFolder != nil:
		add(graph.RecordFolder, mu.MoveFolder.ID)
		add(graph.RecordFolder, m.folders[mu.MoveFolder.ID].Parent)
		add(graph.RecordFolder, mu.MoveFolder.To)
	case mu.DeleteFolder != nil:
		add(graph.RecordFolder, mu.DeleteFolder.ID)
		add(graph.RecordFolder, m.folders[mu.DeleteFolder.ID].Parent)
	case mu.CreateUser != nil:
		user(*mu.CreateUser)
	case mu.UpdateUser != nil:
		add(graph.RecordUser, mu.UpdateUser.ID)
	case mu.MoveUser != nil:
		add(graph.RecordUser, mu.MoveUser.ID)
		add(graph.RecordFolder, m.users[mu.MoveUser.ID].Home)
		add(graph.RecordFolder, mu.MoveUser.To)
	case mu.SetUserState != nil:
		add(graph.RecordUser, mu.SetUserState.ID)
	case mu.DeleteUser != nil:
		user(m.users[mu.DeleteUser.ID])
	case mu.AddExtraGroup != nil:
		add(graph.RecordUser, mu.AddExtraGroup.User)
		add(graph.RecordFolder, mu.AddExtraGroup.Folder)
	case mu.DelExtraGroup != nil:
		add(graph.RecordUser, mu.DelExtraGroup.User)
		add(graph.RecordFolder, mu.DelExtraGroup.Folder)
	case mu.AddGrant != nil:
		grant(*mu.AddGrant)
	case mu.RemoveGrant != nil:
		grant(m.grants[mu.RemoveGrant.ID])
	case mu.ExpireGrant != nil:
		grant(m.grants[mu.ExpireGrant.ID])
	case mu.StartGrant != nil:
		grant(m.grants[mu.StartGrant.ID])
	case mu.AddLock != nil:
		add(graph.RecordLock, mu.AddLock.ID)
		ref(mu.AddLock.Target)
	case mu.RemoveLock != nil:
		add(graph.RecordLock, mu.RemoveLock.ID)
		ref(m.locks[mu.RemoveLock.ID].Target)
	case mu.SetRule != nil:
		add(graph.RecordFolder, mu.SetRule.Folder)
	case mu.RemoveRule != nil:
		add(graph.RecordFolder, mu.RemoveRule.ID)
	case mu.PutRight != nil:
		add(graph.RecordRight, mu.PutRight.Name)
		whole = true
	case mu.DeleteRight != nil:
		add(graph.RecordRight, mu.DeleteRight.ID)
		whole = true
	default:
		whole = true // the self rights
	}
	orgs := func(before, after *refModel) []string {
		if whole {
			return nil
		}
		set := map[string]bool{}
		for _, w := range []*refModel{before, after} {
			for _, o := range out {
				switch o.Kind {
				case graph.RecordFolder:
					if _, ok := w.folders[o.ID]; ok {
						set[w.root(o.ID)] = true
					}
				case graph.RecordUser:
					if u, ok := w.users[o.ID]; ok {
						set[w.root(u.Home)] = true
						for _, e := range u.Extras {
							set[w.root(e)] = true
						}
					}
				}
			}
		}
		return keys(set)
	}
	return out, orgs
}

// refTrail replays the commits from an empty world in the reference and
// returns every primitive mutation with what it touched, oldest first.
func refTrail(t *testing.T, commits []graph.Commit) []refTrailEntry {
	t.Helper()
	m := newRef()
	m.rights, m.self = map[string][]string{}, nil // before the bootstrap
	var out []refTrailEntry
	for _, c := range commits {
		for i, mu := range c.Mutations {
			subjects, orgs := refSubjects(m, mu)
			before := m.clone()
			if err := m.apply(mu); err != nil {
				t.Fatalf("revision %d: the reference refuses committed mutation %d, %v: %v", c.Revision, i, mu, err)
			}
			b, _ := json.Marshal(mu)
			out = append(out, refTrailEntry{mark: graph.HistoryMark{Revision: c.Revision, Index: i}, time: c.Time, actor: c.Actor, actedFor: c.ActedFor,
				mutation: b, subjects: subjects, orgs: orgs(before, m)})
		}
	}
	return out
}

// selects reports whether the reference's entry e answers q, as a plain
// filter over the whole trail.
func (e *refTrailEntry) selects(q graph.HistoryQuery) bool {
	switch {
	case !q.Object.IsZero() && !slices.Contains(e.subjects, q.Object),
		q.Actor != "" && e.actor != q.Actor,
		q.ActedFor != "" && e.actedFor != q.ActedFor,
		q.From > 0 && e.mark.Revision < q.From,
		q.To > 0 && e.mark.Revision > q.To,
		!q.Since.IsZero() && e.time.Before(q.Since),
		!q.Until.IsZero() && !e.time.Before(q.Until):
		return false
	}
	if q.Orgs != nil && e.orgs != nil {
		return slices.ContainsFunc(e.orgs, func(o string) bool { return q.Orgs[o] })
	}
	return true
}

// TestHistoryAgreesWithTheReference: on random organisations after random
// writes (by several actors, some on behalf of a user, with grants that
// start and expire as the clock moves), every history query, by object,
// actor, acted-for user, revisions, times and organisations, read page by
// page, gives exactly the entries the reference selects from the whole
// trail, newest first; and after the trail is compacted by age, exactly
// those of them committed within the age.
func TestHistoryAgreesWithTheReference(t *testing.T) {
	testHistory(t, propertyCases(t, 20), func(t *testing.T, seed uint64) trailStore {
		db, err := store.Open(t.TempDir(), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return trailStore{journal: db, history: db.History, compact: db.CompactAudit}
	})
}

// TestHistoryOverEtcd is TestHistoryAgreesWithTheReference with the
// second store, over a real etcd: its trail built from the log at random
// moments, so that queries read the trail, the log after it, or both.
func TestHistoryOverEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd")
	}
	c := etcdtest.Start(t, 1)
	testHistory(t, propertyCases(t, 10), func(t *testing.T, seed uint64) trailStore {
		s, err := etcdstore.Open(context.Background(), c.Client(t), etcdstore.Options{Prefix: fmt.Sprintf("/history/%d/", seed)})
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(seed, 7))
		history := func(ctx context.Context, q graph.HistoryQuery) (graph.HistoryPage, error) {
			if r.IntN(3) == 0 {
				if _, err := s.IndexAudit(ctx); err != nil {
					return graph.HistoryPage{}, err
				}
			}
			return s.History(ctx, q)
		}
		compact := func(now time.Time, age time.Duration) (int, error) {
			if _, err := s.IndexAudit(context.Background()); err != nil {
				return 0, err
			}
			return s.CompactAudit(context.Background(), now, age)
		}
		return trailStore{journal: s, history: history, compact: compact}
	})
}

// trailStore is a store with an audit trail, as the test uses it.
type trailStore struct {
	journal graph.Journal
	history func(context.Context, graph.HistoryQuery) (graph.HistoryPage, error)
	compact func(now time.Time, age time.Duration) (int, error)
}

// testHistory runs the cases of TestHistoryAgreesWithTheReference over
// the stores open makes.
func testHistory(t *testing.T, cases int, open func(t *testing.T, seed uint64) trailStore) {
	var queries, entries, emptyQueries, compacted int
	for i := 0; i < cases; i++ {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newGen(seed)
			g.now = graphtest.Start
			clock := graphtest.NewClock(g.now)
			db := open(t, seed)
			log := newCommitLog()
			ix := openWith(t, graph.Options{Clock: clock, Journal: db.journal, OnCommit: log.publish})
			g.m = newRef()
			g.build(t, ix)
			ctx := context.Background()
			actors := []string{"admin-console", "importer", "ops"}
			for step := 0; step < 40; step++ {
				if g.r.IntN(6) == 0 {
					d := time.Duration(1+g.r.IntN(40)) * time.Hour
					clock.Advance(d)
					g.now = g.now.Add(d)
				}
				if g.r.IntN(4) == 0 {
					expireDue(t, ix, g.m, g.now)
				}
				batch := g.batch()
				actor := actors[g.r.IntN(len(actors))]
				var err error
				if g.r.IntN(3) == 0 {
					_, err = ix.WriteAs(ctx, actor, g.user(), batch, graph.Preconditions{})
				} else {
					_, err = ix.Write(ctx, actor, batch, graph.Preconditions{})
				}
				if err == nil {
					g.m = mustWrite(t, g.m, batch, g.now)
				}
			}
			trail := refTrail(t, log.waitFor(t, ix.Revision()))
			if d := sameState(modelOf(t, ix), g.m); d != "" {
				t.Fatalf("the index is not the reference: %s", d)
			}
			ask := func(q graph.HistoryQuery) {
				t.Helper()
				var want []refTrailEntry
				for k := len(trail) - 1; k >= 0; k-- {
					if trail[k].selects(q) {
						want = append(want, trail[k])
					}
				}
				var got []graph.HistoryEntry
				for pages := 0; ; pages++ {
					p, err := db.history(ctx, q)
					if err != nil {
						t.Fatalf("%+v: %v", q, err)
					}
					if len(p.Entries) > q.Limit || p.More && len(p.Entries) < q.Limit || pages > len(trail) {
						t.Fatalf("%+v: a page of %d entries, more %v", q, len(p.Entries), p.More)
					}
					got = append(got, p.Entries...)
					if !p.More {
						break
					}
					q.Before = p.Entries[len(p.Entries)-1].HistoryMark
				}
				if len(got) != len(want) {
					t.Fatalf("%+v: %d entries, the reference %d", q, len(got), len(want))
				}
				for k, e := range got {
					w := want[k]
					b, _ := json.Marshal(e.Mutation)
					if e.HistoryMark != w.mark || !e.Time.Equal(w.time) || e.Actor != w.actor || e.ActedFor != w.actedFor || string(b) != string(w.mutation) {
						t.Fatalf("%+v: entry %d is %v %v %s %s %s; the reference's %v %v %s %s %s", q, k,
							e.HistoryMark, e.Time, e.Actor, e.ActedFor, b, w.mark, w.time, w.actor, w.actedFor, w.mutation)
					}
				}
				queries++
				entries += len(got)
				if len(got) == 0 {
					emptyQueries++
				}
			}
			// Every object the trail names, and one it never did.
			objects := []graph.Object{{Kind: graph.RecordUser, ID: "nobody"}}
			for _, e := range trail {
				for _, o := range e.subjects {
					if !slices.Contains(objects, o) {
						objects = append(objects, o)
					}
				}
			}
			head := ix.Revision()
			query := func() graph.HistoryQuery {
				q := graph.HistoryQuery{Limit: 1 + g.r.IntN(7)}
				switch g.r.IntN(4) {
				case 0, 1:
					q.Object = objects[g.r.IntN(len(objects))]
				case 2:
					q.Actor = actors[g.r.IntN(len(actors))]
				}
				if g.r.IntN(4) == 0 {
					q.ActedFor = g.user()
				}
				if g.r.IntN(4) == 0 {
					q.Actor = []string{"system", "build", actors[0]}[g.r.IntN(3)]
				}
				if g.r.IntN(3) == 0 {
					q.From = 1 + g.r.Uint64N(head)
				}
				if g.r.IntN(3) == 0 {
					q.To = 1 + g.r.Uint64N(head)
				}
				if g.r.IntN(4) == 0 {
					q.Since = g.now.Add(-time.Duration(g.r.IntN(100)) * time.Hour)
				}
				if g.r.IntN(4) == 0 {
					q.Until = g.now.Add(-time.Duration(g.r.IntN(100)) * time.Hour)
				}
				if g.r.IntN(3) == 0 {
					q.Orgs = graph.OrgsOf([]string{"a", "b"}[g.r.IntN(2)])
				}
				return q
			}
			for _, o := range objects {
				ask(graph.HistoryQuery{Object: o, Limit: 3})
			}
			for _, a := range append(actors, "system", "build") {
				ask(graph.HistoryQuery{Actor: a, Limit: 5})
			}
			ask(graph.HistoryQuery{Limit: 10})
			for range 100 {
				ask(query())
			}
			// Compacted by age, the trail keeps what is younger.
			age := time.Duration(1+g.r.IntN(60)) * time.Hour
			n, err := db.compact(g.now, age)
			if err != nil {
				t.Fatal(err)
			}
			cut := g.now.Add(-age)
			kept := trail[:0:0]
			for _, e := range trail {
				if !e.time.Before(cut) {
					kept = append(kept, e)
				}
			}
			if n != len(trail)-len(kept) {
				t.Fatalf("compaction by %s removed %d entries; the reference %d", age, n, len(trail)-len(kept))
			}
			compacted += n
			trail = kept
			for _, o := range objects {
				ask(graph.HistoryQuery{Object: o, Limit: 4})
			}
			for range 30 {
				ask(query())
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d go test ./graph -run %s", seed, t.Name())
		}
	}
	t.Logf("%d history queries compared, %d entries (%d queries empty), %d entries compacted away", queries, entries, emptyQueries, compacted)
	if queries == 0 || entries == 0 || emptyQueries == queries || compacted == 0 {
		t.Fatal("the cases tried nothing useful")
	}
}

// FuzzHistoryText: an object or a position of the trail either parses
// and prints back as the same text, or is refused; never something else.
func FuzzHistoryText(f *testing.F) {
	for _, s := range []string{"user/c1", "folder/a/b", "right/read", "team/x", "user/", "/x", "12.0", "1.2", "0.0", "01.2", "1.-2", "1.2x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if o, err := graph.ParseObject(s); err == nil {
			if o.String() != s || o.IsZero() {
				t.Fatalf("object %q reads as %+v, which prints %q", s, o, o.String())
			}
			var back graph.Object
			if err := back.UnmarshalText([]byte(s)); err != nil || back != o {
				t.Fatalf("object %q: UnmarshalText gives %+v, %v", s, back, err)
			}
		}
		if m, err := graph.ParseHistoryMark(s); err == nil && m.String() != s {
			t.Fatalf("position %q reads as %+v, which prints %q", s, m, m.String())
		}
	})
}
