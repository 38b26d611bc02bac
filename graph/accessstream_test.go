package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// held is one right over one resource: a folder, a user, or (the zero
// Ref) the capabilities.
type held struct {
	right string
	x     graph.Ref
}

func (h held) String() string { return h.right + " " + h.x.String() }

// accessSet is a user's effective access as the reference lists it.
type accessSet map[held]bool

// streamView returns the model as access streams see it: a grant is in
// effect until its expiry is recorded, whatever the clock says.
func (m *refModel) streamView() (*refModel, time.Time) {
	c := m.clone()
	for id, u := range c.users {
		u.ActiveUntil = time.Time{} // active until the end is recorded
		c.users[id] = u
	}
	for id, g := range c.grants {
		g.ExpiresAt = time.Time{}
		if g.Expired {
			g.ExpiresAt = time.Unix(0, 1)
		}
		c.grants[id] = g
	}
	return c, time.Unix(0, 2)
}

// access is user's effective access in the reference, evaluated one check
// at a time over every right and resource.
func (m *refModel) access(user string) accessSet {
	v, now := m.streamView()
	out := accessSet{}
	u, ok := v.users[user]
	if !ok {
		return out
	}
	// Grants that do not reach the user never apply: leave them out, so
	// that each check does not test them again.
	for id, g := range v.grants {
		if !v.reaches(g, u) {
			delete(v.grants, id)
		}
	}
	var res []graph.Ref
	for id := range m.folders {
		res = append(res, graph.FolderRef(id))
	}
	for id := range m.users {
		res = append(res, graph.UserRef(id))
	}
	res = append(res, graph.Ref{})
	for r := range m.rights {
		for _, x := range res {
			if v.check(user, r, x, now).reason == graph.ReasonAllowed {
				out[held{r, x}] = true
			}
		}
	}
	return out
}

// expand lists what a region covers in the reference's state.
func (m *refModel) expand(a graph.AccessRegion) []held {
	in := func(r graph.Ref, x graph.Ref) bool {
		if r.Kind == graph.KindUser {
			return x == r
		}
		return m.covers(r, x)
	}
	var res []graph.Ref
	if a.On.IsZero() {
		res = []graph.Ref{{}}
	} else {
		for id := range m.folders {
			res = append(res, graph.FolderRef(id))
		}
		for id := range m.users {
			res = append(res, graph.UserRef(id))
		}
	}
	var out []held
	for _, x := range res {
		if !a.On.IsZero() && !in(a.On, x) || slices.ContainsFunc(a.Except, func(e graph.Ref) bool { return in(e, x) }) {
			continue
		}
		for _, r := range a.Rights {
			out = append(out, held{r, x})
		}
	}
	return out
}

// applyChange applies an access change to set, in the reference state the
// change is read against. The regions of one side may overlap (a user in
// two subtrees); taken together, what is lost must have been held and what
// is gained must not.
func (m *refModel) applyChange(set accessSet, ch graph.AccessChange) error {
	side := func(list []graph.AccessRegion) accessSet {
		out := accessSet{}
		for _, a := range list {
			for _, k := range m.expand(a) {
				out[k] = true
			}
		}
		return out
	}
	lost, gained := side(ch.Lost), side(ch.Gained)
	for k := range lost {
		if !set[k] {
			return fmt.Errorf("lost %s, which was not held", k)
		}
		delete(set, k)
	}
	for k := range gained {
		if set[k] || lost[k] {
			return fmt.Errorf("gained %s, which was held already", k)
		}
		set[k] = true
	}
	return nil
}

// forget drops from set the resources and rights that no longer exist.
func (m *refModel) forget(set accessSet) {
	for k := range set {
		if _, ok := m.rights[k.right]; !ok || !k.x.IsZero() && !m.exists(k.x) {
			delete(set, k)
		}
	}
}

func diffSets(got, want accessSet) string {
	var extra, missing []string
	for k := range got {
		if !want[k] {
			extra = append(extra, k.String())
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k.String())
		}
	}
	if len(extra)+len(missing) == 0 {
		return ""
	}
	sort.Strings(extra)
	sort.Strings(missing)
	return fmt.Sprintf("stream has extra %v, lacks %v", extra, missing)
}

