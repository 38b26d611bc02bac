package client

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// Client is a connection to a Canopy server and its three services. It is
// safe for concurrent use; Close it when done.
//
// The typed methods (Check, Write, LookupResources, Watch, ...) retry what
// is safe to retry and remember the newest revision they have seen; the
// generated service clients are there too, for anything they do not cover.
type Client struct {
	DirectoryService pb.DirectoryServiceClient
	AccessService    pb.AccessServiceClient
	WatchService     pb.WatchServiceClient

	conn  *grpc.ClientConn
	retry Retry
	seen  atomic.Uint64 // the newest revision written or read
}

// Option configures Dial.
type Option func(*options)

type options struct {
	tls      credentials.TransportCredentials
	token    string
	insecure bool // allow a token over plaintext beyond loopback
	retry    Retry
	extra    []grpc.DialOption
}

// Retry says how calls that are safe to repeat are retried when the server
// is unavailable or asks the caller to slow down (codes Unavailable and
// ResourceExhausted): up to Attempts tries in all, waiting Backoff before
// the second, doubling each time up to MaxBackoff. Reads and lookups are
// safe; a Write only when it carries a revision precondition, so that a
// repeat of a write that did commit fails instead of applying twice.
type Retry struct {
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// DefaultRetry is what Dial uses unless given WithRetry: four tries over
// about a second and a half.
var DefaultRetry = Retry{Attempts: 4, Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}

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

// WithRetry replaces DefaultRetry; Retry{Attempts: 1} turns retries off.
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

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
	o := options{retry: DefaultRetry}
	for _, opt := range opts {
		opt(&o)
	}
	if o.retry.Attempts < 1 {
		o.retry.Attempts = 1
	}
	c := &Client{retry: o.retry}
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
	dial = append(dial, grpc.WithChainUnaryInterceptor(c.retrying))
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c.conn = conn
	c.DirectoryService = pb.NewDirectoryServiceClient(conn)
	c.AccessService = pb.NewAccessServiceClient(conn)
	c.WatchService = pb.NewWatchServiceClient(conn)
	return c, nil
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

// Conn is the client's connection, for other services on the same
// server (grpc.health.v1, reflection).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Revision returns the newest revision this client has written or seen in
// an answer: ask for reads at least this fresh with Fresh.
func (c *Client) Revision() uint64 { return c.seen.Load() }

// saw records a revision the server answered with.
func (c *Client) saw(rev uint64) {
	for {
		cur := c.seen.Load()
		if rev <= cur || c.seen.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// retryable reports whether a failed call may be tried again.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}

// safeToRetry reports whether repeating the request cannot apply a change
// twice: every call but Write and Import, and a Write whose revision
// precondition makes a second commit fail.
func safeToRetry(method string, req any) bool {
	switch method {
	case pb.DirectoryService_Write_FullMethodName:
		w, ok := req.(*pb.WriteRequest)
		return ok && w.GetPreconditions().GetRevision() != 0
	case pb.DirectoryService_Import_FullMethodName:
		return false
	}
	return true
}

// retrying is the unary interceptor that retries safe calls.
func (c *Client) retrying(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if !safeToRetry(method, req) {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	return c.withRetry(ctx, func() error { return invoker(ctx, method, req, reply, cc, opts...) })
}

// withRetry calls fn until it succeeds, fails in a way not worth
// retrying, runs out of attempts, or ctx ends.
func (c *Client) withRetry(ctx context.Context, fn func() error) error {
	wait := c.retry.Backoff
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= c.retry.Attempts || !retryable(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		if wait *= 2; wait > c.retry.MaxBackoff {
			wait = c.retry.MaxBackoff
		}
	}
}

// Folder names a folder, as a resource, holder or target.
func Folder(id string) *pb.ObjectRef {
	return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, Id: id}
}

// User names a user, as a resource, holder or target.
func User(id string) *pb.ObjectRef {
	return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: id}
}

// ReadOption says how fresh a read must be, or, for the directory's
// gets and lists, on whose behalf it is made (ReadAs). Without one, the
// server answers from its index as it is (minimize latency).
type ReadOption func(c *Client, o *readOptions)

// readOptions are a read's options once applied.
type readOptions struct {
	cons   *pb.Consistency
	asUser string
}

// AtLeast asks for an answer at revision rev or later: the server waits,
// within the call's deadline, until its index has reached it.
func AtLeast(rev uint64) ReadOption {
	return func(_ *Client, o *readOptions) {
		o.cons = &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: rev}}
	}
}

// Fresh asks for an answer at least as new as anything this client has
// written or read (Client.Revision): read-your-writes.
func Fresh() ReadOption {
	return func(c *Client, o *readOptions) { AtLeast(c.Revision())(c, o) }
}

// FullyConsistent asks for an answer at the newest committed revision.
func FullyConsistent() ReadOption {
	return func(_ *Client, o *readOptions) {
		o.cons = &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}
	}
}

// ReadAs reads the directory on behalf of user: GetFolder and GetUser
// are refused (PermissionDenied) for what the user may not read, and
// Folders, Users, Grants and Locks yield only what the user may read.
// The access calls (Check, lookups, EffectiveAccess) already name their
// user, and take no notice of it.
func ReadAs(user string) ReadOption {
	return func(_ *Client, o *readOptions) { o.asUser = user }
}

// options applies read options in order; for freshness the last wins.
func (c *Client) options(opts []ReadOption) readOptions {
	var o readOptions
	for _, f := range opts {
		f(c, &o)
	}
	return o
}

// consistency turns read options into the request field; the last wins.
func (c *Client) consistency(opts []ReadOption) *pb.Consistency {
	return c.options(opts).cons
}
