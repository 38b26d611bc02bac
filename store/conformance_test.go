package store_test

import (
	"testing"

	"github.com/canopy-authz/canopy/store/storetest"
)

// TestConformance holds the bbolt store to the contract every store keeps.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func(*testing.T) (storetest.Store, func()) {
		dir := t.TempDir()
		return func(t *testing.T) (storetest.Store, func()) { return storetest.Open(t, dir) }
	})
}
