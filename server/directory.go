package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// directory implements pb.DirectoryServiceServer.
type directory struct {
	pb.UnimplementedDirectoryServiceServer
	*Server
}

var _ pb.DirectoryServiceServer = (*directory)(nil)

// defaultPageSize applies to lists whose page_size is 0.
const defaultPageSize = 1000

// pageSize returns the page size of a list asking for n: the default for
// 0 (or the limit, when that is lower), n when it is within the limit.
func (s *Server) pageSize(list string, n uint32) (int, error) {
	return s.pageSizeOr(list, n, defaultPageSize)
}

// pageSizeOr is pageSize with another default.
func (s *Server) pageSizeOr(list string, n uint32, def int) (int, error) {
	switch limit := s.opts.MaxPageSize; {
	case n == 0:
		return min(def, limit), nil
	case int64(n) > int64(limit):
		return 0, invalidf("%s: page_size %d is over the limit of %d a page", list, n, limit)
	}
	return int(n), nil
}

// actor names who made a call, for the change log: the token's name once
// authenticated, else peerIdentity (a client certificate's subject, or
// anonymous@host).
func actor(ctx context.Context) string {
	if c := callerOf(ctx); c != nil {
		return c.Name
	}
	return peerIdentity(ctx)
}

func (d *directory) Write(ctx context.Context, req *pb.WriteRequest) (*pb.WriteResponse, error) {
	if err := mustActFor(ctx, req.GetAsUser(), ScopeWrite); err != nil {
		return nil, err
	}
	muts := make([]graph.Mutation, len(req.GetMutations()))
	for i, m := range req.GetMutations() {
		var err error
		if muts[i], err = mutationFromPB(m, i); err != nil {
			return nil, d.status(ctx, err)
		}
	}
	p := req.GetPreconditions()
	pre := graph.Preconditions{
		Revision: p.GetRevision(), FoldersExist: p.GetFoldersExist(), UsersExist: p.GetUsersExist(),
		FoldersAbsent: p.GetFoldersAbsent(), UsersAbsent: p.GetUsersAbsent(),
	}
	if req.GetDryRun() {
		p, err := d.view(ctx).Preview(ctx, graph.PreviewRequest{Actor: actor(ctx), AsUser: req.GetAsUser(), Mutations: muts, Pre: pre, Limit: int(req.GetPreviewLimit())})
		if err != nil {
			return nil, d.status(ctx, err)
		}
		return &pb.WriteResponse{Preview: fitPreview(previewToPB(p), d.opts.MaxResponseBytes)}, nil
	}
	var rev uint64
	var err error
	wctx, sp := d.span(ctx, "canopy.write", attribute.Int("canopy.mutations", len(muts)))
	if u := req.GetAsUser(); u != "" {
		rev, err = d.view(ctx).WriteAs(wctx, actor(ctx), u, muts, pre)
	} else {
		rev, err = d.view(ctx).Write(wctx, actor(ctx), muts, pre)
	}
	sp.SetAttributes(attribute.Int64("canopy.revision", int64(rev)))
	endSpan(sp, err)
	if err != nil {
		return nil, d.status(ctx, err)
	}
	return &pb.WriteResponse{Revision: rev}, nil
}

func (d *directory) GetFolder(ctx context.Context, req *pb.GetFolderRequest) (*pb.GetFolderResponse, error) {
	if err := d.consistent(ctx, req.GetConsistency()); err != nil {
		return nil, d.status(ctx, err)
	}
	r, err := d.reads(ctx, req.GetAsUser())
	if err != nil {
		return nil, err
	}
	f, rule, rev, err := r.GetFolder(req.GetId())
	if err != nil {
		return nil, d.status(ctx, err)
	}
	return &pb.GetFolderResponse{Folder: folderToPB(f), PlacementRule: ruleToPB(rule), Revision: rev}, nil
}

