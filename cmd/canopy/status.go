package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/canopy-authz/canopy/server"
)

// statusOut is the JSON of status: the address, its health, and the
// server's GetStatusResponse.
type statusOut struct {
	Addr   string          `json:"addr"`
	Health string          `json:"health"`
	Server json.RawMessage `json:"server"`
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "status",
		Short:   "Show the server's version, health, revision and what it holds",
		Example: "  canopy status\n  canopy status -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			h, err := healthpb.NewHealthClient(cl.Conn()).Check(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			st, err := cl.Status(ctx)
			if err != nil {
				return err
			}
			health := h.GetStatus().String()
			raw, err := encode(st, "json")
			if err != nil {
				return err
			}
			return a.emit(statusOut{Addr: a.conn.addr, Health: health, Server: raw}, func(w io.Writer) error {
				fmt.Fprintf(w, "server    %s\n", a.conn.addr)
				fmt.Fprintf(w, "version   %s (commit %s)\n", st.GetVersion(), orDash(st.GetCommit()))
				fmt.Fprintf(w, "health    %s\n", health)
				fmt.Fprintf(w, "revision  %d\n", st.GetRevision())
				fmt.Fprintf(w, "holds     %d organisations, %d folders, %d users, %d grants, %d locks, %d placement rules, %d rights\n",
					st.GetOrganisations(), st.GetFolders(), st.GetUsers(), st.GetGrants(), st.GetLocks(), st.GetPlacementRules(), st.GetRights())
				return nil
			})
		},
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print this command's version and commit",
		Example: "  canopy version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(a.out, "canopy", server.Build())
			return err
		},
	}
}
