package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/scenario"
	"github.com/canopy-authz/canopy/store"
	"github.com/canopy-authz/canopy/store/storetest"
)

// testServer is a Canopy server on bufconn over a store in a temp folder.
type testServer struct {
	dir   pb.DirectoryServiceClient
	acc   pb.AccessServiceClient
	watch pb.WatchServiceClient
	conn  *grpc.ClientConn
	ix    *graph.Index
	clock *graphtest.Clock
	hub   *Hub
	db    *store.DB
}

func startServer(t *testing.T) *testServer { return startServerWith(t, nil) }

// startServerWith starts a server with tokens (nil: no authentication).
func startServerWith(t *testing.T, tokens *Tokens) *testServer {
	t.Helper()
	return startServerOpts(t, Options{Tokens: tokens})
}

// startServerOpts starts a server with the tokens and rate limit of opts.
func startServerOpts(t testing.TB, opts Options) *testServer {
	t.Helper()
	return startServerGraph(t, opts, graph.Options{})
}

// startServerGraph starts a server with opts over an index with the
// limits of gopts (its clock, journal and hooks are the test's).
func startServerGraph(t testing.TB, opts Options, gopts graph.Options) *testServer {
	t.Helper()
	db, _ := storetest.Open(t, "")
	hub := NewHub(0)
	clock := graphtest.NewClock(graphtest.Start)
	gopts.Clock, gopts.Journal, gopts.OnCommit, gopts.OnAccess = clock, db, hub.Publish, hub.PublishAccess
	if opts.TracerProvider != nil { // the journal traced, as canopyd's
		gopts.Journal = NewMetrics(prometheus.NewRegistry()).Journal(db, opts.TracerProvider)
	}
	ix, err := graph.Open(context.Background(), gopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ix.Close)
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.Index, opts.Log, opts.Audit, opts.Hub, opts.Logger = ix, db, db, hub, logger
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	conn := serveBufconn(t, srv)
	return &testServer{dir: pb.NewDirectoryServiceClient(conn), acc: pb.NewAccessServiceClient(conn), watch: pb.NewWatchServiceClient(conn), conn: conn, ix: ix, clock: clock, hub: hub, db: db}
}

// serveBufconn serves srv on an in-memory listener, stopped when the test
// ends, and returns a client connection to it.
func serveBufconn(t testing.TB, srv *Server) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// recvAll receives a stream's messages until it ends, failing the test on
// any error.
func recvAll[T any](t *testing.T, s interface{ Recv() (*T, error) }) []*T {
	t.Helper()
	var out []*T
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func toPB(muts []graph.Mutation) []*pb.Mutation {
	out := make([]*pb.Mutation, len(muts))
	for i, m := range muts {
		out[i] = MutationToPB(m)
	}
	return out
}

// loadAtlas writes the ATLAS example's first batch through the API.
func loadAtlas(t *testing.T, ts *testServer) *scenario.File {
	t.Helper()
	f, err := scenario.Example("atlas")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.dir.Write(ctxT(t), &pb.WriteRequest{Mutations: toPB(f.Steps[0].Write)}); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMutationRoundTrip converts every kind of mutation to the wire and back.
func TestMutationRoundTrip(t *testing.T) {
	exp := graphtest.Start.Add(time.Hour)
	muts := []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "f", Name: "F", Parent: "p", Labels: map[string]string{"k": "v"}}},
		{RenameFolder: &graph.Rename{ID: "f", Name: "G"}},
		{RelabelFolder: &graph.Relabel{ID: "f", Labels: map[string]string{"a": "b"}}},
		{MoveFolder: &graph.Move{ID: "f", To: "q"}},
		{DeleteFolder: &graph.Delete{ID: "f", Cascade: true}},
		{CreateUser: &graph.User{ID: "u", Name: "U", Class: "staff", State: graph.StateDisabled, Home: "f", Extras: []string{"g", "h"}}},
		{UpdateUser: &graph.UserUpdate{ID: "u", Name: "V", Class: "candidate"}},
		{MoveUser: &graph.Move{ID: "u", To: "g"}},
		{SetUserState: &graph.StateChange{ID: "u", State: graph.StateArchived}},
		{SetUserState: &graph.StateChange{ID: "u", State: graph.StateActive, ActiveUntil: exp}},
		{CreateUser: &graph.User{ID: "v", Class: "staff", State: graph.StateActive, Home: "f", ActiveUntil: exp}},
		{DeleteUser: &graph.Delete{ID: "u", Cascade: true}},
		{AddExtraGroup: &graph.Membership{User: "u", Folder: "g"}},
		{DelExtraGroup: &graph.Membership{User: "u", Folder: "g"}},
		{AddGrant: &graph.Grant{ID: "g", Holder: graph.FolderRef("f"), Target: graph.UserRef("u"), Rights: []string{"read"}, ExpiresAt: exp, Reason: "r"}},
		{AddGrant: &graph.Grant{ID: "c", Holder: graph.UserRef("u"), Rights: []string{"console"}}},
		{AddGrant: &graph.Grant{ID: "s", Holder: graph.UserRef("u"), Rights: []string{"read"}, StartsAt: exp.Add(-time.Minute), ExpiresAt: exp, Started: true}},
		{StartGrant: &graph.Delete{ID: "s"}},
		{ExpireGrant: &graph.Delete{ID: "s"}},
		{RemoveGrant: &graph.Delete{ID: "g"}},
		{AddLock: &graph.Lock{ID: "l", Target: graph.FolderRef("f"), Rights: []string{"edit"}, Reason: "qa"}},
		{RemoveLock: &graph.Delete{ID: "l"}},
		{SetRule: &graph.PlacementRule{Folder: "f", Classes: []string{"staff"}}},
		{RemoveRule: &graph.Delete{ID: "f"}},
		{PutRight: &graph.Right{Name: "x", Implies: []string{"read"}}},
		{DeleteRight: &graph.Delete{ID: "x"}},
		{SetSelfRights: &graph.SelfRights{Rights: []string{"read"}}},
	}
	for i, m := range muts {
		back, err := mutationFromPB(MutationToPB(m), i)
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Errorf("%v: round trip gave %+v, %v", m, back, err)
		}
	}
}

