package main

import (
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/spf13/cobra"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// idsOut is the JSON of a lookup.
type idsOut struct {
	Revision uint64   `json:"revision,string"`
	IDs      []string `json:"ids"`
}

// collect gathers a lookup's ids.
func collect(seq iter.Seq2[string, error]) ([]string, error) {
	var out []string
	for id, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// emitIDs prints ids, one a line for a table.
func (a *app) emitIDs(rev uint64, ids []string) error {
	return a.emit(idsOut{Revision: rev, IDs: ids}, func(w io.Writer) error {
		for _, id := range ids {
			if _, err := fmt.Fprintln(w, id); err != nil {
				return err
			}
		}
		return nil
	})
}

func (a *app) lookupResourcesCommand() *cobra.Command {
	var kind string
	c := &cobra.Command{
		Use:   "lookup-resources USER RIGHT --kind user|folder",
		Short: "List every user (or folder) that USER may exercise RIGHT on",
		Example: `  canopy lookup-resources inspector read --kind user
  canopy lookup-resources tom edit --kind folder -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := parseKind(kind)
			if err != nil {
				return err
			}
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			ids, err := collect(cl.LookupResources(ctx, args[0], args[1], k, a.read()...))
			if err != nil {
				return err
			}
			return a.emitIDs(cl.Revision(), ids)
		},
	}
	c.Flags().StringVar(&kind, "kind", "user", "what to list: user or folder")
	c.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"user", "folder"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// parseKind reads user or folder.
func parseKind(s string) (pb.ObjectKind, error) {
	switch s {
	case "user", "users":
		return pb.ObjectKind_OBJECT_KIND_USER, nil
	case "folder", "folders":
		return pb.ObjectKind_OBJECT_KIND_FOLDER, nil
	}
	return 0, fmt.Errorf("kind %q: want user or folder", s)
}

func (a *app) lookupSubjectsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lookup-subjects RIGHT [RESOURCE]",
		Short: "List every active user with RIGHT on RESOURCE (none: everyone holding the capability)",
		Example: `  canopy lookup-subjects edit user/lena
  canopy lookup-subjects user_administrator`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res *pb.ObjectRef
			if len(args) == 2 {
				var err error
				if res, err = parseRef(args[1]); err != nil {
					return err
				}
			}
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			ids, err := collect(cl.LookupSubjects(ctx, args[0], res, a.read()...))
			if err != nil {
				return err
			}
			return a.emitIDs(cl.Revision(), ids)
		},
	}
}

func (a *app) accessCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "access USER",
		Short: "Show a user's effective access: every grant that reaches them, what it covers, and the locks that carve into it",
		Long: `Lists every unexpired grant that reaches USER (held by them or by a folder
they are a member of), with the rights it gives (implied ones included),
what it covers, the path it reaches them by, and the locks that deny part
of it. A grant that has not started yet is listed with its start: until
then it gives nothing. A user who is not active is shown, but is allowed
nothing: use it to check an account before it is enabled.`,
		Example: `  canopy access inspector
  canopy access tom -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			acc, err := cl.EffectiveAccess(ctx, args[0], a.read()...)
			if err != nil {
				return err
			}
			return a.emit(acc, func(w io.Writer) error {
				u := acc.GetUser()
				fmt.Fprintf(w, "user %s (%s, %s), home %s", u.GetId(), u.GetClass(), stateWord(u.GetState()), u.GetHome())
				if len(u.GetExtraGroups()) > 0 {
					fmt.Fprintf(w, ", extra groups %s", strings.Join(u.GetExtraGroups(), ", "))
				}
				fmt.Fprintf(w, "; revision %d\n", acc.GetRevision())
				if u.GetState() != pb.UserState_USER_STATE_ACTIVE {
					fmt.Fprintln(w, "not active: allowed nothing until enabled")
				}
				var rows [][]string
				for _, e := range acc.GetEntries() {
					var locks []string
					for _, l := range e.GetLocks() {
						locks = append(locks, fmt.Sprintf("%s (%s on %s)", l.GetId(), strings.Join(l.GetRights(), ","), refString(l.GetTarget())))
					}
					via := "direct"
					if len(e.GetVia()) > 0 {
						via = strings.Join(e.GetVia(), " < ")
					}
					id := e.GetGrant().GetId()
					if g := e.GetGrant(); g.GetStartsAt() != nil && !g.GetStarted() {
						id += " (starts " + timeText(g.GetStartsAt()) + ")"
					}
					rows = append(rows, []string{id, strings.Join(e.GetRights(), ","), targetWords(e.GetGrant().GetTarget()), via, orDash(strings.Join(locks, "; "))})
				}
				if err := table(w, "GRANT\tRIGHTS\tON\tVIA\tLOCKED BY", rows); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "self rights: %s\n", orDash(strings.Join(acc.GetSelfRights(), ",")))
				return err
			})
		},
	}
}
