package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// Client is a connection to a Canopy server and its three services. It is
// safe for concurrent use; Close it when done.
type Client struct {
	Directory pb.DirectoryServiceClient
	Access    pb.AccessServiceClient
	Watch     pb.WatchServiceClient
	conn      *grpc.ClientConn
}

// Option configures Dial.
type Option func(*options)

type options struct {
	tls      credentials.TransportCredentials
	token    string
	insecure bool // allow a token over plaintext beyond loopback
	extra    []grpc.DialOption
}

// WithTLS connects over TLS with the given credentials (for example
// credentials.NewTLS with the server's CA and, for mutual TLS, a client
// certificate).
func WithTLS(c credentials.TransportCredentials) Option { return func(o *options) { o.tls = c } }

// WithToken sends token as a bearer token on every call. Over plaintext it
// is refused unless the server is on loopback or AllowInsecureToken is given.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// AllowInsecureToken lets WithToken send its token over plaintext to a
// server that is not on loopback. Use it only on a network you trust.
func AllowInsecureToken() Option { return func(o *options) { o.insecure = true } }

// WithDialOptions adds grpc dial options (interceptors, a custom dialer).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.extra = append(o.extra, opts...) }
}

// bearer is a token sent with every call.
type bearer struct {
	token      string
	requireTLS bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.requireTLS }

// Dial connects to the Canopy server at addr ("host:port"). The
// connection is made lazily, on the first call.
func Dial(addr string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dial := append([]grpc.DialOption(nil), o.extra...)
	if o.tls != nil {
		dial = append(dial, grpc.WithTransportCredentials(o.tls))
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if o.token != "" {
		if o.tls == nil && !o.insecure && !onLoopback(addr) {
			return nil, fmt.Errorf("client: refusing to send a token in plaintext to %s: use WithTLS, or AllowInsecureToken", addr)
		}
		dial = append(dial, grpc.WithPerRPCCredentials(bearer{token: o.token, requireTLS: o.tls != nil}))
	}
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &Client{
		Directory: pb.NewDirectoryServiceClient(conn),
		Access:    pb.NewAccessServiceClient(conn),
		Watch:     pb.NewWatchServiceClient(conn),
		conn:      conn,
	}, nil
}

func onLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Folder names a folder, as a resource, holder or target.
func Folder(id string) *pb.ObjectRef {
	return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, Id: id}
}

// User names a user, as a resource, holder or target.
func User(id string) *pb.ObjectRef {
	return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: id}
}

// Decision is the answer to Check.
type Decision struct {
	Allowed  bool
	Reason   pb.Reason
	Revision uint64
}

// Check asks whether user may exercise right on resource (nil for a
// capability), answered from the server's index as it is.
func (c *Client) Check(ctx context.Context, user, right string, resource *pb.ObjectRef) (Decision, error) {
	r, err := c.Access.Check(ctx, &pb.CheckRequest{User: user, Right: right, Resource: resource})
	if err != nil {
		return Decision{}, err
	}
	return Decision{Allowed: r.GetAllowed(), Reason: r.GetReason(), Revision: r.GetRevision()}, nil
}

// LookupResources yields the ids of every folder or user (kind) that user
// may exercise right on, following page tokens until the end. It stops at
// the first error, which it yields.
func (c *Client) LookupResources(ctx context.Context, user, right string, kind pb.ObjectKind) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		token := ""
		for {
			s, err := c.Access.LookupResources(ctx, &pb.LookupResourcesRequest{User: user, Right: right, Kind: kind, PageToken: token})
			if err != nil {
				yield("", err)
				return
			}
			token = ""
			for {
				m, err := s.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					yield("", err)
					return
				}
				for _, id := range m.GetIds() {
					if !yield(id, nil) {
						return
					}
				}
				token = m.GetNextPageToken()
			}
			if token == "" {
				return
			}
		}
	}
}

// Write applies mutations as one atomic batch and returns its revision.
func (c *Client) Write(ctx context.Context, mutations ...*pb.Mutation) (uint64, error) {
	r, err := c.Directory.Write(ctx, &pb.WriteRequest{Mutations: mutations})
	if err != nil {
		return 0, err
	}
	return r.GetRevision(), nil
}

// WatchAccess yields user's effective access as the server streams it:
// first everything the user has, then each change, with the mutation that
// caused it, until ctx ends or the stream fails; it yields the error and
// stops. Reconnecting starts again from the whole access.
func (c *Client) WatchAccess(ctx context.Context, user string) iter.Seq2[*pb.WatchAccessResponse, error] {
	return func(yield func(*pb.WatchAccessResponse, error) bool) {
		s, err := c.Watch.WatchAccess(ctx, &pb.WatchAccessRequest{User: user})
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			m, err := s.Recv()
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}
