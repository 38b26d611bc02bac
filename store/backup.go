package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the whole store file to w, as of one
// revision, which it returns with the copy's size. It runs in a read
// transaction, so writes go on meanwhile; size is known before the first
// byte is written (sizeOf), so that a caller can announce it.
func (d *DB) Backup(w io.Writer, sizeOf func(rev uint64, size int64) error) error {
	return d.bolt.View(func(tx *bolt.Tx) error {
		rev, err := revisionOf(tx)
		if err != nil {
			return fmt.Errorf("store: backup: %w", err)
		}
		if err := sizeOf(rev, tx.Size()); err != nil {
			return err
		}
		if _, err := tx.WriteTo(w); err != nil {
			return fmt.Errorf("store: backup at revision %d: %w", rev, err)
		}
		return nil
	})
}

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// Check checks the copy of the backup at path before anything opens
	// it for writing; nil means CheckFile, in this process. A damaged file
	// can make bbolt read outside its memory map as it checks it, which
	// ends the process with a fault rather than a panic: give a Check that
	// runs CheckFile in a child process (canopyd runs itself with
	// --check-store), so that such a file is refused instead.
	Check func(path string) error
}

// Restore makes the backup file at from the store of the data folder dir,
// once it has checked it (opts.Check: bbolt's consistency check and the
// buckets a store has) and every record loads (load, given the opened
// copy, builds the index from it), giving it a new identity (DB.ID). Only
// then is the folder's current file, if any, kept beside it as
// canopy.db.before-restore-TIME and the backup put in its place; a backup
// that fails any check replaces nothing. It returns the revision restored.
func Restore(dir, from string, load func(*DB) (uint64, error), opts RestoreOptions) (uint64, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "restore-")
	if err != nil {
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	defer os.RemoveAll(tmp)
	copied := filepath.Join(tmp, FileName)
	if err := copyFile(from, copied); err != nil {
		return 0, fmt.Errorf("store: restore from %s: %w", from, err)
	}
	// A sealed backup is checked against its digest first, and restored
	// without its trailer.
	if size, sealed, err := unseal(copied); err != nil {
		return 0, fmt.Errorf("store: restore from %s: %w; nothing was replaced", from, err)
	} else if sealed {
		if err := os.Truncate(copied, size); err != nil {
			return 0, fmt.Errorf("store: restore from %s: %w", from, err)
		}
	}
	check := opts.Check
	if check == nil {
		check = CheckFile
	}
	if err := check(copied); err != nil {
		return 0, fmt.Errorf("store: restore from %s: %w; nothing was replaced", from, err)
	}
	db, err := Open(tmp, Options{})
	if err != nil {
		return 0, fmt.Errorf("store: restore from %s: %w; nothing was replaced", from, err)
	}
	rev, err := load(db)
	if err == nil {
		// A new history from here: a revision of the old one means
		// nothing in it.
		err = db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyID, newID()) })
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("store: restore from %s: %w; nothing was replaced", from, err)
	}
	cur := filepath.Join(dir, FileName)
	if _, err := os.Stat(cur); err == nil {
		keep := filepath.Join(dir, FileName+".before-restore-"+time.Now().UTC().Format("20060102T150405Z"))
		if err := os.Rename(cur, keep); err != nil {
			return 0, fmt.Errorf("store: restore: keep the current file: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, FileName), cur); err != nil {
		return 0, fmt.Errorf("store: restore: %w", err)
	}
	return rev, nil
}

// CheckFile opens the bbolt file at path read-only, runs its consistency
// check, and requires the buckets of a store, before anything opens it
// for writing (which would create them). See RestoreOptions.Check for why
// it belongs in a process of its own when the file may be damaged.
func CheckFile(path string) error {
	if _, _, err := unseal(path); err != nil {
		return err
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("not a bbolt file: %w", err)
	}
	defer b.Close()
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return b.View(func(tx *bolt.Tx) error {
		// Checked first: reading pages past the end of a cut file faults.
		if info.Size() < tx.Size() {
			return fmt.Errorf("cut short: %d bytes of the %d its header names", info.Size(), tx.Size())
		}
		for err := range tx.Check() {
			return fmt.Errorf("not consistent: %w", err)
		}
		for _, name := range [][]byte{bucketMeta, bucketLog} {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("not a Canopy store: no %s bucket", name)
			}
		}
		return nil
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
