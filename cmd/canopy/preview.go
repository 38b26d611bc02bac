package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// previewFlags gives a command that previews writes its --preview-limit
// flag.
func previewFlags(c *cobra.Command) {
	c.Flags().Int("preview-limit", 0, "with --dry-run, list the access changes of at most this many users (0: the server's 100); the counts are whole")
}

// preview asks the server what b would change in access.
func (a *app) preview(cmd *cobra.Command, b *client.Batch) (*pb.Preview, error) {
	_, ctx, err := a.call(cmd)
	if err != nil {
		return nil, err
	}
	limit, _ := cmd.Flags().GetInt("preview-limit")
	return b.Preview(ctx, limit)
}

// previewJSON is a preview as JSON, for a plan's output.
func previewJSON(p *pb.Preview) (json.RawMessage, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode the preview: %w", err)
	}
	return raw, nil
}

// printPreview writes a preview for people: the counts, the totals per
// right, then each listed user's changes, one line each.
func printPreview(w io.Writer, p *pb.Preview) error {
	users := "users"
	if p.GetUsersAffected() == 1 {
		users = "user"
	}
	fmt.Fprintf(w, "access: %d %s would change", p.GetUsersAffected(), users)
	if p.GetUsersListed() < p.GetUsersAffected() {
		fmt.Fprintf(w, " (the first %d listed)", p.GetUsersListed())
	}
	fmt.Fprintf(w, ", against revision %d\n", p.GetRevision())
	for _, t := range p.GetTotals() {
		fmt.Fprintf(w, "  %s: %d records gained, %d lost\n", t.GetRight(), t.GetGained(), t.GetLost())
	}
	for _, ch := range p.GetChanges() {
		cause := mutationLine(ch.GetCause())
		for _, side := range []struct {
			sign string
			list []*pb.AccessRegion
		}{{"+", ch.GetGained()}, {"-", ch.GetLost()}} {
			for _, r := range side.list {
				fmt.Fprintf(w, "%s %s %s  (mutation %d: %s)\n", side.sign, ch.GetUser(), regionLine(r), ch.GetMutation(), cause)
			}
		}
	}
	return nil
}
