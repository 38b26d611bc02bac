package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/store/storetest"
)

// TestStalledSubscriberIsCutOff: a subscriber that never reads fills its
// buffer; the next Publish does not block but cuts it off and counts it,
// and a subscriber that keeps up is untouched.
func TestStalledSubscriberIsCutOff(t *testing.T) {
	h := NewHub(2)
	stalled, _, leave1 := h.subscribe(context.Background())
	defer leave1()
	reader, _, leave2 := h.subscribe(context.Background())
	defer leave2()
	for rev := uint64(1); rev <= 5; rev++ {
		h.Publish([]graph.Commit{{Revision: rev}}) // returns at once, whatever stalled does
		if got := (<-reader.ch).Revision; got != rev {
			t.Fatalf("reader got revision %d, want %d", got, rev)
		}
		if rev == 2 && h.MaxDepth() != 2 {
			t.Fatalf("depth %d with a full buffer", h.MaxDepth())
		}
	}
	if ending(stalled.why.Load()) != endBehind {
		t.Fatal("the stalled subscriber was not cut off")
	}
	if n := len(stalled.ch); n != 2 {
		t.Fatalf("the stalled subscriber's buffer holds %d, want the 2 it had", n)
	}
	if _, open := <-stalled.ch; !open {
		t.Fatal("the stalled subscriber's channel was closed before its buffer was read")
	}
	if h.Dropped() != 1 || h.Subscribers() != 1 {
		t.Fatalf("dropped %d, subscribers %d", h.Dropped(), h.Subscribers())
	}
}

// TestSubscriberEndings: a subscriber ends, its buffer closed and the
// reason kept, when its stream's context ends and when the hub closes;
// one that joins a closed hub is ended at once. An ended subscriber is no
// longer counted.
func TestSubscriberEndings(t *testing.T) {
	h := NewHub(4)
	ctx, cancel := context.WithCancel(context.Background())
	gone, _, leave1 := h.subscribe(ctx)
	defer leave1()
	open, _, leave2 := h.subscribe(context.Background())
	defer leave2()
	cancel()
	if _, ok := <-gone.ch; ok || ending(gone.why.Load()) != endGone {
		t.Fatalf("after its context ended: open %v, ending %d", ok, gone.why.Load())
	}
	if n := h.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers after one left, want 1", n)
	}
	h.Close()
	if _, ok := <-open.ch; ok || ending(open.why.Load()) != endClosing {
		t.Fatalf("after Close: open %v, ending %d", ok, open.why.Load())
	}
	late, _, leave3 := h.subscribe(context.Background())
	defer leave3()
	if _, ok := <-late.ch; ok || ending(late.why.Load()) != endClosing {
		t.Fatalf("joining after Close: open %v, ending %d", ok, late.why.Load())
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after Close", n)
	}
}

