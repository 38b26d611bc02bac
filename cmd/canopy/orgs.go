package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"

	"github.com/canopy-authz/canopy/client"
	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/orgfile"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
)

// serverFile reads the server's whole state as an organisation file,
// with the revision it is at.
func serverFile(ctx context.Context, cl *client.Client, opts []client.ReadOption) (*orgfile.File, uint64, error) {
	var rev uint64
	var muts []graph.Mutation
	for m, err := range cl.Export(ctx, &rev, opts...) {
		if err != nil {
			return nil, 0, err
		}
		gm, err := server.MutationFromPB(m, len(muts))
		if err != nil {
			return nil, 0, fmt.Errorf("export: %w", err)
		}
		muts = append(muts, gm)
	}
	f, err := orgfile.FromMutations(muts)
	return f, rev, err
}

// onlyOrgs keeps of f the organisations named, with their users and the
// grants and locks that name them.
func onlyOrgs(f *orgfile.File, orgs []string) error {
	org := map[string]string{}
	for _, x := range f.Folders {
		if x.Parent == "" {
			org[x.ID] = x.ID
		} else {
			org[x.ID] = org[x.Parent]
		}
	}
	for _, o := range orgs {
		if org[o] != o {
			return fmt.Errorf("export: %q is not an organisation (a root folder)", o)
		}
	}
	keep := func(folder string) bool { return slices.Contains(orgs, org[folder]) }
	f.Folders = slices.DeleteFunc(f.Folders, func(x orgfile.Folder) bool { return !keep(x.ID) })
	userOrg := map[string]string{}
	for _, u := range f.Users {
		userOrg[u.ID] = org[u.Home]
	}
	f.Users = slices.DeleteFunc(f.Users, func(u graph.User) bool { return !keep(u.Home) })
	in := func(r graph.Ref) bool {
		return r.Kind == graph.KindFolder && keep(r.ID) || r.Kind == graph.KindUser && slices.Contains(orgs, userOrg[r.ID])
	}
	f.Grants = slices.DeleteFunc(f.Grants, func(g graph.Grant) bool { return !in(g.Holder) && !in(g.Target) })
	f.Locks = slices.DeleteFunc(f.Locks, func(l graph.Lock) bool { return !in(l.Target) })
	return nil
}

