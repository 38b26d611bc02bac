package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// orgOfMutation returns the organisation mutation mu changes, read in m as
// it is before mu (for a creation, where the new record will be), and
// false for a change to the whole service (the catalogue, the self
// rights). Nothing links two organisations, so each other mutation lies
// in exactly one. What does not exist gives "", which no confinement
// holds.
func (m *refModel) orgOfMutation(mu graph.Mutation) (string, bool) {
	folder := func(id string) string {
		if _, ok := m.folders[id]; !ok {
			return ""
		}
		return m.root(id)
	}
	of := func(r graph.Ref) string {
		if !m.exists(r) {
			return ""
		}
		return m.orgOf(r)
	}
	user := func(id string) string { return of(graph.UserRef(id)) }
	switch {
	case mu.CreateFolder != nil:
		if mu.CreateFolder.Parent == "" {
			return mu.CreateFolder.ID, true
		}
		return folder(mu.CreateFolder.Parent), true
	case mu.RenameFolder != nil:
		return folder(mu.RenameFolder.ID), true
	case mu.RelabelFolder != nil:
		return folder(mu.RelabelFolder.ID), true
	case mu.MoveFolder != nil:
		return folder(mu.MoveFolder.ID), true
	case mu.DeleteFolder != nil:
		return folder(mu.DeleteFolder.ID), true
	case mu.CreateUser != nil:
		return folder(mu.CreateUser.Home), true
	case mu.UpdateUser != nil:
		return user(mu.UpdateUser.ID), true
	case mu.MoveUser != nil:
		return user(mu.MoveUser.ID), true
	case mu.SetUserState != nil:
		return user(mu.SetUserState.ID), true
	case mu.DeleteUser != nil:
		return user(mu.DeleteUser.ID), true
	case mu.AddExtraGroup != nil:
		return user(mu.AddExtraGroup.User), true
	case mu.DelExtraGroup != nil:
		return user(mu.DelExtraGroup.User), true
	case mu.AddGrant != nil:
		return of(mu.AddGrant.Holder), true
	case mu.RemoveGrant != nil:
		return of(m.grants[mu.RemoveGrant.ID].Holder), true
	case mu.AddLock != nil:
		return of(mu.AddLock.Target), true
	case mu.RemoveLock != nil:
		return of(m.locks[mu.RemoveLock.ID].Target), true
	case mu.SetRule != nil:
		return folder(mu.SetRule.Folder), true
	case mu.RemoveRule != nil:
		return folder(mu.RemoveRule.ID), true
	}
	return "", false
}

// confinedWrite is the reference's outcome of batch written by a caller
// confined to orgs: the state after it, and whether it is refused for
// reaching outside them (when the unconfined write is accepted).
func (m *refModel) confinedWrite(batch []graph.Mutation, orgs graph.Orgs, now time.Time) (next *refModel, outside bool, err error) {
	next, err = m.write(batch, now)
	if err != nil {
		return m, false, err
	}
	step := m.clone()
	for _, mu := range batch {
		if org, ok := step.orgOfMutation(mu); !ok || !orgs[org] {
			return m, true, nil
		}
		if err := step.apply(mu); err != nil {
			return m, false, fmt.Errorf("reference: mutation of an accepted batch refused alone: %w", err)
		}
	}
	return next, false, nil
}

// visible reports whether r is zero or names a record of orgs in m.
func (m *refModel) visible(r graph.Ref, orgs graph.Orgs) bool {
	return r.IsZero() || m.exists(r) && orgs[m.orgOf(r)]
}

