package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
)

// TestQuorum: with one member of three down, writes and reads go on;
// with two down (no quorum), a write fails with a storage error naming
// the cause, soon, and changes nothing, while checks go on at the last
// revision; with the members back, writes go on by themselves and every
// node has the same records.
func TestQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts etcd members")
	}
	c := etcdtest.Start(t, 3)
	ctx := context.Background()
	a, b := startNode(t, c, "/q/"), startNode(t, c, "/q/")
	write := func(ix *graph.Index, id string) (uint64, error) {
		return ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: id}}}, graph.Preconditions{})
	}
	if _, err := a.ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "before"}}, {CreateUser: &graph.User{ID: "u", Class: "staff", Home: "before"}}}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	c.Stop(2)
	rev, err := write(b.ix, "one-down")
	if err != nil {
		t.Fatalf("with one member of three down: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.ix.WaitFor(wctx, rev); err != nil {
		t.Fatalf("node a does not follow with one member down: %v", err)
	}

	c.Stop(1)
	start := time.Now()
	_, err = write(a.ix, "no-quorum")
	if !errors.Is(err, graph.ErrStorage) {
		t.Fatalf("a write without quorum: %v, want a storage error", err)
	}
	// Refused by a member that knows it has no leader, it is certainly
	// not committed; on its way when the quorum went, it may yet be.
	unknown := errors.Is(err, graph.ErrUnknownOutcome)
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("a write without quorum took %s to fail", d)
	}
	t.Logf("a write without quorum failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if d, err := a.ix.Check("u", "read", graph.FolderRef("before")); err != nil || d.Revision != rev {
		t.Fatalf("a check without quorum: %+v, %v; want an answer at revision %d", d, err, rev)
	}
	if _, _, _, err := a.ix.GetFolder("one-down"); err != nil {
		t.Fatalf("reads without quorum: %v", err)
	}

	c.Restart(1)
	c.Restart(2)
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		rev, err = write(b.ix, fmt.Sprint("after-", i))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes do not recover within a minute of quorum's return: %v", err)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	wctx2, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	if err := a.ix.WaitFor(wctx2, rev); err != nil {
		t.Fatalf("node a does not follow after quorum's return: %v", err)
	}
	ra, _, _ := a.ix.Records()
	rb, _, _ := b.ix.Records()
	if !reflect.DeepEqual(ra, rb) {
		t.Fatal("the nodes differ after quorum's return")
	}
	if _, _, _, err := a.ix.GetFolder("no-quorum"); err == nil && !unknown {
		t.Fatal("a write refused as not committed was committed")
	}
}