func (a *app) exportCommand() *cobra.Command {
	var orgs []string
	c := &cobra.Command{
		Use:   "export [--org ID]...",
		Short: "Write the server's organisations as an organisation file",
		Long: `Writes the whole state (or the organisations named with --org, with the
catalogue and the self rights) as an organisation file in canonical form
(docs/organisation-file.md): YAML, or JSON with -o json. Applying it to
an empty server and exporting again gives the same bytes. Grants that
have expired are left out (a write refuses a past expiry), and counted
on standard error.`,
		Example: `  canopy export > org.yaml
  canopy export --org acme -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			f, _, err := serverFile(ctx, cl, a.read())
			if err != nil {
				return err
			}
			if len(orgs) > 0 {
				if err := onlyOrgs(f, orgs); err != nil {
					return err
				}
			}
			if n := f.DropExpired(time.Now()); n > 0 {
				fmt.Fprintf(a.err, "canopy: left out %d expired grants (they allow nothing, and no write takes them)\n", n)
			}
			out := orgfile.Render(f)
			if a.output == "json" {
				if out, err = yaml.YAMLToJSON(out); err != nil {
					return err
				}
				out = append(out, '\n')
			}
			_, err = a.out.Write(out)
			return err
		},
	}
	c.Flags().StringSliceVar(&orgs, "org", nil, "only these organisations (root folder ids)")
	return c
}

// readOrgFile parses and loads the organisation file at path offline,
// printing every problem; it fails if there is any.
func (a *app) readOrgFile(ctx context.Context, path string) (*orgfile.File, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(a.in)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	f, err := orgfile.Parse(path, raw)
	if err == nil {
		var ix *graph.Index
		ix, err = orgfile.Load(ctx, f, graph.ClockFunc(time.Now))
		if ix != nil {
			ix.Close()
		}
	}
	var ps orgfile.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(a.err, p)
		}
		return nil, fmt.Errorf("%s: %d problems; nothing was written", path, len(ps))
	}
	return f, err
}

// plan reads the file and the server's state and works out the changes.
func (a *app) plan(cmd *cobra.Command, path string, prune bool) (*client.Client, []orgfile.Change, uint64, error) {
	f, err := a.readOrgFile(cmd.Context(), path)
	if err != nil {
		return nil, nil, 0, err
	}
	cl, ctx, err := a.call(cmd)
	if err != nil {
		return nil, nil, 0, err
	}
	cur, rev, err := serverFile(ctx, cl, a.read())
	if err != nil {
		return nil, nil, 0, err
	}
	return cl, orgfile.Plan(cur, f, prune), rev, nil
}

// planOut is the JSON of a plan.
type planOut struct {
	Revision uint64         `json:"revision,string"`
	Changes  []changeOut    `json:"changes"`
	Counts   map[string]int `json:"counts"`
	// Access is what the changes would do to access (a Preview).
	Access json.RawMessage `json:"access,omitempty"`
}

type changeOut struct {
	Action string `json:"action"`
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Detail string `json:"detail,omitempty"`
}

// planBatch is the plan as one batch, applied only at revision rev.
func planBatch(cl *client.Client, plan []orgfile.Change, rev uint64) *client.Batch {
	b := cl.Batch().IfRevision(rev)
	for _, c := range plan {
		b.Add(server.MutationToPB(c.Mutation))
	}
	return b
}

// previewPlan asks the server what the plan would do to access, when it
// fits one batch of at most batch mutations (nil otherwise, or when there
// is nothing to do).
func (a *app) previewPlan(cmd *cobra.Command, cl *client.Client, plan []orgfile.Change, rev uint64, batch int) (*pb.Preview, error) {
	if len(plan) == 0 || len(plan) > batch {
		return nil, nil
	}
	return a.preview(cmd, planBatch(cl, plan, rev))
}

// showPlan prints the changes people should see and a summary, and what
// they would do to access when p is not nil.
func (a *app) showPlan(rev uint64, plan []orgfile.Change, prune bool, p *pb.Preview) error {
	out := planOut{Revision: rev, Counts: map[string]int{"create": 0, "change": 0, "move": 0, "delete": 0}}
	if p != nil {
		raw, err := previewJSON(p)
		if err != nil {
			return err
		}
		out.Access = raw
	}
	for _, c := range plan {
		if !c.Quiet {
			out.Changes = append(out.Changes, changeOut{c.Action, c.Kind, c.ID, c.Detail})
			out.Counts[c.Action]++
		}
	}
	return a.emit(out, func(w io.Writer) error {
		for _, c := range plan {
			if !c.Quiet {
				fmt.Fprintln(w, c)
			}
		}
		n := out.Counts
		fmt.Fprintf(w, "%d to create, %d to change, %d to move, %d to delete (against revision %d)", n["create"], n["change"], n["move"], n["delete"], rev)
		if !prune {
			fmt.Fprint(w, "; without --prune nothing the file leaves out is deleted")
		}
		if _, err := fmt.Fprintln(w); err != nil || p == nil {
			return err
		}
		return printPreview(w, p)
	})
}

func (a *app) diffCommand() *cobra.Command {
	var file string
	var prune bool
	c := &cobra.Command{
		Use:   "diff -f FILE [--prune]",
		Short: "Show what apply would change to make the server match an organisation file",
		Long: `Validates the file offline (every problem, with its line and column), reads
the server's state at one revision, and prints what apply would do: +
create, ~ change, > move, - delete. Exits 0 when the server already
matches, 1 when there are changes, 2 on an error.`,
		Example: `  canopy diff -f examples/organisations/atlas.yaml
  canopy diff -f org.yaml --prune -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, plan, rev, err := a.plan(cmd, file, prune)
			if err != nil {
				return err
			}
			// A plan the server would refuse is shown all the same, and
			// then the refusal.
			p, perr := a.previewPlan(cmd, cl, plan, rev, maxBatch)
			if err := a.showPlan(rev, plan, prune, p); err != nil {
				return err
			}
			if perr != nil {
				return fmt.Errorf("apply would be refused: %w", perr)
			}
			if len(plan) > 0 {
				return errNo
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "the organisation file (- for standard input)")
	c.Flags().BoolVar(&prune, "prune", false, "also delete what the file's organisations hold on the server but the file leaves out")
	previewFlags(c)
	c.MarkFlagRequired("file")
	return c
}

// maxBatch is the largest plan diff previews: what apply writes as one
// batch by default.
const maxBatch = 10_000

func (a *app) applyCommand() *cobra.Command {
	var file string
	var prune, dryRun bool
	var batch int
	c := &cobra.Command{
		Use:   "apply -f FILE [--prune] [--dry-run]",
		Short: "Make the server match an organisation file, in one atomic write",
		Long: `Validates the whole file offline and reports every problem with its line
and column; then works out the difference from the server's state at one
revision and shows it (as diff does); then writes it as one atomic batch
that applies only if the server is still at that revision, so a
concurrent change makes it fail cleanly rather than half-apply. Deletions
only with --prune. A difference larger than --batch mutations streams
through Import instead, in chunks that each commit atomically, with a
progress bar on a terminal and each chunk's revision reported; such an
apply is not atomic as a whole.`,
		Example: `  canopy apply -f examples/organisations/atlas.yaml
  canopy apply -f org.yaml --prune --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, plan, rev, err := a.plan(cmd, file, prune)
			if err != nil {
				return err
			}
			var p *pb.Preview
			var perr error
			if dryRun {
				p, perr = a.previewPlan(cmd, cl, plan, rev, batch)
			}
			if err := a.showPlan(rev, plan, prune, p); err != nil {
				return err
			}
			if perr != nil {
				return fmt.Errorf("apply would be refused: %w", perr)
			}
			if dryRun || len(plan) == 0 {
				return nil
			}
			if len(plan) > batch {
				return a.importPlan(cmd, cl, plan)
			}
			b := planBatch(cl, plan, rev)
			_, ctx, err := a.call(cmd) // a deadline of its own, after the plan's reads
			if err != nil {
				return err
			}
			done, err := b.Commit(ctx)
			if err != nil {
				return err
			}
			if a.output == "table" {
				fmt.Fprintf(a.out, "applied at revision %d\n", done)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "the organisation file (- for standard input)")
	c.Flags().BoolVar(&prune, "prune", false, "also delete what the file's organisations hold on the server but the file leaves out")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show the changes and what they would do to access, and write nothing")
	previewFlags(c)
	c.Flags().IntVar(&batch, "batch", maxBatch, "the most mutations written as one atomic batch; more stream through Import")
	c.MarkFlagRequired("file")
	return c
}

// importPlan streams a large plan through Import, with a progress bar
// when standard error is a terminal.
func (a *app) importPlan(cmd *cobra.Command, cl *client.Client, plan []orgfile.Change) error {
	var bar *progressbar.ProgressBar
	if f, ok := a.err.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = progressbar.NewOptions(len(plan), progressbar.OptionSetWriter(f), progressbar.OptionSetDescription("importing"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	muts := func(yield func(*pb.Mutation) bool) {
		for _, c := range plan {
			if !yield(server.MutationToPB(c.Mutation)) {
				return
			}
		}
	}
	last, err := cl.Import(cmd.Context(), muts, func(p client.ImportProgress) {
		if bar != nil {
			bar.Set(int(p.Committed))
		} else if a.output == "table" {
			fmt.Fprintf(a.out, "committed %d of %d mutations at revision %d\n", p.Committed, len(plan), p.Revision)
		}
	})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return fmt.Errorf("import stopped after %d of %d mutations (revision %d): %w", last.Committed, len(plan), last.Revision, err)
	}
	if a.output == "table" {
		fmt.Fprintf(a.out, "applied %d mutations through Import, the last at revision %d\n", last.Committed, last.Revision)
	}
	return nil
}

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check organisation files and run their assertions, in process, with no server",
		Long: `Each FILE is an organisation file, which is checked (its shape, its
references, and loading it into a fresh index as a server would), or a
validation file naming one (organisation: FILE) with assertions: checks
with the expected decision, lookups with the expected set, explanations
naming a grant or lock, and writes expected to be refused. Every problem
and every failing assertion is printed with its line and what came back.
Exits 0 when all hold, 1 when any fails, 2 on an error.`,
		Example: `  canopy validate examples/organisations/atlas.test.yaml
  canopy validate org.yaml org.test.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := 0
			for _, path := range args {
				results, err := orgfile.Validate(cmd.Context(), path)
				var ps orgfile.Problems
				if errors.As(err, &ps) {
					for _, p := range ps {
						fmt.Fprintln(a.out, p)
					}
					failed += len(ps)
				} else if err != nil {
					return err
				}
				n := 0
				for _, r := range results {
					if !r.Passed() {
						fmt.Fprintln(a.out, r)
						n++
					}
				}
				failed += n
				switch {
				case len(ps) > 0:
					fmt.Fprintf(a.out, "%s: %d problems\n", path, len(ps))
				case results == nil:
					fmt.Fprintf(a.out, "%s: valid\n", path)
				default:
					fmt.Fprintf(a.out, "%s: %d of %d assertions hold\n", path, len(results)-n, len(results))
				}
			}
			if failed > 0 {
				return errNo
			}
			return nil
		},
	}
}
