package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/store"
)

// TestPanicBecomesInternal: a panicking handler gives the caller Internal
// with no panic text, and the log gets the panic and its stack.
func TestPanicBecomesInternal(t *testing.T) {
	var logged bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logged, nil))
	intercept := recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(recoverPanic(l)))
	_, err := intercept(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/canopy.v1.AccessService/Check"},
		func(context.Context, any) (any, error) { panic("secret detail") })
	st, _ := status.FromError(err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") {
		t.Fatalf("caller got %v", err)
	}
	if !strings.Contains(logged.String(), "secret detail") || !strings.Contains(logged.String(), "stack") {
		t.Fatalf("log lacks the panic and its stack: %s", logged.String())
	}
}

// TestWatchEndsOnShutdown: closing the hub ends a live Watch with
// Unavailable and the revision to resume from.
func TestWatchEndsOnShutdown(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	s, err := ts.watch.Watch(ctxT(t), &pb.WatchRequest{FromRevision: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(); err != nil || m.GetRevision() != 2 {
		t.Fatalf("replay: %v, %v", m, err)
	}
	ts.hub.Close()
	_, err = s.Recv()
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "resume from revision 3") {
		t.Fatalf("after shutdown: %v", err)
	}
}

// TestWatchOutOfRange: after compaction, a watch from before the oldest
// kept revision gets OutOfRange naming it; from the oldest it replays.
func TestWatchOutOfRange(t *testing.T) {
	ts := startServer(t)
	loadAtlas(t, ts)
	for _, id := range []string{"x1", "x2", "x3"} {
		if _, err := ts.dir.Write(ctxT(t), &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id, Parent: "acme"}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.db.Compact(ts.clock.Now().Add(time.Hour), store.Retention{Revisions: 2, Age: time.Minute}); err != nil {
		t.Fatal(err)
	}
	s, err := ts.watch.Watch(ctxT(t), &pb.WatchRequest{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	if st, _ := status.FromError(err); st.Code() != codes.OutOfRange || !strings.Contains(st.Message(), "the oldest is 4") {
		t.Fatalf("watch from 1 after compaction: %v", err)
	}
	s, err = ts.watch.Watch(ctxT(t), &pb.WatchRequest{FromRevision: 4})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.Recv(); err != nil || m.GetRevision() != 4 {
		t.Fatalf("watch from the oldest: %v, %v", m, err)
	}
}

// TestCallLogBuildsNothingWhenOff: a decision at the default level (info)
// costs the call log no allocation; at debug it is written with its
// fields, a stream's with its kind.
func TestCallLogBuildsNothingWhenOff(t *testing.T) {
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}})
	off := callLog{l: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	start := time.Now()
	if n := testing.AllocsPerRun(100, func() { off.finished(ctx, "/canopy.v1.AccessService/Check", "unary", start, nil) }); n != 0 {
		t.Errorf("a decision at info level allocates %v times in the call log", n)
	}
	var logged bytes.Buffer
	on := callLog{l: slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	on.finished(ctx, "/canopy.v1.AccessService/Check", "unary", start, nil)
	on.finished(ctx, "/canopy.v1.WatchService/Watch", "server_stream", start, status.Error(codes.Unavailable, "going away"))
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want two lines, got:\n%s", logged.String())
	}
	for i, want := range [][]string{
		{`"level":"DEBUG"`, `"msg":"finished call"`, `"grpc.service":"canopy.v1.AccessService"`, `"grpc.method":"Check"`, `"grpc.method_type":"unary"`, `"peer.address":"127.0.0.1:5000"`, `"caller":"anonymous@127.0.0.1"`, `"grpc.code":"OK"`, `"grpc.time_ms":`},
		{`"level":"WARN"`, `"grpc.method":"Watch"`, `"grpc.method_type":"server_stream"`, `"grpc.code":"Unavailable"`, `"grpc.error":"rpc error: code = Unavailable desc = going away"`},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %s: %s", i+1, w, lines[i])
			}
		}
	}
}

// TestBoundedContext: the request deadline's context reports the
// deadline, ends at it once something waits, follows the call's own
// cancellation, and starts no timer for a call that never waits.
func TestBoundedContext(t *testing.T) {
	s := &Server{opts: Options{RequestTimeout: 20 * time.Millisecond}}
	ctx, release, ours := s.bounded(context.Background())
	if !ours {
		t.Fatal("no deadline of the caller's, yet the server's does not hold")
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > 20*time.Millisecond {
		t.Errorf("deadline %v, %v", d, ok)
	}
	awaitDone(t, ctx, "the request deadline never ended the call")
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("after the deadline: %v", ctx.Err())
	}
	release()

	parent, cancel := context.WithCancel(context.Background())
	ctx, release, _ = (&Server{opts: Options{RequestTimeout: time.Hour}}).bounded(parent)
	defer release()
	child, stop := context.WithCancel(ctx) // waits on ctx: starts the timer
	defer stop()
	cancel()
	awaitDone(t, child, "the caller's cancellation did not reach a context made from the bounded one")
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("after the caller cancelled: %v", ctx.Err())
	}

	ctx, release, _ = (&Server{opts: Options{RequestTimeout: time.Hour}}).bounded(context.Background())
	release()
	if b := ctx.(*boundedCtx); b.timed != nil {
		t.Error("a timer started for a call that never waited")
	}
	// A caller's earlier deadline holds, with nothing of ours.
	early, stopEarly := context.WithTimeout(context.Background(), time.Minute)
	defer stopEarly()
	if ctx, release, ours := (&Server{opts: Options{RequestTimeout: time.Hour}}).bounded(early); ours || ctx != early {
		t.Error("the server's later deadline replaced the caller's")
	} else {
		release()
	}
}

// awaitDone fails the test with why unless ctx ends within 10 seconds.
func awaitDone(t *testing.T, ctx context.Context, why string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal(why)
	}
}
