package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

func (a *app) backupCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the server's store, consistent at one revision, into FILE while writes go on",
		Long: `Streams a consistent copy of the server's bbolt file (admin scope) into
FILE, written beside it first and renamed when complete, so that FILE is
never half a backup. Restore it with canopyd --restore FILE, which checks
the file before it replaces anything.`,
		Example: "  canopy backup canopy-$(date +%F).db",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			s, err := cl.DirectoryService.Backup(cmd.Context(), &pb.BackupRequest{})
			if err != nil {
				return err
			}
			tmp := args[0] + ".partial"
			f, err := os.Create(tmp)
			if err != nil {
				return err
			}
			defer os.Remove(tmp) // gone once renamed
			var rev, size, got uint64
			for {
				m, err := s.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					f.Close()
					return err
				}
				if m.GetSize() > 0 {
					rev, size = m.GetRevision(), m.GetSize()
				}
				if _, err := f.Write(m.GetChunk()); err != nil {
					f.Close()
					return err
				}
				got += uint64(len(m.GetChunk()))
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if got != size {
				return fmt.Errorf("backup: received %d bytes of %d", got, size)
			}
			if err := os.Rename(tmp, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "backed up revision %d, %d bytes, to %s\n", rev, size, args[0])
			return nil
		},
	}
}
