package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// propertyCases is how many random worlds the differential tests build:
// CANOPY_PROPERTY_CASES overrides it; -short runs a tenth, and the race
// detector a fifth (it makes each case about eight times slower, and the
// pass without it compares the full count with the reference).
func propertyCases(t *testing.T, full int) int {
	if s := os.Getenv("CANOPY_PROPERTY_CASES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("CANOPY_PROPERTY_CASES: %v", err)
		}
		return n
	}
	if testing.Short() {
		return full / 10
	}
	if raceEnabled {
		return full / 5
	}
	return full
}

// gen makes random mutations over small pools of ids, so that writes often
// collide, refer to what is gone, cross organisations and break rules.
type gen struct {
	r     *rand.Rand
	m     *refModel // the current reference state, to pick existing ids
	now   time.Time
	sizes struct{ folders, users, grants, locks int }
	next  int // for fresh ids
}

// fresh returns a new id with the prefix, or now and then one that may
// exist already.
func (g *gen) fresh(prefix string, pool int) string {
	if g.r.IntN(10) == 0 {
		return fmt.Sprintf("%s%d", prefix, g.r.IntN(pool))
	}
	g.next++
	return fmt.Sprintf("%s%d", prefix, pool+g.next)
}

// inOrg returns an existing folder of org, or any folder now and then.
func (g *gen) inOrg(org string) string {
	if g.r.IntN(12) == 0 || org == "" {
		return g.folder()
	}
	var in []string
	for _, f := range keys(g.m.folders) {
		if g.m.root(f) == org {
			in = append(in, f)
		}
	}
	return g.pick(in)
}

// orgOf returns the organisation of an existing ref, or "".
func (g *gen) orgOf(r graph.Ref) string {
	if !g.m.exists(r) {
		return ""
	}
	return g.m.orgOf(r)
}

// sameOrgRef returns a folder or user of org (a target for a grant).
func (g *gen) sameOrgRef(org string) graph.Ref {
	if g.r.IntN(3) == 0 {
		var in []string
		for _, u := range keys(g.m.users) {
			if g.m.root(g.m.users[u].Home) == org {
				in = append(in, u)
			}
		}
		if len(in) > 0 && g.r.IntN(12) != 0 {
			return graph.UserRef(g.pick(in))
		}
		return graph.UserRef(g.user())
	}
	return graph.FolderRef(g.inOrg(org))
}

