package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// writeLine prints one event of a stream as one line of JSON (a stream
// has no document to indent, so -o yaml prints JSON lines too).
func (a *app) writeLine(m proto.Message) error {
	line, err := encodeLine(m)
	if err != nil {
		return err
	}
	_, err = a.out.Write(line)
	return err
}

func (a *app) watchCommand() *cobra.Command {
	var from uint64
	var kinds, orgs, subtrees []string
	c := &cobra.Command{
		Use:   "watch [--from REV]",
		Short: "Follow committed changes, one line each; resumes by itself after a dropped connection",
		Long: `Prints every committed change from --from on (default: from now), one
line per mutation: revision, actor and the change. With -o json (or yaml), one
WatchResponse a line. It reconnects by itself when the connection drops or
the server restarts, and goes on after the last revision printed; a
revision older than the server keeps ends it with an error saying to
resync. Ctrl-C ends it.`,
		Example: `  canopy watch
  canopy watch --from 1 --kinds users,grants --org acme
  canopy watch --subtree candidates -o json | jq .`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			filter := &pb.WatchFilter{Organisations: orgs, Subtrees: subtrees}
			for _, k := range kinds {
				v, ok := pb.ChangeKind_value["CHANGE_KIND_"+strings.ToUpper(k)]
				if !ok || v == 0 {
					return fmt.Errorf("kind %q: want folders, users, memberships, grants, locks or rules", k)
				}
				filter.Kinds = append(filter.Kinds, pb.ChangeKind(v))
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			for m, err := range cl.Watch(cmd.Context(), from, filter) {
				if err != nil {
					return err
				}
				if a.output != "table" {
					if err := a.writeLine(m); err != nil {
						return err
					}
					continue
				}
				at := timeText(m.GetCommitTime())
				for _, mu := range m.GetMutations() {
					if _, err := fmt.Fprintf(a.out, "%d\t%s\t%s\t%s\n", m.GetRevision(), at, m.GetActor(), mutationLine(mu)); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	c.Flags().Uint64Var(&from, "from", 0, "the first revision to print (0: what is committed from now on)")
	c.Flags().StringSliceVar(&kinds, "kinds", nil, "only these kinds: folders, users, memberships, grants, locks, rules")
	c.Flags().StringSliceVar(&orgs, "org", nil, "only changes in these organisations (root folder ids)")
	c.Flags().StringSliceVar(&subtrees, "subtree", nil, "only changes touching these folders or anything below them")
	return c
}

func (a *app) watchAccessCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "watch-access USER",
		Short: "Follow one user's effective access: what they have, then each gain and loss, one line each",
		Long: `Prints what USER has now (lines marked "has"), then every change of it as
it is committed ("gained", "lost"), with the mutation that caused it.
Access is stated as regions: a folder subtree with its members, one user,
or the capabilities, minus exceptions. It reconnects by itself; the
server then sends the whole access again. Ctrl-C ends it.`,
		Example: `  canopy watch-access inspector
  canopy watch-access tom -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			for m, err := range cl.WatchAccess(cmd.Context(), args[0]) {
				if err != nil {
					return err
				}
				if a.output != "table" {
					if err := a.writeLine(m); err != nil {
						return err
					}
					continue
				}
				gained, cause := "gained", ""
				if m.GetCause() == nil {
					gained = "has"
				} else {
					cause = "\t(" + mutationLine(m.GetCause()) + " by " + m.GetActor() + ")"
				}
				for _, r := range m.GetGained() {
					fmt.Fprintf(a.out, "%d\t%s\t%s%s\n", m.GetRevision(), gained, regionLine(r), cause)
				}
				for _, r := range m.GetLost() {
					fmt.Fprintf(a.out, "%d\tlost\t%s%s\n", m.GetRevision(), regionLine(r), cause)
				}
			}
			return nil
		},
	}
}

// regionLine writes an access region: rights on a place, minus exceptions.
func regionLine(r *pb.AccessRegion) string {
	s := strings.Join(r.GetRights(), ",") + " on " + targetWords(r.GetOn())
	if len(r.GetExcept()) > 0 {
		var ex []string
		for _, e := range r.GetExcept() {
			ex = append(ex, refString(e))
		}
		s += " except " + strings.Join(ex, ", ")
	}
	return s
}
