package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

func (a *app) foldersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "folders",
		Aliases: []string{"folder"},
		Short:   "List, draw, create, rename, relabel, move and delete folders",
		Example: `  canopy folders tree acme
  canopy folders create it4 --parent candidates --name "IT4"
  canopy folders move it3 admin-sub`,
	}
	var subtree bool
	list := &cobra.Command{
		Use:   "list [PARENT]",
		Short: "List a folder's children (--subtree: everything below it); no parent: the organisations",
		Example: `  canopy folders list
  canopy folders list candidates --subtree -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			out := &pb.ListFoldersResponse{}
			for f, err := range cl.Folders(ctx, first(args), subtree, a.readFor(cmd)...) {
				if err != nil {
					return err
				}
				out.Folders = append(out.Folders, f)
			}
			out.Revision = cl.Revision()
			return a.emit(out, func(w io.Writer) error {
				var rows [][]string
				for _, f := range out.Folders {
					rows = append(rows, []string{f.GetId(), orDash(f.GetName()), orDash(f.GetParent()), labels(f.GetLabels())})
				}
				return table(w, "ID\tNAME\tPARENT\tLABELS", rows)
			})
		},
	}
	list.Flags().BoolVar(&subtree, "subtree", false, "everything below the parent, not only its children")
	get := &cobra.Command{
		Use:     "get ID",
		Short:   "Show a folder and its placement rule",
		Example: "  canopy folders get admin-main",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			f, rule, err := cl.GetFolder(ctx, args[0], a.readFor(cmd)...)
			if err != nil {
				return err
			}
			out := &pb.GetFolderResponse{Folder: f, PlacementRule: rule, Revision: cl.Revision()}
			return a.emit(out, func(w io.Writer) error {
				rules := "-"
				if rule != nil {
					rules = strings.Join(rule.GetClasses(), ",")
				}
				return table(w, "ID\tNAME\tPARENT\tLABELS\tCLASSES ADMITTED", [][]string{{f.GetId(), orDash(f.GetName()), orDash(f.GetParent()), labels(f.GetLabels()), rules}})
			})
		},
	}
	var name, parent string
	var labelList []string
	create := a.writeCommand(&cobra.Command{
		Use:   "create ID",
		Short: "Create a folder under --parent, or a new organisation without one",
		Example: `  canopy folders create acme --name "Acme Training"
  canopy folders create it4 --parent candidates --label year=2026`,
		Args: cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		l, err := parseLabels(labelList)
		if err != nil {
			return err
		}
		b.Add(&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: args[0], Name: name, Parent: parent, Labels: l}}})
		return nil
	})
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringVar(&parent, "parent", "", "the parent folder (none: a new organisation)")
	create.Flags().StringArrayVar(&labelList, "label", nil, "a label, key=value (repeatable)")
	rename := a.writeCommand(&cobra.Command{
		Use:     "rename ID NAME",
		Short:   "Set a folder's display name",
		Example: `  canopy folders rename it1 "IT1 (2026)"`,
		Args:    cobra.ExactArgs(2),
	}, func(args []string, b *client.Batch) error {
		b.RenameFolder(args[0], args[1])
		return nil
	})
	relabel := a.writeCommand(&cobra.Command{
		Use:     "relabel ID [KEY=VALUE...]",
		Short:   "Replace a folder's labels (none given: remove them all)",
		Example: "  canopy folders relabel it1 year=2026 site=north",
		Args:    cobra.MinimumNArgs(1),
	}, func(args []string, b *client.Batch) error {
		l, err := parseLabels(args[1:])
		if err != nil {
			return err
		}
		b.RelabelFolder(args[0], l)
		return nil
	})
	move := a.writeCommand(&cobra.Command{
		Use:     "move ID NEW-PARENT",
		Short:   "Move a folder, with everything below it, under another folder of its organisation",
		Example: "  canopy folders move it3 admin-sub",
		Args:    cobra.ExactArgs(2),
	}, func(args []string, b *client.Batch) error {
		b.MoveFolder(args[0], args[1])
		return nil
	})
	var cascade bool
	del := a.writeCommand(&cobra.Command{
		Use:   "delete ID",
		Short: "Delete an empty folder; with --cascade, everything below it and everything naming it",
		Example: `  canopy folders delete it3
  canopy folders delete old-site --cascade`,
		Args: cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		b.DeleteFolder(args[0], cascade)
		return nil
	})
	del.Flags().BoolVar(&cascade, "cascade", false, "also delete what is below it and what names it")
	readAsUserFlag(list)
	readAsUserFlag(get)
	cmd.AddCommand(list, get, create, rename, relabel, move, del, a.treeCommand())
	return cmd
}

// first returns args[0], or "" when there is none.
func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// parseLabels reads KEY=VALUE pairs.
func parseLabels(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want KEY=VALUE", p)
		}
		out[k] = v
	}
	return out, nil
}