func TestChecksOverGRPC(t *testing.T) {
	ts := startServer(t)
	f := loadAtlas(t, ts)
	for _, line := range f.Steps[0].Checks {
		c, _ := scenario.ParseCheck(line)
		got, err := ts.acc.Check(ctxT(t), &pb.CheckRequest{User: c.User, Right: c.Right, Resource: RefToPB(c.Resource)})
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if got.GetReason() != reasonToPB(c.Want) || got.GetAllowed() != (c.Want == graph.ReasonAllowed) || got.GetRevision() != 2 {
			t.Errorf("%s: got %v", line, got)
		}
		ex, err := ts.acc.Explain(ctxT(t), &pb.ExplainRequest{User: c.User, Right: c.Right, Resource: RefToPB(c.Resource)})
		if err != nil || ex.GetReason() != got.GetReason() {
			t.Errorf("%s: explain %v, %v", line, ex, err)
		}
	}
	ex, _ := ts.acc.Explain(ctxT(t), &pb.ExplainRequest{User: "alice", Right: "edit", Resource: RefToPB(graph.UserRef("carl"))})
	if ex.GetGrant().GetId() != "access-admin-main" || !reflect.DeepEqual(ex.GetTargetPath(), []string{"acme", "candidates", "it1"}) {
		t.Errorf("explain alice edit carl: %v", ex)
	}
	// BatchCheck answers every line at one revision.
	var items []*pb.CheckItem
	for _, line := range f.Steps[0].Checks {
		c, _ := scenario.ParseCheck(line)
		items = append(items, &pb.CheckItem{User: c.User, Right: c.Right, Resource: RefToPB(c.Resource)})
	}
	b, err := ts.acc.BatchCheck(ctxT(t), &pb.BatchCheckRequest{Items: items})
	if err != nil || len(b.GetResults()) != len(items) {
		t.Fatalf("batch check: %v, %v", b, err)
	}
	for i, line := range f.Steps[0].Checks {
		c, _ := scenario.ParseCheck(line)
		if b.GetResults()[i].GetReason() != reasonToPB(c.Want) {
			t.Errorf("batch item %d %s: %v", i, line, b.GetResults()[i])
		}
	}
	// One bad item does not fail the batch: it gets its own error, naming
	// it, and the others are decided at the same revision.
	mixed := []*pb.CheckItem{
		{User: "tom", Right: "edit", Resource: RefToPB(graph.UserRef("carl"))},
		{User: "tom", Right: "fly", Resource: RefToPB(graph.UserRef("carl"))},
		{User: "tom", Right: "edit", Resource: RefToPB(graph.UserRef("nobody"))},
		{User: "tom", Right: "edit", Resource: &pb.ObjectRef{Id: "carl"}},
		{User: "tom", Right: "assign", Resource: RefToPB(graph.UserRef("carl"))},
		{User: "tom"},
	}
	mb, err := ts.acc.BatchCheck(ctxT(t), &pb.BatchCheckRequest{Items: mixed})
	if err != nil || len(mb.GetResults()) != len(mixed) || mb.GetRevision() != b.GetRevision() {
		t.Fatalf("a batch with bad items: %v, %v", mb, err)
	}
	for i, want := range []struct {
		code    codes.Code
		mention string
		reason  pb.Reason
	}{{codes.OK, "", pb.Reason_REASON_ALLOWED}, {codes.InvalidArgument, "fly", 0}, {codes.NotFound, "nobody", 0},
		{codes.InvalidArgument, "kind", 0}, {codes.OK, "", pb.Reason_REASON_NO_GRANT}, {codes.InvalidArgument, "right is required", 0}} {
		r := mb.GetResults()[i]
		if got := codes.Code(r.GetError().GetCode()); got != want.code || r.GetReason() != want.reason ||
			want.code != codes.OK && (!strings.Contains(r.GetError().GetMessage(), fmt.Sprintf("item %d", i)) || !strings.Contains(r.GetError().GetMessage(), want.mention) || r.GetAllowed()) {
			t.Errorf("item %d: %v; want %v naming %q, reason %v", i, r, want.code, want.mention, want.reason)
		}
	}
	acc, err := ts.acc.EffectiveAccess(ctxT(t), &pb.EffectiveAccessRequest{User: "tom"})
	var grants []string
	for _, e := range acc.GetEntries() {
		grants = append(grants, e.GetGrant().GetId())
	}
	if want := []string{"access-it1-teacher", "role-admin-sub", "role-candidate"}; err != nil || !reflect.DeepEqual(grants, want) {
		t.Errorf("effective access of tom: %v, %v", acc, err)
	}
}

