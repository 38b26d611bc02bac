package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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
