package main

import (
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// rulesOut is the JSON of the placement rules.
type rulesOut struct {
	Revision uint64              `json:"revision,string"`
	Rules    []*pb.PlacementRule `json:"placement_rules"`
}

func (a *app) rulesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rules",
		Aliases: []string{"rule", "placement-rules"},
		Short:   "List, set and remove placement rules",
		Long: `A placement rule on a folder names the user classes that may be members of
it and of everything below it. A write that would break one is refused.`,
		Example: `  canopy rules set admin-main staff
  canopy rules list`,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List every placement rule",
		Example: "  canopy rules list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			f, rev, err := serverFile(ctx, cl, a.read())
			if err != nil {
				return err
			}
			out := rulesOut{Revision: rev}
			for _, x := range f.Folders {
				if len(x.Admits) > 0 {
					out.Rules = append(out.Rules, &pb.PlacementRule{Folder: x.ID, Classes: x.Admits})
				}
			}
			slices.SortFunc(out.Rules, func(x, y *pb.PlacementRule) int { return strings.Compare(x.GetFolder(), y.GetFolder()) })
			return a.emit(out, func(w io.Writer) error {
				var rows [][]string
				for _, r := range out.Rules {
					rows = append(rows, []string{r.GetFolder(), strings.Join(r.GetClasses(), ",")})
				}
				return table(w, "FOLDER\tCLASSES ADMITTED", rows)
			})
		},
	}
	set := a.writeCommand(&cobra.Command{
		Use:     "set FOLDER CLASS...",
		Short:   "Admit only these classes of user to a folder and everything below it",
		Example: "  canopy rules set invigilators staff",
		Args:    cobra.MinimumNArgs(2),
	}, func(args []string, b *client.Batch) error {
		b.SetPlacementRule(args[0], args[1:]...)
		return nil
	})
	remove := a.writeCommand(&cobra.Command{
		Use:     "remove FOLDER",
		Short:   "Remove a folder's placement rule",
		Example: "  canopy rules remove invigilators",
		Args:    cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		b.RemovePlacementRule(args[0])
		return nil
	})
	cmd.AddCommand(list, set, remove)
	return cmd
}
