package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// TestPreviewAgreesWithTheReference: on random organisations and random
// batches (some written on behalf of a random user), a preview refuses
// exactly what the write refuses, with the same error, and changes
// nothing; and what it accepts, it describes exactly. Replayed mutation
// by mutation in the reference, each user's listed changes turn their
// access before the mutation into their access after it (what is lost
// was held, what is gained was not), every user it does not list keeps
// their access, the counts are those of the reference, and the end is
// the reference's access after the batch is committed for real.
func TestPreviewAgreesWithTheReference(t *testing.T) {
	var previews, refusals, changes, listedShort int
	for i := 0; i < propertyCases(t, 20); i++ {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newGen(seed)
			g.now = graphtest.Start
			log := newCommitLog()
			ix := openWith(t, graph.Options{Clock: graphtest.NewClock(g.now), OnCommit: log.publish})
			g.m = newRef()
			g.build(t, ix)
			ctx := context.Background()
			var access map[string]accessSet // each user's, in g.m, once known
			for step := 0; step < 20; step++ {
				batch := g.batch()
				as := ""
				if g.r.IntN(4) == 0 {
					as = g.user()
				}
				limit := 0
				if g.r.IntN(3) == 0 {
					limit = 1 + g.r.IntN(2)
				}
				before := ix.Revision()
				p, perr := ix.Preview(ctx, graph.PreviewRequest{Actor: "t", AsUser: as, Mutations: batch, Limit: limit})
				if ix.Revision() != before {
					t.Fatalf("step %d: a preview committed", step)
				}
				if d := sameState(modelOf(t, ix), g.m); d != "" {
					t.Fatalf("step %d: a preview changed the index: %s", step, d)
				}
				var werr error
				var rev uint64
				if as != "" {
					rev, werr = ix.WriteAs(ctx, "t", as, batch, graph.Preconditions{})
				} else {
					rev, werr = ix.Write(ctx, "t", batch, graph.Preconditions{})
				}
				b, _ := json.Marshal(batch)
				if (perr == nil) != (werr == nil) || perr != nil && perr.Error() != werr.Error() {
					t.Fatalf("step %d, batch %s: preview %v, write %v", step, b, perr, werr)
				}
				if werr != nil {
					refusals++
					continue
				}
				previews++
				if p.Revision != before {
					t.Fatalf("step %d: previewed at %d, index at %d", step, p.Revision, before)
				}
				var parts []graph.Mutation
				for _, c := range log.waitFor(t, rev) {
					if c.Revision == rev {
						parts = c.Mutations
					}
				}
				next, after := checkPreview(t, g.m, access, parts, p, limit)
				access = after
				if d := sameState(next, mustWrite(t, g.m, batch, g.now)); d != "" {
					t.Fatalf("step %d: the batch's parts replayed: %s", step, d)
				}
				changes += len(p.Changes)
				if p.Listed < p.Users {
					listedShort++
				}
				g.m = next
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d go test ./graph -run TestPreviewAgreesWithTheReference", seed)
		}
	}
	t.Logf("%d previews checked (%d changes, %d cut short by the limit), %d refused as the write was", previews, changes, listedShort, refusals)
	if previews == 0 || refusals == 0 || changes == 0 || listedShort == 0 {
		t.Fatal("the cases tried nothing useful")
	}
}

// checkPreview replays the parts a batch committed (its primitives) in
// the reference m one by one and holds preview p to them, as
// TestPreviewAgreesWithTheReference says. It returns the reference after
// them. Users beyond the preview's limit, whose changes it does not list,
// are only counted.
func checkPreview(t *testing.T, m *refModel, access map[string]accessSet, parts []graph.Mutation, p graph.Preview, limit int) (*refModel, map[string]accessSet) {
	t.Helper()
	if limit <= 0 {
		limit = graph.DefaultPreviewLimit
	}
	listed := map[string]bool{}
	for _, ch := range p.Changes {
		listed[ch.User] = true
		if ch.Part >= len(parts) || !reflect.DeepEqual(ch.Cause, parts[ch.Part]) {
			t.Fatalf("change %+v: its cause is not part %d of the commit", ch, ch.Part)
		}
	}
	if len(listed) != p.Listed || p.Listed != min(limit, p.Users) {
		t.Fatalf("listed %d users, said %d of %d, limit %d", len(listed), p.Listed, p.Users, limit)
	}
	whole := p.Listed == p.Users // every affected user is listed
	sets := map[string]accessSet{}
	for id := range m.users {
		sets[id] = maps.Clone(access[id])
		if access[id] == nil {
			sets[id] = m.access(id)
		}
	}
	final := map[string]accessSet{}
	beyond := map[string]bool{} // affected, and not listed
	totals := map[string]*graph.AccessTotal{}
	count := func(next *refModel, list []graph.AccessRegion, gain bool) {
		for _, a := range list {
			for _, h := range next.expand(a) {
				tot := totals[h.right]
				if tot == nil {
					tot = &graph.AccessTotal{Right: h.right}
					totals[h.right] = tot
				}
				if gain {
					tot.Gained++
				} else {
					tot.Lost++
				}
			}
		}
	}
	cur := m
	for k, mu := range parts {
		next := cur.clone()
		if err := next.apply(mu); err != nil {
			t.Fatalf("the reference refuses part %d of a commit: %v", k, err)
		}
		for id := range next.users {
			if sets[id] == nil {
				sets[id] = accessSet{}
			}
		}
		changed := map[string]bool{}
		for _, ch := range p.Changes {
			if ch.Part != k {
				continue
			}
			changed[ch.User] = true
			if err := next.applyChange(sets[ch.User], ch.AccessChange); err != nil {
				t.Fatalf("part %d, user %s: %v\n%+v", k, ch.User, err, ch)
			}
			count(next, ch.Gained, true)
			count(next, ch.Lost, false)
		}
		// Each user with a change here is compared now; every user is
		// compared at the end (comparing every user after every part
		// made this test take minutes).
		last := k == len(parts)-1
		for id, set := range sets {
			if _, ok := next.users[id]; !ok {
				delete(sets, id) // a user's access ends with them, unlisted
				continue
			}
			next.forget(set)
			if !last && !changed[id] {
				continue
			}
			want := next.access(id)
			if last {
				final[id] = want
			}
			if d := diffSets(set, want); d != "" {
				if whole || listed[id] {
					b, _ := json.Marshal(mu)
					t.Fatalf("after part %d %s, user %s: %s", k, b, id, d)
				}
				beyond[id] = true
			}
		}
		cur = next
	}
	if got := len(listed) + len(beyond); got > p.Users {
		t.Fatalf("%d users affected in the reference, the preview counts %d", got, p.Users)
	}
	if whole {
		var want []graph.AccessTotal
		for _, r := range slices.Sorted(maps.Keys(totals)) {
			want = append(want, *totals[r])
		}
		if !slices.Equal(p.Totals, want) {
			t.Fatalf("totals %+v, reference %+v", p.Totals, want)
		}
	}
	return cur, final
}

// mustWrite is the reference after writing batch, which it accepts.
func mustWrite(t *testing.T, m *refModel, batch []graph.Mutation, now time.Time) *refModel {
	t.Helper()
	next, err := m.write(batch, now)
	if err != nil {
		t.Fatalf("the reference refuses a batch the index committed: %v", err)
	}
	return next
}
