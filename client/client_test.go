package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/client"
	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server/servertest"
	"github.com/canopy-authz/canopy/store"
)

func TestTokenNeedsTLSBeyondLoopback(t *testing.T) {
	if _, err := client.Dial("canopy.example:7070", client.WithToken("t")); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("token over plaintext to a remote server: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:7070", "localhost:7070", "[::1]:7070"} {
		c, err := client.Dial(addr, client.WithToken("t"))
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		c.Close()
	}
	c, err := client.Dial("canopy.example:7070", client.WithToken("t"), client.AllowInsecureToken())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// fastRetry keeps the tests' backoffs short.
var fastRetry = client.WithRetry(client.Retry{Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})

func dial(t testing.TB, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(addr, append([]client.Option{fastRetry}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// flaky fails the first calls of each method with Unavailable, counting
// every call, as a server restarting would.
type flaky struct {
	failFirst int
	calls     map[string]*atomic.Int32
}

func newFlaky(failFirst int, methods ...string) *flaky {
	f := &flaky{failFirst: failFirst, calls: map[string]*atomic.Int32{}}
	for _, m := range methods {
		f.calls[m] = &atomic.Int32{}
	}
	return f
}

func (f *flaky) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if n, ok := f.calls[info.FullMethod]; ok && int(n.Add(1)) <= f.failFirst {
		return nil, status.Error(codes.Unavailable, "restarting")
	}
	return h(ctx, req)
}

// TestRetries: reads are retried through Unavailable; a Write is retried
// only with a revision precondition, so it can never apply twice.
func TestRetries(t *testing.T) {
	f := newFlaky(2, pb.AccessService_Check_FullMethodName, pb.DirectoryService_Write_FullMethodName)
	in := servertest.Start(t, grpc.ChainUnaryInterceptor(f.intercept))
	c := dial(t, in.Addr)
	ctx := ctxT(t)

	if _, err := c.Check(ctx, "nobody", "read", nil); err != nil {
		t.Fatalf("check after two failures: %v", err)
	}
	if n := f.calls[pb.AccessService_Check_FullMethodName].Load(); n != 3 {
		t.Fatalf("check tried %d times, want 3", n)
	}
	_, err := c.Batch().CreateFolder("acme", "", "").Commit(ctx)
	if status.Code(err) != codes.Unavailable || f.calls[pb.DirectoryService_Write_FullMethodName].Load() != 1 {
		t.Fatalf("a write with no precondition: %v after %d tries, want Unavailable after 1", err, f.calls[pb.DirectoryService_Write_FullMethodName].Load())
	}
	head := in.Index.Revision()
	rev, err := c.Batch().IfRevision(head).CreateFolder("acme", "", "").Commit(ctx)
	if err != nil || rev != head+1 || f.calls[pb.DirectoryService_Write_FullMethodName].Load() != 3 {
		t.Fatalf("a write with a revision precondition: revision %d, %v after %d tries", rev, err, f.calls[pb.DirectoryService_Write_FullMethodName].Load())
	}
	// Retrying the same precondition now fails rather than applying twice.
	if _, err := c.Batch().IfRevision(head).CreateFolder("beta", "", "").Commit(ctx); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a stale precondition: %v", err)
	}

	off := dial(t, in.Addr, client.WithRetry(client.Retry{Attempts: 1}))
	f.calls[pb.AccessService_Check_FullMethodName].Store(0)
	if _, err := off.Check(ctx, "nobody", "read", nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("retries off: %v", err)
	}
}

// TestFreshness: the client remembers the newest revision it wrote or
// read, and Fresh reads are at least that new.
func TestFreshness(t *testing.T) {
	in := servertest.Start(t)
	c := dial(t, in.Addr)
	ctx := ctxT(t)
	rev, err := c.Batch().CreateFolder("acme", "Acme", "").CreateUser("ann", "Ann", "staff", "acme").Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision() != rev {
		t.Fatalf("revision after a write: %d, want %d", c.Revision(), rev)
	}
	d, err := c.Check(ctx, "ann", "read", client.User("ann"), client.Fresh())
	if err != nil || !d.Allowed || d.Revision < rev {
		t.Fatalf("fresh self read: %+v, %v", d, err)
	}
	// A second client that writes moves the first one's view only when it
	// reads an answer at the newer revision.
	other := dial(t, in.Addr)
	rev2, err := other.Write(ctx, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "b", Parent: "acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.GetFolder(ctx, "b", client.AtLeast(rev2)); err != nil || c.Revision() < rev2 {
		t.Fatalf("read at least %d: %v, client at %d", rev2, err, c.Revision())
	}
	if _, _, err := c.GetFolder(ctx, "b", client.FullyConsistent()); err != nil {
		t.Fatal(err)
	}
	// A revision the server has not reached makes the read wait until
	// the deadline.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Check(short, "ann", "read", client.User("ann"), client.AtLeast(rev2+10)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("read at a future revision: %v", err)
	}
}

// TestIterators: listings follow page tokens to the end, lookups and
// Export stream everything, BatchCheck answers in order.
func TestIterators(t *testing.T) {
	in := servertest.Start(t)
	c := dial(t, in.Addr)
	ctx := ctxT(t)
	b := c.Batch().CreateFolder("acme", "", "").CreateFolder("staff", "", "acme").CreateUser("boss", "", "staff", "staff").
		AddGrant("boss-all", client.Folder("staff"), client.Folder("acme"), "edit")
	var want []string
	for i := range 2500 { // past the server's page of 1,000
		id := fmt.Sprintf("f%04d", i)
		want = append(want, id)
		b.CreateFolder(id, "", "acme")
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for f, err := range c.Folders(ctx, "acme", false) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.GetId())
	}
	if !slices.Equal(got, append(slices.Clone(want), "staff")) {
		t.Fatalf("children of acme: %d of them, want %d", len(got), len(want)+1)
	}
	got = got[:0]
	for id, err := range c.LookupResources(ctx, "boss", "edit", pb.ObjectKind_OBJECT_KIND_FOLDER) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if len(got) != 2502 || got[0] != "acme" {
		t.Fatalf("boss may edit %d folders, want 2502 (first %v)", len(got), got[:1])
	}
	var who []string
	for id, err := range c.LookupSubjects(ctx, "edit", client.Folder("f0001")) {
		if err != nil {
			t.Fatal(err)
		}
		who = append(who, id)
	}
	if !slices.Equal(who, []string{"boss"}) {
		t.Fatalf("who may edit f0001: %v", who)
	}
	var rev uint64
	n := 0
	for _, err := range c.Export(ctx, &rev) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if rev != in.Index.Revision() || n < 2504 {
		t.Fatalf("export: %d mutations at %d", n, rev)
	}
	// acme's history, newest first, over pages of 100: the creation of
	// every folder in it, the grant on it, and acme's own creation.
	var hist []string
	for e, err := range c.History(ctx, &pb.HistoryRequest{Object: "folder/acme"}) {
		if err != nil {
			t.Fatal(err)
		}
		hist = append(hist, e.GetMutation().GetCreateFolder().GetId())
	}
	if len(hist) != 2503 || hist[0] != "f2499" || hist[len(hist)-1] != "acme" {
		t.Fatalf("acme's history: %d entries, %v ... %v", len(hist), hist[:1], hist[len(hist)-1:])
	}
	ds, err := c.BatchCheck(ctx, []client.CheckItem{{User: "boss", Right: "edit", Resource: client.Folder("f0002")}, {User: "boss", Right: "assign", Resource: client.Folder("f0002")}})
	if err != nil || len(ds) != 2 || !ds[0].Allowed || ds[1].Allowed || ds[1].Reason != pb.Reason_REASON_NO_GRANT {
		t.Fatalf("batch check: %+v, %v", ds, err)
	}
}

