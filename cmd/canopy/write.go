package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// write commits the batch build fills in and prints its revision. With
// --if-revision on the command, the batch applies only at that revision.
func (a *app) write(cmd *cobra.Command, build func(b *client.Batch) error) error {
	cl, ctx, err := a.call(cmd)
	if err != nil {
		return err
	}
	b := cl.Batch()
	if err := build(b); err != nil {
		return err
	}
	if f := cmd.Flags().Lookup("if-revision"); f != nil && f.Changed {
		rev, _ := cmd.Flags().GetUint64("if-revision")
		b.IfRevision(rev)
	}
	if u, _ := cmd.Flags().GetString("as-user"); u != "" {
		b.AsUser(u)
	}
	if dry, _ := cmd.Flags().GetBool("dry-run"); dry {
		p, err := a.preview(cmd, b)
		if err != nil {
			return err
		}
		return a.emit(&pb.WriteResponse{Preview: p}, func(w io.Writer) error { return printPreview(w, p) })
	}
	rev, err := b.Commit(ctx)
	if err != nil {
		return err
	}
	return a.emit(&pb.WriteResponse{Revision: rev}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "committed at revision %d\n", rev)
		return err
	})
}

// writeCommand is a command that commits one batch; it gets the
// --if-revision flag.
func (a *app) writeCommand(c *cobra.Command, build func(args []string, b *client.Batch) error) *cobra.Command {
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return a.write(cmd, func(b *client.Batch) error { return build(args, b) })
	}
	c.Flags().Uint64("if-revision", 0, "apply only if the store is still at this revision")
	writeFlags(c)
	return c
}

// writeFlags gives a command that writes the --as-user and --dry-run
// flags (a.write reads them).
func writeFlags(c *cobra.Command) {
	c.Flags().String("as-user", "", "write on behalf of this user: refused unless they hold the rights the change needs")
	c.Flags().Bool("dry-run", false, "validate the change and show what it would do to access; write nothing")
	previewFlags(c)
}

// readAsUserFlag gives a directory read the --as-user flag (a.readFor
// reads it).
func readAsUserFlag(c *cobra.Command) {
	c.Flags().String("as-user", "", "read on behalf of this user: only what they may read")
}