func TestErrorCodes(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	write := func(m *pb.Mutation) error {
		_, err := ts.dir.Write(ctxT(t), &pb.WriteRequest{Mutations: []*pb.Mutation{m}})
		return err
	}
	folder := func(id, parent string) *pb.Mutation {
		return &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id, Parent: parent}}}
	}
	tests := []struct {
		name string
		err  error
		code codes.Code
		id   string
	}{
		{"empty mutation", write(&pb.Mutation{}), codes.InvalidArgument, "mutations[0]"},
		{"empty batch", func() error { _, err := ts.dir.Write(ctxT(t), &pb.WriteRequest{}); return err }(), codes.InvalidArgument, ""},
		{"unknown parent", write(folder("x", "nope")), codes.NotFound, "nope"},
		{"duplicate folder", write(folder("it1", "candidates")), codes.AlreadyExists, "it1"},
		{"candidate into admin", write(&pb.Mutation{Op: &pb.Mutation_MoveUser{MoveUser: &pb.MoveUser{Id: "carl", To: "admin-main"}}}), codes.FailedPrecondition, "carl"},
		{"cycle", write(&pb.Mutation{Op: &pb.Mutation_MoveFolder{MoveFolder: &pb.MoveFolder{Id: "candidates", To: "it1"}}}), codes.FailedPrecondition, "candidates"},
		{"non-empty folder", write(&pb.Mutation{Op: &pb.Mutation_DeleteFolder{DeleteFolder: &pb.DeleteFolder{Id: "it1"}}}), codes.FailedPrecondition, "it1"},
		{"expiry recorded by a caller", write(&pb.Mutation{Op: &pb.Mutation_ExpireGrant{ExpireGrant: &pb.ExpireGrant{Id: "gx"}}}), codes.InvalidArgument, "gx"},
		{"bad state", write(&pb.Mutation{Op: &pb.Mutation_SetUserState{SetUserState: &pb.SetUserState{Id: "carl", State: 9}}}), codes.InvalidArgument, "carl"},
		{"kindless target", write(&pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: &pb.Grant{Id: "g", Holder: RefToPB(graph.UserRef("carl")), Target: &pb.ObjectRef{Id: "it1"}, Rights: []string{"read"}}}}), codes.InvalidArgument, "it1"},
		{"stale revision", func() error {
			_, err := ts.dir.Write(ctxT(t), &pb.WriteRequest{Mutations: []*pb.Mutation{folder("y", "acme")}, Preconditions: &pb.Preconditions{Revision: 1}})
			return err
		}(), codes.FailedPrecondition, "1"},
		{"unknown right", func() error {
			_, err := ts.acc.Check(ctxT(t), &pb.CheckRequest{User: "carl", Right: "fly"})
			return err
		}(), codes.InvalidArgument, "fly"},
		{"unknown resource", func() error {
			_, err := ts.acc.Check(ctxT(t), &pb.CheckRequest{User: "carl", Right: "read", Resource: RefToPB(graph.FolderRef("nope"))})
			return err
		}(), codes.NotFound, "nope"},
		{"unknown user's access", func() error {
			_, err := ts.acc.EffectiveAccess(ctxT(t), &pb.EffectiveAccessRequest{User: "nobody"})
			return err
		}(), codes.NotFound, "nobody"},
		{"lookup without kind", func() error {
			s, err := ts.acc.LookupResources(ctxT(t), &pb.LookupResourcesRequest{User: "alice", Right: "read"})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}(), codes.InvalidArgument, "kind"},
		{"tampered page token", func() error {
			s, err := ts.acc.LookupResources(ctxT(t), &pb.LookupResourcesRequest{User: "alice", Right: "read", Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, PageToken: "!!not-a-token"})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}(), codes.InvalidArgument, "page token"},
		{"token of another query", func() error {
			tok := encodeToken(queryKey("list_users", "acme", "1"), "carl")
			_, err := ts.dir.ListFolders(ctxT(t), &pb.ListFoldersRequest{Parent: "acme", PageToken: tok})
			return err
		}(), codes.InvalidArgument, "another query"},
	}
	for _, tc := range tests {
		st, _ := status.FromError(tc.err)
		if st.Code() != tc.code {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.code)
			continue
		}
		if !strings.Contains(st.Message(), tc.id) {
			t.Errorf("%s: message %q does not name %q", tc.name, st.Message(), tc.id)
		}
	}
	// Nothing above changed anything.
	if rev := ts.ix.Revision(); rev != 2 {
		t.Fatalf("refused calls moved the revision to %d", rev)
	}
}

