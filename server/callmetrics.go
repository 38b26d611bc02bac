package server

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// callMetrics are the gRPC server metrics of go-grpc-middleware's
// Prometheus provider, under the same names, labels and help (so that its
// dashboards and alerts work unchanged), kept the way a call finds them
// in nanoseconds: each method's counters are looked up once, when the
// method is registered or first called, not by their label values on
// every call (the provider's interceptor cost a Check about 3 µs).
type callMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	seconds                          *prometheus.HistogramVec
	methods                          children[*methodMetrics]
}

// methodMetrics are one method's metrics.
type methodMetrics struct {
	started, received, sent prometheus.Counter
	handled                 [codes.Unauthenticated + 1]prometheus.Counter // by code
	seconds                 prometheus.Observer
	handledVec              *prometheus.CounterVec // for a code past the known ones
	labels                  []string
}

func newCallMetrics(buckets []float64) *callMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &callMetrics{
		started:  counter("grpc_server_started_total", "Total number of RPCs started on the server.", labels),
		handled:  counter("grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure.", append(labels, "grpc_code")),
		received: counter("grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.", labels),
		sent:     counter("grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.", labels),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: buckets,
		}, labels),
	}
	return m
}

// collectors returns the metrics, to register.
func (m *callMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.started, m.handled, m.received, m.sent, m.seconds}
}

// method returns the metrics of fullMethod (/service/method), of kind
// (methodKind), made on its first use, every code's counter included, so
// that they show as 0 before the first call.
func (m *callMetrics) method(kind, fullMethod string) *methodMetrics {
	if mm, ok := m.methods.get(fullMethod); ok {
		return mm
	}
	service, method := splitMethod(fullMethod)
	l := []string{kind, service, method}
	mm := &methodMetrics{
		started: m.started.WithLabelValues(l...), received: m.received.WithLabelValues(l...), sent: m.sent.WithLabelValues(l...),
		seconds: m.seconds.WithLabelValues(l...), handledVec: m.handled, labels: l,
	}
	for c := range mm.handled {
		mm.handled[c] = m.handled.WithLabelValues(kind, service, method, codes.Code(c).String())
	}
	return m.methods.add(fullMethod, mm)
}

// register makes the metrics of every method g serves.
func (m *callMetrics) register(g *grpc.Server) {
	for service, info := range g.GetServiceInfo() {
		for _, mi := range info.Methods {
			m.method(methodKind(mi.IsClientStream, mi.IsServerStream), "/"+service+"/"+mi.Name)
		}
	}
}

// done counts a call that began at start and ended with err.
func (mm *methodMetrics) done(start time.Time, err error) {
	c := status.Code(err)
	if int(c) < len(mm.handled) {
		mm.handled[c].Inc()
	} else {
		mm.handledVec.WithLabelValues(append(mm.labels, c.String())...).Inc()
	}
	mm.seconds.Observe(time.Since(start).Seconds())
}

// unary counts a unary call: started, its request, its response (when it
// succeeds), its code and how long it took.
func (m *callMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	mm := m.method("unary", info.FullMethod)
	mm.started.Inc()
	mm.received.Inc()
	start := time.Now()
	resp, err := h(ctx, req)
	if err == nil {
		mm.sent.Inc()
	}
	mm.done(start, err)
	return resp, err
}

// stream counts a streaming call and every message it receives and sends.
func (m *callMetrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	mm := m.method(methodKind(info.IsClientStream, info.IsServerStream), info.FullMethod)
	mm.started.Inc()
	start := time.Now()
	err := h(srv, countedStream{ss, mm})
	mm.done(start, err)
	return err
}

// countedStream counts the messages of a stream.
type countedStream struct {
	grpc.ServerStream
	mm *methodMetrics
}

func (s countedStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if err == nil {
		s.mm.sent.Inc()
	}
	return err
}

func (s countedStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.mm.received.Inc()
	}
	return err
}

// splitMethod returns the service and the method of fullMethod
// (/service/method).
func splitMethod(fullMethod string) (service, method string) {
	service, method, _ = strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return service, method
}

// methodKind is the grpc_type of a method: unary, client_stream,
// server_stream or bidi_stream.
func methodKind(clientStream, serverStream bool) string {
	switch {
	case clientStream && serverStream:
		return "bidi_stream"
	case clientStream:
		return "client_stream"
	case serverStream:
		return "server_stream"
	}
	return "unary"
}

// children maps a key (a method, a right) to its metrics, found with no
// lock and no allocation: the map is replaced, never changed, when a key
// is added, which happens a few times in a server's life.
type children[T any] struct {
	m  atomic.Pointer[map[string]T]
	mu sync.Mutex // held to add a key
}

// get returns the metrics of k, if it has them.
func (c *children[T]) get(k string) (T, bool) {
	var v T
	m := c.m.Load()
	if m == nil {
		return v, false
	}
	v, ok := (*m)[k]
	return v, ok
}

// add gives k the metrics v, unless it has some already, and returns
// those k has.
func (c *children[T]) add(k string, v T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if had, ok := c.get(k); ok {
		return had
	}
	next := map[string]T{k: v}
	if old := c.m.Load(); old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	c.m.Store(&next)
	return v
}