// build writes a valid random world: two organisations, a catalogue with
// custom rights, a tree, users with extra groups, rules their members
// satisfy, grants and locks.
func (g *gen) build(t *testing.T, ix *graph.Index) {
	t.Helper()
	write := func(batch []graph.Mutation) {
		t.Helper()
		next, err := g.m.write(batch, g.now)
		if err != nil {
			b, _ := json.Marshal(batch)
			t.Fatalf("build: reference refused %s", b)
		}
		if _, err := ix.Write(context.Background(), "build", batch, graph.Preconditions{}); err != nil {
			t.Fatalf("build: %v", err)
		}
		g.m = next
	}
	write([]graph.Mutation{
		{PutRight: &graph.Right{Name: "manage_ilr", Implies: []string{"edit"}}},
		{PutRight: &graph.Right{Name: "view_reports"}},
		{PutRight: &graph.Right{Name: "user_administrator"}},
		{CreateFolder: &graph.Folder{ID: "a"}},
		{CreateFolder: &graph.Folder{ID: "b"}},
	})
	var batch []graph.Mutation
	for i := 0; i < g.sizes.folders; i++ {
		org := g.pick([]string{"a", "a", "b"})
		batch = append(batch, graph.Mutation{CreateFolder: &graph.Folder{ID: fmt.Sprintf("f%d", i), Parent: g.inOrgValid(org, batch)}})
	}
	write(batch)
	batch = nil
	for i := 0; i < g.sizes.users; i++ {
		home := g.pick(keys(g.m.folders))
		u := graph.User{ID: fmt.Sprintf("u%d", i), Class: g.pick(classes), Home: home}
		for k := g.r.IntN(4); k > 0; k-- {
			var in []string
			for _, f := range keys(g.m.folders) {
				if g.m.root(f) == g.m.root(home) && f != home && !slices.Contains(u.Extras, f) {
					in = append(in, f)
				}
			}
			if len(in) == 0 { // a small organisation has run out of folders
				break
			}
			u.Extras = append(u.Extras, g.pick(in))
		}
		if g.r.IntN(8) == 0 {
			u.State = graph.StateDisabled
		}
		batch = append(batch, graph.Mutation{CreateUser: &u})
	}
	write(batch)
	// Rules that admit every current member, and sometimes one class more.
	for k := g.r.IntN(5); k > 0; k-- {
		f := g.pick(keys(g.m.folders))
		var cl []string
		for _, u := range g.m.users {
			if g.m.memberOf(u, f) {
				cl = append(cl, u.Class)
			}
		}
		if len(cl) == 0 || g.r.IntN(2) == 0 {
			cl = append(cl, g.pick(classes))
		}
		write([]graph.Mutation{{SetRule: &graph.PlacementRule{Folder: f, Classes: cl}}})
	}
	batch = nil
	for i := 0; i < g.sizes.grants; i++ {
		holder := graph.FolderRef(g.pick(keys(g.m.folders)))
		if g.r.IntN(3) == 0 {
			holder = graph.UserRef(g.pick(keys(g.m.users)))
		}
		gr := graph.Grant{ID: fmt.Sprintf("g%d", i), Holder: holder, Rights: []string{g.pick(keys(g.m.rights))}}
		if g.r.IntN(8) != 0 {
			gr.Target = g.sameOrgValid(g.m.orgOf(holder))
		}
		if g.r.IntN(4) == 0 {
			gr.ExpiresAt = g.now.Add(time.Duration(1+g.r.IntN(200)) * time.Hour)
		}
		batch = append(batch, graph.Mutation{AddGrant: &gr})
	}
	for i := 0; i < g.sizes.locks; i++ {
		l := graph.Lock{ID: fmt.Sprintf("l%d", i), Target: g.sameOrgValid(g.pick([]string{"a", "b"}))}
		if g.r.IntN(2) == 0 {
			l.Rights = []string{g.pick(keys(g.m.rights))}
		}
		batch = append(batch, graph.Mutation{AddLock: &l})
	}
	write(batch)
}

// inOrgValid picks a folder of org among those existing or created earlier in batch.
func (g *gen) inOrgValid(org string, batch []graph.Mutation) string {
	in := []string{org}
	parents := map[string]string{}
	for _, m := range batch {
		parents[m.CreateFolder.ID] = m.CreateFolder.Parent
	}
	for id := range parents {
		r, levels := id, 1
		for parents[r] != "" {
			r = parents[r]
			levels++
		}
		// Within the depth limit, so that the first tree is always valid
		// (levels is id's level; its new child's is one more).
		if r == org && (g.m.maxDepth <= 0 || levels+1 <= g.m.maxDepth) {
			in = append(in, id)
		}
	}
	slices.Sort(in)
	return g.pick(in)
}

// sameOrgValid picks an existing folder or user of org.
func (g *gen) sameOrgValid(org string) graph.Ref {
	var in []graph.Ref
	for _, f := range keys(g.m.folders) {
		if g.m.root(f) == org {
			in = append(in, graph.FolderRef(f))
		}
	}
	for _, u := range keys(g.m.users) {
		if g.m.root(g.m.users[u].Home) == org && g.r.IntN(3) == 0 {
			in = append(in, graph.UserRef(u))
		}
	}
	return in[g.r.IntN(len(in))]
}

var classes = []string{"staff", "candidate", "learner"}
var customRights = []string{"manage_ilr", "view_reports", "user_administrator", "console"}

func newGen(seed uint64) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	g.sizes.folders, g.sizes.users, g.sizes.grants, g.sizes.locks = 24+g.r.IntN(24), 20+g.r.IntN(30), 30+g.r.IntN(40), 4+g.r.IntN(10)
	return g
}