// TestPagingToTheEnd walks lookups and lists page by page and finds the
// same ids as one unpaged call.
func TestPagingToTheEnd(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	all := func(size uint32) []string {
		var ids []string
		token := ""
		for {
			s, err := ts.acc.LookupResources(ctxT(t), &pb.LookupResourcesRequest{User: "alice", Right: "read", Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, PageSize: size, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			token = ""
			for _, m := range recvAll(t, s) {
				ids = append(ids, m.GetIds()...)
				token = m.GetNextPageToken()
			}
			if token == "" {
				return ids
			}
		}
	}
	whole, paged := all(0), all(3)
	if len(whole) != 10 || !reflect.DeepEqual(whole, paged) {
		t.Fatalf("unpaged %v, paged %v", whole, paged)
	}
	var users []string
	token := ""
	for {
		r, err := ts.dir.ListUsers(ctxT(t), &pb.ListUsersRequest{Folder: "acme", Subtree: true, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range r.GetUsers() {
			users = append(users, u.GetId())
		}
		if token = r.GetNextPageToken(); token == "" {
			break
		}
	}
	if want := []string{"alice", "cara", "carl", "ian", "tom"}; !reflect.DeepEqual(users, want) {
		t.Fatalf("users %v, want %v", users, want)
	}
}

func TestConsistency(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "carl", Right: "read", Consistency: &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: 99}}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("waiting for a future revision: %v", err)
	}
	w, err := ts.dir.Write(ctxT(t), &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_SetUserState{SetUserState: &pb.SetUserState{Id: "carl", State: pb.UserState_USER_STATE_DISABLED}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*pb.Consistency{
		{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: w.GetRevision()}},
		{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}},
	} {
		got, err := ts.acc.Check(ctxT(t), &pb.CheckRequest{User: "carl", Right: "read", Resource: RefToPB(graph.UserRef("carl")), Consistency: c})
		if err != nil || got.GetRevision() < w.GetRevision() || got.GetReason() != pb.Reason_REASON_USER_NOT_ACTIVE {
			t.Fatalf("%v: %v, %v", c, got, err)
		}
	}
}

// TestWatchReplaysThenFollows replays history from revision 1, then sees a
// live write, with no gap and no duplicate.
func TestWatchReplaysThenFollows(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx := ctxT(t)
	s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		m, err := s.Recv()
		if err != nil || m.GetRevision() != want {
			t.Fatalf("replay: %v, %v; want revision %d", m, err, want)
		}
	}
	w, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_MoveUser{MoveUser: &pb.MoveUser{Id: "ian", To: "admin-main"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || m.GetRevision() != w.GetRevision() || m.GetMutations()[0].GetMoveUser().GetId() != "ian" {
		t.Fatalf("live: %v, %v", m, err)
	}
}

func TestHealth(t *testing.T) {
	ts := startServer(t)
	h, err := healthpb.NewHealthClient(ts.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{Service: "canopy.v1.AccessService"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", h, err)
	}
}

// TestExportImport exports one server's state and imports it into another,
// in messages of 7 mutations, and finds the same records.
func TestExportImport(t *testing.T) {
	src := startServer(t)
	loadAtlas(t, src)
	ctx := ctxT(t)
	ex, err := src.dir.Export(ctx, &pb.ExportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var muts []*pb.Mutation
	for _, m := range recvAll(t, ex) {
		if m.GetRevision() != 2 {
			t.Fatalf("export chunk at revision %d", m.GetRevision())
		}
		muts = append(muts, m.GetMutations()...)
	}
	dst := startServer(t)
	im, err := dst.dir.Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for len(muts) > 0 {
		n := min(7, len(muts))
		if err := im.Send(&pb.ImportRequest{Mutations: muts[:n]}); err != nil {
			t.Fatal(err)
		}
		muts = muts[n:]
	}
	if err := im.CloseSend(); err != nil {
		t.Fatal(err)
	}
	replies := recvAll(t, im)
	if len(replies) == 0 || replies[len(replies)-1].GetCommittedMutations() == 0 {
		t.Fatalf("import reported %v", replies)
	}
	want, _, _ := src.ix.Records()
	got, _, _ := dst.ix.Records()
	if !reflect.DeepEqual(got, want) {
		t.Fatal("imported records differ from the exported ones")
	}
	// Importing again collides with what is there: refused, with progress 0.
	im2, _ := dst.dir.Import(ctx)
	im2.Send(&pb.ImportRequest{Mutations: []*pb.Mutation{MutationToPB(graph.Mutation{CreateFolder: &graph.Folder{ID: "acme"}})}})
	im2.CloseSend()
	if _, err := im2.Recv(); status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "after 0 committed") {
		t.Fatalf("second import: %v", err)
	}
}

// TestNotServingUntilReady: before Ready, health says NOT_SERVING and
// every other call is Unavailable; after it, both serve.
func TestNotServingUntilReady(t *testing.T) {
	db, _ := storetest.Open(t, "")
	srv, err := New(Options{Log: db, Hub: NewHub(0), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	conn := serveBufconn(t, srv)
	health, acc := healthpb.NewHealthClient(conn), pb.NewAccessServiceClient(conn)
	h, err := health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING || srv.Serving() {
		t.Fatalf("before Ready: %v, %v", h, err)
	}
	if _, err := acc.Check(ctxT(t), &pb.CheckRequest{User: "u", Right: "read"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("a check before Ready: %v", err)
	}
	ix, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(graphtest.Start), Journal: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ix.Close)
	srv.Ready(ix)
	h, err = health.Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING || !srv.Serving() {
		t.Fatalf("after Ready: %v, %v", h, err)
	}
	if r, err := acc.Check(ctxT(t), &pb.CheckRequest{User: "u", Right: "read"}); err != nil || r.GetReason() != pb.Reason_REASON_UNKNOWN_USER {
		t.Fatalf("a check after Ready: %v, %v", r, err)
	}
}

// TestDirectoryReads reads back what the ATLAS example wrote, through every
// directory read and LookupSubjects.
func TestDirectoryReads(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx := ctxT(t)
	f, err := ts.dir.GetFolder(ctx, &pb.GetFolderRequest{Id: "admin-main"})
	if err != nil || f.GetFolder().GetParent() != "acme" || f.GetFolder().GetName() != "Admin Main" ||
		!reflect.DeepEqual(f.GetPlacementRule().GetClasses(), []string{"staff"}) || f.GetRevision() != 2 {
		t.Fatalf("get folder: %v, %v", f, err)
	}
	u, err := ts.dir.GetUser(ctx, &pb.GetUserRequest{Id: "carl"})
	if err != nil || u.GetUser().GetHome() != "it1" || u.GetUser().GetState() != pb.UserState_USER_STATE_ACTIVE || u.GetUser().GetClass() != "candidate" {
		t.Fatalf("get user: %v, %v", u, err)
	}
	if _, err := ts.dir.GetUser(ctx, &pb.GetUserRequest{Id: "nobody"}); status.Code(err) != codes.NotFound {
		t.Fatalf("get unknown user: %v", err)
	}
	ids := func(fs []*pb.Folder) (out []string) {
		for _, f := range fs {
			out = append(out, f.GetId())
		}
		return out
	}
	kids, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Parent: "acme"})
	if want := []string{"admin-main", "admin-sub", "candidates", "invigilators"}; err != nil || !reflect.DeepEqual(ids(kids.GetFolders()), want) {
		t.Fatalf("children of acme: %v, %v", ids(kids.GetFolders()), err)
	}
	sub, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Parent: "candidates", Subtree: true})
	if want := []string{"it1", "it2", "it3"}; err != nil || !reflect.DeepEqual(ids(sub.GetFolders()), want) {
		t.Fatalf("subtree of candidates: %v, %v", ids(sub.GetFolders()), err)
	}
	gs, err := ts.dir.ListGrants(ctx, &pb.ListGrantsRequest{Holder: RefToPB(graph.FolderRef("admin-main"))})
	if err != nil || len(gs.GetGrants()) != 2 || gs.GetGrants()[0].GetId() != "access-admin-main" {
		t.Fatalf("grants held by admin-main: %v, %v", gs, err)
	}
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_AddLock{AddLock: &pb.Lock{Id: "qa", Target: RefToPB(graph.UserRef("carl"))}}}}}); err != nil {
		t.Fatal(err)
	}
	ls, err := ts.dir.ListLocks(ctx, &pb.ListLocksRequest{Target: RefToPB(graph.UserRef("carl"))})
	if err != nil || len(ls.GetLocks()) != 1 || !reflect.DeepEqual(ls.GetLocks()[0].GetRights(), []string{"edit"}) {
		t.Fatalf("locks on carl: %v, %v", ls, err)
	}
	s, err := ts.acc.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Right: "read", Resource: RefToPB(graph.UserRef("carl"))})
	if err != nil {
		t.Fatal(err)
	}
	var who []string
	for _, m := range recvAll(t, s) {
		who = append(who, m.GetUserIds()...)
	}
	if want := []string{"alice", "carl", "ian", "tom"}; !reflect.DeepEqual(who, want) {
		t.Fatalf("who may read carl: %v, want %v", who, want)
	}
}

