package server

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// slogAdapter lets the middleware's logging interceptor write to slog.
func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

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
// order go-grpc-middleware's example server uses: logging of every call
// (method, code, duration) outside, recovery innermost so that a panic is
// logged and counted like any other failed call.
func (s *Server) ServerOptions() []grpc.ServerOption {
	rpcLog := s.logger.With("component", "grpc")
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	rec := recovery.WithRecoveryHandlerContext(recoverPanic(rpcLog))
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(
			logging.UnaryServerInterceptor(slogAdapter(rpcLog), logOpts...),
			recovery.UnaryServerInterceptor(rec),
		),
		grpc.ChainStreamInterceptor(
			logging.StreamServerInterceptor(slogAdapter(rpcLog), logOpts...),
			recovery.StreamServerInterceptor(rec),
		),
	}
}
