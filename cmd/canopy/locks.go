package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

func (a *app) locksCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "locks",
		Aliases: []string{"lock"},
		Short:   "List, add and remove locks",
		Long: `A lock denies rights (edit unless others are named) on a folder subtree
with its members, or on one user, whatever any grant says.`,
		Example: `  canopy locks add qa-lena --target user/lena --reason "QA verified"
  canopy locks list --target user/lena`,
	}
	var target string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List locks, optionally those on one target",
		Example: "  canopy locks list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := parseRef(target)
			if err != nil {
				return err
			}
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			out := &pb.ListLocksResponse{}
			for l, err := range cl.Locks(ctx, t, a.readFor(cmd)...) {
				if err != nil {
					return err
				}
				out.Locks = append(out.Locks, l)
			}
			out.Revision = cl.Revision()
			return a.emit(out, func(w io.Writer) error {
				var rows [][]string
				for _, l := range out.Locks {
					rows = append(rows, []string{l.GetId(), refString(l.GetTarget()), strings.Join(l.GetRights(), ","), orDash(l.GetReason())})
				}
				return table(w, "ID\tTARGET\tDENIES\tREASON", rows)
			})
		},
	}
	list.Flags().StringVar(&target, "target", "", "only locks on this folder/ID or user/ID")
	var rights []string
	var reason string
	add := a.writeCommand(&cobra.Command{
		Use:     "add ID --target REF [--rights R,...]",
		Short:   "Add a lock (it denies edit unless --rights says otherwise)",
		Example: `  canopy locks add freeze-it1 --target folder/it1 --rights edit,assign --reason "exam week"`,
		Args:    cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		t, err := parseRef(target)
		if err != nil {
			return err
		}
		b.AddLock(args[0], t, reason, rights...)
		return nil
	})
	add.Flags().StringVar(&target, "target", "", "what it covers: folder/ID or user/ID")
	add.Flags().StringSliceVar(&rights, "rights", nil, "the rights it denies (default edit)")
	add.Flags().StringVar(&reason, "reason", "", "why it exists, for the record")
	add.MarkFlagRequired("target")
	remove := a.writeCommand(&cobra.Command{
		Use:     "remove ID",
		Short:   "Remove a lock",
		Example: "  canopy locks remove freeze-it1",
		Args:    cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		b.RemoveLock(args[0])
		return nil
	})
	readAsUserFlag(list)
	cmd.AddCommand(list, add, remove)
	return cmd
}
