package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// callLog logs every finished call: its service, method, code (and
// error), duration, peer and caller, at the level its code calls for
// (go-grpc-middleware's server levels), except that a decision (an
// AccessService call that succeeded, allowed or denied) is logged at
// debug, so that a busy service does not write a line per check.
//
// It asks the logger first and builds nothing for a level that is off:
// go-grpc-middleware's logging interceptor builds every call's fields
// (and puts them in its context) before its logger can drop them, which
// cost a Check a fifth of canopyd's processor time at the default level.
type callLog struct {
	l      *slog.Logger
	tokens *Tokens
}

// unary logs a unary call when it ends.
func (c callLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	c.finished(ctx, info.FullMethod, "unary", start, err)
	return resp, err
}

// stream logs a streaming call when it ends.
func (c callLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	c.finished(ss.Context(), info.FullMethod, methodKind(info.IsClientStream, info.IsServerStream), start, err)
	return err
}

// finished writes the line of a call to fullMethod (/service/method)
// that began at start and ended with err, if its level is on.
func (c callLog) finished(ctx context.Context, fullMethod, kind string, start time.Time, err error) {
	code := status.Code(err)
	service, method := splitMethod(fullMethod)
	level := slog.Level(logging.DefaultServerCodeToLevel(code))
	if level == slog.LevelInfo && code == codes.OK && service == pb.AccessService_ServiceDesc.ServiceName {
		level = slog.LevelDebug
	}
	if !c.l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("grpc.service", service), slog.String("grpc.method", method), slog.String("grpc.method_type", kind))
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	attrs = append(attrs, slog.String("caller", c.tokens.callerName(ctx)), slog.String("grpc.code", code.String()))
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	attrs = append(attrs, slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000))
	c.l.LogAttrs(ctx, level, "finished call", attrs...)
}