// TestCatalogueAndStatus: the catalogue and self rights read back as
// written, the status counts what the index holds, and listing with no
// parent gives the organisations.
func TestCatalogueAndStatus(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx := ctxT(t)
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{
		{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "beta"}}},
		{Op: &pb.Mutation_PutRight{PutRight: &pb.Right{Name: "manage_ilr", Implies: []string{"read", "edit"}}}},
		{Op: &pb.Mutation_SetSelfRights{SetSelfRights: &pb.SelfRights{Rights: []string{"read", "manage_ilr"}}}},
	}}); err != nil {
		t.Fatal(err)
	}
	cat, err := ts.dir.GetCatalogue(ctx, &pb.GetCatalogueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range cat.GetRights() {
		got = append(got, r.GetName()+"<"+strings.Join(r.GetImplies(), ","))
	}
	want := []string{"assign<read", "candidate<", "edit<read", "manage_ilr<edit,read", "read<", "user_administrator<"}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(cat.GetSelfRights().GetRights(), []string{"manage_ilr", "read"}) || cat.GetRevision() != 3 {
		t.Fatalf("catalogue: %v, self %v at %d; want %v", got, cat.GetSelfRights().GetRights(), cat.GetRevision(), want)
	}
	st, err := ts.dir.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetRevision() != 3 || st.GetFolders() != 11 || st.GetUsers() != 5 || st.GetGrants() != 8 || st.GetLocks() != 0 ||
		st.GetPlacementRules() != 3 || st.GetRights() != 6 || st.GetOrganisations() != 2 || st.GetVersion() == "" {
		t.Fatalf("status: %v", st)
	}
	roots, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{})
	if err != nil || len(roots.GetFolders()) != 2 || roots.GetFolders()[0].GetId() != "acme" || roots.GetFolders()[1].GetId() != "beta" {
		t.Fatalf("organisations: %v, %v", roots, err)
	}
	all, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Subtree: true, PageSize: 5})
	if err != nil || len(all.GetFolders()) != 5 || all.GetNextPageToken() == "" {
		t.Fatalf("every folder, first page: %v, %v", all, err)
	}
}

