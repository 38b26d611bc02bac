package replica_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/client"
	"github.com/canopy-authz/canopy/client/replica"
	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/graph/orggen"
	"github.com/canopy-authz/canopy/server/servertest"
	"github.com/canopy-authz/canopy/store"
)

// world is a server loaded with a random organisation, a client of it
// and a replica over the client.
type world struct {
	srv    *servertest.Server
	org    *orggen.Org
	churn  *orggen.Churn
	checks []graph.CheckRequest
	r      *replica.Replica
}

func newWorld(t testing.TB, seed uint64, opts replica.Options) *world {
	t.Helper()
	srv := servertest.Start(t)
	org := orggen.Generate(orggen.Design().Scale(0.0005), 200)
	for _, b := range org.Batches {
		if _, err := srv.Index.Import(context.Background(), "load", b); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.Dial(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := replica.Open(ctx, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &world{srv: srv, org: org, churn: orggen.NewChurn(org, nil, seed), checks: org.Checks(300, seed), r: r}
}

// write commits n churn batches on the server and returns the revision of
// the last one committed.
func (w *world) write(t *testing.T, n int) uint64 {
	t.Helper()
	rev := w.srv.Index.Revision()
	for range n {
		batch, undo := w.churn.Next()
		got, err := w.srv.Index.Write(context.Background(), "churn", batch, graph.Preconditions{})
		if err != nil {
			continue // a removal of what another step removed first
		}
		w.churn.Committed(undo)
		rev = got
	}
	return rev
}

// agree waits for the replica to reach rev, which must be the server's
// revision (nothing writes meanwhile), and compares every sample check,
// a batch of them, and explanations.
func (w *world) agree(t *testing.T, rev uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := w.r.Check(ctx, "nobody", "read", graph.Ref{}, replica.AtLeast(rev)); err != nil && !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("replica at %d, waiting for %d: %v", w.r.Revision(), rev, err)
	}
	if got := w.r.Revision(); got != rev || w.srv.Index.Revision() != rev {
		t.Fatalf("replica at %d, server at %d, want both at %d", got, w.srv.Index.Revision(), rev)
	}
	for _, c := range w.checks {
		want, werr := w.srv.Index.Check(c.User, c.Right, c.Resource)
		got, gerr := w.r.Check(ctx, c.User, c.Right, c.Resource)
		if fmt.Sprint(werr) != fmt.Sprint(gerr) || want != got {
			t.Fatalf("revision %d, %s %s %v: replica %+v, %v; server %+v, %v", rev, c.User, c.Right, c.Resource, got, gerr, want, werr)
		}
	}
	want, werrs, wrev := w.srv.Index.CheckMany(w.checks)
	got, gerrs, grev, err := w.r.BatchCheck(ctx, w.checks)
	if err != nil || wrev != grev || !reflect.DeepEqual(want, got) || fmt.Sprint(werrs) != fmt.Sprint(gerrs) {
		t.Fatalf("batch at %d: replica at %d, %v, %v; server at %d, %v", rev, grev, err, gerrs, wrev, werrs)
	}
	for _, c := range w.checks[:20] {
		want, werr := w.srv.Index.Explain(c.User, c.Right, c.Resource)
		got, gerr := w.r.Explain(ctx, c.User, c.Right, c.Resource)
		if fmt.Sprint(werr) != fmt.Sprint(gerr) || !reflect.DeepEqual(want, got) {
			t.Fatalf("explain at %d, %s %s %v: they differ", rev, c.User, c.Right, c.Resource)
		}
	}
}

// TestReplicaAgreesWithServer: on random organisations and random write
// sequences, a replica answers every check, batch and explanation as the
// server does at the same revision.
func TestReplicaAgreesWithServer(t *testing.T) {
	for i := range 3 {
		seed := graphtest.Seed(t, i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			w := newWorld(t, seed, replica.Options{})
			w.agree(t, w.srv.Index.Revision())
			for range 8 {
				w.agree(t, w.write(t, 25))
			}
		})
	}
}

// TestReplicaResumesAndLoadsAfresh: while the server cannot be reached a
// replica answers at its revision until MaxStaleness passes, then says it
// is stale; the server back, it catches up by itself; when the server no
// longer holds the revision it needs, it loads afresh and agrees again.
func TestReplicaResumesAndLoadsAfresh(t *testing.T) {
	var resynced atomic.Bool
	w := newWorld(t, 7, replica.Options{MaxStaleness: 300 * time.Millisecond, OnError: func(err error) {
		if errors.Is(err, client.ErrResync) {
			resynced.Store(true)
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := w.srv.Addr
	w.srv.GRPC.Stop()
	rev := w.write(t, 20)
	c := w.checks[0]
	if _, err := w.r.Check(ctx, c.User, c.Right, c.Resource); err != nil && !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("just after the server went away: %v", err)
	}
	for tick := time.NewTicker(20 * time.Millisecond); ; {
		_, err := w.r.Check(ctx, c.User, c.Right, c.Resource)
		if errors.Is(err, replica.ErrStale) {
			tick.Stop()
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the replica never said it was stale")
		case <-tick.C:
		}
	}
	if err := w.srv.Serve(addr); err != nil {
		t.Fatal(err)
	}
	w.agree(t, rev)

	// Out of reach again while the log is compacted past the replica.
	w.srv.GRPC.Stop()
	rev = w.write(t, 20)
	if _, err := w.srv.DB.Compact(time.Now().Add(time.Hour), store.Retention{Revisions: 1, Age: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	if err := w.srv.Serve(addr); err != nil {
		t.Fatal(err)
	}
	w.agree(t, rev)
	if !resynced.Load() {
		t.Fatal("the replica caught up without being told to load afresh: the test did not compact past it")
	}
}