func (g *gen) pick(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return list[g.r.IntN(len(list))]
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (g *gen) folder() string {
	if g.r.IntN(20) == 0 || len(g.m.folders) == 0 {
		return fmt.Sprintf("f%d", g.r.IntN(g.sizes.folders))
	}
	return g.pick(keys(g.m.folders))
}

func (g *gen) user() string {
	if g.r.IntN(20) == 0 || len(g.m.users) == 0 {
		return fmt.Sprintf("u%d", g.r.IntN(g.sizes.users))
	}
	return g.pick(keys(g.m.users))
}

func (g *gen) right() string {
	if g.r.IntN(40) == 0 {
		return "no_such_right"
	}
	return g.pick(keys(g.m.rights))
}

func (g *gen) rights() []string {
	out := []string{g.right()}
	if g.r.IntN(3) == 0 {
		out = append(out, g.right())
	}
	return out
}

func (g *gen) ref(allowNone bool) graph.Ref {
	switch n := g.r.IntN(10); {
	case allowNone && n == 0:
		return graph.Ref{}
	case n < 6:
		return graph.FolderRef(g.folder())
	default:
		return graph.UserRef(g.user())
	}
}

func (g *gen) mutation() graph.Mutation {
	r := g.r
	switch n := r.IntN(100); {
	case n < 14:
		parent := g.folder()
		if len(g.m.folders) == 0 || r.IntN(25) == 0 {
			parent = ""
		}
		var labels map[string]string
		if r.IntN(4) == 0 {
			labels = map[string]string{"kind": g.pick([]string{"class", "cohort"})}
		}
		return graph.Mutation{CreateFolder: &graph.Folder{ID: g.fresh("f", g.sizes.folders), Name: "F", Parent: parent, Labels: labels}}
	case n < 20:
		f := g.folder()
		return graph.Mutation{MoveFolder: &graph.Move{ID: f, To: g.inOrg(g.orgOf(graph.FolderRef(f)))}}
	case n < 23:
		return graph.Mutation{DeleteFolder: &graph.Delete{ID: g.folder(), Cascade: r.IntN(2) == 0}}
	case n < 24:
		return graph.Mutation{RenameFolder: &graph.Rename{ID: g.folder(), Name: "renamed"}}
	case n < 25:
		return graph.Mutation{RelabelFolder: &graph.Relabel{ID: g.folder(), Labels: map[string]string{"x": "y"}}}
	case n < 38:
		u := graph.User{ID: g.fresh("u", g.sizes.users), Class: g.pick(classes), Home: g.folder()}
		for k := r.IntN(4); k > 0; k-- {
			u.Extras = append(u.Extras, g.inOrg(g.orgOf(graph.FolderRef(u.Home))))
		}
		switch r.IntN(6) {
		case 0:
			u.State = graph.StateDisabled
		case 1:
			u.ActiveUntil = g.now.Add(time.Duration(1+r.IntN(100)) * time.Hour)
		}
		return graph.Mutation{CreateUser: &u}
	case n < 42:
		u := g.user()
		return graph.Mutation{MoveUser: &graph.Move{ID: u, To: g.inOrg(g.orgOf(graph.UserRef(u)))}}
	case n < 44:
		return graph.Mutation{UpdateUser: &graph.UserUpdate{ID: g.user(), Name: "N", Class: g.pick(classes)}}
	case n < 47:
		c := graph.StateChange{ID: g.user(), State: graph.State(g.pick([]string{"active", "active", "disabled", "archived", "bogus"}))}
		switch r.IntN(5) {
		case 0:
			c.ActiveUntil = g.now.Add(time.Duration(1+r.IntN(100)) * time.Hour) // refused unless active
		case 1:
			c.ActiveUntil = g.now.Add(-time.Hour) // refused: not in the future
		}
		return graph.Mutation{SetUserState: &c}
	case n < 49:
		return graph.Mutation{DeleteUser: &graph.Delete{ID: g.user(), Cascade: r.IntN(2) == 0}}
	case n < 54:
		u := g.user()
		return graph.Mutation{AddExtraGroup: &graph.Membership{User: u, Folder: g.inOrg(g.orgOf(graph.UserRef(u)))}}
	case n < 57:
		u := g.user()
		folder := g.folder()
		if ux, ok := g.m.users[u]; ok && len(ux.Extras) > 0 && r.IntN(4) != 0 {
			folder = g.pick(ux.Extras)
		}
		return graph.Mutation{DelExtraGroup: &graph.Membership{User: u, Folder: folder}}
	case n < 74:
		holder := g.ref(false)
		gr := graph.Grant{ID: g.fresh("g", g.sizes.grants), Holder: holder, Rights: g.rights()}
		if r.IntN(8) != 0 {
			gr.Target = g.sameOrgRef(g.orgOf(holder))
		}
		switch k := r.IntN(20); {
		case k < 7:
			gr.ExpiresAt = g.now.Add(time.Duration(1+r.IntN(100)) * time.Hour)
		case k == 7:
			gr.ExpiresAt = g.now.Add(-time.Hour)
		}
		switch k := r.IntN(10); {
		case k < 3:
			gr.StartsAt = g.now.Add(time.Duration(r.IntN(100)-10) * time.Hour) // sometimes past, sometimes after the expiry
		case k == 3:
			gr.Started = true // refused: the service's mark
		}
		return graph.Mutation{AddGrant: &gr}
	case n < 80:
		return graph.Mutation{RemoveGrant: &graph.Delete{ID: g.pick(append(keys(g.m.grants), "g-none"))}}
	case n < 85:
		l := graph.Lock{ID: g.fresh("l", g.sizes.locks), Target: g.ref(false)}
		if r.IntN(2) == 0 {
			l.Rights = g.rights()
		}
		return graph.Mutation{AddLock: &l}
	case n < 88:
		return graph.Mutation{RemoveLock: &graph.Delete{ID: g.pick(append(keys(g.m.locks), "l-none"))}}
	case n < 92:
		cl := []string{g.pick(classes)}
		if r.IntN(2) == 0 {
			cl = append(cl, g.pick(classes))
		}
		return graph.Mutation{SetRule: &graph.PlacementRule{Folder: g.folder(), Classes: cl}}
	case n < 94:
		return graph.Mutation{RemoveRule: &graph.Delete{ID: g.folder()}}
	case n < 97:
		var imp []string
		for k := r.IntN(3); k > 0; k-- {
			imp = append(imp, g.right())
		}
		return graph.Mutation{PutRight: &graph.Right{Name: g.pick(append(customRights, "edit", "read")), Implies: imp}}
	case n < 98:
		return graph.Mutation{DeleteRight: &graph.Delete{ID: g.right()}}
	default:
		return graph.Mutation{SetSelfRights: &graph.SelfRights{Rights: g.rights()}}
	}
}

func (g *gen) batch() []graph.Mutation {
	n := 1 + g.r.IntN(3)
	if g.r.IntN(10) == 0 {
		n += g.r.IntN(8)
	}
	out := make([]graph.Mutation, n)
	for i := range out {
		out[i] = g.mutation()
	}
	return out
}

// modelOf decodes an index's records into the reference's form.
func modelOf(tb testing.TB, ix *graph.Index) *refModel {
	tb.Helper()
	recs, _, err := ix.Records()
	if err != nil {
		tb.Fatal(err)
	}
	m := &refModel{
		folders: map[string]graph.Folder{}, users: map[string]graph.User{},
		grants: map[string]graph.Grant{}, locks: map[string]graph.Lock{},
		rules: map[string][]string{}, rights: map[string][]string{},
	}
	for _, r := range recs {
		var err error
		switch r.Kind {
		case graph.RecordFolder:
			var v graph.Folder
			err = json.Unmarshal(r.Value, &v)
			m.folders[v.ID] = v
		case graph.RecordUser:
			var v graph.User
			err = json.Unmarshal(r.Value, &v)
			m.users[v.ID] = v
		case graph.RecordGrant:
			var v graph.Grant
			err = json.Unmarshal(r.Value, &v)
			m.grants[v.ID] = v
		case graph.RecordLock:
			var v graph.Lock
			err = json.Unmarshal(r.Value, &v)
			m.locks[v.ID] = v
		case graph.RecordRule:
			var v graph.PlacementRule
			err = json.Unmarshal(r.Value, &v)
			m.rules[v.Folder] = v.Classes
		case graph.RecordRight:
			var v graph.Right
			err = json.Unmarshal(r.Value, &v)
			m.rights[v.Name] = v.Implies
		case graph.RecordSelf:
			var v graph.SelfRights
			err = json.Unmarshal(r.Value, &v)
			m.self = v.Rights
		}
		if err != nil {
			tb.Fatalf("decode %s %s: %v", r.Kind, r.ID, err)
		}
	}
	return m
}

// expireDue has the index record the due expiries and checks that it wrote
// as many as the reference expects; the reference then applies them, and
// the comparison of the states that follows checks they were the same.
func expireDue(t *testing.T, ix *graph.Index, ref *refModel, now time.Time) int {
	t.Helper()
	want := ref.due(now)
	before := ix.Revision()
	rev, n, err := ix.ExpireDue(context.Background())
	if err != nil {
		t.Fatalf("expire due: %v", err)
	}
	if n != len(want) || (n == 0) != (rev == 0) || n > 0 && rev != before+1 {
		t.Fatalf("expire due: revision %d (was %d), %d grants; want %d: %v", rev, before, n, len(want), want)
	}
	for _, mu := range want {
		if err := ref.apply(mu); err != nil {
			t.Fatalf("reference refused %v", mu)
		}
	}
	return n
}

// sameState compares two models entity by entity.
func sameState(a, b *refModel) string {
	eq := func(name string, x, y any) string {
		if !reflect.DeepEqual(x, y) {
			return fmt.Sprintf("%s differ:\n index:     %+v\n reference: %+v", name, x, y)
		}
		return ""
	}
	for _, d := range []string{
		eq("folders", a.folders, b.folders), eq("users", a.users, b.users),
		eq("grants", a.grants, b.grants), eq("locks", a.locks, b.locks),
		eq("rules", a.rules, b.rules), eq("rights", a.rights, b.rights),
		eq("self rights", norm(a.self), norm(b.self)),
	} {
		if d != "" {
			return d
		}
	}
	return ""
}

// compareBatch holds CheckMany to Check, item by item (Check is held to
// the reference): the same decision, or the same error as the item's own
// after its index.
func compareBatch(t *testing.T, ix *graph.Index, batch []graph.CheckRequest) {
	t.Helper()
	ds, errs, rev := ix.CheckMany(batch)
	for k, r := range batch {
		d, err := ix.Check(r.User, r.Right, r.Resource)
		var berr error
		if errs != nil {
			berr = errs[k]
		}
		bad := ds[k].Revision != rev
		if err == nil {
			bad = bad || berr != nil || ds[k] != d
		} else {
			bad = bad || fmt.Sprint(berr) != fmt.Sprintf("item %d: %v", k, err)
		}
		if bad {
			t.Fatalf("batch item %d %+v: %+v, %v; alone %+v, %v", k, r, ds[k], berr, d, err)
		}
	}
}

// compareCheck checks one decision and its explanation against the reference.
func compareCheck(t *testing.T, ix *graph.Index, ref *refModel, now time.Time, user, right string, x graph.Ref) {
	t.Helper()
	d, err := ix.Check(user, right, x)
	_, rightOK := ref.rights[right]
	if !rightOK || (!x.IsZero() && !ref.exists(x)) {
		if err == nil {
			t.Fatalf("check %s %s %v: want an error for the unknown right or resource, got %+v", user, right, x, d)
		}
		return
	}
	if err != nil {
		t.Fatalf("check %s %s %v: %v", user, right, x, err)
	}
	want := ref.check(user, right, x, now)
	if d.Reason != want.reason || d.Allowed != (want.reason == graph.ReasonAllowed) {
		t.Fatalf("check %s %s %v: index %s, reference %s (%+v)", user, right, x, d.Reason, want.reason, want)
	}
	ex, err := ix.Explain(user, right, x)
	if err != nil || ex.Decision != d {
		t.Fatalf("explain %s %s %v: %+v, %v; check said %+v", user, right, x, ex.Decision, err, d)
	}
	checkExplanation(t, ref, user, x, ex, want)
}

// checkExplanation verifies that the path an explanation gives is real and
// is the one the documented choice (smallest id) names.
func checkExplanation(t *testing.T, ref *refModel, user string, x graph.Ref, ex graph.Explanation, want refDecision) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("explain %s %v (%s): %s; got %+v", user, x, ex.Reason, fmt.Sprintf(format, args...), ex)
	}
	switch ex.Reason {
	case graph.ReasonAllowed:
		if len(want.grants) == 0 {
			if !ex.Self || ex.Grant != nil {
				fail("want a self-right explanation")
			}
			return
		}
		if ex.Grant == nil || ex.Grant.ID != want.grants[0] {
			fail("want grant %s", want.grants[0])
		}
	case graph.ReasonExpired:
		if ex.Grant == nil || ex.Grant.ID != want.expired[0] {
			fail("want expired grant %s", want.expired[0])
		}
	case graph.ReasonNoGrant:
		if len(want.pending) == 0 {
			if ex.Grant != nil || ex.Lock != nil || ex.Self {
				fail("a no_grant denial with no grant to come explains nothing")
			}
			return
		}
		if ex.Grant == nil || ex.Grant.ID != want.pending[0] || ex.Grant.Started || ex.Lock != nil || ex.Self {
			fail("want the grant to come %s", want.pending[0])
		}
	case graph.ReasonLocked:
		if ex.Lock == nil || ex.Lock.ID != want.locks[0] {
			fail("want lock %s", want.locks[0])
		}
		checkPathDown(t, ref, ex.Lock.Target, x, ex.LockPath, fail)
		return
	default:
		if ex.Grant != nil || ex.Lock != nil || ex.Self {
			fail("a %s denial explains nothing", ex.Reason)
		}
		return
	}
	g := ex.Grant
	if g.Holder.Kind == graph.KindFolder {
		p := ex.HolderPath
		u := ref.users[user]
		if len(p) == 0 || p[len(p)-1] != g.Holder.ID || !slices.Contains(append([]string{u.Home}, u.Extras...), p[0]) {
			fail("holder path %v must run from one of the user's folders to %s", p, g.Holder.ID)
		}
		for i := 1; i < len(p); i++ {
			if ref.folders[p[i-1]].Parent != p[i] {
				fail("holder path %v: %s is not the parent of %s", p, p[i], p[i-1])
			}
		}
	} else if len(ex.HolderPath) != 0 {
		fail("a grant held by the user has no holder path")
	}
	checkPathDown(t, ref, g.Target, x, ex.TargetPath, fail)
}