func (d *directory) ListFolders(ctx context.Context, req *pb.ListFoldersRequest) (*pb.ListFoldersResponse, error) {
	query := queryKey("list_folders", req.GetParent(), boolKey(req.GetSubtree()), req.GetAsUser())
	after, size, err := d.startPage(ctx, "list_folders", query, req, d.pageSize)
	if err != nil {
		return nil, err
	}
	r, err := d.reads(ctx, req.GetAsUser())
	if err != nil {
		return nil, err
	}
	fs, next, rev, err := r.ListFolders(req.GetParent(), req.GetSubtree(), after, size)
	if err != nil {
		return nil, d.status(ctx, err)
	}
	out := &pb.ListFoldersResponse{Revision: rev}
	for _, x := range fs {
		out.Folders = append(out.Folders, folderToPB(x))
	}
	out.Folders, next = fitPage(out.Folders, next, func(x *pb.Folder) string { return x.GetId() }, d.opts.MaxResponseBytes)
	out.NextPageToken = encodeToken(query, next)
	if req.GetWithCounts() {
		if req.GetAsUser() != "" {
			return nil, d.status(ctx, invalidf("list_folders: with_counts is not read on behalf of a user (as_user %q)", req.GetAsUser()))
		}
		for _, f := range out.Folders {
			c, _, err := d.view(ctx).FolderCounts(f.GetId())
			if err != nil {
				// Gone since the page was read: counted as empty.
				c = graph.FolderCounts{}
			}
			out.Counts = append(out.Counts, &pb.FolderCounts{Children: uint64(c.Children), Users: uint64(c.Users), Members: uint64(c.Members),
				Grants: uint64(c.Grants), Locks: uint64(c.Locks)})
		}
	}
	return out, nil
}

func (d *directory) GetCatalogue(ctx context.Context, req *pb.GetCatalogueRequest) (*pb.GetCatalogueResponse, error) {
	if err := d.consistent(ctx, req.GetConsistency()); err != nil {
		return nil, d.status(ctx, err)
	}
	rights, self, rev := d.ix.Catalogue()
	out := &pb.GetCatalogueResponse{SelfRights: &pb.SelfRights{Rights: self.Rights}, Revision: rev}
	for _, r := range rights {
		out.Rights = append(out.Rights, &pb.Right{Name: r.Name, Implies: r.Implies})
	}
	return out, nil
}

func (d *directory) GetStatus(ctx context.Context, _ *pb.GetStatusRequest) (*pb.GetStatusResponse, error) {
	st := d.view(ctx).Stats()
	orgs, _, _, err := d.view(ctx).ListFolders("", false, "", 0)
	if err != nil {
		return nil, d.status(ctx, err)
	}
	b := Build()
	id, err := d.storeID()
	if err != nil {
		return nil, d.status(ctx, err)
	}
	return &pb.GetStatusResponse{StoreId: id,
		Version: b.Version, Commit: b.Commit, Revision: st.Revision,
		Folders: uint64(st.Folders), Users: uint64(st.Users), Grants: uint64(st.Grants), Locks: uint64(st.Locks),
		PlacementRules: uint64(st.Rules), Rights: uint64(st.Rights), Organisations: uint64(len(orgs)),
		Caller: callerInfo(ctx),
	}, nil
}

// callerInfo says who the caller of ctx is: with no tokens file, anyone
// may do anything.
func callerInfo(ctx context.Context) *pb.CallerInfo {
	c := callerOf(ctx)
	if c == nil {
		return &pb.CallerInfo{Name: peerIdentity(ctx), Scopes: []string{string(ScopeAdmin)}}
	}
	out := &pb.CallerInfo{Name: c.Name, Organisations: c.Organisations}
	for _, s := range c.Scopes {
		out.Scopes = append(out.Scopes, string(s))
	}
	return out
}

func (d *directory) GetUser(ctx context.Context, req *pb.GetUserRequest) (*pb.GetUserResponse, error) {
	if err := d.consistent(ctx, req.GetConsistency()); err != nil {
		return nil, d.status(ctx, err)
	}
	r, err := d.reads(ctx, req.GetAsUser())
	if err != nil {
		return nil, err
	}
	u, rev, err := r.GetUser(req.GetId())
	if err != nil {
		return nil, d.status(ctx, err)
	}
	return &pb.GetUserResponse{User: userToPB(u), Revision: rev}, nil
}

