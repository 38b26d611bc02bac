package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

func (a *app) rightsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rights",
		Aliases: []string{"right", "catalogue"},
		Short:   "Show and change the rights catalogue and the self rights",
		Long: `The catalogue names the rights and what each implies (edit and assign
imply read by default); implication is transitive. Self rights are what
every active user has on their own record.`,
		Example: `  canopy rights list
  canopy rights put manage_ilr --implies read
  canopy rights self read`,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the catalogue and the self rights",
		Example: "  canopy rights list -o yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			rights, self, err := cl.Catalogue(ctx, a.read()...)
			if err != nil {
				return err
			}
			out := &pb.GetCatalogueResponse{Rights: rights, SelfRights: &pb.SelfRights{Rights: self}, Revision: cl.Revision()}
			return a.emit(out, func(w io.Writer) error {
				var rows [][]string
				for _, r := range rights {
					rows = append(rows, []string{r.GetName(), orDash(strings.Join(r.GetImplies(), ","))})
				}
				if err := table(w, "RIGHT\tIMPLIES", rows); err != nil {
					return err
				}
				_, err := io.WriteString(w, "\nself rights: "+orDash(strings.Join(self, ","))+"\n")
				return err
			})
		},
	}
	var implies []string
	put := a.writeCommand(&cobra.Command{
		Use:     "put NAME [--implies R,...]",
		Short:   "Add a right to the catalogue, or change what it implies",
		Example: "  canopy rights put view_reports --implies read",
		Args:    cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		b.PutRight(args[0], implies...)
		return nil
	})
	put.Flags().StringSliceVar(&implies, "implies", nil, "the rights it directly implies, comma-separated")
	del := a.writeCommand(&cobra.Command{
		Use:     "delete NAME",
		Short:   "Remove a right nothing uses",
		Example: "  canopy rights delete view_reports",
		Args:    cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		b.DeleteRight(args[0])
		return nil
	})
	self := a.writeCommand(&cobra.Command{
		Use:     "self [RIGHT...]",
		Short:   "Set the self rights (none given: no self rights)",
		Example: "  canopy rights self read",
		Args:    cobra.ArbitraryArgs,
	}, func(args []string, b *client.Batch) error {
		b.SetSelfRights(args...)
		return nil
	})
	cmd.AddCommand(list, put, del, self)
	return cmd
}