// TestAccessStreamDifferential: on random organisations and random write
// sequences (with expiries recorded now and then), the access a stream
// starts from, with every change it reports applied in order, equals the
// reference's effective access after every mutation. Every change is
// exact: what it says was lost was held, what it says was gained was not.
func TestAccessStreamDifferential(t *testing.T) {
	cases := propertyCases(t, 100)
	steps := 40
	var changes, regions, excepts, muts int
	for i := 0; i < cases; i++ {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			if i%2 == 1 {
				// Find the locks inside a candidate by testing each lock,
				// as large candidates do, rather than by walking.
				old := graph.SetLockScanCost(0)
				defer graph.SetLockScanCost(old)
			}
			g := newGen(seed)
			g.now = graphtest.Start
			clock := graphtest.NewClock(g.now)
			log := newCommitLog()
			ix := openWith(t, graph.Options{Clock: clock, OnAccess: log.publish})
			g.m = newRef()
			g.build(t, ix)
			ctx := context.Background()
			watched := map[string]accessSet{}
			for len(watched) < 3 {
				w := g.user()
				if _, ok := g.m.users[w]; !ok || watched[w] != nil {
					continue
				}
				aw, err := ix.WatchAccess(ctx, w)
				if err != nil {
					t.Fatal(err)
				}
				defer aw.Stop()
				start := aw.Start
				if aw.Revision != ix.Revision() || start.User != w || start.Mutation != -1 || len(start.Lost) > 0 {
					t.Fatalf("start of %s: revision %d (index at %d), %+v", w, aw.Revision, ix.Revision(), start)
				}
				set := accessSet{}
				if err := g.m.applyChange(set, start); err != nil {
					t.Fatal(err)
				}
				if d := diffSets(set, g.m.access(w)); d != "" {
					t.Fatalf("start of %s: %s\n%+v", w, d, start)
				}
				watched[w] = set
			}
			seen, at := 0, ix.Revision()
			for step := 0; step < steps; step++ {
				if g.r.IntN(6) == 0 {
					d := time.Duration(g.r.IntN(60)) * time.Hour
					clock.Advance(d)
					g.now = g.now.Add(d)
				}
				prev := g.m.clone()
				if g.r.IntN(5) == 0 {
					if _, _, err := ix.ExpireDue(ctx); err != nil {
						t.Fatal(err)
					}
					for _, mu := range g.m.due(g.now) {
						if err := g.m.apply(mu); err != nil {
							t.Fatal(err)
						}
					}
				} else {
					batch := g.batch()
					next, refErr := g.m.write(batch, g.now)
					if _, err := ix.Write(ctx, "test", batch, graph.Preconditions{}); (err == nil) != (refErr == nil) {
						t.Fatalf("step %d: index %v, reference %v", step, err, refErr)
					}
					g.m = next
				}
				// The shadow hands on every commit from the first watch on.
				var commits []graph.Commit
				if rev := ix.Revision(); rev > at {
					all := log.waitFor(t, rev)
					commits, seen, at = all[seen:], len(all), rev
				}
				for _, c := range commits {
					// Replay the committed primitives one by one in the
					// reference, reading each change against the state
					// right after its mutation.
					m := prev
					for k, mu := range c.Mutations {
						b, _ := json.Marshal(mu)
						if err := m.apply(mu); err != nil {
							t.Fatalf("step %d, revision %d: the reference refuses committed mutation %d %s", step, c.Revision, k, b)
						}
						muts++
						for _, ch := range c.Access {
							if ch.Mutation != k {
								continue
							}
							set := watched[ch.User]
							if set == nil {
								t.Fatalf("a change for %s, who is not watched", ch.User)
							}
							changes++
							regions += len(ch.Gained) + len(ch.Lost)
							for _, a := range append(slices.Clone(ch.Gained), ch.Lost...) {
								excepts += len(a.Except)
							}
							if err := m.applyChange(set, ch); err != nil {
								t.Fatalf("step %d, revision %d, mutation %d %s: %s: %v\n%+v", step, c.Revision, k, b, ch.User, err, ch)
							}
						}
						for w, set := range watched {
							m.forget(set)
							if d := diffSets(set, m.access(w)); d != "" {
								t.Fatalf("step %d, revision %d, after mutation %d %s, user %s: %s\nchanges: %+v", step, c.Revision, k, b, w, d, c.Access)
							}
						}
					}
					prev = m
				}
				if d := sameState(prev, g.m); d != "" {
					t.Fatalf("step %d: replaying the commits one mutation at a time: %s", step, d)
				}
			}
			// Undoing and redoing on the shadow left it a true copy, and
			// copying it left the index as it was.
			if d := sameState(modelOf(t, ix), g.m); d != "" {
				t.Fatalf("the index: %s", d)
			}
			recs, rev := graph.ShadowRecords(ix)
			want, wantRev, err := ix.Records()
			if err != nil {
				t.Fatal(err)
			}
			if rev != wantRev || !reflect.DeepEqual(recs, want) {
				t.Fatalf("the shadow at revision %d differs from the index at %d", rev, wantRev)
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d go test ./graph -run TestAccessStreamDifferential", seed)
		}
	}
	t.Logf("%d cases, %d mutations compared one by one; %d access changes, %d regions, %d exceptions", cases, muts, changes, regions, excepts)
}
