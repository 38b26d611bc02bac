package server

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// TestCallMetrics: calls, their messages, codes and times, and decisions
// are counted under go-grpc-middleware's names and labels, every
// method's codes showing 0 before its first call.
func TestCallMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	ts := startServerOpts(t, Options{Metrics: m})
	loadAtlas(t, ts)
	ctx := ctxT(t)
	for range 3 {
		if _, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "read"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "fly"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("check of an unknown right: %v", err)
	}
	batch := []*pb.CheckItem{{User: "nobody", Right: "read"}, {User: "nobody", Right: "read"}, {User: "nobody", Right: "edit"}, {User: "nobody", Right: "read"}}
	if _, err := ts.acc.BatchCheck(ctx, &pb.BatchCheckRequest{Items: batch}); err != nil {
		t.Fatal(err)
	}
	s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	check := []string{"unary", "canopy.v1.AccessService", "Check"}
	watch := []string{"server_stream", "canopy.v1.WatchService", "Watch"}
	for _, c := range []struct {
		name string
		vec  *prometheus.CounterVec
		l    []string
		want float64
	}{
		{"started Checks", m.grpc.started, check, 4},
		{"Checks handled OK", m.grpc.handled, append(check[:3:3], "OK"), 3},
		{"Checks refused", m.grpc.handled, append(check[:3:3], "InvalidArgument"), 1},
		{"Checks Internal", m.grpc.handled, append(check[:3:3], "Internal"), 0},
		{"Check requests", m.grpc.received, check, 4},
		{"Check responses", m.grpc.sent, check, 3},
		{"started Watches", m.grpc.started, watch, 1},
		{"Watch requests", m.grpc.received, watch, 1},
		{"Exports handled OK (never called)", m.grpc.handled, []string{"server_stream", "canopy.v1.DirectoryService", "Export", "OK"}, 0},
		{"decisions of read, unknown user", m.decisions, []string{"read", "unknown_user"}, 3 + 3},
		{"decisions of edit, unknown user", m.decisions, []string{"edit", "unknown_user"}, 1},
		{"decisions of read, allowed", m.decisions, []string{"read", "allowed"}, 0},
	} {
		if got := testutil.ToFloat64(c.vec.WithLabelValues(c.l...)); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// A stream's message is counted once its SendMsg returns, which may
	// be after the client has it; but the first was counted before the
	// second was sent.
	if got := testutil.ToFloat64(m.grpc.sent.WithLabelValues(watch...)); got < 1 || got > 2 {
		t.Errorf("Watch messages sent: %v, want 1 or 2 (two received)", got)
	}
	n, err := testutil.GatherAndCount(reg, "grpc_server_handled_total")
	if err != nil {
		t.Fatal(err)
	}
	if n < 17*20 {
		t.Errorf("%d handled counters: want every code of every method from the start", n)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var timed uint64
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if f.GetName() == "grpc_server_handling_seconds" && labels["grpc_service"] == check[1] && labels["grpc_method"] == check[2] {
				timed = mt.GetHistogram().GetSampleCount()
			}
		}
	}
	if timed != 4 {
		t.Errorf("handling times of %d Checks, want 4", timed)
	}
	if n := testing.AllocsPerRun(100, func() {
		m.grpc.method("unary", "/canopy.v1.AccessService/Check").done(time.Now(), nil)
		m.decided("read", graph.ReasonNoGrant)
	}); n != 0 {
		t.Errorf("counting a call and its decision allocates %v times", n)
	}
}
