package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

func hashOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func testTokens(t testing.TB) *Tokens {
	t.Helper()
	var file string
	for _, s := range []string{"check", "read", "write", "admin", "act"} {
		file += fmt.Sprintf("  - name: %s-caller\n    sha256: %s\n    scopes: [%s]\n", s, hashOf(s+"-token"), s)
	}
	tokens, err := ParseTokens([]byte("tokens:\n" + file))
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// TestAuthMatrix: every scope against every kind of call, no token, and a
// token nobody issued.
func TestAuthMatrix(t *testing.T) {
	ts := startServerWith(t, testTokens(t))
	as := func(token string) context.Context {
		ctx := ctxT(t)
		if token == "" {
			return ctx
		}
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	folder := &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "x"}}}
	calls := map[string]func(ctx context.Context) error{
		"check": func(ctx context.Context) error {
			_, err := ts.acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "read"})
			return err
		},
		"read": func(ctx context.Context) error {
			_, err := ts.dir.ListGrants(ctx, &pb.ListGrantsRequest{})
			return err
		},
		"watch": func(ctx context.Context) error {
			s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 1})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
		"backup": func(ctx context.Context) error {
			s, err := ts.dir.Backup(ctx, &pb.BackupRequest{})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
		"write": func(ctx context.Context) error {
			_, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{folder}})
			if status.Code(err) == codes.AlreadyExists {
				return nil // allowed in; the folder was made by an earlier case
			}
			return err
		},
	}
	allowed := map[string][]string{
		"check-token": {"check"},
		"read-token":  {"read", "watch"},
		"write-token": {"write"},
		"admin-token": {"check", "read", "watch", "write", "backup"},
		"act-token":   {}, // it writes only on behalf of a user (below)
	}
	for token, ok := range allowed {
		for call, do := range calls {
			err := do(as(token))
			want := codes.PermissionDenied
			for _, c := range ok {
				if c == call {
					want = codes.OK
				}
			}
			if status.Code(err) != want {
				t.Errorf("%s calling %s: %v, want %v", token, call, err, want)
			}
		}
	}
	for _, token := range []string{"", "forged-token"} {
		for call, do := range calls {
			if err := do(as(token)); status.Code(err) != codes.Unauthenticated {
				t.Errorf("token %q calling %s: %v, want Unauthenticated", token, call, err)
			}
		}
	}
	// Health needs no token.
	if _, err := healthpb.NewHealthClient(ts.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health without a token: %v", err)
	}
	// A token that acts for users writes what the user may, and only
	// when it names the user.
	if _, err := ts.dir.Write(as("admin-token"), &pb.WriteRequest{Mutations: []*pb.Mutation{
		MutationToPB(graph.Mutation{CreateFolder: &graph.Folder{ID: "org"}}),
		MutationToPB(graph.Mutation{CreateUser: &graph.User{ID: "boss", Class: "staff", Home: "org"}}),
		MutationToPB(graph.Mutation{AddGrant: &graph.Grant{ID: "boss-edit", Holder: graph.UserRef("boss"), Target: graph.FolderRef("org"), Rights: []string{"edit"}}}),
	}}); err != nil {
		t.Fatal(err)
	}
	sub := &pb.WriteRequest{AsUser: "boss", Mutations: []*pb.Mutation{MutationToPB(graph.Mutation{CreateFolder: &graph.Folder{ID: "team", Parent: "org"}})}}
	if _, err := ts.dir.Write(as("act-token"), sub); err != nil {
		t.Fatalf("acting for a user who may: %v", err)
	}
	sub.AsUser = ""
	if _, err := ts.dir.Write(as("act-token"), sub); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "on behalf of a user") {
		t.Fatalf("acting for nobody: %v", err)
	}
	// It reads what the user may read, and only when it names the user.
	if l, err := ts.dir.ListFolders(as("act-token"), &pb.ListFoldersRequest{AsUser: "boss", Subtree: true}); err != nil || len(l.GetFolders()) != 2 {
		t.Fatalf("reading for a user: %v, %v; want org and team", l, err)
	}
	if _, err := ts.dir.ListFolders(as("act-token"), &pb.ListFoldersRequest{Subtree: true}); status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "reads only on behalf of a user") {
		t.Fatalf("reading for nobody: %v", err)
	}
	if _, err := ts.dir.GetCatalogue(as("act-token"), &pb.GetCatalogueRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("the catalogue, which is read for nobody: %v", err)
	}
	// The writer's name, not its token, is the actor in the change log.
	s, err := ts.watch.Watch(as("admin-token"), &pb.WatchRequest{FromRevision: 2})
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.Recv()
	if err != nil || m.GetActor() != "write-caller" && m.GetActor() != "admin-caller" {
		t.Fatalf("actor of the write: %v, %v", m.GetActor(), err)
	}
}