// TestImport: an import larger than one chunk reports each commit.
func TestImport(t *testing.T) {
	in := servertest.Start(t)
	c := dial(t, in.Addr)
	muts := func(yield func(*pb.Mutation) bool) {
		if !yield(&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "acme"}}}) {
			return
		}
		for i := range 25_000 {
			if !yield(&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprint("f", i), Parent: "acme"}}}) {
				return
			}
		}
	}
	var seen []client.ImportProgress
	last, err := c.Import(ctxT(t), muts, func(p client.ImportProgress) { seen = append(seen, p) })
	if err != nil || last.Committed != 25_001 || len(seen) != 3 || last.Revision != in.Index.Revision() {
		t.Fatalf("import: %+v after %v, %v", last, seen, err)
	}
	// A bad mutation stops it, naming the id; what came before stays.
	bad := func(yield func(*pb.Mutation) bool) {
		yield(&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "x", Parent: "nowhere"}}})
	}
	if _, err := c.Import(ctxT(t), bad, nil); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("bad import: %v", err)
	}
}

// TestWatchResumesAfterRestart: a Watch whose server goes away and comes
// back on the same address reconnects and goes on after the last revision
// it yielded, with nothing missed or repeated; WatchAccess starts again
// from the whole access.
func TestWatchResumesAfterRestart(t *testing.T) {
	in := servertest.Start(t)
	c := dial(t, in.Addr)
	ctx := ctxT(t)
	if _, err := c.Batch().CreateFolder("acme", "", "").CreateUser("ann", "", "staff", "acme").Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	revs := make(chan uint64, 16)
	accessStarts := make(chan uint64, 16)
	errs := make(chan error, 2)
	from := in.Index.Revision() + 1
	go func() {
		for m, err := range c.Watch(wctx, from, nil) {
			if err != nil {
				errs <- err
				return
			}
			revs <- m.GetRevision()
		}
	}()
	go func() {
		for m, err := range c.WatchAccess(wctx, "ann") {
			if err != nil {
				errs <- err
				return
			}
			if m.GetCause() == nil {
				accessStarts <- m.GetRevision()
			}
		}
	}()
	receive := func(ch chan uint64, what string) uint64 {
		t.Helper()
		select {
		case got := <-ch:
			return got
		case err := <-errs:
			t.Fatalf("%s ended: %v", what, err)
		case <-ctx.Done():
			t.Fatalf("no %s", what)
		}
		return 0
	}
	if rev := receive(accessStarts, "first access"); rev != 2 {
		t.Fatalf("access first at %d, want 2", rev)
	}
	commit := func(id string) uint64 {
		t.Helper()
		rev, err := in.Index.Write(ctx, "test", []graph.Mutation{{CreateFolder: &graph.Folder{ID: id, Parent: "acme"}}}, graph.Preconditions{})
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	if want := commit("a"); receive(revs, "watch") != want {
		t.Fatalf("watch did not give revision %d first", want)
	}
	// The gRPC server goes away; commits made meanwhile must reach the
	// watch once it is back, in order.
	in.GRPC.Stop()
	want := []uint64{commit("b"), commit("c")}
	if err := in.Serve(in.Addr); err != nil {
		t.Fatal(err)
	}
	want = append(want, commit("d"))
	for _, w := range want {
		if got := receive(revs, "watch"); got != w {
			t.Fatalf("after the restart the watch gave %d, want %d", got, w)
		}
	}
	if rev := receive(accessStarts, "access after the restart"); rev < want[1] {
		t.Fatalf("access again at %d, want at least %d", rev, want[1])
	}
}

// TestWatchResync: resuming from a revision the log no longer keeps is
// ErrResync, not an endless reconnect.
func TestWatchResync(t *testing.T) {
	in := servertest.Start(t)
	c := dial(t, in.Addr)
	ctx := ctxT(t)
	for _, id := range []string{"a", "b", "c"} {
		if _, err := c.Batch().CreateFolder(id, "", "").Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.DB.Compact(time.Now().Add(time.Hour), store.Retention{Revisions: 1}); err != nil {
		t.Fatal(err)
	}
	for _, err := range c.Watch(ctx, 1, nil) {
		if !errors.Is(err, client.ErrResync) {
			t.Fatalf("watch from a compacted revision: %v", err)
		}
		return
	}
	t.Fatal("watch from a compacted revision ended with nothing")
}

// cutStream fails the first LookupResources stream with Unavailable after
// its first message, as a dropped connection would.
type cutStream struct {
	grpc.ServerStream
	sent int
}

func (s *cutStream) SendMsg(m any) error {
	if s.sent == 1 {
		return status.Error(codes.Unavailable, "connection dropped")
	}
	s.sent++
	return s.ServerStream.SendMsg(m)
}

// TestLookupResumesAfterADroppedStream: a lookup cut after its first chunk
// is opened again and goes on after the last id yielded: every id once.
func TestLookupResumesAfterADroppedStream(t *testing.T) {
	var cut atomic.Bool
	drop := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod == pb.AccessService_LookupResources_FullMethodName && cut.CompareAndSwap(false, true) {
			return h(srv, &cutStream{ServerStream: ss})
		}
		return h(srv, ss)
	}
	in := servertest.Start(t, grpc.ChainStreamInterceptor(drop))
	c := dial(t, in.Addr)
	ctx := ctxT(t)
	b := c.Batch().CreateFolder("acme", "", "").CreateUser("boss", "", "staff", "acme").AddGrant("all", client.User("boss"), client.Folder("acme"), "read")
	for i := range 3000 { // several chunks of the stream
		b.CreateUser(fmt.Sprintf("u%04d", i), "", "staff", "acme")
	}
	if _, err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for id, err := range c.LookupResources(ctx, "boss", "read", pb.ObjectKind_OBJECT_KIND_USER) {
		if err != nil {
			t.Fatal(err)
		}
		seen[id]++
	}
	if !cut.Load() || len(seen) != 3001 {
		t.Fatalf("cut %v; %d ids, want 3001", cut.Load(), len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s yielded %d times", id, n)
		}
	}
}

// TestWatchJoinsParts: a commit the server splits into several messages
// (larger than a default client takes in one) is yielded as one response.
func TestWatchJoinsParts(t *testing.T) {
	in := servertest.Start(t)
	c := dial(t, in.Addr)
	ctx := ctxT(t)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	got := make(chan *pb.WatchResponse, 1)
	from := in.Index.Revision() + 1
	go func() {
		for m, err := range c.Watch(wctx, from, nil) {
			if err != nil {
				t.Error(err)
				return
			}
			got <- m
			return
		}
	}()
	const n = 6000
	muts := func(yield func(*pb.Mutation) bool) {
		yield(&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "big"}}})
		for i := range n {
			if !yield(&pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprint("f", i), Parent: "big", Name: strings.Repeat("n", 1000)}}}) {
				return
			}
		}
	}
	if _, err := c.Import(ctx, muts, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.GetRevision() != from || len(m.GetMutations()) != n+1 || m.GetMore() {
			t.Fatalf("revision %d with %d mutations (more %v), want %d with %d", m.GetRevision(), len(m.GetMutations()), m.GetMore(), from, n+1)
		}
	case <-ctx.Done():
		t.Fatal("no commit")
	}
}
