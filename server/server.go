package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

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
	// OldestRevision returns the oldest revision the log still holds.
	OldestRevision() (uint64, error)
}

// Options configure a Server. Log and Hub are required. Index may be left
// nil and given later with Ready, once it is loaded.
type Options struct {
	Index  *graph.Index
	Log    Log
	Hub    *Hub
	Logger *slog.Logger
	// Audit answers History; nil refuses it as Unimplemented.
	Audit Audit
	// TracerProvider, if set, traces every call and the steps inside
	// (tracing.go); nil traces nothing.
	TracerProvider trace.TracerProvider
	// MaxBatchCheck is the most items one BatchCheck may carry (0: 10,000).
	MaxBatchCheck int
	// MaxMessageBytes is the largest request message the server takes
	// (0: 4 MiB, gRPC's default); a larger one is refused with
	// ResourceExhausted before it is decoded.
	MaxMessageBytes int
	// Tokens authenticates callers; nil serves everyone (for loopback only).
	Tokens *Tokens
	// Metrics, if set, count calls and decisions.
	Metrics *Metrics
	// RateLimit, if PerSecond is positive, limits each caller's calls.
	RateLimit RateLimit
	// DeadlineMargin: a lookup stream with less than this left before its
	// deadline stops and ends with a page token (0: 100 ms).
	DeadlineMargin time.Duration
	// MaxWait is the longest a read waits for the index to reach the
	// revision it asks for, whatever its own deadline (0: 30 s).
	MaxWait time.Duration
	// MaxStreams is how many streams one caller may have open at once
	// (0: 1,000); past it a stream is refused with ResourceExhausted.
	MaxStreams int
	// RevisionAllowance is how far past the newest committed revision a
	// read or a Watch may ask to start before it is refused at once with
	// OutOfRange naming the head (0: 1,000), since it could only wait.
	RevisionAllowance uint64
	// MaxPageSize is the largest page_size a list (ListFolders, ListUsers,
	// ListGrants, ListLocks) may ask for (0: 10,000); more is refused with
	// InvalidArgument naming the limit.
	MaxPageSize int
	// MaxLookupResults is the most ids one lookup call returns (0:
	// 100,000): a page_size above it is refused with InvalidArgument, and
	// a lookup asking for all (page_size 0) that finds more ends with a
	// page token after this many.
	MaxLookupResults int
	// MaxResponseBytes is the most a Watch message, a list page or an
	// export chunk carries (0: 1 MiB, at least 64 KiB): a larger commit is
	// sent in parts, a larger page is cut. Keep it under what clients
	// accept (gRPC's default is 4 MiB).
	MaxResponseBytes int
	// RequestTimeout bounds every unary call and lookup stream, whatever
	// deadline its caller set or did not (0: 60 s); a call that runs past
	// it ends with DeadlineExceeded naming the limit. Watch, Export,
	// Import and Backup streams are long by nature and not bounded.
	RequestTimeout time.Duration
}

// Server implements the canopy.v1 services over one index.
type Server struct {
	ix       *graph.Index
	log      Log
	hub      *Hub
	logger   *slog.Logger
	opts     Options
	tracer   trace.Tracer
	health   *health.Server
	shutdown atomic.Bool
	loaded   atomic.Bool // set once ix is; handlers run only after
}

