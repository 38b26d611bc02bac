package etcdstore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
	"github.com/canopy-authz/canopy/store/storetest"
)

// TestSweep: parts no transaction named are removed once old enough;
// parts of a committed group, and recent ones, stay.
func TestSweep(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	cl := c.Client(t)
	s, err := Open(ctx, cl, Options{Prefix: "/s/", MaxValue: 512})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 100 {
		ids = append(ids, fmt.Sprintf("a folder id long enough to need parts %d", i))
	}
	if err := s.Append(ctx, 0, []graph.Commit{storetest.FolderCommit(1, ids...)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old, recent := partsID(now.Add(-time.Hour)), partsID(now)
	for _, id := range []string{old, recent} {
		if _, err := s.putParts(ctx, id, []byte(strings.Repeat("x", 2000))); err != nil {
			t.Fatal(err)
		}
	}
	count := func(id string) int64 {
		resp, err := cl.Get(ctx, s.key(prefixPart+id), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Count
	}
	before, err := cl.Get(ctx, s.key(prefixPart), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Sweep(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("swept %d sets of parts, want 1, %v", n, err)
	}
	if count(old) != 0 || count(recent) == 0 {
		t.Fatalf("after the sweep: %d parts of the old set, %d of the recent", count(old), count(recent))
	}
	after, err := cl.Get(ctx, s.key(prefixPart), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || after.Count != before.Count-4 {
		t.Fatalf("%d parts before, %d after: the committed group's must stay", before.Count, after.Count)
	}
	if log, err := s.ReadLog(1, 10); err != nil || len(log) != 1 || len(log[0].Mutations) != 100 {
		t.Fatalf("the committed group after the sweep: %v", err)
	}
}
