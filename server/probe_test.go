package server_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/store/etcdstore"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
)

// TestProbeStore: when the store (a real etcd) goes away, health says the
// DirectoryService is not serving while the AccessService is, and
// canopy_store_up is 0; when it is back, both serve again.
func TestProbeStore(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and restarts etcd")
	}
	c := etcdtest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	es, err := etcdstore.Open(ctx, c.Client(t), etcdstore.Options{Prefix: "/p/", RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), es)
	reg := prometheus.NewRegistry()
	metrics := server.NewMetrics(reg)
	srv, err := server.New(server.Options{Log: es, Hub: server.NewHub(0), Index: ix, Metrics: metrics, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go srv.ProbeStore(ctx, 20*time.Millisecond)

	health := healthpb.NewHealthClient(conn)
	writes, err := health.Watch(ctx, &healthpb.HealthCheckRequest{Service: pb.DirectoryService_ServiceDesc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	await := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for {
			h, err := writes.Recv()
			if err != nil {
				t.Fatalf("waiting for %v: %v", want, err)
			}
			if h.GetStatus() == want {
				return
			}
		}
	}
	await(healthpb.HealthCheckResponse_SERVING)
	c.Stop(0)
	await(healthpb.HealthCheckResponse_NOT_SERVING)
	if up := gaugeValue(t, reg, "canopy_store_up"); up != 0 {
		t.Fatalf("canopy_store_up is %v with the store gone", up)
	}
	h, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: pb.AccessService_ServiceDesc.ServiceName})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("the AccessService with the store gone: %v, %v", h, err)
	}
	if _, err := pb.NewDirectoryServiceClient(conn).GetFolder(ctx, &pb.GetFolderRequest{Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("a read with the store gone: %v, want NotFound from the index", err)
	}
	_, err = pb.NewAccessServiceClient(conn).Check(ctx, &pb.CheckRequest{User: "u", Right: "read",
		Consistency: &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "committed revision") {
		t.Fatalf("a fully consistent read with the store gone: %v, want Unavailable naming the cause", err)
	}
	c.Restart(0)
	await(healthpb.HealthCheckResponse_SERVING)
	if _, err := ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "back"}}}, graph.Preconditions{}); err != nil {
		t.Fatalf("a write once the store is back: %v", err)
	}
}

// gaugeValue returns the value of the registered gauge name.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