// rawCodec sends []byte requests as they are, to put any bytes on the wire.
type rawCodec struct{ encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// TestMalformedRequests: bytes that are not a valid message are the
// caller's fault, InvalidArgument with the reason, not Internal; on a
// stream as in a unary call.
func TestMalformedRequests(t *testing.T) {
	ts := startServer(t)
	raw := grpc.ForceCodecV2(rawCodec{encoding.GetCodecV2("proto")})
	for name, b := range map[string][]byte{
		"broken wire format": {0xff, 0xff},
		"a string not UTF-8": {0x0a, 0x02, 0xff, 0xfe},
		"a truncated field":  {0x0a, 0x10, 'a'},
	} {
		var out pb.CheckResponse
		err := ts.conn.Invoke(ctxT(t), pb.AccessService_Check_FullMethodName, b, &out, raw)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "malformed request") {
			t.Errorf("check with %s: %v", name, err)
		}
		s, err := ts.conn.NewStream(ctxT(t), &pb.AccessService_ServiceDesc.Streams[0], pb.AccessService_LookupResources_FullMethodName, raw)
		if err == nil {
			if err = s.SendMsg(b); err == nil {
				s.CloseSend()
				err = s.RecvMsg(&pb.LookupResourcesResponse{})
			}
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "malformed request") {
			t.Errorf("lookup with %s: %v", name, err)
		}
	}
	// A well-formed request still goes through the same codec.
	if _, err := ts.acc.Check(ctxT(t), &pb.CheckRequest{User: "nobody", Right: "read"}); err != nil {
		t.Fatal(err)
	}
}

// TestErrorsClipWhatTheyEcho: a huge id comes back clipped, with its
// length, escaped, in the error and in the server's log, not echoed whole.
func TestErrorsClipWhatTheyEcho(t *testing.T) {
	ts := startServer(t)
	huge := strings.Repeat("x\u202e", 1<<18) // a megabyte and more, with a control character
	for name, req := range map[string]*pb.WriteRequest{
		"id":     {Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: huge}}}}},
		"parent": {Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "f", Parent: huge}}}}},
		"home":   {Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: "u", Class: "staff", Home: huge}}}}},
	} {
		_, err := ts.dir.Write(ctxT(t), req)
		msg := status.Convert(err).Message()
		if status.Code(err) == codes.OK || len(msg) > 400 || !strings.Contains(msg, fmt.Sprintf("[%d bytes]", len(huge))) || strings.Contains(msg, "\u202e") {
			t.Errorf("%s: %d bytes of message: %.300q", name, len(msg), msg)
		}
	}
	_, err := ts.acc.Check(ctxT(t), &pb.CheckRequest{User: "u", Right: "read", Resource: &pb.ObjectRef{Id: huge}})
	if msg := status.Convert(err).Message(); len(msg) > 400 {
		t.Errorf("check: %d bytes of message", len(msg))
	}
	token := strings.Repeat("A", 1<<20)
	_, err = ts.dir.ListFolders(ctxT(t), &pb.ListFoldersRequest{PageToken: token})
	if msg := status.Convert(err).Message(); status.Code(err) != codes.InvalidArgument || len(msg) > 400 {
		t.Errorf("page token: %v, %d bytes", status.Code(err), len(msg))
	}
}

