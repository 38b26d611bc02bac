package orgfile

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/scenario"
)

// Result is the outcome of one assertion of a validation file.
type Result struct {
	File string
	Pos  Pos
	// What is the assertion as written ("tom edit user/carl -> allowed").
	What string
	// Got is what came back when it failed; "" when it passed.
	Got string
}

// Passed reports whether the assertion held.
func (r Result) Passed() bool { return r.Got == "" }

// String writes the result as file:line:column: what, and what came
// back when it failed.
func (r Result) String() string {
	s := fmt.Sprintf("%s:%d:%d: %s", r.File, r.Pos.Line, r.Pos.Column, r.What)
	if !r.Passed() {
		s += ": got " + r.Got
	}
	return s
}

// settable is the clock of a validation: the time its assertions name.
type settable struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settable) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *settable) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Validate reads the validation file at path and runs its assertions in
// process, on the real index loaded with the organisation file it names:
//
//	organisation: atlas.yaml      # relative to the validation file
//	at: 2026-01-12T09:00:00Z      # the time decisions are made at (default: now)
//	checks:
//	  - tom edit user/carl -> allowed
//	  - {at: 2026-03-08T09:00:00Z, check: inspector read user/lea -> expired}
//	lookups:
//	  - {resources: ian read user, want: [cara, carl, ian]}
//	  - {subjects: edit user/carl, want: [alice, tom]}
//	explanations:
//	  - {explain: alice edit user/carl, grant: access-admin-main}
//	  - {explain: auditor edit user/lea, lock: qa-lea}
//	refusals:
//	  - write: [{create_user: {id: eve, class: candidate, home: admin-main}}]
//	    error: placement
//
// A path that is an organisation file itself is checked (Parse and Load)
// with no assertions. Problems in either file are returned as Problems;
// otherwise every assertion's Result, passed or failed.
func Validate(ctx context.Context, path string) ([]Result, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, Problems{{File: path, Pos: yamlErrorPos(err), Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	v := &validation{d: &decoder{f: &File{Name: path, pos: map[key]Pos{}}}, clock: &settable{t: time.Now()}}
	if len(doc.Content) == 0 || !hasKey(doc.Content[0], "organisation") {
		f, err := Parse(path, raw)
		if err != nil {
			return nil, err
		}
		ix, err := Load(ctx, f, v.clock)
		if ix != nil {
			ix.Close()
		}
		return nil, err
	}
	fs := v.d.fields(doc.Content[0], "the validation file", "organisation", "at", "checks", "lookups", "explanations", "refusals")
	orgPath := v.d.str(fs["organisation"], "organisation")
	if !filepath.IsAbs(orgPath) {
		orgPath = filepath.Join(filepath.Dir(path), orgPath)
	}
	if fs["at"] != nil {
		v.start = v.when(fs["at"])
		v.clock.set(v.start)
	}
	if len(v.d.probs) > 0 {
		return nil, v.d.probs
	}
	orgRaw, err := os.ReadFile(orgPath)
	if err != nil {
		return nil, Problems{{File: path, Pos: posOf(fs["organisation"]), Msg: err.Error()}}
	}
	f, err := Parse(orgPath, orgRaw)
	if err != nil {
		return nil, err
	}
	ix, err := Load(ctx, f, v.clock)
	if ix != nil {
		defer ix.Close()
	}
	if err != nil {
		return nil, err
	}
	v.ix = ix
	for _, n := range v.d.seq(fs["checks"], "checks") {
		v.check(n)
	}
	for _, n := range v.d.seq(fs["lookups"], "lookups") {
		v.lookup(n)
	}
	for _, n := range v.d.seq(fs["explanations"], "explanations") {
		v.explain(n)
	}
	for _, n := range v.d.seq(fs["refusals"], "refusals") {
		v.refusal(ctx, n)
	}
	if len(v.d.probs) > 0 {
		return v.results, v.d.probs
	}
	return v.results, nil
}

func hasKey(n *yaml.Node, k string) bool {
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == k {
			return true
		}
	}
	return false
}

// validation runs one validation file's assertions.
type validation struct {
	d       *decoder
	ix      *graph.Index
	clock   *settable
	start   time.Time
	results []Result
}

func (v *validation) result(n *yaml.Node, what, got string) {
	v.results = append(v.results, Result{File: v.d.f.Name, Pos: posOf(n), What: what, Got: got})
}

func (v *validation) when(n *yaml.Node) time.Time {
	t, err := time.Parse(time.RFC3339, v.d.str(n, "at"))
	if err != nil {
		v.d.at(n, "at %q: want an RFC 3339 time such as 2026-03-06T17:00:00Z", n.Value)
	}
	return t
}

// question parses "USER RIGHT [RESOURCE]", the resource as folder/ID or
// user/ID (folder:ID and user:ID too), for a check with want appended.
func question(s, want string) (scenario.Check, error) {
	f := strings.Fields(s)
	if len(f) == 2 {
		f = append(f, "-")
	}
	if len(f) != 3 {
		return scenario.Check{}, fmt.Errorf("%q: want USER RIGHT [RESOURCE]", s)
	}
	f[2] = strings.Replace(f[2], "/", ":", 1)
	return scenario.ParseCheck(strings.Join(append(f, "->", want), " "))
}

// timed reads an assertion given as a string, or as a mapping with the
// string under field and, optionally, the time it is made at.
func (v *validation) timed(n *yaml.Node, field string, more ...string) (string, map[string]*yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		v.clock.set(v.start)
		return n.Value, nil
	}
	fs := v.d.fields(n, field, append([]string{field, "at"}, more...)...)
	if fs["at"] != nil {
		v.clock.set(v.when(fs["at"]))
	} else {
		v.clock.set(v.start)
	}
	return v.d.str(fs[field], field), fs
}

