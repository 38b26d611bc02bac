package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/orgfile"
	"github.com/canopy-authz/canopy/orgfile/orgfiletest"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server/servertest"
	"github.com/canopy-authz/canopy/store"
)

// empty starts a real server with nothing but the defaults.
func empty(t *testing.T, extra ...grpc.ServerOption) *servertest.Server {
	t.Helper()
	t.Setenv("CANOPY_CLI_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	t.Setenv("CANOPY_ADDR", "")
	return servertest.Start(t, extra...)
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const atlasFile = "../../examples/organisations/atlas.yaml"

// TestApplyDiffExport: diff shows what apply will do; apply does it in one
// write; then diff is empty; export gives the file back in canonical form;
// a change shows as a change, and deletions happen only with --prune.
func TestApplyDiffExport(t *testing.T) {
	s := empty(t)
	r := must(t, 1, s.Addr, "diff", "-f", atlasFile)
	if !strings.Contains(r.out, "+ folder it1: in candidates") || !strings.Contains(r.out, "28 to create, 0 to change, 0 to move, 0 to delete (against revision 1)") {
		t.Errorf("diff against an empty server:\n%s", r.out)
	}
	if s.Index.Revision() != 1 {
		t.Fatal("diff wrote")
	}
	if r := must(t, 0, s.Addr, "apply", "-f", atlasFile); !strings.HasSuffix(r.out, "applied at revision 2\n") {
		t.Errorf("apply:\n%s", r.out)
	}
	if r := must(t, 0, s.Addr, "diff", "-f", atlasFile); !strings.HasPrefix(r.out, "0 to create, 0 to change, 0 to move, 0 to delete") {
		t.Errorf("diff after apply:\n%s", r.out)
	}
	must(t, 0, s.Addr, "check", "tom", "edit", "user/carl")
	exported := must(t, 0, s.Addr, "export").out
	raw, _ := os.ReadFile(atlasFile)
	if uncommented(exported) != uncommented(string(raw)) {
		t.Errorf("export differs from the file it was applied from:\n%s", exported)
	}

	// Move it3 under admin-sub, rename it1, drop a grant and a user.
	changed := strings.NewReplacer(
		"          - id: it3\n            name: IT3\n", "",
		"            name: IT2 Teacher\n", "            name: IT2 Teacher\n          - id: it3\n            name: IT3\n",
		"name: IT1\n", "name: IT One\n",
		"  - {id: access-it2-teacher, holder: folder/it2-teacher, target: folder/it2, rights: [edit, read]}\n", "",
		"  - {id: cara, name: Cara Candidate, class: candidate, home: it2}\n", "",
	).Replace(string(raw))
	path := writeFile(t, "changed.yaml", changed)
	r = must(t, 1, s.Addr, "diff", "-f", path)
	for _, w := range []string{"> folder it3: candidates -> admin-sub", `~ folder it1: name "IT1" -> "IT One"`, "0 to create, 1 to change, 1 to move, 0 to delete"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("diff lacks %q:\n%s", w, r.out)
		}
	}
	if strings.Contains(r.out, "lifted") {
		t.Errorf("diff shows the rules' mechanics:\n%s", r.out)
	}
	must(t, 0, s.Addr, "apply", "-f", path)
	if _, _, err := s.Index.GetUser("cara"); err != nil {
		t.Fatal("apply without --prune deleted cara")
	}
	r = must(t, 0, s.Addr, "apply", "-f", path, "--prune", "--dry-run")
	if !strings.Contains(r.out, "- user cara") || !strings.Contains(r.out, "- grant access-it2-teacher") {
		t.Errorf("dry run with prune:\n%s", r.out)
	}
	if !strings.Contains(r.out, "access: 0 users would change, against revision 3") {
		t.Errorf("dry run with prune, what it does to access:\n%s", r.out) // it2-teacher has no members
	}
	if _, _, err := s.Index.GetUser("cara"); err != nil {
		t.Fatal("a dry run deleted cara")
	}
	must(t, 0, s.Addr, "apply", "-f", path, "--prune")
	if _, _, err := s.Index.GetUser("cara"); err == nil {
		t.Fatal("apply --prune kept cara")
	}
	if r := must(t, 0, s.Addr, "diff", "-f", path, "--prune", "-o", "json"); !strings.Contains(r.out, `"changes": null`) {
		t.Errorf("diff after prune: %s", r.out)
	}
	if r := must(t, 0, s.Addr, "export", "--org", "acme", "-o", "json"); !strings.Contains(r.out, `"organisations":`) {
		t.Errorf("export as JSON: %.300s", r.out)
	}
}

// uncommented drops comment lines, for comparing a hand-written file with
// an export.
func uncommented(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestApplyRefusesABrokenFile: every problem is printed with its line and
// column, and nothing is written.
func TestApplyRefusesABrokenFile(t *testing.T) {
	s := empty(t)
	path := writeFile(t, "broken.yaml", `organisations:
  - id: acme
    folders:
      - {id: admin, admits: [staff]}
users:
  - {id: eve, class: candidate, home: admin}
  - {id: bob, home: nowhere}
`)
	r := must(t, 2, s.Addr, "apply", "-f", path)
	for _, w := range []string{path + ":7:5: user bob: a class is required", path + `:7:21: user bob: home: "nowhere" is not a folder of this file`, "2 problems; nothing was written"} {
		if !strings.Contains(r.err, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.err)
		}
	}
	fixed := writeFile(t, "placement.yaml", `organisations:
  - id: acme
    folders:
      - {id: admin, admits: [staff]}
users:
  - {id: eve, class: candidate, home: admin}
`)
	if r := must(t, 2, s.Addr, "apply", "-f", fixed); !strings.Contains(r.err, fixed+":4:9: folder admin:") || !strings.Contains(r.err, `member "eve" has class "candidate"`) {
		t.Errorf("placement breach: %s", r.err)
	}
	if s.Index.Revision() != 1 {
		t.Fatal("a refused apply wrote")
	}
}

// TestApplyFailsCleanlyOnAConcurrentChange: a write that lands between
// apply's read of the server and its write makes the write fail, and
// nothing of the file is applied.
func TestApplyFailsCleanlyOnAConcurrentChange(t *testing.T) {
	var s *servertest.Server
	var once atomic.Bool
	meddle := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == pb.DirectoryService_Write_FullMethodName && once.CompareAndSwap(false, true) {
			if _, err := s.Index.Write(ctx, "someone else", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "other"}}}, graph.Preconditions{}); err != nil {
				return nil, err
			}
		}
		return h(ctx, req)
	}
	s = empty(t, grpc.ChainUnaryInterceptor(meddle))
	r := must(t, 2, s.Addr, "apply", "-f", atlasFile)
	if !strings.Contains(r.err, "failed precondition") {
		t.Errorf("apply after a concurrent change: %s", r.err)
	}
	if _, _, _, err := s.Index.GetFolder("acme"); err == nil || s.Index.Revision() != 2 {
		t.Fatalf("the file was half applied (revision %d)", s.Index.Revision())
	}
	must(t, 0, s.Addr, "apply", "-f", atlasFile) // read again, and it goes through
}