// checkPathDown verifies a path from a folder target down to resource x.
func checkPathDown(t *testing.T, ref *refModel, target, x graph.Ref, p []string, fail func(string, ...any)) {
	t.Helper()
	if target.Kind != graph.KindFolder {
		if len(p) != 0 {
			fail("a user or capability target has no path")
		}
		return
	}
	if len(p) == 0 || p[0] != target.ID {
		fail("path %v must start at %s", p, target.ID)
	}
	for i := 1; i < len(p); i++ {
		if ref.folders[p[i]].Parent != p[i-1] {
			fail("path %v: %s is not a child of %s", p, p[i], p[i-1])
		}
	}
	last := p[len(p)-1]
	if x.Kind == graph.KindFolder && last != x.ID {
		fail("path %v must end at %s", p, x.ID)
	}
	if x.Kind == graph.KindUser {
		u := ref.users[x.ID]
		if !slices.Contains(append([]string{u.Home}, u.Extras...), last) {
			fail("path %v must end at a folder of user %s", p, x.ID)
		}
	}
}

func compareLookups(t *testing.T, g *gen, ix *graph.Index, ref *refModel) {
	t.Helper()
	now := g.now
	user, right := g.user(), g.pick(keys(ref.rights))
	for _, kind := range []graph.Kind{graph.KindFolder, graph.KindUser} {
		p, err := ix.LookupResources(user, right, kind, "", 0)
		if _, ok := ref.users[user]; !ok {
			if !errors.Is(err, graph.ErrNotFound) {
				t.Fatalf("lookup resources for unknown user %s: %v", user, err)
			}
			break
		}
		if err != nil {
			t.Fatalf("lookup resources %s %s %v: %v", user, right, kind, err)
		}
		want := ref.resources(user, right, kind, now)
		if !slices.Equal(p.IDs, want) {
			t.Fatalf("lookup resources %s %s %v:\n index:     %v\n reference: %v", user, right, kind, p.IDs, want)
		}
		// Paging in steps of 3 gives the same list.
		var paged []string
		for cursor := ""; ; {
			pg, err := ix.LookupResources(user, right, kind, cursor, 3)
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, pg.IDs...)
			if pg.Next == "" {
				break
			}
			cursor = pg.Next
		}
		if !slices.Equal(paged, want) {
			t.Fatalf("paged lookup resources %s %s %v: %v, want %v", user, right, kind, paged, want)
		}
	}
	x := g.ref(true)
	if x.IsZero() || ref.exists(x) {
		p, err := ix.LookupSubjects(right, x, "", 0)
		if err != nil {
			t.Fatalf("lookup subjects %s %v: %v", right, x, err)
		}
		if want := ref.subjects(right, x, now); !slices.Equal(p.IDs, want) {
			t.Fatalf("lookup subjects %s %v:\n index:     %v\n reference: %v", right, x, p.IDs, want)
		}
	}
	if _, ok := ref.users[user]; ok {
		a, err := ix.EffectiveAccess(user)
		if err != nil {
			t.Fatal(err)
		}
		want := ref.effective(user, now)
		var got []refEntry
		for _, e := range a.Entries {
			re := refEntry{grant: e.Grant.ID, rights: e.Rights}
			for _, l := range e.Locks {
				re.locks = append(re.locks, l.ID)
			}
			got = append(got, re)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("effective access %s:\n index:     %+v\n reference: %+v", user, got, want)
		}
	}
}