func TestParseTokensRefuses(t *testing.T) {
	for _, bad := range []string{
		"tokens: [{name: a, sha256: abc, scopes: [check]}]",
		"tokens: [{name: a, sha256: " + hashOf("x") + ", scopes: [fly]}]",
		"tokens: [{sha256: " + hashOf("x") + ", scopes: [check]}]",
		"tokens: [{name: a, sha256: " + hashOf("x") + "}, {name: b, sha256: " + hashOf("x") + "}]",
		"tokenz: []",
		"tokens: [{name: a, sha256: " + hashOf("x") + ", organisations: [atlas, '']}]",
	} {
		if _, err := ParseTokens([]byte(bad)); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

// FuzzParseTokens: any input parses or is refused, never a panic, and a
// parsed file authenticates exactly the hashes it lists.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("tokens:\n  - name: a\n    sha256: " + hashOf("t") + "\n    scopes: [check, admin]\n"))
	f.Add([]byte("tokens: []"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tokens, err := ParseTokens(data)
		if err != nil {
			return
		}
		if _, ok := tokens.lookup("surely-not-a-listed-token"); ok && tokens.Len() < 1 {
			t.Fatal("an empty file authenticated a token")
		}
	})
}

func TestRequiredScopes(t *testing.T) {
	for method, want := range map[string]Scope{
		"/canopy.v1.AccessService/Check":                            ScopeCheck,
		"/canopy.v1.AccessService/LookupResources":                  ScopeCheck,
		"/canopy.v1.DirectoryService/Write":                         ScopeWrite,
		"/canopy.v1.DirectoryService/Import":                        ScopeWrite,
		"/canopy.v1.DirectoryService/Export":                        ScopeRead,
		"/canopy.v1.DirectoryService/ListUsers":                     ScopeRead,
		"/canopy.v1.WatchService/Watch":                             ScopeRead,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": "",
	} {
		if got := requiredScope(method); got != want {
			t.Errorf("%s: %q, want %q", method, got, want)
		}
	}
}

// TestStatusSaysWhoIsAsking: GetStatus names the caller and its scopes
// and organisations; without tokens, anyone may do anything.
func TestStatusSaysWhoIsAsking(t *testing.T) {
	open := startServer(t)
	st, err := open.dir.GetStatus(ctxT(t), &pb.GetStatusRequest{})
	if c := st.GetCaller(); err != nil || c.GetName() != "anonymous@bufconn" || !slices.Equal(c.GetScopes(), []string{"admin"}) {
		t.Fatalf("without tokens: %v, %v", st, err)
	}
	tokens, err := ParseTokens([]byte(fmt.Sprintf("tokens:\n  - {name: console, sha256: %s, scopes: [read, check], organisations: [acme]}\n", hashOf("t1"))))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerWith(t, tokens)
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer t1")
	st, err = ts.dir.GetStatus(ctx, &pb.GetStatusRequest{})
	if c := st.GetCaller(); err != nil || c.GetName() != "console" || !slices.Equal(c.GetScopes(), []string{"read", "check"}) || !slices.Equal(c.GetOrganisations(), []string{"acme"}) {
		t.Fatalf("with a token: %v, %v", st, err)
	}
}
