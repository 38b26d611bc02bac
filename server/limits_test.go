package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// syncBuffer is a log destination tests can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDecisionsLogAtDebug: at info level a check writes no log line; a
// write, and a check that fails, do.
func TestDecisionsLogAtDebug(t *testing.T) {
	var logs syncBuffer
	ts := startServerOpts(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	ctx := ctxT(t)
	for range 10 {
		if _, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "read"}); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(logs.String(), "Check") {
		t.Fatalf("checks logged at info:\n%s", logs.String())
	}
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "a"}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "fly"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("check of an unknown right: %v", err)
	}
	got := logs.String()
	if !strings.Contains(got, `"grpc.method":"Write"`) || !strings.Contains(got, `"grpc.method":"Check"`) || !strings.Contains(got, `"grpc.code":"InvalidArgument"`) {
		t.Fatalf("a write and a refused check are not both logged:\n%s", got)
	}
}

// TestStreamsPerCaller: a caller past its limit of open streams is
// refused, naming the limit; other callers are not counted against it;
// once one of its streams ends it may open another.
func TestStreamsPerCaller(t *testing.T) {
	ts := startServerOpts(t, Options{Tokens: testTokens(t), MaxStreams: 2})
	// open starts a Watch from revision 1 and reads the first commit, so
	// the server holds the stream when it returns.
	open := func(ctx context.Context, token string) error {
		s, err := ts.watch.Watch(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), &pb.WatchRequest{FromRevision: 1})
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}
	first, stop := context.WithCancel(ctxT(t))
	if err := open(first, "read-token"); err != nil {
		t.Fatal(err)
	}
	if err := open(ctxT(t), "read-token"); err != nil {
		t.Fatal(err)
	}
	err := open(ctxT(t), "read-token")
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), `caller "read-caller" has 2 streams open`) {
		t.Fatalf("third stream: %v", err)
	}
	if err := open(ctxT(t), "admin-token"); err != nil {
		t.Fatalf("another caller: %v", err)
	}
	stop()
	// The ended stream is counted off when its handler returns, shortly
	// after the cancel; until then the caller is still refused.
	for {
		err := open(ctxT(t), "read-token")
		if err == nil {
			break
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("after a stream ended: %v", err)
		}
	}
}

// TestFailedAuthenticationIsThrottled: a peer that keeps presenting
// tokens nobody issued is refused, past a budget, without its token being
// looked at, even a good one, until the budget refills.
func TestFailedAuthenticationIsThrottled(t *testing.T) {
	tokens := testTokens(t)
	tokens.failures.refill = 1e-6 // no attempt comes back while the test runs, however slow
	ts := startServerWith(t, tokens)
	try := func(token string) error {
		ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+token)
		_, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "read"})
		return err
	}
	for i := range failBurst {
		if err := try("guess"); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if err := try("guess"); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "too many failed authentications") {
		t.Fatalf("a guess past the budget: %v", err)
	}
	if err := try("check-token"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a good token from a throttled peer: %v", err)
	}
}

// TestRequestLimits: a BatchCheck at its limit is answered and one past it
// refused naming the limit; a request message past the size limit is
// refused before it is decoded.
func TestRequestLimits(t *testing.T) {
	ts := startServerOpts(t, Options{MaxBatchCheck: 3, MaxMessageBytes: 64 << 10})
	ctx := ctxT(t)
	items := func(n int) []*pb.CheckItem {
		out := make([]*pb.CheckItem, n)
		for i := range out {
			out[i] = &pb.CheckItem{User: "nobody", Right: "read"}
		}
		return out
	}
	if r, err := ts.acc.BatchCheck(ctx, &pb.BatchCheckRequest{Items: items(3)}); err != nil || len(r.GetResults()) != 3 {
		t.Fatalf("at the limit: %v, %v", r, err)
	}
	if _, err := ts.acc.BatchCheck(ctx, &pb.BatchCheckRequest{Items: items(4)}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 3") {
		t.Fatalf("past the limit: %v", err)
	}
	big := &pb.WriteRequest{}
	for i := range 200 {
		big.Mutations = append(big.Mutations, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: strings.Repeat("x", 200) + string(rune('a'+i%26)), Name: strings.Repeat("n", 500)}}})
	}
	if _, err := ts.dir.Write(ctx, big); status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "larger than max") {
		t.Fatalf("a message past the size limit: %v", err)
	}
	if ts.ix.Revision() != 1 {
		t.Fatal("the refused write committed")
	}
}

