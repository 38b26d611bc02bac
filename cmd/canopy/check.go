package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/grpc/status"

	"github.com/spf13/cobra"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// question is a check as typed: USER RIGHT [RESOURCE].
func question(args []string) (user, right string, res *pb.ObjectRef, err error) {
	if len(args) == 3 {
		res, err = parseRef(args[2])
	}
	return args[0], args[1], res, err
}

// verdict writes a decision as a word.
func verdict(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

func (a *app) checkCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check USER RIGHT [RESOURCE]",
		Short: "Ask whether USER may exercise RIGHT on RESOURCE (none: a capability)",
		Long: `Prints allowed or denied with the reason, and exits 0 when allowed, 1 when
denied and 2 on an error, like kubectl auth can-i. RESOURCE is folder/ID
or user/ID; leave it out to check a capability.`,
		Example: `  canopy check tom edit user/carl
  canopy check alice user_administrator
  canopy check ian read user/carl --at-least-revision 7 && echo yes`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, right, res, err := question(args)
			if err != nil {
				return err
			}
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			d, err := cl.Check(ctx, user, right, res, a.read()...)
			if err != nil {
				return err
			}
			out := &pb.CheckResponse{Allowed: d.Allowed, Reason: d.Reason, Revision: d.Revision}
			err = a.emit(out, func(w io.Writer) error {
				if d.Allowed {
					_, err := fmt.Fprintf(w, "allowed (revision %d)\n", d.Revision)
					return err
				}
				_, err := fmt.Fprintf(w, "denied: %s (revision %d)\n", reasonWords(d.Reason), d.Revision)
				return err
			})
			if err == nil && !d.Allowed {
				return errNo
			}
			return err
		},
	}
}