// TestWatchResumesAcrossRestart: a subscriber that saw revisions up to N
// reconnects to a restarted server on the same file with from N+1 and gets
// exactly the revisions after N, replayed and then live.
func TestWatchResumesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	start := func() (*testServer, func()) {
		db, closeDB := storetest.Open(t, dir)
		hub := NewHub(0)
		clock := graphtest.NewClock(graphtest.Start)
		ix, err := graph.Open(context.Background(), graph.Options{Clock: clock, Journal: db, OnCommit: hub.Publish, OnAccess: hub.PublishAccess})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := New(Options{Index: ix, Log: db, Hub: hub, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		conn := serveBufconn(t, srv)
		ts := &testServer{dir: pb.NewDirectoryServiceClient(conn), watch: pb.NewWatchServiceClient(conn), ix: ix, hub: hub, db: db}
		return ts, func() { hub.Close(); ix.Close(); closeDB() }
	}
	folder := func(id string) *pb.WriteRequest {
		return &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id}}}}}
	}
	ts, stop := start()
	s, err := ts.watch.Watch(ctxT(t), &pb.WatchRequest{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := ts.dir.Write(ctxT(t), folder(id)); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for want := uint64(1); want <= 3; want++ { // it sees the bootstrap, a and b, then goes away
		m, err := s.Recv()
		if err != nil || m.GetRevision() != want {
			t.Fatalf("first run: %v, %v; want %d", m, err, want)
		}
		last = m.GetRevision()
	}
	if _, err := ts.dir.Write(ctxT(t), folder("d")); err != nil { // revision 5; c (4) is unseen too
		t.Fatal(err)
	}
	stop()

	ts, stop = start()
	defer stop()
	s, err = ts.watch.Watch(ctxT(t), &pb.WatchRequest{FromRevision: last + 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.dir.Write(ctxT(t), folder("e")); err != nil { // revision 6, live
		t.Fatal(err)
	}
	for want := last + 1; want <= 6; want++ {
		m, err := s.Recv()
		if err != nil || m.GetRevision() != want {
			t.Fatalf("after restart: %v, %v; want %d", m, err, want)
		}
	}
}

// TestWatchFilterByKind: a watch for grants and locks sees only those
// mutations, skips batches with none, and refuses an unknown kind.
func TestWatchFilterByKind(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts) // revision 2: folders, users, rules, rights and grants
	ctx := ctxT(t)
	write := func(ms ...*pb.Mutation) uint64 { t.Helper(); return ts.write(t, ms...) }
	write(&pb.Mutation{Op: &pb.Mutation_MoveUser{MoveUser: &pb.MoveUser{Id: "ian", To: "admin-main"}}}) // 3: not selected
	lockRev := write(&pb.Mutation{Op: &pb.Mutation_AddLock{AddLock: &pb.Lock{Id: "qa", Target: RefToPB(graph.UserRef("carl"))}}})
	s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 1, Filter: &pb.WatchFilter{
		Kinds: []pb.ChangeKind{pb.ChangeKind_CHANGE_KIND_GRANTS, pb.ChangeKind_CHANGE_KIND_LOCKS}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || m.GetRevision() != 2 || len(m.GetMutations()) != 8 {
		t.Fatalf("revision 2 should bring its 8 grants only: %v, %v", m, err)
	}
	for _, mu := range m.GetMutations() {
		if mu.GetAddGrant() == nil {
			t.Fatalf("a %T slipped through", mu.GetOp())
		}
	}
	if m, err = s.Recv(); err != nil || m.GetRevision() != lockRev || m.GetMutations()[0].GetAddLock().GetId() != "qa" {
		t.Fatalf("the move must be skipped and the lock sent: %v, %v", m, err)
	}
	bad, err := ts.watch.Watch(ctx, &pb.WatchRequest{Filter: &pb.WatchFilter{Kinds: []pb.ChangeKind{42}}})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("an unknown kind: %v", err)
	}
}

// TestWatchFilterByPlace: filters by organisation and by subtree select the
// changes made there, as the tree was then (a user moved out of a subtree,
// a folder moved into it), replayed from the log; changes to the whole
// service pass every place filter; a folder named as an organisation that
// is not a root is refused.
func TestWatchFilterByPlace(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts) // 2: all of it in acme
	ctx := ctxT(t)
	write := func(ms ...*pb.Mutation) uint64 { t.Helper(); return ts.write(t, ms...) }
	folder := func(id, parent string) *pb.Mutation {
		return &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id, Parent: parent}}}
	}
	write(folder("beta", ""), folder("b1", "beta"))                                                                    // 3
	write(&pb.Mutation{Op: &pb.Mutation_MoveUser{MoveUser: &pb.MoveUser{Id: "carl", To: "it3"}}})                      // 4: out of it1, into it3
	write(&pb.Mutation{Op: &pb.Mutation_PutRight{PutRight: &pb.Right{Name: "audit"}}})                                 // 5: everywhere
	write(&pb.Mutation{Op: &pb.Mutation_AddLock{AddLock: &pb.Lock{Id: "qa", Target: RefToPB(graph.FolderRef("b1"))}}}) // 6
	write(&pb.Mutation{Op: &pb.Mutation_MoveFolder{MoveFolder: &pb.MoveFolder{Id: "it2", To: "it1"}}})                 // 7: into it1
	end := write(&pb.Mutation{Op: &pb.Mutation_PutRight{PutRight: &pb.Right{Name: "end"}}},                            // 8: everywhere, and a user in it3
		&pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: "zed", Class: "candidate", Home: "it3"}}})

	revisions := func(f *pb.WatchFilter) []uint64 {
		t.Helper()
		s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 1, Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var revs []uint64
		for {
			m, err := s.Recv()
			if err != nil {
				t.Fatalf("filter %v: %v", f, err)
			}
			revs = append(revs, m.GetRevision())
			if m.GetRevision() == end {
				return revs
			}
		}
	}
	tests := []struct {
		name string
		f    *pb.WatchFilter
		want []uint64
	}{
		{"organisation beta", &pb.WatchFilter{Organisations: []string{"beta"}}, []uint64{1, 2, 3, 5, 6, 8}}, // 1, 2: the catalogue
		{"organisation acme", &pb.WatchFilter{Organisations: []string{"acme"}}, []uint64{1, 2, 4, 5, 7, 8}},
		{"subtree it1", &pb.WatchFilter{Subtrees: []string{"it1"}}, []uint64{1, 2, 4, 5, 7, 8}},
		{"subtree it2", &pb.WatchFilter{Subtrees: []string{"it2"}}, []uint64{1, 2, 5, 7, 8}},
		{"subtree b1 and it3", &pb.WatchFilter{Subtrees: []string{"b1", "it3"}}, []uint64{1, 2, 3, 4, 5, 6, 8}},
		{"users in it3", &pb.WatchFilter{Subtrees: []string{"it3"}, Kinds: []pb.ChangeKind{pb.ChangeKind_CHANGE_KIND_USERS}}, []uint64{4, 8}},
	}
	for _, tc := range tests {
		if got := revisions(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: revisions %v, want %v", tc.name, got, tc.want)
		}
	}

	// Within a batch only the mutations in the subtree are sent.
	s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 2, Filter: &pb.WatchFilter{Subtrees: []string{"it2"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, mu := range m.GetMutations() {
		switch {
		case mu.GetCreateFolder() != nil:
			ids = append(ids, mu.GetCreateFolder().GetId())
		case mu.GetCreateUser() != nil:
			ids = append(ids, mu.GetCreateUser().GetId())
		case mu.GetAddGrant() != nil:
			ids = append(ids, mu.GetAddGrant().GetId())
		}
	}
	if want := []string{"it2", "access-it2-teacher", "cara"}; !slices.Equal(ids, want) {
		t.Errorf("revision 2 in subtree it2: %v, want %v", ids, want)
	}

	bad, err := ts.watch.Watch(ctx, &pb.WatchRequest{Filter: &pb.WatchFilter{Organisations: []string{"candidates"}}})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), `"candidates"`) {
		t.Fatalf("a non-root organisation: %v", err)
	}
}

