package client_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/client"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server/servertest"
)

// TestSoak runs mixed traffic against a real server for a fixed time
// (CANOPY_SOAK, 3 s here; docs/operations.md gives a long run): checks,
// batch checks, lookups, explanations, writes that move users between
// folders, and Watch and WatchAccess streams that follow them. No call may
// fail, every stream must keep up, and goroutines and live memory must be
// as flat at the end as a third of the way in.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	length := 3 * time.Second
	if s := os.Getenv("CANOPY_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		length = d
	}
	in := servertest.Start(t)
	c := dial(t, in.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), length+time.Minute)
	defer cancel()
	b := c.Batch().CreateFolder("acme", "", "").CreateFolder("staff", "", "acme").CreateUser("boss", "", "staff", "staff").
		AddGrant("all", client.Folder("staff"), client.Folder("acme"), "edit")
	for i := range 20 {
		b.CreateFolder(fmt.Sprint("class", i), "", "acme")
	}
	for i := range 500 {
		b.CreateUser(fmt.Sprint("u", i), "", "candidate", fmt.Sprint("class", i%20))
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	baseGoroutines := runtime.NumGoroutine()
	end := time.Now().Add(length)
	third := time.Now().Add(length / 3)
	var ops, failures atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, err)
	}
	var wg sync.WaitGroup
	work := func(f func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				if err := f(i); err != nil {
					fail(err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	work(func(i int) error {
		_, err := c.Check(ctx, "boss", "edit", client.User(fmt.Sprint("u", i%500)))
		return err
	})
	work(func(i int) error {
		_, err := c.BatchCheck(ctx, []client.CheckItem{{User: "boss", Right: "read", Resource: client.Folder("acme")}, {User: fmt.Sprint("u", i%500), Right: "read"}})
		return err
	})
	work(func(i int) error {
		for _, err := range c.LookupResources(ctx, "boss", "edit", pb.ObjectKind_OBJECT_KIND_FOLDER) {
			if err != nil {
				return err
			}
		}
		_, err := c.Explain(ctx, "boss", "edit", client.User(fmt.Sprint("u", i%500)))
		return err
	})
	var written atomic.Uint64
	work(func(i int) error {
		rev, err := c.Batch().MoveUser(fmt.Sprint("u", i%500), fmt.Sprint("class", (i+1)%20)).Commit(ctx)
		written.Store(rev)
		return err
	})
	// Streams that follow every change; each must reach the last write.
	followed := make([]atomic.Uint64, 4)
	wctx, stopStreams := context.WithCancel(ctx)
	var streams sync.WaitGroup
	for k := range followed {
		streams.Add(1)
		go func() {
			defer streams.Done()
			if k%2 == 0 {
				for m, err := range c.Watch(wctx, 0, nil) {
					if err != nil {
						fail(err)
						return
					}
					followed[k].Store(m.GetRevision())
				}
				return
			}
			for m, err := range c.WatchAccess(wctx, "boss") {
				if err != nil {
					fail(err)
					return
				}
				followed[k].Store(m.GetRevision())
			}
		}()
	}
	var mid runtime.MemStats
	for time.Now().Before(third) {
		if _, err := c.Check(ctx, "boss", "read", client.Folder("acme")); err != nil {
			fail(err)
			break
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&mid)
	wg.Wait()
	// Every Watch stream reaches the last revision written.
	last := in.Index.Revision()
	for k := 0; k < len(followed); k += 2 {
		for followed[k].Load() < last && ctx.Err() == nil && failures.Load() == 0 {
			if _, err := c.Check(ctx, "boss", "read", client.Folder("acme"), client.AtLeast(last)); err != nil {
				fail(err)
			}
		}
	}
	stopStreams()
	streams.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d failures in %d operations; the first: %v", n, ops.Load(), firstErr.Load())
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%v: %d operations, %d writes; live heap %d MB a third in, %d MB at the end; goroutines %d before, %d after",
		length, ops.Load(), written.Load(), mid.HeapAlloc>>20, after.HeapAlloc>>20, baseGoroutines, runtime.NumGoroutine())
	if g := runtime.NumGoroutine(); g > baseGoroutines+50 {
		t.Errorf("goroutines grew from %d to %d", baseGoroutines, g)
	}
	if after.HeapAlloc > 2*mid.HeapAlloc+32<<20 {
		t.Errorf("live heap grew from %d MB to %d MB", mid.HeapAlloc>>20, after.HeapAlloc>>20)
	}
}