// TestConfinedDifferential writes random batches through callers confined
// to random sets of organisations and compares, after every write, what
// the confined view refuses, decides, lists and exports with the
// reference: records outside the organisations (or nowhere) are refused
// alike, lists keep to the organisations, and every answer about what is
// inside equals the reference's.
func TestConfinedDifferential(t *testing.T) {
	cases := propertyCases(t, 80)
	steps := 40
	var stats struct{ accepted, outside, refused, reads, hidden int }
	confinements := [][]string{{"a"}, {"b"}, {"a", "b"}, {"nowhere"}, {"a", "f3"}}
	for i := 0; i < cases; i++ {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newGen(seed)
			g.now = graphtest.Start
			ix := openWith(t, graph.Options{Clock: graphtest.NewClock(g.now), MaxDepth: diffDepth})
			g.m = newRef()
			g.m.maxDepth = diffDepth
			g.build(t, ix)
			for step := 0; step < steps; step++ {
				roots := confinements[g.r.IntN(len(confinements))]
				orgs := graph.OrgsOf(roots...)
				c := ix.Confine(orgs)
				batch := g.batch()
				next, outside, refErr := g.m.confinedWrite(batch, orgs, g.now)
				_, err := c.Write(context.Background(), "test", batch, graph.Preconditions{})
				b, _ := json.Marshal(batch)
				switch {
				case refErr != nil:
					if err == nil {
						t.Fatalf("step %d confined to %v: accepted %s, which the reference refuses: %v", step, roots, b, refErr)
					}
					stats.refused++
				case outside:
					if !errors.Is(err, graph.ErrOutside) {
						t.Fatalf("step %d confined to %v: %s reaches outside, got %v", step, roots, b, err)
					}
					stats.outside++
				case err != nil:
					t.Fatalf("step %d confined to %v: %s refused: %v", step, roots, b, err)
				default:
					stats.accepted++
				}
				g.m = next
				if d := sameState(modelOf(t, ix), g.m); d != "" {
					t.Fatalf("step %d after %s confined to %v: %s", step, b, roots, d)
				}
				// Read through another confinement than the write's.
				roots = confinements[g.r.IntN(len(confinements))]
				orgs = graph.OrgsOf(roots...)
				r, h := compareConfined(t, g, ix, ix.Confine(orgs), orgs)
				stats.reads += r
				stats.hidden += h
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d go test ./graph -run TestConfinedDifferential", seed)
		}
	}
	t.Logf("%d cases, %d steps: confined writes %d accepted, %d refused for reaching outside, %d refused as invalid; %d confined reads compared, %d of them refused as outside",
		cases, steps, stats.accepted, stats.outside, stats.refused, stats.reads, stats.hidden)
	if cases > 0 && (stats.accepted == 0 || stats.outside == 0 || stats.hidden == 0) {
		t.Fatalf("the random writes and reads never exercised a case: %+v", stats)
	}
}