// TestNoEndlessWaits: a revision far beyond the head is refused at once,
// naming the head, whether a read or a Watch asks for it; a wait for one
// within the allowance ends at the server's maximum even when the caller
// set no deadline.
func TestNoEndlessWaits(t *testing.T) {
	ts := startServerOpts(t, Options{MaxWait: 50 * time.Millisecond})
	ctx := context.Background() // no deadline: the server's must end it
	far := []uint64{1 << 63, 1<<64 - 1, 1002}
	for _, rev := range far {
		_, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "u", Right: "read", Consistency: &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: rev}}})
		if status.Code(err) != codes.OutOfRange || !strings.Contains(err.Error(), "the newest committed revision is 1") {
			t.Errorf("check at %d: %v", rev, err)
		}
		s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: rev})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.OutOfRange || !strings.Contains(err.Error(), fmt.Sprintf("watch from revision %d: the newest committed revision is 1", rev)) {
			t.Errorf("watch from %d: %v", rev, err)
		}
	}
	_, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "u", Right: "read", Consistency: &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: 1001}}})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "longest wait of 50ms") {
		t.Errorf("check within the allowance: %v", err)
	}
	if ts.hub.Subscribers() != 0 {
		t.Errorf("%d subscribers left behind", ts.hub.Subscribers())
	}
}

// TestLookupCutByDeadlineEndsWithToken: a lookup whose deadline is close
// stops after a chunk and ends with a token; continuing from it (with a
// new deadline) gives the rest, so nothing is lost silently.
func TestLookupCutByDeadlineEndsWithToken(t *testing.T) {
	// Any deadline under a minute is "close": the cut is certain, not
	// timed. The server's own deadline is far beyond it.
	ts := startServerOpts(t, Options{DeadlineMargin: time.Minute, RequestTimeout: time.Hour})
	muts := []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "root"}}}}
	for i := 0; i < 2500; i++ {
		muts = append(muts, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprintf("f%04d", i), Parent: "root"}}})
	}
	muts = append(muts,
		&pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: "u", Class: "staff", Home: "root"}}},
		&pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: &pb.Grant{Id: "g", Holder: RefToPB(graph.UserRef("u")), Target: RefToPB(graph.FolderRef("root")), Rights: []string{"read"}}}})
	if _, err := ts.dir.Write(ctxT(t), &pb.WriteRequest{Mutations: muts}); err != nil {
		t.Fatal(err)
	}
	req := &pb.LookupResourcesRequest{User: "u", Right: "read", Kind: pb.ObjectKind_OBJECT_KIND_FOLDER}
	short, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := ts.acc.LookupResources(short, req)
	if err != nil {
		t.Fatal(err)
	}
	var first []string
	var token string
	for _, m := range recvAll(t, s) {
		first = append(first, m.GetIds()...)
		token = m.GetNextPageToken()
	}
	if len(first) != lookupChunk || token == "" {
		t.Fatalf("near its deadline the stream sent %d ids and token %q", len(first), token)
	}
	req.PageToken = token
	noDeadline, stop := context.WithCancel(context.Background())
	defer stop()
	s, err = ts.acc.LookupResources(noDeadline, req)
	if err != nil {
		t.Fatal(err)
	}
	rest := 0
	for _, m := range recvAll(t, s) {
		rest += len(m.GetIds())
		if m.GetNextPageToken() != "" {
			t.Fatal("the continued stream was cut again")
		}
	}
	if len(first)+rest != 2501 {
		t.Fatalf("%d + %d ids, want 2501", len(first), rest)
	}
}

// TestWriteAsUser: a write on behalf of a user goes through when the
// user holds what it needs, is PermissionDenied naming the right and the
// object when not, and the change stream says for whom it was written.
func TestWriteAsUser(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx := ctxT(t)
	reset := func(id string) *pb.WriteRequest {
		return &pb.WriteRequest{AsUser: "tom", Mutations: []*pb.Mutation{MutationToPB(graph.Mutation{UpdateUser: &graph.UserUpdate{ID: id, Name: "reset", Class: "candidate"}})}}
	}
	_, err := ts.dir.Write(ctx, reset("cara"))
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "edit") || !strings.Contains(err.Error(), "user:cara") {
		t.Fatalf("the IT1 teacher resets an IT2 password: %v", err)
	}
	w, err := ts.dir.Write(ctx, reset("carl"))
	if err != nil {
		t.Fatalf("the IT1 teacher resets an IT1 password: %v", err)
	}
	stream, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: w.GetRevision()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := stream.Recv()
	if err != nil || got.GetRevision() != w.GetRevision() || got.GetActedFor() != "tom" {
		t.Fatalf("the change stream: %v, %v; want revision %d acted for tom", got, err, w.GetRevision())
	}
}