func (v *validation) check(n *yaml.Node) {
	s, _ := v.timed(n, "check")
	q, want, ok := strings.Cut(s, "->")
	if !ok {
		v.d.at(n, "check %q: want \"USER RIGHT [RESOURCE] -> REASON\"", s)
		return
	}
	c, err := question(strings.TrimSpace(q), strings.TrimSpace(want))
	if err != nil {
		v.d.at(n, "check: %v", err)
		return
	}
	d, err := v.ix.Check(c.User, c.Right, c.Resource)
	switch {
	case err != nil:
		v.result(n, s, "error "+err.Error())
	case d.Reason != c.Want:
		v.result(n, s, d.Reason.String())
	default:
		v.result(n, s, "")
	}
}

func (v *validation) lookup(n *yaml.Node) {
	fs := v.d.fields(n, "lookup", "resources", "subjects", "want", "at")
	if fs["at"] != nil {
		v.clock.set(v.when(fs["at"]))
	} else {
		v.clock.set(v.start)
	}
	want := v.d.strs(fs["want"], "want")
	if want == nil {
		want = []string{}
	}
	slices.Sort(want)
	var what string
	var page graph.Page
	var err error
	switch {
	case fs["resources"] != nil:
		what = "resources " + v.d.str(fs["resources"], "resources")
		f := strings.Fields(strings.TrimPrefix(what, "resources "))
		if len(f) != 3 || f[2] != "user" && f[2] != "folder" {
			v.d.at(n, "lookup %q: want resources: USER RIGHT user|folder", what)
			return
		}
		kind := graph.KindUser
		if f[2] == "folder" {
			kind = graph.KindFolder
		}
		page, err = v.ix.LookupResources(f[0], f[1], kind, "", 0)
	case fs["subjects"] != nil:
		what = "subjects " + v.d.str(fs["subjects"], "subjects")
		f := strings.Fields(strings.TrimPrefix(what, "subjects "))
		if len(f) == 1 {
			f = append(f, "-")
		}
		c, qerr := question("x "+strings.Join(f, " "), "allowed")
		if qerr != nil {
			v.d.at(n, "lookup %q: want subjects: RIGHT [RESOURCE]", what)
			return
		}
		page, err = v.ix.LookupSubjects(c.Right, c.Resource, "", 0)
	default:
		v.d.at(n, "lookup: give resources: USER RIGHT KIND, or subjects: RIGHT [RESOURCE]")
		return
	}
	what += fmt.Sprintf(" = %v", want)
	got := page.IDs
	if got == nil {
		got = []string{}
	}
	switch {
	case err != nil:
		v.result(n, what, "error "+err.Error())
	case !slices.Equal(got, want):
		v.result(n, what, fmt.Sprint(got))
	default:
		v.result(n, what, "")
	}
}

func (v *validation) explain(n *yaml.Node) {
	s, fs := v.timed(n, "explain", "grant", "lock", "self")
	c, err := question(s, "allowed")
	if err != nil || fs == nil {
		v.d.at(n, "explanation: want {explain: USER RIGHT [RESOURCE], grant: ID} (or lock: ID, or self: true)")
		return
	}
	ex, err := v.ix.Explain(c.User, c.Right, c.Resource)
	var want, got string
	switch {
	case fs["grant"] != nil:
		want = "grant " + v.d.str(fs["grant"], "grant")
	case fs["lock"] != nil:
		want = "lock " + v.d.str(fs["lock"], "lock")
	case fs["self"] != nil:
		want = "self"
	default:
		v.d.at(n, "explanation %q: name the grant, the lock or self it should come to", s)
		return
	}
	switch {
	case err != nil:
		got = "error " + err.Error()
	case ex.Lock != nil:
		got = "lock " + ex.Lock.ID
	case ex.Self:
		got = "self"
	case ex.Grant != nil:
		got = "grant " + ex.Grant.ID
	default:
		got = ex.Reason.String()
	}
	if got == want {
		got = ""
	}
	v.result(n, s+" by "+want, got)
}

func (v *validation) refusal(ctx context.Context, n *yaml.Node) {
	fs := v.d.fields(n, "refusal", "write", "error", "at")
	if fs["at"] != nil {
		v.clock.set(v.when(fs["at"]))
	} else {
		v.clock.set(v.start)
	}
	var batch []graph.Mutation
	var raw any
	if fs["write"] == nil || fs["write"].Decode(&raw) != nil {
		v.d.at(n, "refusal: want write: a list of mutations, as in the change log")
		return
	}
	js, _ := json.Marshal(raw) // what YAML decoded, JSON encodes
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&batch); err != nil {
		v.d.at(fs["write"], "refusal: write: %v", err)
		return
	}
	want := v.d.str(fs["error"], "error")
	what := fmt.Sprintf("write of %d mutations refused: %s", len(batch), want)
	_, err := v.ix.Write(ctx, "canopy validate", batch, graph.Preconditions{})
	switch {
	case err == nil:
		v.result(n, what, "accepted (the state now includes it)")
	case want != "" && scenario.ErrorName(err) != want:
		v.result(n, what, err.Error())
	default:
		v.result(n, what, "")
	}
}