// TestPageAndLookupLimits: a list page and a lookup at their limits are
// served, past them refused naming the limit; a lookup asking for all
// stops at its limit with a page token that gives the rest.
func TestPageAndLookupLimits(t *testing.T) {
	ts := startServerOpts(t, Options{MaxPageSize: 10, MaxLookupResults: 5})
	ctx := ctxT(t)
	muts := []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "root"}}}}
	for i := range 12 {
		muts = append(muts, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprintf("f%02d", i), Parent: "root"}}})
	}
	muts = append(muts,
		&pb.Mutation{Op: &pb.Mutation_CreateUser{CreateUser: &pb.User{Id: "u", Class: "staff", Home: "root"}}},
		&pb.Mutation{Op: &pb.Mutation_AddGrant{AddGrant: &pb.Grant{Id: "g", Holder: RefToPB(graph.UserRef("u")), Target: RefToPB(graph.FolderRef("root")), Rights: []string{"read"}}}})
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: muts}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []uint32{0, 10} {
		r, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Parent: "root", PageSize: size})
		if err != nil || len(r.GetFolders()) != 10 || r.GetNextPageToken() == "" {
			t.Fatalf("a page of %d at the limit of 10: %d folders, token %q, %v", size, len(r.GetFolders()), r.GetNextPageToken(), err)
		}
	}
	if _, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Parent: "root", PageSize: 11}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limit of 10") {
		t.Fatalf("a page past the limit: %v", err)
	}
	lookup := func(size uint32, token string) ([]string, string, error) {
		s, err := ts.acc.LookupResources(ctx, &pb.LookupResourcesRequest{User: "u", Right: "read", Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, PageSize: size, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		var ids []string
		var next string
		for {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return ids, next, nil
			}
			if err != nil {
				return ids, next, err
			}
			ids, next = append(ids, m.GetIds()...), m.GetNextPageToken()
		}
	}
	if ids, next, err := lookup(5, ""); err != nil || len(ids) != 5 || next == "" {
		t.Fatalf("a lookup at the limit of 5: %v, %q, %v", ids, next, err)
	}
	if _, _, err := lookup(6, ""); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limit of 5") {
		t.Fatalf("a lookup past the limit: %v", err)
	}
	var all []string
	calls := 0
	for token := ""; ; {
		ids, next, err := lookup(0, token)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if len(ids) > 5 {
			t.Fatalf("a lookup of all returned %d ids, over the limit of 5", len(ids))
		}
		all = append(all, ids...)
		if token = next; token == "" {
			break
		}
	}
	if len(all) != 13 || calls != 3 {
		t.Fatalf("lookup of all, following tokens: %d ids in %d calls, want 13 in 3", len(all), calls)
	}
}

// TestRequestDeadline: a call with no deadline of its own that runs past
// the server's request deadline ends with DeadlineExceeded naming it, a
// lookup stream too; a shorter deadline of the caller's is the caller's;
// and a Watch stream outlives it.
func TestRequestDeadline(t *testing.T) {
	ts := startServerOpts(t, Options{RequestTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background()) // no deadline
	defer cancel()
	w, err := ts.watch.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "read"}); err != nil {
		t.Fatalf("within the deadline: %v", err)
	}
	// A revision within the allowance that no write will bring.
	never := &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: ts.ix.Revision() + 1}}
	_, err = ts.acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "read", Consistency: never})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "request deadline of 300ms") {
		t.Fatalf("a check past the request deadline: %v", err)
	}
	s, err := ts.acc.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Right: "read", Consistency: never})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "request deadline of 300ms") {
		t.Fatalf("a lookup past the request deadline: %v", err)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	_, err = ts.acc.Check(short, &pb.CheckRequest{User: "nobody", Right: "read", Consistency: never})
	if status.Code(err) != codes.DeadlineExceeded || strings.Contains(err.Error(), "request deadline") {
		t.Fatalf("a check past its own shorter deadline: %v", err)
	}
	// The Watch opened before all this still delivers.
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "late"}}}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := w.Recv(); err != nil || m.GetMutations()[0].GetCreateFolder().GetId() != "late" {
		t.Fatalf("the watch after the request deadline: %v, %v", m, err)
	}
}

// TestWriteLimits: a write and an id at the limits of mutations per write
// and of id length are accepted, past them refused naming the limit, and
// an import larger than the write limit commits in chunks within it.
func TestWriteLimits(t *testing.T) {
	ts := startServerGraph(t, Options{}, graph.Options{MaxBatch: 3, MaxIDBytes: 8})
	ctx := ctxT(t)
	folders := func(ids ...string) []*pb.Mutation {
		var out []*pb.Mutation
		for _, id := range ids {
			out = append(out, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id}}})
		}
		return out
	}
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: folders("a", "b", "12345678")}); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: folders("c", "d", "e", "f")}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 3 mutations") {
		t.Fatalf("past the limit of mutations: %v", err)
	}
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: folders("123456789")}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limit of id length is 8") {
		t.Fatalf("past the limit of id length: %v", err)
	}
	im, err := ts.dir.Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Send(&pb.ImportRequest{Mutations: folders("i1", "i2", "i3", "i4", "i5", "i6", "i7")}); err != nil {
		t.Fatal(err)
	}
	if err := im.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var commits []uint64
	for {
		r, err := im.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, r.GetCommittedMutations())
	}
	if !slices.Equal(commits, []uint64{3, 6, 7}) {
		t.Fatalf("import of 7 under a limit of 3: committed %v", commits)
	}
}
