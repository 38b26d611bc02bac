package client_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/store"
)

// instance is a real Canopy server, as canopyd wires it, on a loopback
// port: its store, index, hub and gRPC server.
type instance struct {
	addr string
	db   *store.DB
	ix   *graph.Index
	hub  *server.Hub
	srv  *server.Server
	g    *grpc.Server
}

// newInstance starts a server over a store in dir, listening on addr
// ("127.0.0.1:0" for any port). Extra server options (interceptors that
// inject faults) are added before the server's own.
func newInstance(dir, addr string, extra []grpc.ServerOption) (*instance, error) {
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		return nil, err
	}
	in := &instance{db: db, hub: server.NewHub(0)}
	in.ix, err = graph.Open(context.Background(), graph.Options{Clock: graph.ClockFunc(time.Now), Journal: db, OnCommit: in.hub.Publish, OnAccess: in.hub.PublishAccess})
	if err != nil {
		db.Close()
		return nil, err
	}
	in.srv, err = server.New(server.Options{Index: in.ix, Log: db, Hub: in.hub, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		in.ix.Close()
		db.Close()
		return nil, err
	}
	if err := in.serve(addr, extra); err != nil {
		in.stop()
		return nil, err
	}
	return in, nil
}

// serve starts a gRPC server for the instance on addr.
func (in *instance) serve(addr string, extra []grpc.ServerOption) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	in.addr = lis.Addr().String()
	in.g = grpc.NewServer(append(extra, in.srv.ServerOptions()...)...)
	in.srv.Register(in.g)
	go in.g.Serve(lis)
	return nil
}

// stop stops everything the instance runs.
func (in *instance) stop() {
	in.hub.Close()
	if in.g != nil {
		in.g.Stop()
	}
	in.ix.Close()
	in.db.Close()
}

// startInstance starts an instance for a test, stopped when it ends.
func startInstance(t testing.TB, extra ...grpc.ServerOption) *instance {
	t.Helper()
	in, err := newInstance(t.TempDir(), "127.0.0.1:0", extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.stop)
	return in
}