func (a *app) batchCheckCommand() *cobra.Command {
	var file string
	return func() *cobra.Command {
		c := &cobra.Command{
			Use:   "batch-check [-f FILE]",
			Short: "Decide many checks at one revision, one per line of a file or standard input",
			Long: `Each line is USER RIGHT [RESOURCE]; blank lines and lines starting with #
are skipped. Prints one result per check, all at one revision; a check
that cannot be decided (an unknown right or resource) shows its own
error and the others are decided all the same. Exits 0 when every check
is allowed, 1 when any is denied, 2 when any could not be decided or the
call failed.`,
			Example: `  printf 'tom edit user/carl\ntom assign user/carl\n' | canopy batch-check
  canopy batch-check -f checks.txt -o json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				in := a.in
				if file != "" && file != "-" {
					f, err := os.Open(file)
					if err != nil {
						return err
					}
					defer f.Close()
					in = f
				}
				var items []client.CheckItem
				var lines []string
				sc := bufio.NewScanner(in)
				for n := 1; sc.Scan(); n++ {
					line := strings.TrimSpace(sc.Text())
					if line == "" || strings.HasPrefix(line, "#") {
						continue
					}
					f := strings.Fields(line)
					if len(f) < 2 || len(f) > 3 {
						return fmt.Errorf("line %d %q: want USER RIGHT [RESOURCE]", n, line)
					}
					user, right, res, err := question(f)
					if err != nil {
						return fmt.Errorf("line %d: %w", n, err)
					}
					items = append(items, client.CheckItem{User: user, Right: right, Resource: res})
					lines = append(lines, strings.Join(f, " "))
				}
				if err := sc.Err(); err != nil {
					return err
				}
				if len(items) == 0 {
					return fmt.Errorf("batch-check: no checks given")
				}
				cl, ctx, err := a.call(cmd)
				if err != nil {
					return err
				}
				ds, err := cl.BatchCheck(ctx, items, a.read()...)
				if err != nil {
					return err
				}
				out := &pb.BatchCheckResponse{}
				all, failed := true, 0
				var rows [][]string
				for i, d := range ds {
					out.Revision = d.Revision
					if d.Err != nil {
						// This line alone could not be decided; the rest were.
						st := status.Convert(d.Err)
						out.Results = append(out.Results, &pb.CheckResult{Error: &pb.ItemError{Code: int32(st.Code()), Message: st.Message()}})
						rows = append(rows, []string{lines[i], "error", describe(d.Err)})
						failed++
						continue
					}
					out.Results = append(out.Results, &pb.CheckResult{Allowed: d.Allowed, Reason: d.Reason})
					all = all && d.Allowed
					rows = append(rows, []string{lines[i], verdict(d.Allowed), reasonWords(d.Reason)})
				}
				err = a.emit(out, func(w io.Writer) error {
					if err := table(w, "CHECK\tDECISION\tREASON", rows); err != nil {
						return err
					}
					_, err := fmt.Fprintf(w, "(revision %d)\n", out.Revision)
					return err
				})
				switch {
				case err != nil:
					return err
				case failed > 0:
					return fmt.Errorf("batch-check: %d of %d checks could not be decided (their lines say why)", failed, len(ds))
				case !all:
					return errNo
				}
				return nil
			},
		}
		c.Flags().StringVarP(&file, "file", "f", "", "file of checks (- or none: standard input)")
		return c
	}()
}

func (a *app) explainCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "explain USER RIGHT [RESOURCE]",
		Short: "Decide like check and draw why: the user, the holder path, the grant and the target path, or the lock",
		Long: `Draws the chain behind a decision: the user, the folders from the user's
home (or extra group) up to the grant's holder, the grant, and the folders
from its target down to the resource. A lock that denies is drawn with its
path. On a denial without a lock it says what is missing and lists the
grants that do reach the user, or draws the grant that will allow it once
it starts. Exits like check.`,
		Example: `  canopy explain alice edit user/carl
  canopy explain tom assign user/carl`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, right, res, err := question(args)
			if err != nil {
				return err
			}
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			ex, err := cl.Explain(ctx, user, right, res, a.read()...)
			if err != nil {
				return err
			}
			var acc *pb.EffectiveAccessResponse
			if !ex.GetAllowed() && ex.GetReason() == pb.Reason_REASON_NO_GRANT {
				if acc, err = cl.EffectiveAccess(ctx, user, client.AtLeast(ex.GetRevision())); err != nil {
					return err
				}
			}
			err = a.emit(ex, func(w io.Writer) error { return drawExplanation(w, user, right, res, ex, acc) })
			if err == nil && !ex.GetAllowed() {
				return errNo
			}
			return err
		},
	}
}

// drawExplanation writes the chain of an explanation for people.
func drawExplanation(w io.Writer, user, right string, res *pb.ObjectRef, ex *pb.ExplainResponse, acc *pb.EffectiveAccessResponse) error {
	on := "as a capability"
	if res != nil {
		on = "on " + refString(res)
	}
	head := fmt.Sprintf("%s: %s %s %s", strings.ToUpper(verdict(ex.GetAllowed())), user, right, on)
	if !ex.GetAllowed() {
		head += " (" + reasonWords(ex.GetReason()) + ")"
	}
	fmt.Fprintf(w, "%s, revision %d\n", head, ex.GetRevision())
	grant := func(g *pb.Grant) {
		fmt.Fprintf(w, "  grant   %s gives %s", g.GetId(), strings.Join(g.GetRights(), ", "))
		if g.GetStartsAt() != nil {
			fmt.Fprintf(w, " from %s", timeText(g.GetStartsAt()))
		}
		if g.GetExpiresAt() != nil {
			fmt.Fprintf(w, " until %s", timeText(g.GetExpiresAt()))
		}
		if g.GetReason() != "" {
			fmt.Fprintf(w, " (%s)", g.GetReason())
		}
		fmt.Fprintln(w)
	}
	switch {
	case ex.GetSelf():
		fmt.Fprintf(w, "  self    %s is a self right: every active user has it on their own record\n", right)
	case ex.GetLock() != nil:
		l := ex.GetLock()
		fmt.Fprintf(w, "  lock    %s denies %s on %s", l.GetId(), strings.Join(l.GetRights(), ", "), refString(l.GetTarget()))
		if l.GetReason() != "" {
			fmt.Fprintf(w, " (%s)", l.GetReason())
		}
		fmt.Fprintln(w)
		if len(ex.GetLockPath()) > 0 {
			fmt.Fprintf(w, "  path    %s\n", strings.Join(ex.GetLockPath(), " > "))
		}
		fmt.Fprintln(w, "  a lock wins over every grant; removing it is an ordinary write")
	case ex.GetGrant() != nil:
		g := ex.GetGrant()
		fmt.Fprintf(w, "  user    %s\n", user)
		if len(ex.GetHolderPath()) > 0 {
			fmt.Fprintf(w, "  member  %s\n", strings.Join(ex.GetHolderPath(), " < "))
		}
		fmt.Fprintf(w, "  holder  %s\n", refString(g.GetHolder()))
		grant(g)
		if g.GetTarget() != nil {
			fmt.Fprintf(w, "  target  %s\n", refString(g.GetTarget()))
		}
		if len(ex.GetTargetPath()) > 0 {
			path := strings.Join(ex.GetTargetPath(), " > ")
			if res.GetKind() == pb.ObjectKind_OBJECT_KIND_USER {
				path += " > " + refString(res)
			}
			fmt.Fprintf(w, "  path    %s\n", path)
		}
		switch ex.GetReason() {
		case pb.Reason_REASON_EXPIRED:
			fmt.Fprintln(w, "  the grant would allow it, but it has expired")
		case pb.Reason_REASON_NO_GRANT:
			fmt.Fprintf(w, "  the grant will allow it from %s; until then it gives nothing\n", timeText(g.GetStartsAt()))
		}
	case ex.GetReason() == pb.Reason_REASON_UNKNOWN_USER:
		fmt.Fprintf(w, "  there is no user %s\n", user)
	case ex.GetReason() == pb.Reason_REASON_USER_NOT_ACTIVE:
		fmt.Fprintf(w, "  %s is not active: a user who is disabled or archived is allowed nothing\n", user)
	case ex.GetReason() == pb.Reason_REASON_NO_GRANT:
		fmt.Fprintf(w, "  missing a grant of %s (or of a right implying it) %s, held by %s or by a folder %s is a member of\n", right, on, user, user)
		if len(acc.GetEntries()) == 0 {
			fmt.Fprintf(w, "  no grant reaches %s\n", user)
		} else {
			fmt.Fprintf(w, "  what reaches %s:\n", user)
			for _, e := range acc.GetEntries() {
				g := e.GetGrant()
				via := "held directly"
				if len(e.GetVia()) > 0 {
					via = "via " + strings.Join(e.GetVia(), " < ")
				}
				fmt.Fprintf(w, "    %s: %s on %s (%s)\n", g.GetId(), strings.Join(e.GetRights(), ", "), targetWords(g.GetTarget()), via)
			}
		}
	}
	return nil
}

// targetWords writes a grant's target, or "capabilities" for none.
func targetWords(r *pb.ObjectRef) string {
	if r == nil {
		return "capabilities"
	}
	return refString(r)
}
