package etcdstore_test

import (
	"context"
	"testing"

	"github.com/canopy-authz/canopy/store/etcdstore"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
	"github.com/canopy-authz/canopy/store/storetest"
)

// TestConformance holds the etcd store to the contract every store keeps,
// with values small enough that large commits go in parts.
func TestConformance(t *testing.T) {
	c := etcdtest.Start(t, 1)
	n := 0
	storetest.Run(t, func(t *testing.T) func(*testing.T) (storetest.Store, func()) {
		n++
		prefix := "/conformance/" + string(rune('a'+n)) + "/"
		return func(t *testing.T) (storetest.Store, func()) {
			cl := c.Client(t)
			s, err := etcdstore.Open(context.Background(), cl, etcdstore.Options{Prefix: prefix, MaxValue: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			return s, func() { cl.Close() }
		}
	})
}
