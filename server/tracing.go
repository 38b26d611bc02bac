package server

import (
	"context"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"
)

// Tracing: with Options.TracerProvider set, every call but health gets a
// span (otelgrpc's stats handler, continuing the caller's trace from its
// traceparent), and inside it the steps that take time get their own:
// canopy.write (validation, the wait for the commit group, the commit),
// canopy.store.append (the store's transaction and fsync, in the trace of
// the first write of the group), canopy.wait_for_revision, canopy.lookup,
// canopy.watch.replay and canopy.history. Spans carry ids, counts and
// revisions; never a token, never a request's content.

// tracerName names the instrumentation of the spans Canopy makes.
const tracerName = "github.com/canopy-authz/canopy/server"

// Propagator is how a trace context travels with a call: W3C traceparent
// and tracestate, and baggage.
var Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// tracer returns the server's tracer, a no-op one without tracing.
func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return noop.NewTracerProvider().Tracer(tracerName)
	}
	return tp.Tracer(tracerName)
}

// statsHandler is the gRPC server's span maker, none without tracing.
func (s *Server) statsHandler() []grpc.ServerOption {
	if s.opts.TracerProvider == nil {
		return nil
	}
	notHealth := func(info *stats.RPCTagInfo) bool {
		return info.FullMethodName != "/"+healthpb.Health_ServiceDesc.ServiceName+"/Check" &&
			info.FullMethodName != "/"+healthpb.Health_ServiceDesc.ServiceName+"/Watch"
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(s.opts.TracerProvider), otelgrpc.WithPropagators(Propagator), otelgrpc.WithFilter(notHealth)))}
}

// span starts a span of the server's under ctx's; end it with endSpan.
func (s *Server) span(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan ends sp, marking it failed when err is not nil.
func endSpan(sp trace.Span, err error) {
	if err != nil {
		sp.SetStatus(codes.Error, err.Error())
	}
	sp.End()
}
