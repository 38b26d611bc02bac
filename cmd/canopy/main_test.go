package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/server/servertest"
)

// atlas starts a real server loaded with the ATLAS example and points the
// command line's config file at a fresh temporary one.
func atlas(t *testing.T) *servertest.Server {
	t.Helper()
	t.Setenv("CANOPY_CLI_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	for _, k := range []string{"CANOPY_ADDR", "CANOPY_TOKEN", "CANOPY_TOKEN_FILE", "CANOPY_CONTEXT", "CANOPY_TLS", "CANOPY_TLS_CA"} {
		t.Setenv(k, "")
	}
	return servertest.StartExample(t, "atlas")
}

// result is what one run of the command line printed and its exit code.
type result struct {
	out, err string
	code     int
}

// run runs canopy with args against addr, with stdin.
func run(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	if addr != "" {
		args = append([]string{"--addr", addr}, args...)
	}
	code := execute(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return result{out.String(), errOut.String(), code}
}

// must runs canopy and fails the test unless it exits with code.
func must(t *testing.T, code int, addr string, args ...string) result {
	t.Helper()
	r := run(t, addr, "", args...)
	if r.code != code {
		t.Fatalf("canopy %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.out, r.err)
	}
	return r
}

// TestEveryCommandSaysWhatItDoes: each command has a summary and an
// example, so --help always shows one.
func TestEveryCommandSaysWhatItDoes(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Short == "" || c.Example == "" {
			t.Errorf("%q has no summary or no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk((&app{}).rootCommand())
	r := must(t, 0, "", "--help")
	for _, want := range []string{"Directory:", "Access:", "Change streams and the audit trail:", "check", "explain", "watch-access", "completion"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("canopy --help lacks %q:\n%s", want, r.out)
		}
	}
	if r := must(t, 0, "", "completion", "bash"); !strings.Contains(r.out, "bash completion") {
		t.Errorf("no bash completion: %.200s", r.out)
	}
	if r := must(t, 0, "", "version"); !strings.HasPrefix(r.out, "canopy ") {
		t.Errorf("version: %q", r.out)
	}
}

// TestCheckExitCodes: 0 allowed, 1 denied, 2 an error, like kubectl auth can-i.
func TestCheckExitCodes(t *testing.T) {
	s := atlas(t)
	if r := must(t, 0, s.Addr, "check", "tom", "edit", "user/carl"); r.out != "allowed (revision 2)\n" {
		t.Errorf("allowed: %q", r.out)
	}
	if r := must(t, 1, s.Addr, "check", "tom", "assign", "user/carl"); r.out != "denied: no grant (revision 2)\n" {
		t.Errorf("denied: %q", r.out)
	}
	must(t, 0, s.Addr, "check", "alice", "user_administrator")
	must(t, 1, s.Addr, "check", "nobody", "read", "user/carl")
	r := must(t, 2, s.Addr, "check", "tom", "read", "user/ghost")
	if r.err != "canopy: not found: check \"ghost\": no such user\n" {
		t.Errorf("unknown resource: %q", r.err)
	}
	if r := must(t, 2, s.Addr, "check", "tom", "read", "carl"); !strings.Contains(r.err, `reference "carl": want folder/ID or user/ID`) {
		t.Errorf("bad reference: %q", r.err)
	}
	// A denied check in JSON still says allowed: false.
	r = must(t, 1, s.Addr, "check", "tom", "assign", "user/carl", "-o", "json")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || got["allowed"] != false || got["reason"] != "REASON_NO_GRANT" || got["revision"] != "2" {
		t.Errorf("denied as JSON: %s (%v)", r.out, err)
	}
	if r := must(t, 2, "127.0.0.1:1", "--timeout", "2s", "check", "tom", "read", "user/carl"); !strings.Contains(r.err, "is canopyd running?") || strings.Count(r.err, "\n") != 1 {
		t.Errorf("no server: %q", r.err)
	}
}

// TestExplainDrawsTheChain: the path of an allowed decision, the lock of a
// locked one, and what is missing from one with no grant.
func TestExplainDrawsTheChain(t *testing.T) {
	s := atlas(t)
	r := must(t, 0, s.Addr, "explain", "alice", "edit", "user/carl")
	want := `ALLOWED: alice edit on user/carl, revision 2
  user    alice
  member  admin-main
  holder  folder/admin-main
  grant   access-admin-main gives assign, edit
  target  folder/acme
  path    acme > candidates > it1 > user/carl
`
	if r.out != want {
		t.Errorf("explain allowed:\n%s\nwant:\n%s", r.out, want)
	}
	r = must(t, 1, s.Addr, "explain", "tom", "assign", "user/carl")
	for _, w := range []string{"DENIED: tom assign on user/carl (no grant)", "missing a grant of assign", "access-it1-teacher: edit, read on folder/it1 (via it1-teacher)"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("explain no grant lacks %q:\n%s", w, r.out)
		}
	}
	must(t, 0, s.Addr, "locks", "add", "qa-carl", "--target", "user/carl", "--reason", "QA verified")
	r = must(t, 1, s.Addr, "explain", "alice", "edit", "user/carl")
	for _, w := range []string{"(locked)", "lock    qa-carl denies edit on user/carl (QA verified)"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("explain locked lacks %q:\n%s", w, r.out)
		}
	}
	must(t, 0, s.Addr, "users", "disable", "tom")
	if r := must(t, 1, s.Addr, "explain", "tom", "read", "user/carl"); !strings.Contains(r.out, "tom is not active") {
		t.Errorf("explain disabled: %s", r.out)
	}
}

// TestTree draws the ATLAS organisation with its counts.
func TestTree(t *testing.T) {
	s := atlas(t)
	r := must(t, 0, s.Addr, "folders", "tree")
	want := `acme  "Acme Training" · 2 grants
├── admin-main  "Admin Main" · 1 user · 2 grants · admits staff
├── admin-sub  "Admin Sub" · 1 grant · admits staff
│   ├── it1-teacher  "IT1 Teacher" · 1 user · 1 grant
│   └── it2-teacher  "IT2 Teacher" · 1 grant
├── candidates  "Candidates" · 1 grant
│   ├── it1  "IT1" · 1 user · 1 grant
│   ├── it2  "IT2" · 1 user · 1 grant
│   └── it3  "IT3"
└── invigilators  "Invigilators" · 1 user · 2 grants · admits staff
`
	if r.out != want {
		t.Errorf("tree:\n%s\nwant:\n%s", r.out, want)
	}
	r = must(t, 0, s.Addr, "folders", "tree", "candidates", "--depth", "1", "-o", "json")
	var got treeOut
	if err := json.Unmarshal([]byte(r.out), &got); err != nil || len(got.Folders) != 1 || got.Folders[0].ID != "candidates" || len(got.Folders[0].Children) != 0 || got.Revision != 2 {
		t.Errorf("tree as JSON: %s (%v)", r.out, err)
	}
	if r := must(t, 2, s.Addr, "folders", "tree", "nowhere"); !strings.Contains(r.err, `no folder "nowhere"`) {
		t.Errorf("tree of nothing: %q", r.err)
	}
}

// TestWrites: every directory command changes what the index holds, and
// a refused one changes nothing and names the id.
func TestWrites(t *testing.T) {
	s := atlas(t)
	ix := s.Index
	must(t, 0, s.Addr, "folders", "create", "it4", "--parent", "candidates", "--name", "IT4", "--label", "year=2026")
	must(t, 0, s.Addr, "folders", "rename", "it4", "IT Four")
	must(t, 0, s.Addr, "folders", "relabel", "it4", "year=2027", "site=north")
	must(t, 0, s.Addr, "folders", "move", "it3", "it4")
	f, _, _, err := ix.GetFolder("it4")
	if err != nil || f.Name != "IT Four" || f.Labels["year"] != "2027" || f.Labels["site"] != "north" {
		t.Fatalf("it4: %+v, %v", f, err)
	}
	if f, _, _, _ := ix.GetFolder("it3"); f.Parent != "it4" {
		t.Fatalf("it3 under %q", f.Parent)
	}
	must(t, 0, s.Addr, "users", "create", "dan", "--class", "candidate", "--home", "it4", "--name", "Dan", "--extra", "it3")
	must(t, 0, s.Addr, "users", "update", "dan", "--name", "Daniel")
	must(t, 0, s.Addr, "users", "leave", "dan", "it3")
	must(t, 0, s.Addr, "users", "join", "dan", "it2")
	must(t, 0, s.Addr, "users", "move", "dan", "it1")
	must(t, 0, s.Addr, "users", "archive", "dan")
	u, _, err := ix.GetUser("dan")
	if err != nil || u.Name != "Daniel" || u.Class != "candidate" || u.Home != "it1" || len(u.Extras) != 1 || u.Extras[0] != "it2" || u.State != graph.StateArchived {
		t.Fatalf("dan: %+v, %v", u, err)
	}
	must(t, 0, s.Addr, "users", "enable", "dan")
	must(t, 0, s.Addr, "rights", "put", "view_reports", "--implies", "read")
	must(t, 0, s.Addr, "grants", "add", "reports", "--holder", "user/dan", "--target", "folder/it1", "--rights", "view_reports", "--expires", "72h", "--reason", "term report")
	must(t, 0, s.Addr, "check", "dan", "read", "user/carl")
	r := must(t, 0, s.Addr, "grants", "list", "--holder", "user/dan")
	if !strings.Contains(r.out, "reports") || !strings.Contains(r.out, "term report") {
		t.Errorf("grants of dan:\n%s", r.out)
	}
	must(t, 0, s.Addr, "locks", "add", "freeze", "--target", "folder/it1", "--rights", "read")
	must(t, 1, s.Addr, "check", "dan", "read", "user/carl")
	must(t, 0, s.Addr, "locks", "remove", "freeze")
	must(t, 0, s.Addr, "grants", "remove", "reports")
	must(t, 0, s.Addr, "rights", "delete", "view_reports")
	must(t, 0, s.Addr, "rights", "self", "read", "edit")
	must(t, 0, s.Addr, "check", "carl", "edit", "user/carl")
	must(t, 0, s.Addr, "rights", "self", "read")
	must(t, 0, s.Addr, "rules", "set", "it4", "candidate")
	if r := must(t, 0, s.Addr, "rules", "list"); !strings.Contains(r.out, "it4           candidate") {
		t.Errorf("rules:\n%s", r.out)
	}
	must(t, 0, s.Addr, "rules", "remove", "it4")

	// Refused: the error names the id, and nothing changes.
	rev := ix.Revision()
	if r := must(t, 2, s.Addr, "users", "move", "carl", "invigilators"); !strings.Contains(r.err, `canopy: failed precondition: move_user "carl": placement rule breached`) {
		t.Errorf("placement: %q", r.err)
	}
	if r := must(t, 2, s.Addr, "folders", "delete", "candidates"); !strings.Contains(r.err, `"candidates"`) {
		t.Errorf("non-empty delete: %q", r.err)
	}
	if r := must(t, 2, s.Addr, "folders", "create", "x", "--parent", "acme", "--if-revision", "1"); !strings.Contains(r.err, "failed precondition") {
		t.Errorf("stale revision: %q", r.err)
	}
	if ix.Revision() != rev {
		t.Fatalf("refused writes moved the revision from %d to %d", rev, ix.Revision())
	}
	must(t, 0, s.Addr, "users", "delete", "dan")
	must(t, 0, s.Addr, "folders", "delete", "it4", "--cascade")
	if _, _, _, err := ix.GetFolder("it3"); err == nil {
		t.Fatal("it3 survived the cascade")
	}
	if r := must(t, 0, s.Addr, "folders", "create", "beta", "-o", "json"); !strings.Contains(r.out, `"revision"`) {
		t.Errorf("write as JSON: %s", r.out)
	}
}

// TestReads: lists, lookups, access and status, as tables and as JSON
// and YAML in the API's field names.
func TestReads(t *testing.T) {
	s := atlas(t)
	r := must(t, 0, s.Addr, "users", "list", "candidates", "--subtree")
	if !strings.Contains(r.out, "carl  Carl Candidate  candidate  active  it1") {
		t.Errorf("users:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "users", "get", "ian", "-o", "yaml"); !strings.Contains(r.out, "home: invigilators") || !strings.Contains(r.out, "state: USER_STATE_ACTIVE") {
		t.Errorf("user as YAML:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "folders", "list"); !strings.Contains(r.out, "acme") {
		t.Errorf("organisations:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "folders", "get", "admin-main"); !strings.Contains(r.out, "staff") {
		t.Errorf("folder:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "lookup-resources", "ian", "read", "--kind", "user"); r.out != "cara\ncarl\nian\n" {
		t.Errorf("ian reads: %q", r.out)
	}
	if r := must(t, 0, s.Addr, "lookup-subjects", "edit", "user/carl", "-o", "json"); !strings.Contains(r.out, `"ids": [`) {
		t.Errorf("who edits carl: %s", r.out)
	}
	r = must(t, 0, s.Addr, "access", "ian")
	if !strings.Contains(r.out, "access-invigilators") || !strings.Contains(r.out, "folder/candidates") {
		t.Errorf("access:\n%s", r.out)
	}
	r = must(t, 0, s.Addr, "status", "-o", "json")
	var st struct {
		Health string
		Server struct {
			Revision string
			Users    string
		}
	}
	if err := json.Unmarshal([]byte(r.out), &st); err != nil || st.Health != "SERVING" || st.Server.Revision != "2" || st.Server.Users != "5" {
		t.Errorf("status: %s (%v)", r.out, err)
	}
	if r := must(t, 0, s.Addr, "rights", "list"); !strings.Contains(r.out, "edit                read") || !strings.Contains(r.out, "self rights: read") {
		t.Errorf("rights:\n%s", r.out)
	}
	r = run(t, s.Addr, "# teachers\ntom edit user/carl\ntom assign user/carl\n\nalice user_administrator\n", "batch-check")
	if r.code != 1 || !strings.Contains(r.out, "tom assign user/carl      denied    no grant") {
		t.Errorf("batch-check: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// A line the server cannot decide shows its own error; the others are
	// decided, and the exit is 2.
	if r := run(t, s.Addr, "tom edit user/carl\ntom fly user/carl\n", "batch-check"); r.code != 2 ||
		!strings.Contains(r.out, "allowed") || !strings.Contains(r.out, "fly") || !strings.Contains(r.err, "1 of 2 checks could not be decided") {
		t.Errorf("batch-check with an unknown right: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := run(t, s.Addr, "tom\n", "batch-check"); r.code != 2 || !strings.Contains(r.err, "line 1") {
		t.Errorf("batch-check of a bad line: exit %d %q", r.code, r.err)
	}
	if r := must(t, 2, s.Addr, "-o", "xml", "status"); !strings.Contains(r.err, `output "xml"`) {
		t.Errorf("bad output: %q", r.err)
	}
}

// TestContexts: a context named in the config file says where to connect;
// the token comes from a file it names, never from the config itself.
func TestContexts(t *testing.T) {
	s := atlas(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, 0, "", "context", "set", "local", "--addr", s.Addr)
	must(t, 0, "", "context", "set", "other", "--addr", "127.0.0.1:1", "--token-file", tokenFile)
	if r := must(t, 0, "", "context", "list"); !strings.Contains(r.out, "*        local") || !strings.Contains(r.out, tokenFile) {
		t.Errorf("contexts:\n%s", r.out)
	}
	must(t, 0, "", "check", "tom", "edit", "user/carl")
	must(t, 0, "", "context", "use", "other")
	must(t, 2, "", "--timeout", "1s", "check", "tom", "edit", "user/carl")
	must(t, 0, "", "--context", "local", "check", "tom", "edit", "user/carl")
	t.Setenv("CANOPY_ADDR", s.Addr) // the environment wins over the context
	must(t, 0, "", "check", "tom", "edit", "user/carl")
	if r := must(t, 2, "", "context", "use", "nowhere"); !strings.Contains(r.err, `context "nowhere"`) {
		t.Errorf("unknown context: %q", r.err)
	}
	raw, _ := os.ReadFile(os.Getenv("CANOPY_CLI_CONFIG"))
	if strings.Contains(string(raw), "secret") {
		t.Fatal("the config file holds a token")
	}
}

// TestWatch prints one line per change, and watch-access one per region.
func TestWatch(t *testing.T) {
	s := atlas(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// lines runs a stream command; its lines arrive on the channel, read
	// off the pipe as they come so that the command never blocks writing.
	lines := func(args ...string) (chan string, chan int) {
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		out := make(chan string, 1000)
		go func() {
			done <- execute(ctx, append([]string{"--addr", s.Addr}, args...), strings.NewReader(""), pw, io.Discard)
			pw.Close()
		}()
		go func() {
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				out <- sc.Text()
			}
			close(out)
		}()
		return out, done
	}
	next := func(ch chan string) string {
		t.Helper()
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatal("stream ended")
			}
			return l
		case <-ctx.Done():
			t.Fatal("no line in time")
		}
		return ""
	}
	// until returns the first line with all of want in it.
	until := func(ch chan string, want ...string) string {
		t.Helper()
		for {
			l := next(ch)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l, w)
			}
			if ok {
				return l
			}
		}
	}
	w, wdone := lines("watch", "--from", "2", "--kinds", "users")
	if l := next(w); !strings.HasPrefix(l, "2\t") || !strings.Contains(l, "create_user alice:") {
		t.Errorf("first watched line: %q", l)
	}
	a, adone := lines("watch-access", "ian")
	until(a, "has\tread on folder/candidates")
	must(t, 0, s.Addr, "users", "update", "ian", "--name", "Ian I.")
	must(t, 0, s.Addr, "grants", "remove", "access-invigilators")
	until(a, "lost\tread on folder/candidates", "remove_grant")
	if l := until(w, "update_user"); !strings.HasPrefix(l, "3\t") || !strings.Contains(l, "Ian I.") {
		t.Errorf("watched update: %q", l)
	}
	cancel()
	if code := <-wdone; code != 0 {
		t.Errorf("watch ended with %d", code)
	}
	if code := <-adone; code != 0 {
		t.Errorf("watch-access ended with %d", code)
	}
}

// TestWriteAsUser: --as-user writes on behalf of a user, refused with a
// line naming the right and the object when they lack it.
func TestWriteAsUser(t *testing.T) {
	s := atlas(t)
	must(t, 0, s.Addr, "users", "update", "carl", "--name", "Carl reset", "--as-user", "tom")
	r := must(t, 2, s.Addr, "users", "update", "cara", "--name", "Cara reset", "--as-user", "tom")
	if !strings.Contains(r.err, "permission denied") || !strings.Contains(r.err, "edit on user:cara") {
		t.Errorf("a write tom may not make: %q", r.err)
	}
}

// TestReadAsUser: --as-user on a directory read lists only what the user
// may read, and refuses a get of anything else naming it.
func TestReadAsUser(t *testing.T) {
	s := atlas(t)
	r := must(t, 0, s.Addr, "users", "list", "acme", "--subtree", "--as-user", "tom")
	if !strings.Contains(r.out, "carl") || strings.Contains(r.out, "cara") || strings.Contains(r.out, "alice") {
		t.Errorf("the users tom may read:\n%s", r.out)
	}
	r = must(t, 2, s.Addr, "folders", "get", "it2", "--as-user", "tom")
	if !strings.Contains(r.err, "permission denied") || !strings.Contains(r.err, "read on folder:it2") {
		t.Errorf("a folder tom may not read: %q", r.err)
	}
}

// TestDryRun: --dry-run on a write shows what it would do to access, line
// by line, and writes nothing; a refused one is refused as the write is.
func TestDryRun(t *testing.T) {
	s := atlas(t)
	rev := s.Index.Revision()
	r := must(t, 0, s.Addr, "grants", "add", "tom-assign", "--holder", "user/tom", "--target", "folder/it1", "--rights", "assign", "--dry-run")
	for _, w := range []string{"access: 1 user would change", "assign: 2 records gained, 0 lost", "+ tom assign on folder/it1  (mutation 0: add_grant tom-assign: user/tom gets assign on folder/it1)"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("the dry run lacks %q:\n%s", w, r.out)
		}
	}
	r = must(t, 2, s.Addr, "grants", "add", "tom-assign", "--holder", "user/tom", "--target", "folder/it1", "--rights", "assign", "--dry-run", "--as-user", "tom")
	if !strings.Contains(r.err, "permission denied") || !strings.Contains(r.err, "assign") {
		t.Errorf("a dry run tom may not write: %q", r.err)
	}
	if s.Index.Revision() != rev {
		t.Fatal("a dry run wrote")
	}
}

// TestTimeBoxedFlags: --active-until and --starts reach the server, and
// the tables show them.
func TestTimeBoxedFlags(t *testing.T) {
	s := atlas(t)
	must(t, 0, s.Addr, "users", "create", "inspector", "--class", "staff", "--home", "admin-sub", "--active-until", "2099-03-06T17:00:00Z")
	must(t, 0, s.Addr, "grants", "add", "visit", "--holder", "user/inspector", "--target", "folder/it1", "--rights", "read",
		"--starts", "2099-03-02T08:00:00Z", "--expires", "2099-03-06T17:00:00Z")
	if r := must(t, 0, s.Addr, "users", "get", "inspector"); !strings.Contains(r.out, "active until 2099-03-06T17:00:00Z") {
		t.Errorf("the inspector:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "grants", "list", "--holder", "user/inspector"); !strings.Contains(r.out, "2099-03-02T08:00:00Z") {
		t.Errorf("the visit:\n%s", r.out)
	}
	// Before its start the grant gives nothing, and access says when it
	// will.
	must(t, 1, s.Addr, "check", "inspector", "read", "user/carl")
	if r := must(t, 1, s.Addr, "explain", "inspector", "read", "user/carl"); !strings.Contains(r.out, "grant   visit gives read from 2099-03-02T08:00:00Z") ||
		!strings.Contains(r.out, "the grant will allow it from 2099-03-02T08:00:00Z") {
		t.Errorf("why the inspector may not read carl yet:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "access", "inspector"); !strings.Contains(r.out, "visit (starts 2099-03-02T08:00:00Z)") {
		t.Errorf("the inspector's access:\n%s", r.out)
	}
	must(t, 0, s.Addr, "users", "enable", "inspector", "--active-until", "2099-04-01T00:00:00Z")
	if r := must(t, 0, s.Addr, "users", "get", "inspector"); !strings.Contains(r.out, "active until 2099-04-01T00:00:00Z") {
		t.Errorf("the inspector, extended:\n%s", r.out)
	}
}

// TestHistory: canopy history prints an object's trail newest first, an
// actor's, and the JSON of the entries with -o json; a malformed object
// is refused naming it.
func TestHistory(t *testing.T) {
	s := atlas(t)
	must(t, 0, s.Addr, "users", "update", "carl", "--name", "Carl C.", "--class", "candidate", "--as-user", "tom")
	must(t, 0, s.Addr, "users", "move", "carl", "it2")
	r := must(t, 0, s.Addr, "history", "user/carl")
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "REVISION") || !strings.Contains(lines[1], "move_user carl: to it2") ||
		!strings.Contains(lines[2], " tom ") || !strings.Contains(lines[3], "create_user carl:") {
		t.Fatalf("carl's history:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "history", "--acted-for", "tom", "-o", "json"); !strings.Contains(r.out, `"acted_for": "tom"`) || strings.Count(r.out, `"revision"`) != 1 {
		t.Fatalf("written for tom:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "history", "--limit", "1"); strings.Count(r.out, "\n") != 2 || !strings.Contains(r.out, "move_user") {
		t.Fatalf("the newest entry:\n%s", r.out)
	}
	if r := must(t, 2, s.Addr, "history", "team/x"); !strings.Contains(r.err, `"team/x"`) {
		t.Fatalf("a malformed object: %q", r.err)
	}
}
