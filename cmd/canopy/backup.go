package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/store"
)

func (a *app) backupCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the server's store, consistent at one revision, into FILE while writes go on",
		Long: `Streams a consistent copy of the server's bbolt file (admin scope) into
FILE, written beside it first and renamed when complete, so that FILE is
never half a backup. The copy's SHA-256, sent by the server, is checked
against what arrived, and FILE ends with a one-line trailer naming its
size and digest, so that canopyd --restore FILE (or --check-store FILE)
refuses a damaged backup before it reads it; bbolt reads the file as it
is. Restore checks the file before it replaces anything.`,
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
			var digest []byte
			sum := sha256.New()
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
				if len(m.GetSha256()) > 0 {
					digest = m.GetSha256()
				}
				if _, err := f.Write(m.GetChunk()); err != nil {
					f.Close()
					return err
				}
				sum.Write(m.GetChunk())
				got += uint64(len(m.GetChunk()))
			}
			if got != size {
				f.Close()
				return fmt.Errorf("backup: received %d bytes of %d", got, size)
			}
			if len(digest) == 0 {
				f.Close()
				return errors.New("backup: the server sent no SHA-256 of the copy (a server older than this canopy)")
			}
			if !bytes.Equal(sum.Sum(nil), digest) {
				f.Close()
				return fmt.Errorf("backup: the copy received has SHA-256 %x, the server's has %x", sum.Sum(nil), digest)
			}
			// Sealed with its size and digest, so that a restore can
			// refuse a damaged file before reading it.
			if err := store.Seal(f, int64(size), digest); err != nil {
				f.Close()
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "backed up revision %d, %d bytes, to %s\n", rev, size, args[0])
			return nil
		},
	}
}
