// Package gateway serves canopy.v1 as HTTP/JSON: grpc-gateway's handlers,
// generated from proto/canopy/v1/http.yaml, in front of a gRPC server of
// the gateway's own that has the same services and interceptors as the
// public one (authentication, scopes, limits, validation, metrics, logs),
// reached over an in-process connection. So a call over HTTP is the same
// call as over gRPC, refused and counted the same way; only the transport
// differs, and gRPC's codes become HTTP statuses in grpc-gateway's usual
// way (NOT_FOUND 404, INVALID_ARGUMENT 400, UNAUTHENTICATED 401,
// PERMISSION_DENIED 403, RESOURCE_EXHAUSTED 429, ...), the body being the
// status as JSON with its message. A stream answers one JSON object a
// line. The OpenAPI document is served at /openapi.json.
package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
)

// Options configure a Gateway.
type Options struct {
	// MaxBodyBytes is the largest request body taken (Import's stream
	// aside, whose messages are bounded one by one); zero means four
	// times the server's largest message, room for its JSON.
	MaxBodyBytes int64
	// ServerOptions go before the API's own on the gateway's gRPC server
	// (tracing, fault injection in tests).
	ServerOptions []grpc.ServerOption
}

// Gateway is the HTTP/JSON door to one server. Serve Handler with an
// http.Server on a listener of its own; Close it after.
type Gateway struct {
	// Handler answers the HTTP/JSON API and /openapi.json.
	Handler http.Handler
	grpc    *grpc.Server
	conn    *grpc.ClientConn
}

// New starts the gateway to api: its gRPC server on an in-process
// listener, and the client the handlers call it with.
func New(ctx context.Context, api *server.Server, opts Options) (*Gateway, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 * int64(api.MaxMessageBytes())
	}
	lis := bufconn.Listen(1 << 20)
	g := &Gateway{grpc: grpc.NewServer(append(opts.ServerOptions, api.ServerOptions()...)...)}
	api.Register(g.grpc)
	go g.grpc.Serve(lis)
	conn, err := grpc.NewClient("passthrough:///"+server.InProcessNetwork,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The server's own limits apply; the gateway adds none.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30), grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		g.grpc.Stop()
		return nil, fmt.Errorf("gateway: connect to the server: %w", err)
	}
	g.conn = conn
	mux := runtime.NewServeMux(
		// The API's own field names and enum values, every field given.
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{},
		}),
		// A caller's trace goes on through the gateway (W3C trace context).
		// Beyond it only the permanent HTTP headers pass, prefixed, so no
		// header can pass for a client certificate's subject.
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			switch k := strings.ToLower(key); k {
			case "traceparent", "tracestate", "baggage":
				return k, true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		// The HTTP client's verified certificate (mutual TLS) names it
		// as it would over gRPC.
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			if sub := server.ClientSubject(r.TLS); sub != "" {
				return metadata.Pairs(server.ClientSubjectKey, sub)
			}
			return nil
		}),
	)
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		pb.RegisterAccessServiceHandler, pb.RegisterDirectoryServiceHandler, pb.RegisterWatchServiceHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			g.Close()
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	g.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openapi.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(pb.OpenAPI)
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/import") {
			r.Body = http.MaxBytesReader(w, r.Body, opts.MaxBodyBytes)
		}
		mux.ServeHTTP(w, r)
	})
	return g, nil
}

// Close ends the gateway's calls and its gRPC server.
func (g *Gateway) Close() {
	g.conn.Close()
	g.grpc.Stop()
}
