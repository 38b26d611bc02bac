package main

import (
	"context"
	"encoding/hex"
	"net"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// otlpReceiver is an OTLP trace receiver: it hands over every span name
// and trace id exported to it.
type otlpReceiver struct {
	collectorpb.UnimplementedTraceServiceServer
	spans chan [2]string
}

func (r *otlpReceiver) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans <- [2]string{s.GetName(), hex.EncodeToString(s.GetTraceId())}
			}
		}
	}
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

// TestTracesToOTLP: canopyd given the standard OTEL_* environment sends
// its spans over OTLP, a call's span in the trace its caller sent.
func TestTracesToOTLP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &otlpReceiver{spans: make(chan [2]string, 1000)}
	g := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(g, rec)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+lis.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // ms: export at once
	d := startDaemon(t, buildCanopyd(t), t.TempDir(), "--example", "atlas")
	traceID := "0af7651916cd43dd8448eb211c80319c"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := pb.NewAccessServiceClient(d.conn).Check(ctx, &pb.CheckRequest{User: "tom", Right: "edit", Resource: &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: "carl"}}); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case s := <-rec.spans:
			if s == [2]string{"canopy.v1.AccessService/Check", traceID} {
				return
			}
		case <-ctx.Done():
			t.Fatal("no span of the check reached the OTLP receiver within a minute")
		}
	}
}