func (d *directory) ListUsers(ctx context.Context, req *pb.ListUsersRequest) (*pb.ListUsersResponse, error) {
	query := queryKey("list_users", req.GetFolder(), boolKey(req.GetSubtree()), req.GetAsUser())
	after, size, err := d.startPage(ctx, "list_users", query, req, d.pageSize)
	if err != nil {
		return nil, err
	}
	r, err := d.reads(ctx, req.GetAsUser())
	if err != nil {
		return nil, err
	}
	us, next, rev, err := r.ListUsers(req.GetFolder(), req.GetSubtree(), after, size)
	if err != nil {
		return nil, d.status(ctx, err)
	}
	out := &pb.ListUsersResponse{Revision: rev}
	for _, x := range us {
		out.Users = append(out.Users, userToPB(x))
	}
	out.Users, next = fitPage(out.Users, next, func(x *pb.User) string { return x.GetId() }, d.opts.MaxResponseBytes)
	out.NextPageToken = encodeToken(query, next)
	return out, nil
}

func (d *directory) ListGrants(ctx context.Context, req *pb.ListGrantsRequest) (*pb.ListGrantsResponse, error) {
	holder, err := refFromPB(req.GetHolder(), "holder")
	if err != nil {
		return nil, d.status(ctx, err)
	}
	target, err := refFromPB(req.GetTarget(), "target")
	if err != nil {
		return nil, d.status(ctx, err)
	}
	query := queryKey("list_grants", holder.String(), target.String(), req.GetAsUser())
	after, size, err := d.startPage(ctx, "list_grants", query, req, d.pageSize)
	if err != nil {
		return nil, err
	}
	r, err := d.reads(ctx, req.GetAsUser())
	if err != nil {
		return nil, err
	}
	gs, next, rev, err := r.ListGrants(holder, target, after, size)
	if err != nil {
		return nil, d.status(ctx, err)
	}
	out := &pb.ListGrantsResponse{Revision: rev}
	for _, x := range gs {
		out.Grants = append(out.Grants, grantToPB(x))
	}
	out.Grants, next = fitPage(out.Grants, next, func(x *pb.Grant) string { return x.GetId() }, d.opts.MaxResponseBytes)
	out.NextPageToken = encodeToken(query, next)
	return out, nil
}

func (d *directory) ListLocks(ctx context.Context, req *pb.ListLocksRequest) (*pb.ListLocksResponse, error) {
	target, err := refFromPB(req.GetTarget(), "target")
	if err != nil {
		return nil, d.status(ctx, err)
	}
	query := queryKey("list_locks", target.String(), req.GetAsUser())
	after, size, err := d.startPage(ctx, "list_locks", query, req, d.pageSize)
	if err != nil {
		return nil, err
	}
	r, err := d.reads(ctx, req.GetAsUser())
	if err != nil {
		return nil, err
	}
	ls, next, rev, err := r.ListLocks(target, after, size)
	if err != nil {
		return nil, d.status(ctx, err)
	}
	out := &pb.ListLocksResponse{Revision: rev}
	for _, x := range ls {
		out.Locks = append(out.Locks, lockToPB(x))
	}
	out.Locks, next = fitPage(out.Locks, next, func(x *pb.Lock) string { return x.GetId() }, d.opts.MaxResponseBytes)
	out.NextPageToken = encodeToken(query, next)
	return out, nil
}

