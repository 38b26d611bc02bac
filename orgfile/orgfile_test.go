package orgfile_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/orgfile"
)

const sample = `# Two classes, one rule, a lock.
rights:
  - read
  - {name: edit, implies: [read]}
  - {name: assign, implies: [read]}
  - console
self_rights: [read]
organisations:
  - id: acme
    name: Acme Training
    folders:
      - id: admin
        admits: [staff]
      - id: classes
        labels: {year: "2026"}
        folders:
          - id: it1
users:
  - {id: alice, class: staff, home: admin}
  - {id: carl, name: Carl Candidate, class: candidate, home: it1, extra_groups: [classes]}
grants:
  - {id: admins, holder: folder/admin, target: folder/acme, rights: [edit, assign]}
  - {id: console, holder: folder/admin, rights: [console], expires_at: 2030-01-01T00:00:00Z}
locks:
  - {id: qa-carl, target: user/carl, reason: QA verified}
`

func parse(t testing.TB, name, text string) *orgfile.File {
	t.Helper()
	f, err := orgfile.Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return f
}

func load(t testing.TB, f *orgfile.File) *graph.Index {
	t.Helper()
	ix, err := orgfile.Load(context.Background(), f, graphtest.NewClock(graphtest.Start))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(ix.Close)
	return ix
}

