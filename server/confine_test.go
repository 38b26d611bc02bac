package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// confinedWorld is two organisations, every id of one containing "atlas"
// and of the other "aptem", so that a response that names anything of
// aptem's is caught by its text.
var confinedWorld = []graph.Mutation{
	{PutRight: &graph.Right{Name: "console"}},
	{CreateFolder: &graph.Folder{ID: "atlas"}},
	{CreateFolder: &graph.Folder{ID: "atlas-staff", Parent: "atlas"}},
	{CreateFolder: &graph.Folder{ID: "aptem"}},
	{CreateFolder: &graph.Folder{ID: "aptem-staff", Parent: "aptem"}},
	{CreateUser: &graph.User{ID: "atlas-user", Class: "staff", Home: "atlas-staff"}},
	{CreateUser: &graph.User{ID: "aptem-user", Class: "staff", Home: "aptem-staff"}},
	{AddGrant: &graph.Grant{ID: "atlas-grant", Holder: graph.FolderRef("atlas-staff"), Target: graph.FolderRef("atlas"), Rights: []string{"edit"}}},
	{AddGrant: &graph.Grant{ID: "aptem-grant", Holder: graph.FolderRef("aptem-staff"), Target: graph.FolderRef("aptem"), Rights: []string{"edit"}}},
	{AddGrant: &graph.Grant{ID: "atlas-console", Holder: graph.UserRef("atlas-user"), Rights: []string{"console"}}},
	{AddGrant: &graph.Grant{ID: "aptem-console", Holder: graph.UserRef("aptem-user"), Rights: []string{"console"}}},
	{AddLock: &graph.Lock{ID: "atlas-lock", Target: graph.FolderRef("atlas-staff"), Rights: []string{"assign"}}},
	{AddLock: &graph.Lock{ID: "aptem-lock", Target: graph.FolderRef("aptem-staff"), Rights: []string{"assign"}}},
}

// confinedCase is what one RPC does for a token confined to atlas.
type confinedCase struct {
	// inside calls it about atlas's records and returns what came back,
	// for the test to search for anything of aptem's.
	inside func(ctx context.Context) ([]proto.Message, error)
	// outside calls it about a user and a folder that are not atlas's:
	// aptem's, then ones that exist nowhere. Both must be refused in the
	// same words. Nil when the call names no record.
	outside func(ctx context.Context, user, folder string) error
	// writes: the call writes, and ids are one namespace across the
	// service, so an id that exists nowhere gets its own error; only
	// aptem's is compared.
	writes bool
	// refused: the call is refused to a confined token whatever it names.
	refused bool
}

