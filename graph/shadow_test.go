package graph_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// shadowWorld opens an index with one organisation "o", users "u" and "v"
// placed in it, and OnAccess set to onAccess.
func shadowWorld(t *testing.T, onAccess func([]graph.Commit)) *graph.Index {
	t.Helper()
	ix := openWith(t, graph.Options{Clock: graphtest.NewClock(graphtest.Start), OnAccess: onAccess})
	if _, err := ix.Write(context.Background(), "test", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "o"}},
		{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "o"}},
		{CreateUser: &graph.User{ID: "v", Class: "staff", Home: "o"}},
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	return ix
}

// grantOn writes a grant of read on "o" to holder.
func grantOn(t *testing.T, ix *graph.Index, id, holder string) uint64 {
	t.Helper()
	rev, err := ix.Write(context.Background(), "test", []graph.Mutation{{AddGrant: &graph.Grant{
		ID: id, Holder: graph.UserRef(holder), Target: graph.FolderRef("o"), Rights: []string{"read"}}}}, graph.Preconditions{})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// upToDate starts watching user, stopped when the test ends, and checks
// that the watch starts at the index's revision with some access.
func upToDate(t *testing.T, ix *graph.Index, user string) {
	t.Helper()
	w, err := ix.WatchAccess(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	if w.Revision != ix.Revision() || len(w.Start.Gained) == 0 {
		t.Fatalf("watch of %s at revision %d (index at %d) with %+v", user, w.Revision, ix.Revision(), w.Start)
	}
}

// TestShadowLifecycle: the shadow is made by the first watch, shared by
// the next, dropped after the last stops (or after a watch that failed),
// and made again, up to date, by a later watch.
func TestShadowLifecycle(t *testing.T) {
	defer graph.SetShadowLinger(graph.SetShadowLinger(0))
	ctx := context.Background()
	log := newCommitLog()
	ix := shadowWorld(t, log.publish)
	if recs, _ := graph.ShadowRecords(ix); recs != nil {
		t.Fatal("a shadow before any watch")
	}
	// A watch that fails leaves no shadow behind, though it made one.
	if _, err := ix.WatchAccess(ctx, "nobody"); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("an unknown user: %v, want ErrNotFound", err)
	}
	if recs, _ := graph.ShadowRecords(ix); recs != nil {
		t.Fatal("a failed watch left its shadow")
	}
	wu, err := ix.WatchAccess(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	wv, err := ix.WatchAccess(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if st := ix.Stats(); st.Watched != 2 {
		t.Fatalf("%d users watched, want 2", st.Watched)
	}
	rev := grantOn(t, ix, "g1", "u")
	got := log.waitFor(t, rev)
	if c := got[len(got)-1]; len(c.Access) != 1 || c.Access[0].User != "u" || len(c.Access[0].Gained) == 0 {
		t.Fatalf("revision %d: access changes %+v, want one gain for u", c.Revision, c.Access)
	}
	wu.Stop()
	wu.Stop() // twice is once
	if st := ix.Stats(); st.Watched != 1 {
		t.Fatalf("%d users watched after u stopped, want 1", st.Watched)
	}
	wv.Stop()
	if recs, _ := graph.ShadowRecords(ix); recs != nil {
		t.Fatal("the shadow outlived its last watch")
	}

	// Written with no shadow: the next one is copied with it.
	grantOn(t, ix, "g2", "v")
	upToDate(t, ix, "v")
	recs, srev := graph.ShadowRecords(ix)
	want, wrev, err := ix.Records()
	if err != nil {
		t.Fatal(err)
	}
	if srev != wrev || fmt.Sprint(recs) != fmt.Sprint(want) {
		t.Fatalf("the new shadow at %d differs from the index at %d", srev, wrev)
	}
	if _, err := ix.WatchAccess(ctx, "nobody"); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("an unknown user: %v, want ErrNotFound", err)
	}
}

// TestShadowFallsBehind: a shadow that cannot keep up never makes a
// writer wait: past its backlog it ends, and its watches with ErrBehind;
// the next watch starts afresh.
func TestShadowFallsBehind(t *testing.T) {
	defer graph.SetShadowBacklog(graph.SetShadowBacklog(4))
	ctx := context.Background()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	ix := shadowWorld(t, func([]graph.Commit) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	})
	w, err := ix.WatchAccess(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	grantOn(t, ix, "g0", "v")
	<-entered // the shadow is stuck handing on g0
	for i := 1; i <= 5; i++ {
		grantOn(t, ix, fmt.Sprintf("g%d", i), "u")
	}
	select {
	case <-w.Ended():
	case <-time.After(time.Minute):
		t.Fatal("the watch did not end")
	}
	if !errors.Is(w.Err(), graph.ErrBehind) {
		t.Fatalf("ended with %v, want ErrBehind", w.Err())
	}
	close(release)
	upToDate(t, ix, "u")
}

// TestShadowClose: closing the index hands on what the shadow had queued,
// then ends its watches with ErrClosed.
func TestShadowClose(t *testing.T) {
	ctx := context.Background()
	log := newCommitLog()
	ix := shadowWorld(t, log.publish)
	w, err := ix.WatchAccess(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	rev := grantOn(t, ix, "g", "u")
	ix.Close()
	<-w.Ended()
	if !errors.Is(w.Err(), graph.ErrClosed) {
		t.Fatalf("ended with %v, want ErrClosed", w.Err())
	}
	if c := log.last(); c.Revision != rev || len(c.Access) != 1 {
		t.Fatalf("last handed on: revision %d with %+v; want %d with u's gain", c.Revision, c.Access, rev)
	}
	if _, err := ix.WatchAccess(ctx, "u"); !errors.Is(err, graph.ErrClosed) {
		t.Fatalf("watch after close: %v, want ErrClosed", err)
	}
}