// New returns a server over opts.Index.
func New(opts Options) (*Server, error) {
	if opts.Log == nil || opts.Hub == nil {
		return nil, fmt.Errorf("server: Options.Log and Hub are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DeadlineMargin <= 0 {
		opts.DeadlineMargin = 100 * time.Millisecond
	}
	if opts.MaxBatchCheck <= 0 {
		opts.MaxBatchCheck = 10_000
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 30 * time.Second
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 4 << 20
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 1000
	}
	if opts.RevisionAllowance == 0 {
		opts.RevisionAllowance = 1000
	}
	if opts.MaxPageSize <= 0 {
		opts.MaxPageSize = 10_000
	}
	if opts.MaxLookupResults <= 0 {
		opts.MaxLookupResults = 100_000
	}
	if opts.MaxResponseBytes == 0 {
		opts.MaxResponseBytes = defaultResponseBytes
	}
	if opts.MaxResponseBytes < minResponseBytes {
		return nil, fmt.Errorf("server: Options.MaxResponseBytes %d: at least %d", opts.MaxResponseBytes, minResponseBytes)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = time.Minute
	}
	s := &Server{log: opts.Log, hub: opts.Hub, logger: opts.Logger, opts: opts, health: health.NewServer(), tracer: tracer(opts.TracerProvider)}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if opts.Index != nil {
		s.Ready(opts.Index)
	}
	return s, nil
}

// services lists the names health reports on.
var services = []string{"", pb.DirectoryService_ServiceDesc.ServiceName, pb.AccessService_ServiceDesc.ServiceName, pb.WatchService_ServiceDesc.ServiceName}

// Ready gives the server its loaded index: from now on calls are served
// and health reports SERVING. Until then every call but health gets
// Unavailable and health reports NOT_SERVING.
func (s *Server) Ready(ix *graph.Index) {
	s.ix = ix
	s.loaded.Store(true)
	if s.shutdown.Load() {
		return
	}
	for _, name := range services {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
}

// Register adds the canopy.v1 services, grpc.health.v1 and server
// reflection to g. Health reports SERVING for "" and every service once
// the server is Ready.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterDirectoryServiceServer(g, &directory{Server: s})
	pb.RegisterAccessServiceServer(g, &access{Server: s})
	pb.RegisterWatchServiceServer(g, &watch{Server: s})
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
	if s.opts.Metrics != nil {
		s.opts.Metrics.grpc.register(g)
	}
}

// Shutdown marks every service NOT_SERVING, for a graceful stop.
func (s *Server) Shutdown() {
	s.shutdown.Store(true)
	s.health.Shutdown()
}

// Serving reports whether the server is serving: loaded, and not
// shutting down.
func (s *Server) Serving() bool { return s.loaded.Load() && !s.shutdown.Load() }

// consistent waits until the index satisfies c: at most MaxWait, and not
// at all for a revision beyond the head and its allowance.
func (s *Server) consistent(ctx context.Context, c *pb.Consistency) error {
	var want uint64
	switch r := c.GetRequirement().(type) {
	case *pb.Consistency_AtLeastRevision:
		want = r.AtLeastRevision
		if s.ix.Revision() >= want {
			return nil // the usual case: no store read on the check path
		}
		if err := s.reachable(want, "read at revision"); err != nil {
			return err
		}
	case *pb.Consistency_FullyConsistent:
		if !r.FullyConsistent {
			return nil
		}
		rev, err := s.log.Revision()
		if err != nil {
			return fmt.Errorf("%w: read the committed revision: %w", graph.ErrStorage, err)
		}
		want = rev
	default:
		return nil
	}
	if s.ix.Revision() >= want {
		return nil
	}
	wait, cancel := context.WithTimeout(ctx, s.opts.MaxWait)
	defer cancel()
	wait, sp := s.span(wait, "canopy.wait_for_revision", attribute.Int64("canopy.revision.wanted", int64(want)), attribute.Int64("canopy.revision.had", int64(s.ix.Revision())))
	err := s.ix.WaitFor(wait, want)
	if err != nil && ctx.Err() == nil && wait.Err() != nil {
		err = status.Errorf(codes.DeadlineExceeded, "revision %d not reached within the server's longest wait of %v (at %d)", want, s.opts.MaxWait, s.ix.Revision())
	}
	endSpan(sp, err)
	return err
}

// storeID returns the identity of the store behind the log, "" for a
// store that has none.
func (s *Server) storeID() (string, error) {
	if st, ok := s.log.(interface{ ID() (string, error) }); ok {
		id, err := st.ID()
		if err != nil {
			return "", fmt.Errorf("read the store id: %w", err)
		}
		return id, nil
	}
	return "", nil
}

// reachable refuses, with OutOfRange naming the head, a revision further
// past the newest committed one than the allowance: no wait could end.
func (s *Server) reachable(rev uint64, what string) error {
	head, err := s.log.Revision()
	if err != nil {
		return fmt.Errorf("read committed revision: %w", err)
	}
	if rev > head && rev-head > s.opts.RevisionAllowance {
		return status.Errorf(codes.OutOfRange, "%s %d: the newest committed revision is %d (at most %d past it may be asked for)", what, rev, head, s.opts.RevisionAllowance)
	}
	return nil
}

// startPage does what every list and lookup op does first: check the
// page size asked for with limit (a list's or a lookup's), before anything
// waits; decode the page token (which must belong to query) into the id to
// continue after; and wait for the requested consistency. It returns the
// id and the size to serve. Its error is a gRPC status.
func (s *Server) startPage(ctx context.Context, op, query string, req pageRequest, limit func(op string, n uint32) (int, error)) (string, int, error) {
	size, err := limit(op, req.GetPageSize())
	if err != nil {
		return "", 0, s.status(ctx, err)
	}
	after, err := decodeToken(req.GetPageToken(), query)
	if err != nil {
		return "", 0, s.status(ctx, err)
	}
	if err := s.consistent(ctx, req.GetConsistency()); err != nil {
		return "", 0, s.status(ctx, err)
	}
	return after, size, nil
}

// pageRequest is what a list or lookup request says of its page.
type pageRequest interface {
	GetPageSize() uint32
	GetPageToken() string
	GetConsistency() *pb.Consistency
}

func (s *Server) status(ctx context.Context, err error) error { return toStatus(ctx, s.logger, err) }

// MaxMessageBytes is the largest request message the server takes.
func (s *Server) MaxMessageBytes() int { return s.opts.MaxMessageBytes }
