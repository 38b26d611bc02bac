package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// Log is what the server reads of the change log: the store's committed
// revision (for fully consistent reads) and its entries (for Watch replay).
type Log interface {
	// Revision returns the revision of the last durable commit.
	Revision() (uint64, error)
	// ReadLog returns up to max entries from revision from onwards.
	ReadLog(from uint64, max int) ([]graph.Commit, error)
}

// Options configure a Server. Index, Log and Hub are required.
type Options struct {
	Index  *graph.Index
	Log    Log
	Hub    *Hub
	Logger *slog.Logger
	// MaxBatchCheck is the most items one BatchCheck may carry (0: 10,000).
	MaxBatchCheck int
	// Tokens authenticates callers; nil serves everyone (for loopback only).
	Tokens *Tokens
	// Metrics, if set, count calls and decisions.
	Metrics *Metrics
	// RateLimit, if PerSecond is positive, limits each caller's calls.
	RateLimit RateLimit
}

// Server implements the canopy.v1 services over one index.
type Server struct {
	ix       *graph.Index
	log      Log
	hub      *Hub
	logger   *slog.Logger
	opts     Options
	health   *health.Server
	shutdown atomic.Bool
}

// New returns a server over opts.Index.
func New(opts Options) (*Server, error) {
	if opts.Index == nil || opts.Log == nil || opts.Hub == nil {
		return nil, fmt.Errorf("server: Options.Index, Log and Hub are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBatchCheck <= 0 {
		opts.MaxBatchCheck = 10_000
	}
	return &Server{ix: opts.Index, log: opts.Log, hub: opts.Hub, logger: opts.Logger, opts: opts, health: health.NewServer()}, nil
}

// Register adds the canopy.v1 services, grpc.health.v1 and server
// reflection to g. Health reports SERVING for "" and every service.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterDirectoryServiceServer(g, &directory{Server: s})
	pb.RegisterAccessServiceServer(g, &access{Server: s})
	pb.RegisterWatchServiceServer(g, &watch{Server: s})
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
	if s.opts.Metrics != nil {
		s.opts.Metrics.grpc.InitializeMetrics(g)
	}
	for _, name := range []string{"", pb.DirectoryService_ServiceDesc.ServiceName, pb.AccessService_ServiceDesc.ServiceName, pb.WatchService_ServiceDesc.ServiceName} {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
}

// Shutdown marks every service NOT_SERVING, for a graceful stop.
func (s *Server) Shutdown() {
	s.shutdown.Store(true)
	s.health.Shutdown()
}

// Ready reports whether the server is serving (not shutting down).
func (s *Server) Ready() bool { return !s.shutdown.Load() }

// consistent waits until the index satisfies c.
func (s *Server) consistent(ctx context.Context, c *pb.Consistency) error {
	switch r := c.GetRequirement().(type) {
	case *pb.Consistency_AtLeastRevision:
		return s.ix.WaitFor(ctx, r.AtLeastRevision)
	case *pb.Consistency_FullyConsistent:
		if !r.FullyConsistent {
			return nil
		}
		rev, err := s.log.Revision()
		if err != nil {
			return fmt.Errorf("read committed revision: %w", err)
		}
		return s.ix.WaitFor(ctx, rev)
	}
	return nil
}

func (s *Server) status(ctx context.Context, err error) error { return toStatus(ctx, s.logger, err) }