// write commits mutations as one batch and returns its revision.
func (ts *testServer) write(t *testing.T, ms ...*pb.Mutation) uint64 {
	t.Helper()
	r, err := ts.dir.Write(ctxT(t), &pb.WriteRequest{Mutations: ms})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetRevision()
}

// describeAccess renders an access response compactly: "+" for gained and
// "-" for lost regions, as rights@on, with "\except" for each exception.
func describeAccess(r *pb.WatchAccessResponse) string {
	var parts []string
	side := func(sign string, list []*pb.AccessRegion) {
		for _, a := range list {
			on := "none"
			if a.GetOn() != nil {
				on = refFromPBString(a.GetOn())
			}
			p := sign + strings.Join(a.GetRights(), ",") + "@" + on
			for _, e := range a.GetExcept() {
				p += `\` + refFromPBString(e)
			}
			parts = append(parts, p)
		}
	}
	side("+", r.GetGained())
	side("-", r.GetLost())
	return strings.Join(parts, " ")
}

func refFromPBString(r *pb.ObjectRef) string {
	ref, err := refFromPB(r, "ref")
	if err != nil {
		return "?"
	}
	return ref.String()
}

// TestWatchAccess follows the invigilator Ian through the changes the
// issue names: a grant added and expired (by the system, at its time), a
// folder moved out of his reach, a lock, a change that does not concern
// him, and his account disabled.
func TestWatchAccess(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx := ctxT(t)
	write := func(ms ...*pb.Mutation) uint64 { t.Helper(); return ts.write(t, ms...) }
	s, err := ts.watch.WatchAccess(ctx, &pb.WatchAccessRequest{User: "ian"})
	if err != nil {
		t.Fatal(err)
	}
	next := func(want string, rev uint64, cause string) {
		t.Helper()
		m, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := describeAccess(m); got != want || m.GetRevision() != rev {
			t.Fatalf("revision %d: %s\nwant revision %d: %s", m.GetRevision(), got, rev, want)
		}
		if got := fmt.Sprintf("%T", m.GetCause().GetOp()); cause != "" && got != cause {
			t.Fatalf("revision %d caused by %s, want %s", rev, got, cause)
		}
	}
	next("+candidate,user_administrator@none +read@folder:candidates +read@user:ian", 2, "")

	rev := write(&pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: &pb.Grant{Id: "visit", Holder: RefToPB(graph.UserRef("ian")),
		Target: RefToPB(graph.UserRef("tom")), Rights: []string{"edit"}, ExpiresAt: timestamppb.New(graphtest.Start.Add(time.Hour))}}})
	next("+edit,read@user:tom", rev, "*canopyv1.Mutation_AddGrant")

	ts.clock.Advance(2 * time.Hour)
	rev, n, err := ts.ix.ExpireDue(ctx)
	if err != nil || n != 1 {
		t.Fatalf("expire due: %d, %v", n, err)
	}
	next("-edit,read@user:tom", rev, "*canopyv1.Mutation_ExpireGrant")

	write(&pb.Mutation{Op: &pb.Mutation_RenameFolder{RenameFolder: &pb.RenameFolder{Id: "it1", Name: "IT 1"}}})        // nothing for Ian
	write(&pb.Mutation{Op: &pb.Mutation_AddLock{AddLock: &pb.Lock{Id: "qa", Target: RefToPB(graph.UserRef("carl"))}}}) // edit: Ian only reads
	rev = write(&pb.Mutation{Op: &pb.Mutation_MoveFolder{MoveFolder: &pb.MoveFolder{Id: "it2", To: "acme"}}})
	next("-read@folder:it2", rev, "*canopyv1.Mutation_MoveFolder")

	rev = write(&pb.Mutation{Op: &pb.Mutation_AddLock{AddLock: &pb.Lock{Id: "sealed", Target: RefToPB(graph.FolderRef("it1")), Rights: []string{"read"}}}})
	next("-read@folder:it1", rev, "*canopyv1.Mutation_AddLock")

	rev = write(&pb.Mutation{Op: &pb.Mutation_SetUserState{SetUserState: &pb.SetUserState{Id: "ian", State: pb.UserState_USER_STATE_DISABLED}}})
	next(`-candidate,user_administrator@none -read@folder:candidates\folder:it1 -read@user:ian`, rev, "*canopyv1.Mutation_SetUserState")

	bad, err := ts.watch.WatchAccess(ctx, &pb.WatchAccessRequest{User: "nobody"})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "nobody") {
		t.Fatalf("an unknown user: %v", err)
	}

	// The index closing ends the stream, saying how to go on.
	ts.ix.Close()
	if _, err := s.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), `watch the access of "ian" again`) {
		t.Fatalf("after the index closed: %v", err)
	}
}
