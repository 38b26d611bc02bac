package orgfile_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/orgfile"
	"github.com/canopy-authz/canopy/orgfile/orgfiletest"
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

// TestRoundTrip: on random organisations, a file renders, parses back to
// the same file, loads into the index, and exports to the same bytes.
func TestRoundTrip(t *testing.T) {
	for i := range cases(t) {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			f := orgfiletest.Random(rand.New(rand.NewPCG(seed, seed>>7)), graphtest.Start)
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
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed>>7))
			a := orgfiletest.Random(r, graphtest.Start)
			ix := load(t, a)
			b := orgfiletest.Edit(r, a, graphtest.Start)
			want := orgfile.Render(b)
			plan := orgfile.Plan(export(t, ix), b, true)
			changes += len(plan)
			var muts []graph.Mutation
			for _, c := range plan {
				muts = append(muts, c.Mutation)
			}
			// An edit may change nothing; then there is nothing to write (an
			// empty batch is refused), and the state must be want already.
			if len(muts) > 0 {
				if _, err := ix.Write(context.Background(), "test", muts, graph.Preconditions{}); err != nil {
					t.Fatalf("plan refused: %v\nfrom:\n%s\nto:\n%s\nplan:\n%s", err, orgfile.Render(a), want, planText(plan))
				}
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

// TestSeedExamples: the seed organisations load, and every assertion of
// their validation files holds.
func TestSeedExamples(t *testing.T) {
	for _, name := range []string{"atlas", "aptem"} {
		results, err := orgfile.Validate(context.Background(), "../examples/organisations/"+name+".test.yaml")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(results) < 20 {
			t.Errorf("%s: only %d assertions ran", name, len(results))
		}
		for _, r := range results {
			if !r.Passed() {
				t.Errorf("%s", r)
			}
		}
	}
}

// TestFailingAssertions: an assertion that does not hold is reported with
// its line and what came back.
func TestFailingAssertions(t *testing.T) {
	dir := t.TempDir()
	org := filepath.Join(dir, "org.yaml")
	if err := os.WriteFile(org, []byte(sample), 0o600); err != nil {
		t.Fatal(err)
	}
	test := filepath.Join(dir, "org.test.yaml")
	if err := os.WriteFile(test, []byte(`organisation: org.yaml
checks:
  - alice edit user/carl -> allowed
  - alice read user/carl -> allowed
lookups:
  - {subjects: read user/carl, want: [alice]}
explanations:
  - {explain: alice edit user/carl, grant: admins}
refusals:
  - write: [{create_folder: {id: fine, parent: acme}}]
    error: placement
`), 0o600); err != nil {
		t.Fatal(err)
	}
	results, err := orgfile.Validate(context.Background(), test)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range results {
		got = append(got, r.String())
	}
	want := []string{
		test + ":3:5: alice edit user/carl -> allowed: got locked",
		test + ":4:5: alice read user/carl -> allowed",
		test + ":6:5: subjects read user/carl = [alice]: got [alice carl]",
		test + ":8:5: alice edit user/carl by grant admins: got lock qa-carl",
		test + ":10:5: write of 1 mutations refused: placement: got accepted (the state now includes it)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("results:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
