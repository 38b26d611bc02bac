// Package servertest starts real Canopy servers for tests: a bbolt store
// in a temporary folder, the index, the watch hub and the canopy.v1
// services on a loopback port, wired as canopyd wires them.
package servertest

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/scenario"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/store"
)

// Server is a running Canopy server. Its parts are exported so a test can
// write to the index directly, compact the store, or stop and restart
// the gRPC listener.
type Server struct {
	Addr  string // where it listens, host:port
	DB    *store.DB
	Index *graph.Index
	Hub   *server.Hub
	API   *server.Server
	GRPC  *grpc.Server // the current gRPC server; Serve replaces it
}

// New starts a server over a store in dir, listening on addr
// ("127.0.0.1:0" for any free port). Extra server options (interceptors
// that inject faults) go before the server's own. Stop it with Stop.
func New(dir, addr string, extra ...grpc.ServerOption) (*Server, error) {
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		return nil, err
	}
	s := &Server{DB: db, Hub: server.NewHub(0)}
	s.Index, err = graph.Open(context.Background(), graph.Options{Clock: graph.ClockFunc(time.Now), Journal: db, OnCommit: s.Hub.Publish, OnAccess: s.Hub.PublishAccess})
	if err != nil {
		db.Close()
		return nil, err
	}
	s.API, err = server.New(server.Options{Index: s.Index, Log: db, Audit: db, Hub: s.Hub, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		s.Index.Close()
		db.Close()
		return nil, err
	}
	if err := s.Serve(addr, extra...); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Start starts a server for a test, in a temporary folder, stopped when
// the test ends.
func Start(t testing.TB, extra ...grpc.ServerOption) *Server {
	t.Helper()
	s, err := New(t.TempDir(), "127.0.0.1:0", extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartExample starts a server for a test (Start) holding the first step
// of the seed example name (scenario.Example: "atlas", "aptem").
func StartExample(t testing.TB, name string, extra ...grpc.ServerOption) *Server {
	t.Helper()
	s := Start(t, extra...)
	f, err := scenario.Example(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Index.Write(context.Background(), "test", f.Steps[0].Write, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// Serve starts a new gRPC server for the same index on addr (after
// GRPC.Stop, the same Addr brings it back where clients expect it).
func (s *Server) Serve(addr string, extra ...grpc.ServerOption) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.Addr = lis.Addr().String()
	s.GRPC = grpc.NewServer(append(extra, s.API.ServerOptions()...)...)
	s.API.Register(s.GRPC)
	go s.GRPC.Serve(lis)
	return nil
}

// Stop stops the gRPC server, the hub, the index and the store.
func (s *Server) Stop() {
	s.Hub.Close()
	if s.GRPC != nil {
		s.GRPC.Stop()
	}
	s.Index.Close()
	s.DB.Close()
}
