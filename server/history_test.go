package server

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// TestHistory: History answers from the store's trail, newest first, page
// by page through its tokens, for an object, an actor and the user a batch
// was written for; and refuses a malformed query naming what is wrong.
func TestHistory(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	ctx := ctxT(t)
	write := func(as string, muts ...graph.Mutation) uint64 {
		t.Helper()
		var ms []*pb.Mutation
		for _, m := range muts {
			ms = append(ms, MutationToPB(m))
		}
		r, err := ts.dir.Write(ctx, &pb.WriteRequest{AsUser: as, Mutations: ms})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetRevision()
	}
	reset := write("tom", graph.Mutation{UpdateUser: &graph.UserUpdate{ID: "carl", Name: "Carl C.", Class: "candidate"}})
	moved := write("", graph.Mutation{MoveUser: &graph.Move{ID: "carl", To: "it2"}},
		graph.Mutation{AddGrant: &graph.Grant{ID: "carl-read", Holder: graph.UserRef("tom"), Target: graph.UserRef("carl"), Rights: []string{"read"}}})

	all := func(req *pb.HistoryRequest) []*pb.HistoryEntry {
		t.Helper()
		var out []*pb.HistoryEntry
		for {
			r, err := ts.watch.History(ctx, req)
			if err != nil {
				t.Fatalf("%v: %v", req, err)
			}
			out = append(out, r.GetEntries()...)
			if r.GetNextPageToken() == "" {
				return out
			}
			req = proto.CloneOf(req)
			req.PageToken = r.GetNextPageToken()
		}
	}
	carl := all(&pb.HistoryRequest{Object: "user/carl"})
	// The grant to tom on carl, the move, the update for tom, the creation.
	if len(carl) != 4 {
		t.Fatalf("carl's history: %v", carl)
	}
	if e := carl[0]; e.GetRevision() != moved || e.GetIndex() != 1 || e.GetMutation().GetAddGrant().GetId() != "carl-read" || e.GetCommitTime() == nil || e.GetActor() == "" {
		t.Fatalf("newest: %v", e)
	}
	if e := carl[1]; e.GetRevision() != moved || e.GetIndex() != 0 || e.GetMutation().GetMoveUser().GetTo() != "it2" {
		t.Fatalf("second: %v", e)
	}
	if e := carl[2]; e.GetRevision() != reset || e.GetActedFor() != "tom" || e.GetMutation().GetUpdateUser().GetName() != "Carl C." {
		t.Fatalf("third: %v", e)
	}
	if e := carl[3]; e.GetRevision() >= reset || e.GetMutation().GetCreateUser().GetId() != "carl" {
		t.Fatalf("oldest: %v", e)
	}
	// A page at a time gives the same, and the folders moved between
	// have the move.
	if paged := all(&pb.HistoryRequest{Object: "user/carl", PageSize: 1}); !slices.EqualFunc(paged, carl, func(a, b *pb.HistoryEntry) bool { return proto.Equal(a, b) }) {
		t.Fatalf("page by page: %v", paged)
	}
	for _, f := range []string{"folder/it1", "folder/it2"} {
		if h := all(&pb.HistoryRequest{Object: f, FromRevision: moved}); len(h) != 1 || h[0].GetMutation().GetMoveUser() == nil {
			t.Fatalf("%s since the move: %v", f, h)
		}
	}
	if h := all(&pb.HistoryRequest{ActedFor: "tom"}); len(h) != 1 || h[0].GetRevision() != reset {
		t.Fatalf("written for tom: %v", h)
	}
	if h := all(&pb.HistoryRequest{Actor: carl[0].GetActor(), ToRevision: reset, FromRevision: reset}); len(h) != 1 {
		t.Fatalf("the actor's, at revision %d: %v", reset, h)
	}
	if h := all(&pb.HistoryRequest{Object: "user/nobody"}); len(h) != 0 {
		t.Fatalf("nobody's: %v", h)
	}

	r, err := ts.watch.History(ctx, &pb.HistoryRequest{Object: "user/carl", PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  *pb.HistoryRequest
		want string
	}{
		{&pb.HistoryRequest{Object: "team/x"}, `"team/x"`},
		{&pb.HistoryRequest{Object: "user/"}, `"user/"`},
		{&pb.HistoryRequest{PageToken: "nonsense"}, "page token"},
		{&pb.HistoryRequest{Object: "user/cara", PageToken: r.GetNextPageToken()}, "another query"},
		{&pb.HistoryRequest{PageSize: 20_000}, "page_size 20000"},
		{&pb.HistoryRequest{FromRevision: 5, ToRevision: 4}, "from_revision 5"},
	} {
		_, err := ts.watch.History(ctx, c.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want InvalidArgument naming %s", c.req, err, c.want)
		}
	}
	// A server whose store keeps no trail says so.
	if _, err := (&watch{Server: &Server{}}).History(ctx, &pb.HistoryRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("without a trail: %v", err)
	}
}

// TestListFoldersWithCounts: with_counts says what is placed at each
// folder listed, beside it; not on behalf of a user.
func TestListFoldersWithCounts(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	r, err := ts.dir.ListFolders(ctxT(t), &pb.ListFoldersRequest{Parent: "candidates", WithCounts: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetCounts()) != len(r.GetFolders()) || len(r.GetFolders()) != 3 {
		t.Fatalf("%d folders, %d counts", len(r.GetFolders()), len(r.GetCounts()))
	}
	if f, c := r.GetFolders()[0], r.GetCounts()[0]; f.GetId() != "it1" || c.GetUsers() != 1 || c.GetGrants() != 1 || c.GetChildren() != 0 || c.GetLocks() != 0 {
		t.Fatalf("%s: %v", f.GetId(), c)
	}
	if r, _ := ts.dir.ListFolders(ctxT(t), &pb.ListFoldersRequest{Parent: "candidates"}); len(r.GetCounts()) != 0 {
		t.Fatal("counts without with_counts")
	}
	if _, err := ts.dir.ListFolders(ctxT(t), &pb.ListFoldersRequest{Parent: "candidates", WithCounts: true, AsUser: "tom"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("with_counts for a user: %v", err)
	}
}
