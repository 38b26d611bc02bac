package server

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/validator"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// recoverPanic turns a panic in a handler into Internal, with no panic text
// for the caller, and logs it with its stack; the server lives on. (The
// middleware's default handler would put the panic value in the error.)
func recoverPanic(l *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		l.ErrorContext(ctx, "recovered from panic", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	}
}

// ServerOptions returns the interceptor chains for the gRPC server, in the
// order go-grpc-middleware's example server uses: metrics outermost, then
// logging of every call (method, code, duration, caller), authentication
// the per-caller rate limit and stream limit (none for health), the refusal of
// requests that could not be decoded (codec.go), request validation (the
// Validate methods of proto/canopy/v1/validate.go), and recovery innermost
// so that a panic is logged and counted like any other failed call.
func (s *Server) ServerOptions() []grpc.ServerOption {
	rpcLog := s.logger.With("component", "grpc")
	tokens := s.opts.Tokens
	calls := callLog{rpcLog, tokens}
	rec := recovery.WithRecoveryHandlerContext(recoverPanic(rpcLog))
	unary, stream := s.opts.Metrics.interceptors()
	if tokens != nil {
		// First: everything after it reads the caller it works out.
		unary = append([]grpc.UnaryServerInterceptor{tokens.identify}, unary...)
		stream = append([]grpc.StreamServerInterceptor{tokens.identifyStream}, stream...)
	}
	unary = append(unary, calls.unary)
	stream = append(stream, calls.stream)
	// Health answers without a token and without a limit, so probes pass.
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName
	})
	// Until the index is loaded, only health answers.
	unary = append(unary, selector.UnaryServerInterceptor(s.gateUnary, notHealth))
	stream = append(stream, selector.StreamServerInterceptor(s.gateStream, notHealth))
	if tokens != nil {
		unary = append(unary, selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(tokens.authenticate), notHealth))
		stream = append(stream, selector.StreamServerInterceptor(auth.StreamServerInterceptor(tokens.authenticate), notHealth))
	}
	if rl := s.opts.RateLimit; rl.PerSecond > 0 {
		lim := newLimiter(rl, tokens)
		unary = append(unary, selector.UnaryServerInterceptor(ratelimit.UnaryServerInterceptor(lim), notHealth))
		stream = append(stream, selector.StreamServerInterceptor(ratelimit.StreamServerInterceptor(lim), notHealth))
	}
	stream = append(stream, selector.StreamServerInterceptor(newStreamLimit(s.opts.MaxStreams, tokens).intercept, notHealth))
	unary = append(unary, selector.UnaryServerInterceptor(s.deadlineUnary, notHealth))
	stream = append(stream, selector.StreamServerInterceptor(s.deadlineStream, selector.MatchFunc(isLookup)))
	unary = append(unary, rejectMalformed, validator.UnaryServerInterceptor(), recovery.UnaryServerInterceptor(rec))
	stream = append(stream, rejectMalformedStream, validator.StreamServerInterceptor(), recovery.StreamServerInterceptor(rec))
	return append(s.statsHandler(), grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...), grpc.ForceServerCodecV2(newCodec()),
		grpc.MaxRecvMsgSize(s.opts.MaxMessageBytes),
		// A call runs on one of a few long-lived goroutines whose stacks
		// have grown already, not on a new one that grows its stack each
		// time (a seventh of canopyd's processor time on Check); when all
		// are busy (long streams), grpc-go starts a goroutine as before.
		grpc.NumStreamWorkers(uint32(16*runtime.GOMAXPROCS(0))))
}

// bounded returns ctx bounded by the server's request deadline, and
// whether that deadline is the one that holds (the caller's own is
// later, or there is none).
func (s *Server) bounded(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	limit := time.Now().Add(s.opts.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && !d.After(limit) {
		return ctx, func() {}, false
	}
	b := &boundedCtx{Context: ctx, limit: limit}
	return b, b.release, true
}

// boundedCtx is a call's context bounded by the request deadline, whose
// timer starts only when something waits on it (Done) or asks whether it
// has passed (Err). Most calls, a check, do neither: a timer of their own
// cost a Check 2 µs of the server's processor time.
type boundedCtx struct {
	context.Context           // the call's own
	limit           time.Time // the request deadline
	once            sync.Once
	timed           context.Context // the call's, with the deadline's timer
	cancel          context.CancelFunc
}

// Deadline returns the request deadline.
func (b *boundedCtx) Deadline() (time.Time, bool) { return b.limit, true }

// Done starts the timer, if it has not started, and returns its channel.
func (b *boundedCtx) Done() <-chan struct{} {
	b.once.Do(b.start)
	return b.timed.Done()
}

// Err starts the timer, if it has not started, and returns its error.
func (b *boundedCtx) Err() error {
	b.once.Do(b.start)
	return b.timed.Err()
}

func (b *boundedCtx) start() { b.timed, b.cancel = context.WithDeadline(b.Context, b.limit) }

// release stops the timer, if it started.
func (b *boundedCtx) release() {
	b.once.Do(func() {})
	if b.cancel != nil {
		b.cancel()
	}
}

// pastDeadline is the error of a call that ran past the server's request
// deadline.
func (s *Server) pastDeadline(method string) error {
	return status.Errorf(codes.DeadlineExceeded, "%s ran past the request deadline of %v (the server's limit)", method, s.opts.RequestTimeout)
}

// deadlineUnary bounds a unary call by the request deadline.
func (s *Server) deadlineUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, cancel, ours := s.bounded(ctx)
	defer cancel()
	resp, err := h(ctx, req)
	if err != nil && ours && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, s.pastDeadline(info.FullMethod)
	}
	return resp, err
}

// isLookup reports whether a streaming call is a lookup, the streams the
// request deadline bounds (a lookup near its deadline ends early with a
// page token).
func isLookup(_ context.Context, c interceptors.CallMeta) bool {
	return c.Service == pb.AccessService_ServiceDesc.ServiceName
}

// deadlineStream bounds a lookup stream by the request deadline.
func (s *Server) deadlineStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, cancel, ours := s.bounded(ss.Context())
	defer cancel()
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = ctx
	err := h(srv, w)
	if err != nil && ours && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return s.pastDeadline(info.FullMethod)
	}
	return err
}

var errLoading = status.Error(codes.Unavailable, "the index is still loading; retry shortly")

func (s *Server) gateUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if !s.loaded.Load() {
		return nil, errLoading
	}
	return h(ctx, req)
}

func (s *Server) gateStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !s.loaded.Load() {
		return errLoading
	}
	return h(srv, ss)
}
