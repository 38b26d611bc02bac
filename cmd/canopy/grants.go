package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

func (a *app) grantsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "grants",
		Aliases: []string{"grant"},
		Short:   "List, add and remove grants",
		Long: `A grant gives its holder (a user, or every member of a folder) rights on
its target: a folder with everything below it and every member of it, or
one user. A grant with no target gives capabilities.`,
		Example: `  canopy grants list --holder folder/admin-main
  canopy grants add teach-it1 --holder folder/it1-teacher --target folder/it1 --rights read,edit
  canopy grants add visit --holder user/inspector --target folder/sample --rights read --expires 72h --reason "Ofsted visit"`,
	}
	var holder, target string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List grants, optionally those of one holder or on one target",
		Example: "  canopy grants list --target folder/it1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := parseRef(holder)
			if err != nil {
				return err
			}
			t, err := parseRef(target)
			if err != nil {
				return err
			}
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			out := &pb.ListGrantsResponse{}
			for g, err := range cl.Grants(ctx, h, t, a.readFor(cmd)...) {
				if err != nil {
					return err
				}
				out.Grants = append(out.Grants, g)
			}
			out.Revision = cl.Revision()
			return a.emit(out, func(w io.Writer) error { return grantTable(w, out.Grants) })
		},
	}
	list.Flags().StringVar(&holder, "holder", "", "only grants held by this folder/ID or user/ID")
	list.Flags().StringVar(&target, "target", "", "only grants on this folder/ID or user/ID")
	var rights []string
	var expires, starts, reason string
	add := a.writeCommand(&cobra.Command{
		Use:   "add ID --holder REF [--target REF] --rights R,...",
		Short: "Add a grant; without --target it grants capabilities",
		Example: `  canopy grants add access-invigilators --holder folder/invigilators --target folder/candidates --rights read
  canopy grants add role-admin --holder folder/admin-main --rights user_administrator
  canopy grants add visit --holder user/inspector --target folder/parallel-group --rights read --starts 2026-03-02T08:00:00Z --expires 2026-03-06T17:00:00Z`,
		Args: cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		h, err := parseRef(holder)
		if err != nil {
			return err
		}
		t, err := parseRef(target)
		if err != nil {
			return err
		}
		g := &pb.Grant{Id: args[0], Holder: h, Target: t, Rights: rights, Reason: reason}
		now := time.Now()
		for _, w := range []struct {
			flag string
			to   **timestamppb.Timestamp
		}{{expires, &g.ExpiresAt}, {starts, &g.StartsAt}} {
			if w.flag == "" {
				continue
			}
			at, err := parseWhen(w.flag, now)
			if err != nil {
				return err
			}
			*w.to = timestamppb.New(at)
		}
		b.AddGrantWith(g)
		return nil
	})
	add.Flags().StringVar(&holder, "holder", "", "who holds it: folder/ID (its members) or user/ID")
	add.Flags().StringVar(&target, "target", "", "what it covers: folder/ID or user/ID (none: capabilities)")
	add.Flags().StringSliceVar(&rights, "rights", nil, "the rights it gives, comma-separated")
	add.Flags().StringVar(&expires, "expires", "", "when it ends: an RFC 3339 time, or a duration from now such as 72h")
	add.Flags().StringVar(&starts, "starts", "", "when it begins to apply (before, it gives nothing): an RFC 3339 time, or a duration from now")
	add.Flags().StringVar(&reason, "reason", "", "why it exists, for the record")
	add.MarkFlagRequired("holder")
	add.MarkFlagRequired("rights")
	remove := a.writeCommand(&cobra.Command{
		Use:     "remove ID",
		Short:   "Remove a grant",
		Example: "  canopy grants remove visit",
		Args:    cobra.ExactArgs(1),
	}, func(args []string, b *client.Batch) error {
		b.RemoveGrant(args[0])
		return nil
	})
	readAsUserFlag(list)
	cmd.AddCommand(list, add, remove)
	return cmd
}

// parseWhen reads an RFC 3339 time, or a duration after now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2026-12-24T17:00:00Z) or a duration (72h)", s)
	}
	return now.Add(d), nil
}

// grantTable writes grants as a table.
func grantTable(w io.Writer, grants []*pb.Grant) error {
	var rows [][]string
	for _, g := range grants {
		exp := "-"
		if g.GetExpiresAt() != nil {
			exp = timeText(g.GetExpiresAt())
			if g.GetExpired() {
				exp += " (expired)"
			}
		}
		start := "-"
		if g.GetStartsAt() != nil {
			start = timeText(g.GetStartsAt())
			if g.GetStarted() {
				start += " (started)"
			}
		}
		rows = append(rows, []string{g.GetId(), refString(g.GetHolder()), refString(g.GetTarget()), strings.Join(g.GetRights(), ","), start, exp, orDash(g.GetReason())})
	}
	return table(w, "ID\tHOLDER\tTARGET\tRIGHTS\tSTARTS\tEXPIRES\tREASON", rows)
}
