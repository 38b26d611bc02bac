package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/scenario"
)

// TestTracing: with a tracer provider, each call is a span continuing the
// caller's trace (its traceparent), and inside a write the commit is a
// span of its own, under the write's; lookups, the Watch replay and the
// audit trail have spans with their counts. No span carries the caller's
// token, nor anything of a request but ids, counts and revisions.
func TestTracing(t *testing.T) {
	// A call's span ends as the server finishes it, which may be after
	// the client has its answer: the test waits for the Watch's (after it
	// cancels the stream) and for the last call's.
	sig := newSpanSignal("canopy.v1.WatchService/Watch", "canopy.v1.WatchService/History")
	rec := sig.SpanRecorder
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sig))
	tokens, err := ParseTokens([]byte(fmt.Sprintf("tokens:\n  - {name: console, sha256: %s, scopes: [admin]}\n", hashOf("secret-token"))))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerOpts(t, Options{TracerProvider: tp, Tokens: tokens})
	// The caller's trace, as a traceparent header.
	traceID := "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer secret-token", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	atlas, err := scenario.Example("atlas")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: toPB(atlas.Steps[0].Write)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "tom", Right: "edit", Resource: &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: "carl"}}); err != nil {
		t.Fatal(err)
	}
	lr, err := ts.acc.LookupResources(ctx, &pb.LookupResourcesRequest{User: "tom", Right: "read", Kind: pb.ObjectKind_OBJECT_KIND_USER})
	if err != nil {
		t.Fatal(err)
	}
	recvAll(t, lr)
	wctx, cancel := context.WithCancel(ctx)
	w, err := ts.watch.Watch(wctx, &pb.WatchRequest{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	wait(t, ctx, sig.ended["canopy.v1.WatchService/Watch"], "the end of the Watch's span")
	if _, err := ts.watch.History(ctx, &pb.HistoryRequest{Object: "user/carl"}); err != nil {
		t.Fatal(err)
	}
	wait(t, ctx, sig.ended["canopy.v1.WatchService/History"], "the end of the History's span")
	if err := tp.ForceFlush(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	spans := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.Name() == "canopy.store.append" && attr(s, "canopy.revision.last") == "1" {
			continue // the bootstrap, written as the index opened: a trace of its own
		}
		spans[s.Name()] = append(spans[s.Name()], s)
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("span %s is in trace %s, not the caller's", s.Name(), s.SpanContext().TraceID())
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), "secret-token") || strings.Contains(strings.ToLower(string(a.Key)), "authorization") {
				t.Errorf("span %s carries %s=%s", s.Name(), a.Key, a.Value.Emit())
			}
		}
		for _, e := range s.Events() {
			for _, a := range e.Attributes {
				if strings.Contains(a.Value.Emit(), "secret-token") {
					t.Errorf("span %s's event %s carries the token", s.Name(), e.Name)
				}
			}
		}
	}
	for _, name := range []string{"canopy.v1.DirectoryService/Write", "canopy.v1.AccessService/Check", "canopy.v1.AccessService/LookupResources",
		"canopy.v1.WatchService/Watch", "canopy.v1.WatchService/History", "canopy.write", "canopy.store.append", "canopy.lookup", "canopy.watch.replay", "canopy.history"} {
		if len(spans[name]) == 0 {
			names := slices.Sorted(func(yield func(string) bool) {
				for n := range spans {
					if !yield(n) {
						return
					}
				}
			})
			t.Fatalf("no %s span; spans: %v", name, names)
		}
	}
	// The commit under the write, the write under the call.
	write, commit, call := spans["canopy.write"][0], spans["canopy.store.append"][0], spans["canopy.v1.DirectoryService/Write"][0]
	if commit.Parent().SpanID() != write.SpanContext().SpanID() || write.Parent().SpanID() != call.SpanContext().SpanID() {
		t.Fatalf("the commit's parent is %s, the write's %s; want %s and %s", commit.Parent().SpanID(), write.Parent().SpanID(), write.SpanContext().SpanID(), call.SpanContext().SpanID())
	}
	if v := attr(write, "canopy.mutations"); v != fmt.Sprint(len(atlas.Steps[0].Write)) {
		t.Errorf("the write's mutations: %s", v)
	}
	if v := attr(commit, "canopy.revision.last"); v != "2" {
		t.Errorf("the commit's last revision: %s", v)
	}
	if v := attr(spans["canopy.history"][0], "canopy.entries"); v != "1" {
		t.Errorf("the history's entries: %s", v)
	}
	if s := spans["canopy.v1.AccessService/Check"][0]; s.SpanKind() != trace.SpanKindServer {
		t.Errorf("the check's span is %s", s.SpanKind())
	}
}

// attr returns the value of a span's attribute, "" when it has none.
func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// spanSignal is a span processor (a recorder) that also says when a span
// of each name it watches starts, and when one ends.
type spanSignal struct {
	*tracetest.SpanRecorder
	started, ended map[string]chan struct{}
}

func newSpanSignal(names ...string) spanSignal {
	s := spanSignal{tracetest.NewSpanRecorder(), map[string]chan struct{}{}, map[string]chan struct{}{}}
	for _, n := range names {
		s.started[n], s.ended[n] = make(chan struct{}, 1), make(chan struct{}, 1)
	}
	return s
}

func (s spanSignal) OnStart(ctx context.Context, sp sdktrace.ReadWriteSpan) {
	s.SpanRecorder.OnStart(ctx, sp)
	if c, ok := s.started[sp.Name()]; ok {
		signal(c)
	}
}

func (s spanSignal) OnEnd(sp sdktrace.ReadOnlySpan) {
	s.SpanRecorder.OnEnd(sp)
	if c, ok := s.ended[sp.Name()]; ok {
		signal(c)
	}
}

// wait waits for c, failing the test at ctx's end.
func wait(t *testing.T, ctx context.Context, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-ctx.Done():
		t.Fatalf("%s never happened", what)
	}
}

// signal sends on c without waiting.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// TestWaitForRevisionSpan: a read that waits for a revision not yet
// committed has a canopy.wait_for_revision span, from the revision it had
// to the one it wanted, ended when the write arrives.
func TestWaitForRevisionSpan(t *testing.T) {
	sig := newSpanSignal("canopy.wait_for_revision")
	rec := sig.SpanRecorder
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sig))
	ts := startServerOpts(t, Options{TracerProvider: tp})
	ctx := ctxT(t)
	head := ts.ix.Revision()
	read := make(chan error, 1)
	go func() {
		_, err := ts.dir.GetCatalogue(ctx, &pb.GetCatalogueRequest{Consistency: &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: head + 1}}})
		read <- err
	}()
	select {
	case <-sig.started["canopy.wait_for_revision"]: // the read is waiting
	case err := <-read:
		t.Fatalf("the read did not wait: %v", err)
	case <-ctx.Done():
		t.Fatal("the read never waited")
	}
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "late"}}}}}); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	wait(t, ctx, sig.ended["canopy.wait_for_revision"], "the end of the wait's span")
	for _, s := range rec.Ended() {
		if s.Name() == "canopy.wait_for_revision" {
			if attr(s, "canopy.revision.wanted") != fmt.Sprint(head+1) || attr(s, "canopy.revision.had") != fmt.Sprint(head) {
				t.Fatalf("the wait's attributes: %v", s.Attributes())
			}
			return
		}
	}
	t.Fatal("no canopy.wait_for_revision span ended")
}