// compareConfined compares a round of reads through c (confined to orgs)
// with the reference and with the unconfined index (itself compared with
// the reference by TestDifferential). It returns how many reads it
// compared and how many of them were refused as outside.
func compareConfined(t *testing.T, g *gen, ix *graph.Index, c *graph.Confined, orgs graph.Orgs) (reads, hidden int) {
	t.Helper()
	m, now := g.m, g.now
	// expect checks one read: refused as outside when it names something
	// invisible, else the same as the unconfined read.
	expect := func(what string, visible bool, got, want any, err, wantErr error) {
		t.Helper()
		reads++
		if !visible {
			hidden++
			if !errors.Is(err, graph.ErrOutside) {
				t.Fatalf("%s outside %v: %v, %+v; want refused as outside", what, keys(orgs), err, got)
			}
			return
		}
		if fmt.Sprint(err) != fmt.Sprint(wantErr) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s in %v:\n confined:   %+v, %v\n unconfined: %+v, %v", what, keys(orgs), got, err, want, wantErr)
		}
	}
	for k := 0; k < 20; k++ {
		user, right, x := g.user(), g.right(), g.ref(true)
		vis := m.visible(graph.UserRef(user), orgs) && m.visible(x, orgs)
		what := fmt.Sprintf("check %s %s %v", user, right, x)
		d, err := c.Check(user, right, x)
		wd, werr := ix.Check(user, right, x)
		expect(what, vis, d, wd, err, werr)
		if vis && err == nil && d.Reason != m.check(user, right, x, now).reason {
			t.Fatalf("%s: confined %s, reference %s", what, d.Reason, m.check(user, right, x, now).reason)
		}
		ex, err := c.Explain(user, right, x)
		wex, werr := ix.Explain(user, right, x)
		expect("explain"+what[5:], vis, ex, wex, err, werr)
	}
	// A batch: each item outside is refused alone, the others decided.
	var batch []graph.CheckRequest
	for k := 0; k < 5; k++ {
		batch = append(batch, graph.CheckRequest{User: g.user(), Right: "read", Resource: g.ref(true)})
	}
	ds, errs, rev := c.CheckMany(batch)
	wds, werrs, wrev := ix.CheckMany(batch)
	if rev != wrev {
		t.Fatalf("check many: confined at %d, unconfined at %d", rev, wrev)
	}
	for k, r := range batch {
		vis := m.visible(graph.UserRef(r.User), orgs) && m.visible(r.Resource, orgs)
		expect(fmt.Sprintf("check many, item %d %+v", k, r), vis, ds[k], wds[k], itemErr(errs, k), itemErr(werrs, k))
	}

	user, right := g.user(), g.pick(keys(m.rights))
	uvis := m.visible(graph.UserRef(user), orgs)
	for _, kind := range []graph.Kind{graph.KindFolder, graph.KindUser} {
		p, err := c.LookupResources(user, right, kind, "", 0)
		var want []string
		if uvis {
			want = norm(m.resources(user, right, kind, now))
		}
		expect(fmt.Sprintf("lookup resources %s %s %v", user, right, kind), uvis, norm(p.IDs), want, err, nil)
	}
	a, err := c.EffectiveAccess(user)
	wa, werr := ix.EffectiveAccess(user)
	expect("effective access "+user, uvis, a, wa, err, werr)
	gu, _, err := c.GetUser(user)
	wgu, _, werr := ix.GetUser(user)
	expect("get user "+user, uvis, gu, wgu, err, werr)

	x := g.ref(true)
	p, err := c.LookupSubjects(right, x, "", 0)
	var want []string
	for _, id := range m.subjects(right, x, now) {
		if orgs[m.orgOf(graph.UserRef(id))] {
			want = append(want, id)
		}
	}
	expect(fmt.Sprintf("lookup subjects %s %v", right, x), m.visible(x, orgs), norm(p.IDs), norm(want), err, nil)

	f := g.folder()
	fvis := m.visible(graph.FolderRef(f), orgs)
	gf, rule, _, err := c.GetFolder(f)
	wgf, wrule, _, werr := ix.GetFolder(f)
	expect("get folder "+f, fvis, []any{gf, rule}, []any{wgf, wrule}, err, werr)
	us, _, _, err := c.ListUsers(f, true, "", 0)
	wus, _, _, werr := ix.ListUsers(f, true, "", 0)
	expect("list users below "+f, fvis, us, wus, err, werr)
	fs, _, _, err := c.ListFolders(f, true, "", 0)
	wfs, _, _, werr := ix.ListFolders(f, true, "", 0)
	expect("list folders below "+f, fvis, fs, wfs, err, werr)

	// What lists and exports keep: the reference's records of orgs.
	var roots, folders, users, grants, locks, rules []string
	for id := range m.folders {
		if orgs[m.root(id)] {
			folders = append(folders, id)
			if m.folders[id].Parent == "" {
				roots = append(roots, id)
			}
			if _, ok := m.rules[id]; ok {
				rules = append(rules, id)
			}
		}
	}
	for id, u := range m.users {
		if orgs[m.root(u.Home)] {
			users = append(users, id)
		}
	}
	for id, gr := range m.grants {
		if orgs[m.orgOf(gr.Holder)] {
			grants = append(grants, id)
		}
	}
	for id, l := range m.locks {
		if orgs[m.orgOf(l.Target)] {
			locks = append(locks, id)
		}
	}
	for _, s := range [][]string{roots, folders, users, grants, locks, rules} {
		slices.Sort(s)
	}
	listed := func(what string, got, want []string) {
		t.Helper()
		reads++
		if !slices.Equal(got, want) {
			t.Fatalf("%s confined to %v:\n confined:  %v\n reference: %v", what, keys(orgs), got, want)
		}
	}
	top, _, _, err := c.ListFolders("", false, "", 0)
	all, _, _, err2 := c.ListFolders("", true, "", 0)
	gs, _, _, err3 := c.ListGrants(graph.Ref{}, graph.Ref{}, "", 0)
	ls, _, _, err4 := c.ListLocks(graph.Ref{}, "", 0)
	recs, _, err5 := c.Records()
	if err := errors.Join(err, err2, err3, err4, err5); err != nil {
		t.Fatal(err)
	}
	ids := func(n int, id func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = id(i)
		}
		return out
	}
	listed("organisations", ids(len(top), func(i int) string { return top[i].ID }), roots)
	listed("all folders", ids(len(all), func(i int) string { return all[i].ID }), folders)
	listed("grants", ids(len(gs), func(i int) string { return gs[i].ID }), grants)
	listed("locks", ids(len(ls), func(i int) string { return ls[i].ID }), locks)
	byKind := map[graph.RecordKind][]string{}
	for _, r := range recs {
		byKind[r.Kind] = append(byKind[r.Kind], r.ID)
	}
	listed("exported folders", byKind[graph.RecordFolder], folders)
	listed("exported users", byKind[graph.RecordUser], users)
	listed("exported grants", byKind[graph.RecordGrant], grants)
	listed("exported locks", byKind[graph.RecordLock], locks)
	listed("exported rules", byKind[graph.RecordRule], rules)
	listed("exported rights", byKind[graph.RecordRight], slices.Sorted(maps.Keys(m.rights)))
	st := c.Stats()
	got := []int{st.Folders, st.Users, st.Grants, st.Locks, st.Rules}
	if w := []int{len(folders), len(users), len(grants), len(locks), len(rules)}; !slices.Equal(got, w) {
		t.Fatalf("stats confined to %v: %v, want %v", keys(orgs), got, w)
	}
	return reads, hidden
}

// itemErr is the error of item k of a CheckMany, nil when it was decided.
func itemErr(errs []error, k int) error {
	if errs == nil {
		return nil
	}
	return errs[k]
}