// TestApplyThroughImport: a difference larger than --batch streams through
// Import, each chunk's revision reported.
func TestApplyThroughImport(t *testing.T) {
	s := empty(t)
	r := must(t, 0, s.Addr, "apply", "-f", atlasFile, "--batch", "10")
	if !strings.Contains(r.out, "applied 28 mutations through Import") {
		t.Errorf("import:\n%s", r.out)
	}
	must(t, 0, s.Addr, "diff", "-f", atlasFile)
}

// TestRoundTripOnRandomOrganisations: export, apply into an empty server,
// export again gives the same bytes, on random organisations; and a
// random edit applied with --prune leaves exactly the edited file.
func TestRoundTripOnRandomOrganisations(t *testing.T) {
	n := 20
	if testing.Short() {
		n = 3
	}
	for i := range n {
		seed := uint64(time.Now().UnixNano()) + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed>>7))
			f := orgfiletest.Random(r, time.Now())
			a, b := empty(t), servertest.Start(t)
			path := writeFile(t, "random.yaml", string(orgfile.Render(f)))
			must(t, 0, a.Addr, "apply", "-f", path)
			first := must(t, 0, a.Addr, "export").out
			exported := writeFile(t, "export.yaml", first)
			must(t, 0, b.Addr, "apply", "-f", exported)
			if second := must(t, 0, b.Addr, "export").out; second != first {
				t.Fatalf("export, apply, export differ:\n%s\n---\n%s", first, second)
			}
			edited := orgfiletest.Edit(r, f, time.Now())
			path = writeFile(t, "edited.yaml", string(orgfile.Render(edited)))
			must(t, 0, b.Addr, "apply", "-f", path, "--prune")
			if got := must(t, 0, b.Addr, "export").out; got != string(orgfile.Render(edited)) {
				t.Fatalf("after applying the edit:\n%s\nwant:\n%s", got, orgfile.Render(edited))
			}
		})
	}
}