// TestConfinedTokenEveryRPC: a token confined to one organisation, with
// every scope, calls every RPC of the API about its own records, which
// works and returns nothing of the other organisation's, and about the
// other's and about records that exist nowhere, which are refused alike.
// A new RPC without a case here fails the test.
func TestConfinedTokenEveryRPC(t *testing.T) {
	tokens, err := ParseTokens([]byte(fmt.Sprintf(`tokens:
  - {name: root, sha256: %s, scopes: [admin]}
  - {name: atlas-admin, sha256: %s, scopes: [admin], organisations: [atlas]}
`, hashOf("root-token"), hashOf("atlas-token"))))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerWith(t, tokens)
	as := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+token)
	}
	if _, err := ts.dir.Write(as("root-token"), &pb.WriteRequest{Mutations: toPB(confinedWorld)}); err != nil {
		t.Fatal(err)
	}
	folder := func(id string) *pb.ObjectRef { return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_FOLDER, Id: id} }
	user := func(id string) *pb.ObjectRef { return &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: id} }
	one := func(m proto.Message, err error) ([]proto.Message, error) { return []proto.Message{m}, err }
	created := 0
	newFolder := func(parent string) *pb.Mutation {
		created++
		return &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprintf("atlas-new-%d", created), Parent: parent}}}
	}
	// stream receives every message of a stream, as messages.
	stream := func(recv func() (proto.Message, error)) ([]proto.Message, error) {
		var out []proto.Message
		for {
			m, err := recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, m)
		}
	}
	importOne := func(ctx context.Context, m *pb.Mutation) error {
		s, err := ts.dir.Import(ctx)
		if err != nil {
			return err
		}
		if err := s.Send(&pb.ImportRequest{Mutations: []*pb.Mutation{m}}); err != nil {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		_, err = stream(func() (proto.Message, error) { return s.Recv() })
		return err
	}
	cases := map[string]confinedCase{
		pb.AccessService_Check_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.acc.Check(ctx, &pb.CheckRequest{User: "atlas-user", Right: "read", Resource: folder("atlas")}))
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.acc.Check(ctx, &pb.CheckRequest{User: u, Right: "read"})
				_, err2 := ts.acc.Check(ctx, &pb.CheckRequest{User: "atlas-user", Right: "read", Resource: folder(f)})
				return bothRefused(err, err2)
			},
		},
		pb.AccessService_BatchCheck_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.acc.BatchCheck(ctx, &pb.BatchCheckRequest{Items: []*pb.CheckItem{{User: "atlas-user", Right: "edit", Resource: user("atlas-user")}}}))
			},
			// The item outside is refused alone; the one inside is decided.
			outside: func(ctx context.Context, u, f string) error {
				r, err := ts.acc.BatchCheck(ctx, &pb.BatchCheckRequest{Items: []*pb.CheckItem{
					{User: "atlas-user", Right: "read", Resource: folder("atlas")}, {User: u, Right: "read", Resource: folder("atlas")}}})
				if err != nil {
					return err
				}
				if r.GetResults()[0].GetError() != nil {
					t.Fatalf("the item inside was not decided: %v", r.GetResults()[0].GetError())
				}
				if e := r.GetResults()[1].GetError(); e != nil {
					return status.Error(codes.Code(e.GetCode()), e.GetMessage())
				}
				return nil
			},
		},
		pb.AccessService_Explain_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.acc.Explain(ctx, &pb.ExplainRequest{User: "atlas-user", Right: "edit", Resource: folder("atlas-staff")}))
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.acc.Explain(ctx, &pb.ExplainRequest{User: "atlas-user", Right: "read", Resource: folder(f)})
				return err
			},
		},
		pb.AccessService_LookupResources_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				s, err := ts.acc.LookupResources(ctx, &pb.LookupResourcesRequest{User: "atlas-user", Right: "read", Kind: pb.ObjectKind_OBJECT_KIND_FOLDER})
				if err != nil {
					return nil, err
				}
				return stream(func() (proto.Message, error) { return s.Recv() })
			},
			outside: func(ctx context.Context, u, f string) error {
				s, err := ts.acc.LookupResources(ctx, &pb.LookupResourcesRequest{User: u, Right: "read", Kind: pb.ObjectKind_OBJECT_KIND_FOLDER})
				if err != nil {
					return err
				}
				_, err = stream(func() (proto.Message, error) { return s.Recv() })
				return err
			},
		},
		pb.AccessService_LookupSubjects_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				var out []proto.Message
				for _, x := range []*pb.ObjectRef{folder("atlas"), nil} { // a folder, and the holders of a capability
					right := "edit"
					if x == nil {
						right = "console"
					}
					s, err := ts.acc.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Right: right, Resource: x})
					if err != nil {
						return nil, err
					}
					got, err := stream(func() (proto.Message, error) { return s.Recv() })
					if err != nil {
						return nil, err
					}
					if len(got) == 0 || len(got[0].(*pb.LookupSubjectsResponse).GetUserIds()) != 1 {
						return nil, fmt.Errorf("lookup subjects of %s %v: %v, want atlas-user alone", right, x, got)
					}
					out = append(out, got...)
				}
				return out, nil
			},
			outside: func(ctx context.Context, u, f string) error {
				s, err := ts.acc.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Right: "read", Resource: folder(f)})
				if err != nil {
					return err
				}
				_, err = stream(func() (proto.Message, error) { return s.Recv() })
				return err
			},
		},
		pb.AccessService_EffectiveAccess_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.acc.EffectiveAccess(ctx, &pb.EffectiveAccessRequest{User: "atlas-user"}))
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.acc.EffectiveAccess(ctx, &pb.EffectiveAccessRequest{User: u})
				return err
			},
		},
		pb.DirectoryService_Write_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{newFolder("atlas-staff")}}))
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{newFolder("atlas"), newFolder(f)}})
				return err
			},
			writes: true,
		},
		pb.DirectoryService_GetFolder_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.dir.GetFolder(ctx, &pb.GetFolderRequest{Id: "atlas-staff"}))
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.dir.GetFolder(ctx, &pb.GetFolderRequest{Id: f})
				return err
			},
		},
		pb.DirectoryService_ListFolders_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				top, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{})
				if err == nil && (len(top.GetFolders()) != 1 || top.GetFolders()[0].GetId() != "atlas") {
					err = fmt.Errorf("organisations: %v, want atlas alone", top.GetFolders())
				}
				all, err2 := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Subtree: true})
				return []proto.Message{top, all}, errors.Join(err, err2)
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Parent: f})
				return err
			},
		},
		pb.DirectoryService_GetUser_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.dir.GetUser(ctx, &pb.GetUserRequest{Id: "atlas-user"}))
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.dir.GetUser(ctx, &pb.GetUserRequest{Id: u})
				return err
			},
		},
		pb.DirectoryService_ListUsers_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.dir.ListUsers(ctx, &pb.ListUsersRequest{Folder: "atlas", Subtree: true}))
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.dir.ListUsers(ctx, &pb.ListUsersRequest{Folder: f, Subtree: true})
				return err
			},
		},
		pb.DirectoryService_ListGrants_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				all, err := ts.dir.ListGrants(ctx, &pb.ListGrantsRequest{})
				if err == nil && len(all.GetGrants()) != 2 {
					err = fmt.Errorf("grants: %v, want atlas's two", all.GetGrants())
				}
				return []proto.Message{all}, err
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.dir.ListGrants(ctx, &pb.ListGrantsRequest{Holder: folder(f)})
				_, err2 := ts.dir.ListGrants(ctx, &pb.ListGrantsRequest{Target: user(u)})
				return bothRefused(err, err2)
			},
		},
		pb.DirectoryService_ListLocks_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				all, err := ts.dir.ListLocks(ctx, &pb.ListLocksRequest{})
				if err == nil && len(all.GetLocks()) != 1 {
					err = fmt.Errorf("locks: %v, want atlas's one", all.GetLocks())
				}
				return []proto.Message{all}, err
			},
			outside: func(ctx context.Context, u, f string) error {
				_, err := ts.dir.ListLocks(ctx, &pb.ListLocksRequest{Target: folder(f)})
				return err
			},
		},
		pb.DirectoryService_Import_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return nil, importOne(ctx, newFolder("atlas"))
			},
			outside: func(ctx context.Context, u, f string) error {
				return importOne(ctx, newFolder(f))
			},
			writes: true,
		},
		pb.DirectoryService_Export_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				s, err := ts.dir.Export(ctx, &pb.ExportRequest{})
				if err != nil {
					return nil, err
				}
				return stream(func() (proto.Message, error) { return s.Recv() })
			},
		},
		pb.DirectoryService_GetCatalogue_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				return one(ts.dir.GetCatalogue(ctx, &pb.GetCatalogueRequest{}))
			},
		},
		pb.DirectoryService_GetStatus_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				st, err := ts.dir.GetStatus(ctx, &pb.GetStatusRequest{})
				if err == nil && (st.GetOrganisations() != 1 || st.GetUsers() != 1 || st.GetGrants() != 2 || st.GetLocks() != 1) {
					err = fmt.Errorf("status counts another organisation: %v", st)
				}
				return []proto.Message{st}, err
			},
		},
		pb.DirectoryService_Backup_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				s, err := ts.dir.Backup(ctx, &pb.BackupRequest{})
				if err != nil {
					return nil, err
				}
				return stream(func() (proto.Message, error) { return s.Recv() })
			},
			refused: true,
		},
		pb.WatchService_Watch_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				head := ts.ix.Revision()
				s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 1})
				if err != nil {
					return nil, err
				}
				var out []proto.Message
				for {
					m, err := s.Recv()
					if err != nil {
						return out, err
					}
					out = append(out, m)
					if m.GetRevision() >= head && !m.GetMore() {
						return out, nil
					}
				}
			},
			outside: func(ctx context.Context, u, f string) error {
				s, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 1, Filter: &pb.WatchFilter{Organisations: []string{f}}})
				if err != nil {
					return err
				}
				_, err = s.Recv()
				return err
			},
		},
		// The trail holds what the token may see: another organisation's
		// records have no history for it, as records that never existed
		// have none, and deleted records of its own keep theirs.
		pb.WatchService_History_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				var out []proto.Message
				for _, req := range []*pb.HistoryRequest{{}, {Object: "user/aptem-user"}, {Object: "folder/aptem"}, {Actor: "root"}, {Object: "grant/atlas-grant"}} {
					r, err := ts.watch.History(ctx, req)
					if err != nil {
						return nil, err
					}
					if req.Object == "grant/atlas-grant" && len(r.GetEntries()) != 1 {
						t.Fatalf("atlas-grant's history: %v", r)
					}
					out = append(out, r)
				}
				return out, nil
			},
		},
		pb.WatchService_WatchAccess_FullMethodName: {
			inside: func(ctx context.Context) ([]proto.Message, error) {
				s, err := ts.watch.WatchAccess(ctx, &pb.WatchAccessRequest{User: "atlas-user"})
				if err != nil {
					return nil, err
				}
				return one(s.Recv())
			},
			outside: func(ctx context.Context, u, f string) error {
				s, err := ts.watch.WatchAccess(ctx, &pb.WatchAccessRequest{User: u})
				if err != nil {
					return err
				}
				_, err = s.Recv()
				return err
			},
		},
	}

	for _, desc := range []grpc.ServiceDesc{pb.AccessService_ServiceDesc, pb.DirectoryService_ServiceDesc, pb.WatchService_ServiceDesc} {
		var names []string
		for _, m := range desc.Methods {
			names = append(names, m.MethodName)
		}
		for _, s := range desc.Streams {
			names = append(names, s.StreamName)
		}
		for _, name := range names {
			method := "/" + desc.ServiceName + "/" + name
			c, ok := cases[method]
			if !ok {
				t.Errorf("%s has no case: say what a confined token may do with it", method)
				continue
			}
			t.Run(name, func(t *testing.T) {
				got, err := c.inside(as("atlas-token"))
				if c.refused {
					if status.Code(err) != codes.PermissionDenied {
						t.Fatalf("confined token: %v, want PermissionDenied", err)
					}
					if _, err := c.inside(as("root-token")); err != nil {
						t.Fatalf("unconfined token: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("about its own organisation: %v", err)
				}
				for _, m := range got {
					if b, _ := protojson.Marshal(m); strings.Contains(string(b), "aptem") {
						t.Fatalf("a response names another organisation's record: %s", b)
					}
				}
				if c.outside == nil {
					return
				}
				other := c.outside(as("atlas-token"), "aptem-user", "aptem-staff")
				if status.Code(other) != codes.PermissionDenied {
					t.Fatalf("about another organisation's records: %v, want PermissionDenied", other)
				}
				if c.writes {
					return
				}
				nowhere := c.outside(as("atlas-token"), "ghost-user", "ghost-staff")
				a := strings.NewReplacer("aptem-user", "X", "aptem-staff", "X").Replace(status.Convert(other).Message())
				b := strings.NewReplacer("ghost-user", "X", "ghost-staff", "X").Replace(status.Convert(nowhere).Message())
				if status.Code(nowhere) != codes.PermissionDenied || a != b {
					t.Fatalf("another organisation's records and none are told apart:\n %v\n %v", other, nowhere)
				}
				if err := c.outside(as("root-token"), "aptem-user", "aptem-staff"); status.Code(err) == codes.PermissionDenied {
					t.Fatalf("unconfined token refused: %v", err)
				}
			})
		}
	}

	// Writes that reach outside in other ways: the shared catalogue, a new
	// organisation, another's records named by a change.
	for _, m := range []*graph.Mutation{
		{PutRight: &graph.Right{Name: "atlas-right"}},
		{CreateFolder: &graph.Folder{ID: "atlas-2"}},
		{DeleteFolder: &graph.Delete{ID: "aptem-staff", Cascade: true}},
		{AddGrant: &graph.Grant{ID: "atlas-g2", Holder: graph.UserRef("aptem-user"), Rights: []string{"console"}}},
		{AddLock: &graph.Lock{ID: "atlas-l2", Target: graph.UserRef("aptem-user"), Rights: []string{"read"}}},
		{RemoveGrant: &graph.Delete{ID: "aptem-grant"}},
	} {
		_, err := ts.dir.Write(as("atlas-token"), &pb.WriteRequest{Mutations: []*pb.Mutation{MutationToPB(*m)}})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("confined write %v: %v, want PermissionDenied", m, err)
		}
	}
	// Nothing of aptem's changed.
	recs, _, err := ts.ix.Confine(graph.OrgsOf("aptem")).Records()
	if err != nil {
		t.Fatal(err)
	}
	if n := countKind(recs, graph.RecordFolder, graph.RecordUser, graph.RecordGrant, graph.RecordLock); n != 6 {
		t.Fatalf("aptem has %d records after the refused writes, want 6", n)
	}
}

// bothRefused returns a when b is refused as PermissionDenied, else b:
// for a case that makes two calls, each of which must be refused.
func bothRefused(a, b error) error {
	if status.Code(b) != codes.PermissionDenied {
		return b
	}
	return a
}

// countKind counts the records of the kinds.
func countKind(recs []graph.Record, kinds ...graph.RecordKind) int {
	n := 0
	for _, r := range recs {
		for _, k := range kinds {
			if r.Kind == k && r.Value != nil {
				n++
			}
		}
	}
	return n
}
