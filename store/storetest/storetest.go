// Package storetest opens stores for tests: in a temporary folder, checked
// for consistency and closed when the test ends.
package storetest

import (
	"testing"

	"github.com/canopy-authz/canopy/store"
)

// Open opens the store in dir (t.TempDir() when dir is empty) and, when the
// test ends, checks the file's consistency and closes it. Close it earlier
// with the returned func (which then does nothing at cleanup).
func Open(tb testing.TB, dir string) (*store.DB, func()) {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	closed := false
	closeFn := func() {
		if closed {
			return
		}
		closed = true
		if err := db.Check(); err != nil {
			tb.Error(err)
		}
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	}
	tb.Cleanup(closeFn)
	return db, closeFn
}