// TestValidate runs the seed examples' assertions and reports a failing
// one with its line.
func TestValidate(t *testing.T) {
	t.Setenv("CANOPY_CLI_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	r := must(t, 0, "", "validate", "../../examples/organisations/atlas.test.yaml", "../../examples/organisations/aptem.test.yaml", atlasFile)
	for _, w := range []string{"atlas.test.yaml: 31 of 31 assertions hold", "aptem.test.yaml: 21 of 21 assertions hold", "atlas.yaml: valid"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("validate lacks %q:\n%s", w, r.out)
		}
	}
	abs, _ := filepath.Abs(atlasFile)
	bad := writeFile(t, "bad.test.yaml", "organisation: "+abs+"\nchecks:\n  - tom assign user/carl -> allowed\n")
	r = must(t, 1, "", "validate", bad)
	if !strings.Contains(r.out, bad+":3:5: tom assign user/carl -> allowed: got no_grant") || !strings.Contains(r.out, "0 of 1 assertions hold") {
		t.Errorf("failing assertion:\n%s", r.out)
	}
	must(t, 2, "", "validate", filepath.Join(t.TempDir(), "missing.yaml"))
}

// TestExportLeavesOutExpiredGrants: a grant past its expiry allows nothing
// and no write takes it, so an export that is to be applied omits it.
func TestExportLeavesOutExpiredGrants(t *testing.T) {
	s := empty(t)
	past := time.Now().Add(-time.Hour)
	if _, err := s.Index.Import(context.Background(), "test", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "acme"}},
		{AddGrant: &graph.Grant{ID: "old", Holder: graph.FolderRef("acme"), Target: graph.FolderRef("acme"), Rights: []string{"read"}, ExpiresAt: past}},
		{AddGrant: &graph.Grant{ID: "live", Holder: graph.FolderRef("acme"), Target: graph.FolderRef("acme"), Rights: []string{"read"}}},
	}); err != nil {
		t.Fatal(err)
	}
	r := must(t, 0, s.Addr, "export")
	if strings.Contains(r.out, "id: old") || !strings.Contains(r.out, "id: live") || !strings.Contains(r.err, "left out 1 expired grants") {
		t.Errorf("export with an expired grant:\n%s\n%s", r.out, r.err)
	}
	path := writeFile(t, "export.yaml", r.out)
	if r := must(t, 1, s.Addr, "diff", "-f", path, "--prune"); !strings.Contains(r.out, "- grant old") {
		t.Errorf("diff --prune of the export:\n%s", r.out)
	}
}

// TestBackupCommand: canopy backup writes a whole, checkable copy of the
// store, and never a partial file under the name asked for.
func TestBackupCommand(t *testing.T) {
	s := atlas(t)
	path := filepath.Join(t.TempDir(), "backup.db")
	r := must(t, 0, s.Addr, "backup", path)
	if !strings.HasPrefix(r.out, "backed up revision 2, ") || !strings.HasSuffix(r.out, "to "+path+"\n") {
		t.Errorf("backup: %q", r.out)
	}
	if _, err := os.Stat(path + ".partial"); err == nil {
		t.Error("the partial file is left behind")
	}
	rev, err := store.Restore(t.TempDir(), path, func(db *store.DB) (uint64, error) { return db.Revision() }, store.RestoreOptions{})
	if err != nil || rev != 2 {
		t.Fatalf("the backup does not restore: %d, %v", rev, err)
	}
	if r := must(t, 2, s.Addr, "backup", filepath.Join(t.TempDir(), "no", "such", "dir", "b.db")); !strings.Contains(r.err, "no such file or directory") {
		t.Errorf("backup into a missing folder: %q", r.err)
	}
}