func boolKey(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// fitPage cuts a page to maxBytes, so that it fits a default client;
// when it cuts, the next page starts after the last item kept.
func fitPage[T proto.Message](items []T, next string, id func(T) string, maxBytes int) ([]T, string) {
	size := 0
	for i, it := range items {
		if size += proto.Size(it) + 8; size > maxBytes && i > 0 {
			return items[:i], id(items[i-1])
		}
	}
	return items, next
}

// fitPreview cuts a preview's list of changes to maxBytes, whole users
// at a time from the end, so that it fits a default client; the counts
// stay whole, and users_listed says how many are listed.
func fitPreview(p *pb.Preview, maxBytes int) *pb.Preview {
	size, start, listed := 0, 0, 0 // start: the first change of the current user
	for i, ch := range p.GetChanges() {
		if i == 0 || ch.GetUser() != p.Changes[i-1].GetUser() {
			start = i
			listed++
		}
		if size += proto.Size(ch) + 8; size > maxBytes && start > 0 {
			p.Changes, p.UsersListed = p.Changes[:start], uint64(listed-1)
			return p
		}
	}
	return p
}

// importChunk is how many mutations Import commits as one batch.
const importChunk = 10_000

// exportChunk is how many mutations one Export message carries at most
// (and at most MaxResponseBytes of them).
const exportChunk = 1000

func (d *directory) Import(stream grpc.BidiStreamingServer[pb.ImportRequest, pb.ImportResponse]) error {
	ctx := stream.Context()
	var buf []graph.Mutation
	var committed uint64
	seen := 0 // mutations received, for error positions
	commit := func() error {
		if len(buf) == 0 {
			return nil
		}
		rev, err := d.view(ctx).Import(ctx, actor(ctx), buf)
		if err != nil {
			return d.status(ctx, fmt.Errorf("import stopped after %d committed mutations: %w", committed, err))
		}
		committed += uint64(len(buf))
		buf = buf[:0]
		return stream.Send(&pb.ImportResponse{CommittedMutations: committed, Revision: rev})
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return commit()
		}
		if err != nil {
			return err
		}
		for _, m := range req.GetMutations() {
			gm, err := mutationFromPB(m, seen)
			if err != nil {
				return d.status(ctx, err)
			}
			seen++
			buf = append(buf, gm)
			if len(buf) == min(importChunk, d.ix.MaxBatch()) {
				if err := commit(); err != nil {
					return err
				}
			}
		}
	}
}

func (d *directory) Export(req *pb.ExportRequest, stream grpc.ServerStreamingServer[pb.ExportResponse]) error {
	ctx := stream.Context()
	if err := d.consistent(ctx, req.GetConsistency()); err != nil {
		return d.status(ctx, err)
	}
	snap, err := d.view(ctx).Snapshot()
	if err != nil {
		return d.status(ctx, err)
	}
	var chunk []*pb.Mutation
	size := 0
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		err := stream.Send(&pb.ExportResponse{Mutations: chunk, Revision: snap.Revision})
		chunk, size = nil, 0
		return err
	}
	err = snap.Mutations(func(m graph.Mutation) error {
		pm := MutationToPB(m)
		n := proto.Size(pm) + 8
		if size+n > d.opts.MaxResponseBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		chunk = append(chunk, pm)
		size += n
		if len(chunk) == exportChunk {
			return flush()
		}
		return nil
	})
	if err != nil {
		return d.status(ctx, err)
	}
	return flush()
}

// backuper is what Backup needs of the store: a consistent copy as of one
// revision (store.DB.Backup).
type backuper interface {
	Backup(w io.Writer, sizeOf func(rev uint64, size int64) error) error
}

// backupChunk is how many bytes of the copy one Backup message carries.
const backupChunk = 512 << 10

func (d *directory) Backup(_ *pb.BackupRequest, stream grpc.ServerStreamingServer[pb.BackupResponse]) error {
	ctx := stream.Context()
	b, ok := d.log.(backuper)
	if !ok {
		return status.Error(codes.Unimplemented, "this store cannot be backed up online")
	}
	sum := sha256.New()
	w := &chunkWriter{send: func(chunk []byte) error {
		sum.Write(chunk)
		return stream.Send(&pb.BackupResponse{Chunk: chunk})
	}}
	err := b.Backup(w, func(rev uint64, size int64) error {
		return stream.Send(&pb.BackupResponse{Revision: rev, Size: uint64(size)})
	})
	if err == nil {
		err = w.flush()
	}
	if err == nil {
		err = stream.Send(&pb.BackupResponse{Sha256: sum.Sum(nil)})
	}
	if err != nil {
		return d.status(ctx, fmt.Errorf("backup: %w", err))
	}
	return nil
}

// chunkWriter sends what is written to it in messages of backupChunk bytes.
type chunkWriter struct {
	buf  []byte
	send func([]byte) error
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(backupChunk-len(w.buf), len(p))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == backupChunk {
			if err := w.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.send(w.buf)
	w.buf = nil
	return err
}