// TestReadAsUser: the directory read on behalf of the IT1 teacher holds
// IT1 and its learners, and nothing of IT2, in gets, lists and pages.
func TestReadAsUser(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx := ctxT(t)
	if _, err := ts.dir.GetUser(ctx, &pb.GetUserRequest{Id: "carl", AsUser: "tom"}); err != nil {
		t.Fatalf("the IT1 teacher reads an IT1 learner: %v", err)
	}
	_, err := ts.dir.GetUser(ctx, &pb.GetUserRequest{Id: "cara", AsUser: "tom"})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "cara") || !strings.Contains(err.Error(), "read") {
		t.Fatalf("the IT1 teacher reads an IT2 learner: %v", err)
	}
	if _, err := ts.dir.GetFolder(ctx, &pb.GetFolderRequest{Id: "it2", AsUser: "tom"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the IT1 teacher reads IT2: %v", err)
	}
	var users []string
	req := &pb.ListUsersRequest{Folder: "acme", Subtree: true, PageSize: 1, AsUser: "tom"}
	for {
		page, err := ts.dir.ListUsers(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.GetUsers() {
			users = append(users, u.GetId())
		}
		if req.PageToken = page.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	all, err := ts.dir.ListUsers(ctx, &pb.ListUsersRequest{Folder: "acme", Subtree: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range all.GetUsers() {
		d, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "tom", Right: "read", Resource: &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: u.GetId()}})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetAllowed() != slices.Contains(users, u.GetId()) {
			t.Fatalf("user %s: tom may read it %v, listed for tom %v (%v)", u.GetId(), d.GetAllowed(), !d.GetAllowed(), users)
		}
	}
	if !slices.Contains(users, "carl") || slices.Contains(users, "cara") {
		t.Fatalf("users listed for the IT1 teacher: %v", users)
	}
	// A page token is for the user it was read for.
	first, err := ts.dir.ListUsers(ctx, &pb.ListUsersRequest{Folder: "acme", Subtree: true, PageSize: 1, AsUser: "tom"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.dir.ListUsers(ctx, &pb.ListUsersRequest{Folder: "acme", Subtree: true, PageSize: 1, PageToken: first.GetNextPageToken()}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a page read for tom continued for everyone: %v", err)
	}
}

// TestDryRun: a dry run answers with the change in access and commits
// nothing; a batch the write would refuse is refused the same way.
func TestDryRun(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx := ctxT(t)
	rev := ts.ix.Revision()
	grant := MutationToPB(graph.Mutation{AddGrant: &graph.Grant{ID: "tom-assign", Holder: graph.UserRef("tom"), Target: graph.FolderRef("it1"), Rights: []string{"assign"}}})
	out, err := ts.dir.Write(ctx, &pb.WriteRequest{DryRun: true, Mutations: []*pb.Mutation{grant}})
	if err != nil {
		t.Fatal(err)
	}
	p := out.GetPreview()
	if out.GetRevision() != 0 || p.GetRevision() != rev || ts.ix.Revision() != rev {
		t.Fatalf("a dry run at %d: answered revision %d, preview at %d, index now at %d", rev, out.GetRevision(), p.GetRevision(), ts.ix.Revision())
	}
	if p.GetUsersAffected() != 1 || len(p.GetChanges()) != 1 {
		t.Fatalf("preview: %v", p)
	}
	ch := p.GetChanges()[0]
	if ch.GetUser() != "tom" || len(ch.GetGained()) != 1 || ch.GetGained()[0].GetOn().GetId() != "it1" || !slices.Equal(ch.GetGained()[0].GetRights(), []string{"assign"}) || len(ch.GetLost()) > 0 {
		t.Fatalf("tom's change: %v", ch)
	}
	// it1 and carl: two records gained.
	if len(p.GetTotals()) != 1 || p.GetTotals()[0].GetRight() != "assign" || p.GetTotals()[0].GetGained() != 2 {
		t.Fatalf("totals: %v", p.GetTotals())
	}
	// The same batch written for tom is refused alike, dry or not.
	for _, dry := range []bool{true, false} {
		_, err := ts.dir.Write(ctx, &pb.WriteRequest{DryRun: dry, AsUser: "tom", Mutations: []*pb.Mutation{grant}})
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "assign") {
			t.Fatalf("dry run %v, for tom: %v", dry, err)
		}
	}
	if ts.ix.Revision() != rev {
		t.Fatalf("the index moved to %d", ts.ix.Revision())
	}
}

// TestFitPreview: a preview too large for one response keeps whole users
// from the start, says how many it lists, and keeps its counts.
func TestFitPreview(t *testing.T) {
	p := &pb.Preview{UsersAffected: 3, UsersListed: 3}
	for _, u := range []string{"a", "a", "b", "c"} {
		p.Changes = append(p.Changes, &pb.PreviewChange{User: u, Gained: []*pb.AccessRegion{{Rights: []string{strings.Repeat("r", 100)}}}})
	}
	one := proto.Size(p.Changes[0]) + 8
	got := fitPreview(proto.Clone(p).(*pb.Preview), 3*one)
	if len(got.GetChanges()) != 3 || got.GetUsersListed() != 2 || got.GetUsersAffected() != 3 {
		t.Fatalf("cut to three changes' room: %d changes, %d of %d users listed", len(got.GetChanges()), got.GetUsersListed(), got.GetUsersAffected())
	}
	got = fitPreview(proto.Clone(p).(*pb.Preview), one)
	if len(got.GetChanges()) != 2 || got.GetUsersListed() != 1 {
		t.Fatalf("the first user is kept whole even past the limit: %d changes, %d listed", len(got.GetChanges()), got.GetUsersListed())
	}
	if got = fitPreview(proto.Clone(p).(*pb.Preview), 100*one); len(got.GetChanges()) != 4 || got.GetUsersListed() != 3 {
		t.Fatalf("room for all: %d changes, %d listed", len(got.GetChanges()), got.GetUsersListed())
	}
}
