package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

func (a *app) historyCommand() *cobra.Command {
	var req pb.HistoryRequest
	var since, until string
	limit := 0
	c := &cobra.Command{
		Use:   "history [KIND/ID] [--actor NAME] [--acted-for USER]",
		Short: "Who changed what, and when: the audit trail, newest first",
		Long: `Prints the committed mutations that touched an object (folder/ID,
user/ID, grant/ID, lock/ID or right/NAME), or that an actor made, or that
were written on behalf of a user, newest first: revision, time, actor,
the user acted for, and the change in words (-o json gives each mutation
as the API has it). Without an object or a name, the whole
trail. A mutation touches what it changes and what it names as they were
then: a user's history holds the grants on it and held by it, and the
service's own starts and expiries of them (actor "system"); a folder's
holds the folders and users created in it, moved in and out, and deleted.
Deleted records keep their history. The trail is kept for the server's
--audit-keep-age (a year by default), apart from what watch replays.`,
		Example: `  canopy history user/c1
  canopy history --actor admin-console --since 24h
  canopy history folder/candidates --from 1200 --to 1300 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				req.Object = args[0]
			}
			now := time.Now()
			for _, t := range []struct {
				text string
				dst  **timestamppb.Timestamp
			}{{since, &req.Since}, {until, &req.Until}} {
				if t.text == "" {
					continue
				}
				at, err := parseAgo(t.text, now)
				if err != nil {
					return err
				}
				*t.dst = timestamppb.New(at)
			}
			req.PageSize = 1000
			if limit > 0 {
				req.PageSize = uint32(min(limit, 1000))
			}
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			var out pb.HistoryResponse
			for e, err := range cl.History(ctx, &req) {
				if err != nil {
					return err
				}
				out.Entries = append(out.Entries, e)
				if limit > 0 && len(out.Entries) == limit {
					break
				}
			}
			return a.emit(&out, func(w io.Writer) error { return historyTable(w, out.GetEntries()) })
		},
	}
	c.Flags().StringVar(&req.Actor, "actor", "", "only what this actor committed (a token's name; system for the service's own)")
	c.Flags().StringVar(&req.ActedFor, "acted-for", "", "only what was written on behalf of this user")
	c.Flags().Uint64Var(&req.FromRevision, "from", 0, "only from this revision on")
	c.Flags().Uint64Var(&req.ToRevision, "to", 0, "only up to this revision, included")
	c.Flags().StringVar(&since, "since", "", "only what was committed since: an RFC 3339 time, or a duration before now (24h)")
	c.Flags().StringVar(&until, "until", "", "only what was committed before: an RFC 3339 time, or a duration before now")
	c.Flags().IntVar(&limit, "limit", 100, "the most entries to print (0: all)")
	return c
}

// parseAgo reads an RFC 3339 time, or a duration before now.
func parseAgo(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return parseWhen(s, now)
}

// historyTable writes the trail's entries as a table.
func historyTable(w io.Writer, entries []*pb.HistoryEntry) error {
	var rows [][]string
	for _, e := range entries {
		rows = append(rows, []string{fmt.Sprint(e.GetRevision()), timeText(e.GetCommitTime()), e.GetActor(), orDash(e.GetActedFor()), mutationLine(e.GetMutation())})
	}
	return table(w, "REVISION\tTIME\tACTOR\tFOR\tCHANGE", rows)
}