// diffDepth is the tree depth limit of TestDifferential's worlds.
const diffDepth = 5

// TestDifferential builds random organisations by random write sequences
// (moves, expiries, locks, disabled users, refused writes) and compares the
// index with the reference after every write: what was refused, the whole
// stored state, decisions with their explanations, lookups and effective
// access.
func TestDifferential(t *testing.T) {
	// 300 worlds of 60 steps with 60 checks each: 1,080,000 decisions
	// compared with the reference in the pass without the race detector.
	cases := propertyCases(t, 300)
	steps, checksPerStep := 60, 60
	checks := 0
	var stats struct{ accepted, refused, tooDeep, expired, folders, users, grants, locks int }
	reasons := map[graph.Reason]int{}
	for i := 0; i < cases; i++ {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newGen(seed)
			g.now = graphtest.Start
			clock := graphtest.NewClock(g.now)
			// A shallow depth limit, so that random trees reach it.
			ix := openWith(t, graph.Options{Clock: clock, MaxDepth: diffDepth})
			g.m = newRef()
			g.m.maxDepth = diffDepth
			g.build(t, ix)
			for step := 0; step < steps; step++ {
				if g.r.IntN(8) == 0 {
					d := time.Duration(g.r.IntN(40)) * time.Hour
					clock.Advance(d)
					g.now = g.now.Add(d)
				}
				if g.r.IntN(4) == 0 {
					stats.expired += expireDue(t, ix, g.m, g.now)
				}
				batch := g.batch()
				next, refErr := g.m.write(batch, g.now)
				_, err := ix.Write(context.Background(), "test", batch, graph.Preconditions{})
				if (err == nil) != (refErr == nil) {
					b, _ := json.Marshal(batch)
					t.Fatalf("step %d: index error %v, reference error %v, batch %s", step, err, refErr, b)
				}
				g.m = next
				switch {
				case err == nil:
					stats.accepted++
				case strings.Contains(err.Error(), "levels deep"):
					stats.tooDeep++
					fallthrough
				default:
					stats.refused++
				}
				if d := sameState(modelOf(t, ix), g.m); d != "" {
					b, _ := json.Marshal(batch)
					t.Fatalf("step %d after batch %s: %s", step, b, d)
				}
				if err := graph.Places(ix); err != nil {
					b, _ := json.Marshal(batch)
					t.Fatalf("step %d after batch %s: %v", step, b, err)
				}
				var asked []graph.CheckRequest
				for k := 0; k < checksPerStep; k++ {
					user, right, x := g.user(), g.right(), g.ref(true)
					if g.r.IntN(2) == 0 {
						right = "read"
					}
					compareCheck(t, ix, g.m, g.now, user, right, x)
					if d, err := ix.Check(user, right, x); err == nil {
						reasons[d.Reason]++
					}
					asked = append(asked, graph.CheckRequest{User: user, Right: right, Resource: x})
					checks++
				}
				compareBatch(t, ix, asked)
				compareLookups(t, g, ix, g.m)
			}
			stats.folders += len(g.m.folders)
			stats.users += len(g.m.users)
			stats.grants += len(g.m.grants)
			stats.locks += len(g.m.locks)
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d go test ./graph -run TestDifferential", seed)
		}
	}
	t.Logf("%d cases, %d steps each, %d checks compared; %d writes accepted, %d refused (%d past the depth limit of %d); %d expiries recorded",
		cases, steps, checks, stats.accepted, stats.refused, stats.tooDeep, diffDepth, stats.expired)
	if cases > 0 {
		t.Logf("final worlds average %d folders, %d users, %d grants, %d locks; decisions %v",
			stats.folders/cases, stats.users/cases, stats.grants/cases, stats.locks/cases, reasons)
	}
}
