package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/yaml"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// Scope is what a token may do.
type Scope string

// The scopes. Admin includes every other.
const (
	ScopeCheck Scope = "check" // AccessService
	ScopeRead  Scope = "read"  // DirectoryService reads and WatchService
	ScopeWrite Scope = "write" // DirectoryService.Write and Import
	ScopeAdmin Scope = "admin" // everything
	// ScopeAct is for a service that acts for its users (a console's
	// backend): Write only with as_user, so every change it makes is
	// one the named user may make.
	ScopeAct Scope = "act"
)

// Caller is an authenticated client: a name for logs and the change log,
// its scopes, and the organisations it is confined to (none: all).
type Caller struct {
	Name   string
	Scopes []Scope
	// Organisations are the root folder ids of the organisations the
	// caller's every call is confined to; empty means every organisation.
	Organisations []string
	orgs          graph.Orgs // Organisations as a set; nil when empty
}

// Tokens maps bearer tokens, by their SHA-256, to callers. The file never
// holds a token itself, only its hash. Reload replaces the whole set at
// once; calls in flight keep the caller they were authenticated as.
type Tokens struct {
	byHash   atomic.Pointer[map[string]Caller] // replaced whole, never changed
	failures failures
}

// failures throttles failed authentication per peer host: each failure
// spends one of a host's failBurst attempts, which come back at failRate a
// second; a host with none left is refused before its token is looked at,
// so guessing gains nothing.
type failures struct {
	mu     sync.RWMutex // guards byHost
	byHost map[string]*rate.Limiter
	hosts  atomic.Int32 // len(byHost): none means no lock on the call path
	// refill is how many attempts a second come back (0: failRate); a
	// test sets it before the server starts.
	refill rate.Limit
}

// The failed-authentication budget of a peer host.
const (
	failRate  = 1  // attempts a second that come back
	failBurst = 20 // attempts a host may fail in a row
)

// exhausted reports whether the peer of ctx has no failed attempt left,
// and names it. While no peer has failed, it costs one atomic load.
func (f *failures) exhausted(ctx context.Context) (string, bool) {
	if f.hosts.Load() == 0 {
		return "", false
	}
	host := peerHost(ctx)
	f.mu.RLock()
	defer f.mu.RUnlock()
	l := f.byHost[host]
	return host, l != nil && l.Tokens() < 1
}

// fail spends one of the attempts of the peer of ctx.
func (f *failures) fail(ctx context.Context) {
	host := peerHost(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byHost == nil || len(f.byHost) >= maxLimited {
		f.byHost = map[string]*rate.Limiter{}
	}
	l := f.byHost[host]
	if l == nil {
		refill := f.refill
		if refill == 0 {
			refill = failRate
		}
		l = rate.NewLimiter(refill, failBurst)
		f.byHost[host] = l
	}
	f.hosts.Store(int32(len(f.byHost)))
	l.Allow()
}

// tokensFile is the YAML of a tokens file:
//
//	tokens:
//	  - name: billing-service
//	    sha256: 9f86d0...   # printf %s "$TOKEN" | sha256sum
//	    scopes: [check]
//	    organisations: [atlas]   # optional: confined to these
type tokensFile struct {
	Tokens []struct {
		Name          string   `json:"name"`
		SHA256        string   `json:"sha256"`
		Scopes        []string `json:"scopes"`
		Organisations []string `json:"organisations"`
	} `json:"tokens"`
}

// ParseTokens reads a tokens file.
func ParseTokens(data []byte) (*Tokens, error) {
	m, err := parseTokens(data)
	if err != nil {
		return nil, err
	}
	t := &Tokens{}
	t.byHash.Store(&m)
	return t, nil
}

// parseTokens reads a tokens file into callers by token hash.
func parseTokens(data []byte) (map[string]Caller, error) {
	var f tokensFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	byHash := map[string]Caller{}
	for i, e := range f.Tokens {
		h := strings.ToLower(e.SHA256)
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("tokens: entry %d (%q): sha256 must be 64 hex digits", i, e.Name)
		}
		if e.Name == "" {
			return nil, fmt.Errorf("tokens: entry %d has no name", i)
		}
		if _, dup := byHash[h]; dup {
			return nil, fmt.Errorf("tokens: entry %d (%q): the same token is listed twice", i, e.Name)
		}
		c := Caller{Name: e.Name}
		for _, o := range e.Organisations {
			if o == "" {
				return nil, fmt.Errorf("tokens: entry %d (%q): an empty organisation id", i, e.Name)
			}
			c.Organisations = append(c.Organisations, o)
		}
		if len(c.Organisations) > 0 {
			slices.Sort(c.Organisations)
			c.Organisations = slices.Compact(c.Organisations)
			c.orgs = graph.OrgsOf(c.Organisations...)
		}
		for _, s := range e.Scopes {
			switch sc := Scope(s); sc {
			case ScopeCheck, ScopeRead, ScopeWrite, ScopeAdmin, ScopeAct:
				c.Scopes = append(c.Scopes, sc)
			default:
				return nil, fmt.Errorf("tokens: entry %d (%q): unknown scope %q (check, read, write, admin, act)", i, e.Name, s)
			}
		}
		byHash[h] = c
	}
	return byHash, nil
}