// export reads an index's whole state back as a file.
func export(t testing.TB, ix *graph.Index) *orgfile.File {
	t.Helper()
	snap, err := ix.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var muts []graph.Mutation
	if err := snap.Mutations(func(m graph.Mutation) error { muts = append(muts, m); return nil }); err != nil {
		t.Fatal(err)
	}
	f, err := orgfile.FromMutations(muts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSampleLoadsAndDecides(t *testing.T) {
	ix := load(t, parse(t, "sample.yaml", sample))
	for _, c := range []struct {
		user, right string
		x           graph.Ref
		want        graph.Reason
	}{
		{"alice", "edit", graph.UserRef("carl"), graph.ReasonLocked},
		{"alice", "read", graph.UserRef("carl"), graph.ReasonAllowed},
		{"alice", "assign", graph.FolderRef("it1"), graph.ReasonAllowed},
		{"alice", "console", graph.Ref{}, graph.ReasonAllowed},
		{"carl", "read", graph.UserRef("carl"), graph.ReasonAllowed},
		{"carl", "read", graph.UserRef("alice"), graph.ReasonNoGrant},
	} {
		d, err := ix.Check(c.user, c.right, c.x)
		if err != nil || d.Reason != c.want {
			t.Errorf("%s %s %v: %v, %v; want %v", c.user, c.right, c.x, d.Reason, err, c.want)
		}
	}
	if r := string(orgfile.Render(export(t, ix))); r != string(orgfile.Render(parse(t, "sample.yaml", sample))) {
		t.Errorf("export differs from the file:\n%s", r)
	}
}

// TestEveryProblemWithItsPlace: a file with many mistakes reports each
// one, with its line and column, not only the first.
func TestEveryProblemWithItsPlace(t *testing.T) {
	bad := `rights: [read, {name: edit, implies: [reed]}]
organisations:
  - id: acme
    colour: blue
    folders:
      - id: it1
      - id: it1
users:
  - {id: carl, class: candidate, home: it9}
  - {id: dan, home: it1, state: sleeping}
grants:
  - {id: g1, holder: group/x, rights: [read]}
  - {id: g2, holder: folder/acme, rights: [fly], expires_at: tomorrow}
locks:
  - {id: l1}
`
	_, err := orgfile.Parse("bad.yaml", []byte(bad))
	var ps orgfile.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	want := []string{
		`bad.yaml:10:33: user dan: state "sleeping": want active, disabled or archived`,
		`bad.yaml:10:5: user dan: a class is required`,
		`bad.yaml:12:22: grant g1: holder "group/x": want folder/ID or user/ID`,
		`bad.yaml:13:44: grant g2: rights: "fly" is not a right of this file`,
		`bad.yaml:13:62: grant g2: expires_at "tomorrow": want an RFC 3339 time such as 2026-03-06T17:00:00Z`,
		`bad.yaml:15:5: lock l1: a target (folder/ID or user/ID) is required`,
		`bad.yaml:1:39: right edit: implies: "reed" is not a right of this file`,
		`bad.yaml:4:5: folder: unknown field "colour" (known: id, name, labels, admits, folders)`,
		`bad.yaml:7:13: folder "it1" is defined twice (first at line 6)`,
		`bad.yaml:9:40: user carl: home: "it9" is not a folder of this file`,
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, err = orgfile.Parse("cycle.yaml", []byte("rights: [read, {name: a, implies: [b]}, {name: b, implies: [a, read]}]\n"))
	if err == nil || !strings.Contains(err.Error(), "cycle.yaml:1:16: right a implies itself") || !strings.Contains(err.Error(), "right b implies itself") {
		t.Errorf("a cycle of implications: %v", err)
	}
	if _, err := orgfile.Parse("syntax.yaml", []byte("users:\n  - {id: a\n")); err == nil || !strings.HasPrefix(err.Error(), "syntax.yaml:") {
		t.Errorf("syntax error: %v", err)
	}
}

// TestLoadReportsRefusals: what only the index can refuse (a placement
// rule breached, a cycle of implications, a tenant crossed) is reported
// at the entity, every one of them.
func TestLoadReportsRefusals(t *testing.T) {
	text := `rights: [read]
organisations:
  - id: acme
    folders:
      - {id: admin, admits: [staff]}
  - id: beta
users:
  - {id: eve, class: candidate, home: admin}
  - {id: bob, class: staff, home: beta, extra_groups: [admin]}
`
	f := parse(t, "refused.yaml", text)
	ix, err := orgfile.Load(context.Background(), f, graphtest.NewClock(graphtest.Start))
	if ix != nil {
		defer ix.Close()
	}
	var ps orgfile.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want problems, got %v", err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	joined := strings.Join(got, "\n")
	for _, w := range []string{"refused.yaml:5:9: folder admin", `member "eve" has class "candidate"`, "refused.yaml:9:5: user bob", "crosses organisations"} {
		if !strings.Contains(joined, w) {
			t.Errorf("problems lack %q:\n%s", w, joined)
		}
	}
}

// cases is how many random organisations the property tests build.
func cases(t *testing.T) int {
	if s := os.Getenv("CANOPY_PROPERTY_CASES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if testing.Short() {
		return 20
	}
	return 200
}

func seedFor(t *testing.T, i int) uint64 {
	if s := os.Getenv("CANOPY_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return uint64(time.Now().UnixNano()) + uint64(i)*7919
}

// TestRoundTrip: on random organisations, a file renders, parses back to
// the same file, loads into the index, and exports to the same bytes.
func TestRoundTrip(t *testing.T) {
	for i := range cases(t) {
		seed := seedFor(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			f := randomFile(rand.New(rand.NewPCG(seed, seed>>7)))
			text := orgfile.Render(f)
			back := parse(t, "random.yaml", string(text))
			if again := orgfile.Render(back); string(again) != string(text) {
				t.Fatalf("render, parse, render differ:\n%s\n---\n%s", text, again)
			}
			ix := load(t, back)
			if got := orgfile.Render(export(t, ix)); string(got) != string(text) {
				t.Fatalf("exported state differs from the file:\n%s\n---\n%s", text, got)
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d", seed)
		}
	}
}

// TestPlanConverges: on random pairs of organisations, the second made by
// random edits of the first, the plan from the first to the second,
// committed as one batch, leaves exactly the second (with pruning), and
// without pruning deletes nothing.
func TestPlanConverges(t *testing.T) {
	changes := 0
	for i := range cases(t) {
		seed := seedFor(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed>>7))
			a := randomFile(r)
			ix := load(t, a)
			b := edit(r, a)
			want := orgfile.Render(b)
			plan := orgfile.Plan(export(t, ix), b, true)
			changes += len(plan)
			var muts []graph.Mutation
			for _, c := range plan {
				muts = append(muts, c.Mutation)
			}
			if _, err := ix.Write(context.Background(), "test", muts, graph.Preconditions{}); err != nil {
				t.Fatalf("plan refused: %v\nfrom:\n%s\nto:\n%s\nplan:\n%s", err, orgfile.Render(a), want, planText(plan))
			}
			if got := orgfile.Render(export(t, ix)); string(got) != string(want) {
				t.Fatalf("after the plan:\n%s\nwant:\n%s\nplan:\n%s", got, want, planText(plan))
			}
			if again := orgfile.Plan(export(t, ix), b, true); len(again) != 0 {
				t.Fatalf("a second plan is not empty:\n%s", planText(again))
			}
			for _, c := range orgfile.Plan(export(t, load(t, a)), b, false) {
				if c.Action == "delete" && c.Kind != "extra_group" && c.Kind != "placement_rule" {
					t.Fatalf("a plan without pruning deletes: %s", c)
				}
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d", seed)
		}
	}
	t.Logf("%d plans, %d changes", cases(t), changes)
}

func planText(plan []orgfile.Change) string {
	var s []string
	for _, c := range plan {
		s = append(s, c.String())
	}
	return strings.Join(s, "\n")
}

// randomFile makes a valid random state: one to three organisations,
// users of two classes, rules that admit what they hold, grants and locks
// within each organisation, a catalogue with implications.
func randomFile(r *rand.Rand) *orgfile.File {
	f := &orgfile.File{ManagesRights: true, SelfRights: &graph.SelfRights{Rights: []string{"read"}}}
	f.Rights = []graph.Right{{Name: "read"}, {Name: "edit", Implies: []string{"read"}}, {Name: "assign", Implies: []string{"read"}}}
	for i := range r.IntN(3) {
		f.Rights = append(f.Rights, graph.Right{Name: fmt.Sprintf("r%d", i), Implies: []string{"read"}[:r.IntN(2)]})
	}
	if r.IntN(3) == 0 {
		f.SelfRights.Rights = append(f.SelfRights.Rights, "edit")
	}
	rights := func() []string {
		var out []string
		for _, x := range f.Rights {
			if r.IntN(3) == 0 {
				out = append(out, x.Name)
			}
		}
		if len(out) == 0 {
			out = []string{f.Rights[r.IntN(len(f.Rights))].Name}
		}
		return out
	}
	orgOf := map[string]string{}
	var byOrg = map[string][]string{}
	for o := range 1 + r.IntN(3) {
		root := fmt.Sprintf("org%d", o)
		f.Folders = append(f.Folders, orgfile.Folder{Folder: graph.Folder{ID: root, Name: strings.ToUpper(root)}})
		orgOf[root] = root
		byOrg[root] = []string{root}
		for i := range r.IntN(12) {
			id := fmt.Sprintf("%s-f%d", root, i)
			parent := byOrg[root][r.IntN(len(byOrg[root]))]
			x := orgfile.Folder{Folder: graph.Folder{ID: id, Parent: parent}}
			if r.IntN(2) == 0 {
				x.Name = "Folder " + id
			}
			if r.IntN(4) == 0 {
				x.Labels = map[string]string{"site": []string{"north", "south"}[r.IntN(2)], "odd": "yes, \"quoted\": #1"}
			}
			f.Folders = append(f.Folders, x)
			orgOf[id] = root
			byOrg[root] = append(byOrg[root], id)
		}
	}
	var users []string
	userOrg := map[string]string{}
	for i := range r.IntN(15) {
		id := fmt.Sprintf("u%d", i)
		home := f.Folders[r.IntN(len(f.Folders))].ID
		org := orgOf[home]
		u := graph.User{ID: id, Class: []string{"staff", "candidate"}[r.IntN(2)], Home: home, State: graph.StateActive}
		if r.IntN(3) == 0 {
			u.Name = "User " + id
		}
		if r.IntN(5) == 0 {
			u.State = []graph.State{graph.StateDisabled, graph.StateArchived}[r.IntN(2)]
		}
		for range r.IntN(3) {
			g := byOrg[org][r.IntN(len(byOrg[org]))]
			if g != home && !slices.Contains(u.Extras, g) {
				u.Extras = append(u.Extras, g)
			}
		}
		f.Users = append(f.Users, u)
		users = append(users, id)
		userOrg[id] = org
	}
	// Rules admit every class that is a member below them, and now and
	// then only staff where no candidate is.
	for k := range f.Folders {
		if r.IntN(4) != 0 {
			continue
		}
		f.Folders[k].Admits = []string{"candidate", "staff"}
		if !hasCandidateBelow(f, f.Folders[k].ID) {
			f.Folders[k].Admits = []string{"staff"}
		}
	}
	ref := func(org string) graph.Ref {
		var inOrg []string
		for _, u := range users {
			if userOrg[u] == org {
				inOrg = append(inOrg, u)
			}
		}
		if len(inOrg) > 0 && r.IntN(3) == 0 {
			return graph.UserRef(inOrg[r.IntN(len(inOrg))])
		}
		return graph.FolderRef(byOrg[org][r.IntN(len(byOrg[org]))])
	}
	for i := range r.IntN(10) {
		org := f.Folders[0].ID
		for o := range byOrg {
			if r.IntN(2) == 0 {
				org = o
			}
		}
		g := graph.Grant{ID: fmt.Sprintf("g%d", i), Holder: ref(org), Rights: rights()}
		if r.IntN(4) != 0 {
			g.Target = ref(org)
		}
		if r.IntN(4) == 0 {
			g.ExpiresAt = graphtest.Start.Add(time.Duration(1+r.IntN(1000)) * time.Hour)
		}
		if r.IntN(3) == 0 {
			g.Reason = "because: it's needed"
		}
		f.Grants = append(f.Grants, g)
	}
	for i := range r.IntN(4) {
		org := f.Folders[r.IntN(len(f.Folders))].ID
		l := graph.Lock{ID: fmt.Sprintf("l%d", i), Target: ref(orgOf[org]), Rights: []string{"edit"}}
		if r.IntN(3) == 0 {
			l.Rights = []string{"read"}
			l.Reason = "QA"
		}
		f.Locks = append(f.Locks, l)
	}
	return reparse(f)
}

// hasCandidateBelow reports whether a candidate is a member of folder id.
func hasCandidateBelow(f *orgfile.File, id string) bool {
	parent := map[string]string{}
	for _, x := range f.Folders {
		parent[x.ID] = x.Parent
	}
	below := func(x string) bool {
		for ; x != ""; x = parent[x] {
			if x == id {
				return true
			}
		}
		return false
	}
	for _, u := range f.Users {
		if u.Class != "candidate" {
			continue
		}
		for _, g := range append([]string{u.Home}, u.Extras...) {
			if below(g) {
				return true
			}
		}
	}
	return false
}

// reparse gives a built file the positions and canonical order of one read
// from text.
func reparse(f *orgfile.File) *orgfile.File {
	back, err := orgfile.Parse("random.yaml", orgfile.Render(f))
	if err != nil {
		panic(fmt.Sprintf("a random file does not parse: %v\n%s", err, orgfile.Render(f)))
	}
	return back
}

// edit makes a second valid state from f by random changes: renames,
// relabels, moves within an organisation, new and removed folders, users,
// grants and locks, changed classes, states, extra groups, rules and
// rights.
func edit(r *rand.Rand, f *orgfile.File) *orgfile.File {
	for try := 0; ; try++ {
		g := reparse(f)
		mutate(r, g)
		g = reparse(g)
		ix, err := orgfile.Load(context.Background(), g, graphtest.NewClock(graphtest.Start))
		if ix != nil {
			ix.Close()
		}
		if err == nil {
			return g
		}
		if try > 100 {
			panic("no valid edit in 100 tries: " + err.Error())
		}
	}
}

func mutate(r *rand.Rand, f *orgfile.File) {
	// Drop some folders that are leaves, with what names them.
	gone := map[string]bool{}
	for _, x := range f.Folders {
		leaf := !slices.ContainsFunc(f.Folders, func(y orgfile.Folder) bool { return y.Parent == x.ID })
		if leaf && x.Parent != "" && r.IntN(6) == 0 {
			gone[x.ID] = true
		}
	}
	f.Folders = slices.DeleteFunc(f.Folders, func(x orgfile.Folder) bool { return gone[x.ID] })
	f.Users = slices.DeleteFunc(f.Users, func(u graph.User) bool { return gone[u.Home] || r.IntN(8) == 0 })
	kept := map[string]bool{}
	for _, u := range f.Users {
		kept[u.ID] = true
	}
	named := func(x graph.Ref) bool {
		return x.IsZero() || x.Kind == graph.KindFolder && !gone[x.ID] || x.Kind == graph.KindUser && kept[x.ID]
	}
	f.Grants = slices.DeleteFunc(f.Grants, func(g graph.Grant) bool { return !named(g.Holder) || !named(g.Target) || r.IntN(6) == 0 })
	f.Locks = slices.DeleteFunc(f.Locks, func(l graph.Lock) bool { return !named(l.Target) || r.IntN(4) == 0 })
	orgOf := map[string]string{}
	for _, x := range f.Folders {
		if x.Parent == "" {
			orgOf[x.ID] = x.ID
		} else {
			orgOf[x.ID] = orgOf[x.Parent]
		}
	}
	inOrg := func(org string) []string {
		var out []string
		for _, x := range f.Folders {
			if orgOf[x.ID] == org {
				out = append(out, x.ID)
			}
		}
		return out
	}
	for k := range f.Folders {
		x := &f.Folders[k]
		switch r.IntN(8) {
		case 0:
			x.Name = "Renamed " + x.ID
		case 1:
			x.Labels = map[string]string{"site": "east"}
		case 2:
			if x.Parent != "" { // move under a folder of the organisation that is not below it
				cands := inOrg(orgOf[x.ID])
				to := cands[r.IntN(len(cands))]
				if !isBelow(f, to, x.ID) {
					x.Parent = to
				}
			}
		case 3:
			x.Admits = nil
		case 4:
			x.Admits = []string{"candidate", "staff"}
		}
	}
	for k := range f.Users {
		u := &f.Users[k]
		org := orgOf[u.Home]
		switch r.IntN(6) {
		case 0:
			cands := inOrg(org)
			u.Home = cands[r.IntN(len(cands))]
		case 1:
			u.Class = []string{"staff", "candidate"}[r.IntN(2)]
			u.Name = "Changed"
		case 2:
			u.State = []graph.State{graph.StateActive, graph.StateDisabled}[r.IntN(2)]
		case 3:
			u.Extras = slices.DeleteFunc(u.Extras, func(string) bool { return r.IntN(2) == 0 })
			cands := inOrg(org)
			if g := cands[r.IntN(len(cands))]; g != u.Home && !slices.Contains(u.Extras, g) {
				u.Extras = append(u.Extras, g)
			}
		}
		u.Extras = slices.DeleteFunc(u.Extras, func(g string) bool { return gone[g] || g == u.Home })
	}
	for k := range f.Grants {
		if r.IntN(5) == 0 {
			f.Grants[k].Rights = []string{"read"}
			f.Grants[k].Reason = "narrowed"
		}
	}
	n := len(f.Folders)
	for i := range r.IntN(4) {
		p := f.Folders[r.IntN(n)]
		f.Folders = append(f.Folders, orgfile.Folder{Folder: graph.Folder{ID: fmt.Sprintf("new%d", i), Parent: p.ID}})
		f.Users = append(f.Users, graph.User{ID: fmt.Sprintf("newu%d", i), Class: "staff", Home: fmt.Sprintf("new%d", i), State: graph.StateActive})
		f.Grants = append(f.Grants, graph.Grant{ID: fmt.Sprintf("newg%d", i), Holder: graph.FolderRef(fmt.Sprintf("new%d", i)), Target: graph.FolderRef(p.ID), Rights: []string{"edit"}})
	}
	if r.IntN(3) == 0 {
		f.Rights = append(f.Rights, graph.Right{Name: "extra", Implies: []string{"edit"}})
		f.Grants = append(f.Grants, graph.Grant{ID: "uses-extra", Holder: graph.FolderRef(f.Folders[0].ID), Rights: []string{"extra"}})
	}
	if r.IntN(3) == 0 {
		f.Rights = slices.DeleteFunc(f.Rights, func(x graph.Right) bool {
			used := slices.ContainsFunc(f.Grants, func(g graph.Grant) bool { return slices.Contains(g.Rights, x.Name) }) ||
				slices.ContainsFunc(f.Locks, func(l graph.Lock) bool { return slices.Contains(l.Rights, x.Name) }) ||
				slices.Contains(f.SelfRights.Rights, x.Name) ||
				slices.ContainsFunc(f.Rights, func(y graph.Right) bool { return slices.Contains(y.Implies, x.Name) })
			return strings.HasPrefix(x.Name, "r") && !used
		})
	}
	if r.IntN(4) == 0 {
		f.SelfRights.Rights = []string{"read"}
	}
}

// isBelow reports whether folder x is id or lies below it in f.
func isBelow(f *orgfile.File, x, id string) bool {
	parent := map[string]string{}
	for _, y := range f.Folders {
		parent[y.ID] = y.Parent
	}
	for ; x != ""; x = parent[x] {
		if x == id {
			return true
		}
	}
	return false
}