// LoadTokens reads the tokens file at path.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return ParseTokens(data)
}

// Reload replaces the tokens with those of the file at path, all at once:
// a token no longer listed stops working with the next call, a new one
// works from then on. When the file cannot be read or parsed the tokens
// stay as they were and the error says why.
func (t *Tokens) Reload(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	m, err := parseTokens(data)
	if err != nil {
		return err
	}
	t.byHash.Store(&m)
	return nil
}

// Len returns how many tokens there are.
func (t *Tokens) Len() int { return len(*t.byHash.Load()) }

// lookup returns the caller a bearer token belongs to.
func (t *Tokens) lookup(token string) (Caller, bool) {
	sum := sha256.Sum256([]byte(token))
	c, ok := (*t.byHash.Load())[hex.EncodeToString(sum[:])]
	return c, ok
}

// requiredScope returns the scope a method needs ("" for any valid token).
func requiredScope(fullMethod string) Scope {
	svc, method := splitMethod(fullMethod)
	switch svc {
	case pb.AccessService_ServiceDesc.ServiceName:
		return ScopeCheck
	case pb.WatchService_ServiceDesc.ServiceName:
		return ScopeRead
	case pb.DirectoryService_ServiceDesc.ServiceName:
		switch method {
		case "Write", "Import":
			return ScopeWrite
		case "Backup":
			return ScopeAdmin
		}
		return ScopeRead
	}
	return ""
}

func (c Caller) may(s Scope) bool {
	return s == "" || slices.Contains(c.Scopes, ScopeAdmin) || slices.Contains(c.Scopes, s)
}

// identity is whom a call's bearer token names: worked out once per call,
// by the first interceptor (identify), for every later one that needs it
// (logging, authentication, rate and stream limits), so that the token is
// hashed once, not once for each.
type identity struct {
	err    error // reading the token: none sent, or malformed
	caller Caller
	known  bool // the token is one of the tokens file's
}

// identityKey carries a call's *identity in its context.
type identityKey struct{}

// identityOf returns the identity of the call of ctx, worked out now when
// identify has not run.
func (t *Tokens) identityOf(ctx context.Context) *identity {
	if id, ok := ctx.Value(identityKey{}).(*identity); ok {
		return id
	}
	id := &identity{}
	var token string
	if token, id.err = auth.AuthFromMD(ctx, "bearer"); id.err == nil {
		id.caller, id.known = t.lookup(token)
	}
	return id
}

// identify is the first interceptor of a server with tokens: it puts the
// call's identity in its context.
func (t *Tokens) identify(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(context.WithValue(ctx, identityKey{}, t.identityOf(ctx)), req)
}

// identifyStream is identify for streams.
func (t *Tokens) identifyStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	w := middleware.WrapServerStream(ss)
	w.WrappedContext = context.WithValue(ss.Context(), identityKey{}, t.identityOf(ss.Context()))
	return h(srv, w)
}

// authenticate checks the call's bearer token and scope and puts the
// caller in the context.
func (t *Tokens) authenticate(ctx context.Context) (context.Context, error) {
	if host, out := t.failures.exhausted(ctx); out {
		return nil, status.Errorf(codes.ResourceExhausted, "too many failed authentications from %s: wait a few seconds", host)
	}
	id := t.identityOf(ctx)
	if id.err != nil {
		t.failures.fail(ctx)
		return nil, id.err
	}
	if !id.known {
		t.failures.fail(ctx)
		return nil, status.Error(codes.Unauthenticated, "unknown bearer token")
	}
	c := &id.caller
	method, _ := grpc.Method(ctx)
	// A caller that acts for users may call Write and the directory's
	// reads; the handler holds it to naming the user (mustActFor).
	if need := requiredScope(method); !c.may(need) && !(actsFor(method) && c.may(ScopeAct)) {
		return nil, status.Errorf(codes.PermissionDenied, "caller %q lacks the %q scope for %s", c.Name, need, method)
	}
	if c.orgs != nil && wholeService(method) {
		return nil, status.Errorf(codes.PermissionDenied, "caller %q is confined to organisations %v; %s copies every organisation", c.Name, c.Organisations, method)
	}
	return context.WithValue(ctx, callerKey{}, c), nil
}

// wholeService reports whether a method reads the whole store as it is,
// beyond any organisation: the online backup.
func wholeService(fullMethod string) bool {
	return fullMethod == pb.DirectoryService_Backup_FullMethodName
}

// callerKey carries the authenticated *Caller in a context.
type callerKey struct{}

// callerOf returns the authenticated caller of ctx, nil without tokens.
func callerOf(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// callerName names the caller of ctx for logs and rate limits: its
// token's name, "unknown-token" for a token the server does not know, or,
// without a token, peerIdentity. Never the token. t may be nil (no
// tokens file).
func (t *Tokens) callerName(ctx context.Context) string {
	if t != nil {
		if id := t.identityOf(ctx); id.err == nil {
			if id.known {
				return id.caller.Name
			}
			return "unknown-token"
		}
	}
	return peerIdentity(ctx)
}

// peerIdentity names a caller with no token: the subject of its verified
// client certificate (mutual TLS), else "anonymous@" and the peer's host,
// without the port, which changes with every connection.
func peerIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "anonymous"
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		if sub := ClientSubject(&info.State); sub != "" {
			return sub
		}
	}
	if p.Addr != nil && p.Addr.Network() == InProcessNetwork {
		if sub := metadata.ValueFromIncomingContext(ctx, ClientSubjectKey); len(sub) > 0 && sub[len(sub)-1] != "" {
			return sub[len(sub)-1]
		}
	}
	return "anonymous@" + peerHost(ctx)
}

// ClientSubject is the subject of a connection's verified client
// certificate (mutual TLS), "" without one.
func ClientSubject(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	return cs.VerifiedChains[0][0].Subject.String()
}

// ClientSubjectKey is the metadata key under which the HTTP gateway, over
// its in-process connection, passes on the subject of its HTTP client's
// verified certificate. The server believes it from that connection only;
// the gateway maps no HTTP header to it.
const ClientSubjectKey = "canopy-client-subject"

// peerHost is the peer's address without its port ("" when unknown). A
// call through the HTTP gateway (server/gateway), which reaches the server
// over an in-process connection, is its HTTP client's: the gateway adds
// that address last to x-forwarded-for, after whatever the client sent.
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if p.Addr.Network() == InProcessNetwork {
		if fwd := metadata.ValueFromIncomingContext(ctx, "x-forwarded-for"); len(fwd) > 0 {
			hops := strings.Split(fwd[len(fwd)-1], ",")
			return strings.TrimSpace(hops[len(hops)-1])
		}
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}

// InProcessNetwork is the network of in-process connections (grpc-go's
// bufconn), the HTTP gateway's way in.
const InProcessNetwork = "bufconn"

// actsFor reports whether a method may be called on behalf of a user
// (naming as_user): Write and the directory's gets and lists.
func actsFor(fullMethod string) bool {
	switch fullMethod {
	case pb.DirectoryService_Write_FullMethodName,
		pb.DirectoryService_GetFolder_FullMethodName, pb.DirectoryService_ListFolders_FullMethodName,
		pb.DirectoryService_GetUser_FullMethodName, pb.DirectoryService_ListUsers_FullMethodName,
		pb.DirectoryService_ListGrants_FullMethodName, pb.DirectoryService_ListLocks_FullMethodName:
		return true
	}
	return false
}

// mustActFor refuses a call that names no user from a caller whose only
// right to it is to act for users (ScopeAct): scope is what the call
// needs otherwise (write, read).
func mustActFor(ctx context.Context, asUser string, scope Scope) error {
	c := callerOf(ctx)
	if c == nil || asUser != "" || c.may(scope) {
		return nil
	}
	verb := map[Scope]string{ScopeWrite: "writes", ScopeRead: "reads"}[scope]
	return status.Errorf(codes.PermissionDenied, "caller %q %s only on behalf of a user (the %q scope): name the user in as_user", c.Name, verb, ScopeAct)
}
