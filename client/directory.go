package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// GetFolder returns a folder and its placement rule (nil when it has none).
func (c *Client) GetFolder(ctx context.Context, id string, opts ...ReadOption) (*pb.Folder, *pb.PlacementRule, error) {
	o := c.options(opts)
	r, err := c.DirectoryService.GetFolder(ctx, &pb.GetFolderRequest{Id: id, Consistency: o.cons, AsUser: o.asUser})
	if err != nil {
		return nil, nil, err
	}
	c.saw(r.GetRevision())
	return r.GetFolder(), r.GetPlacementRule(), nil
}

// GetUser returns a user.
func (c *Client) GetUser(ctx context.Context, id string, opts ...ReadOption) (*pb.User, error) {
	o := c.options(opts)
	r, err := c.DirectoryService.GetUser(ctx, &pb.GetUserRequest{Id: id, Consistency: o.cons, AsUser: o.asUser})
	if err != nil {
		return nil, err
	}
	c.saw(r.GetRevision())
	return r.GetUser(), nil
}

// Catalogue returns the rights catalogue, by name, and the self rights.
func (c *Client) Catalogue(ctx context.Context, opts ...ReadOption) ([]*pb.Right, []string, error) {
	r, err := c.DirectoryService.GetCatalogue(ctx, &pb.GetCatalogueRequest{Consistency: c.consistency(opts)})
	if err != nil {
		return nil, nil, err
	}
	c.saw(r.GetRevision())
	return r.GetRights(), r.GetSelfRights().GetRights(), nil
}

// Status returns the server's version, revision and counts.
func (c *Client) Status(ctx context.Context) (*pb.GetStatusResponse, error) {
	r, err := c.DirectoryService.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		return nil, err
	}
	c.saw(r.GetRevision())
	return r, nil
}

// paged yields the items of a listing page by page, following page tokens
// to the end; fetch returns one page, its revision and the next token. It
// stops at the first error, which it yields.
func paged[T any](ctx context.Context, c *Client, fetch func(ctx context.Context, token string) ([]T, uint64, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		token := ""
		for {
			items, rev, next, err := fetch(ctx, token)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			c.saw(rev)
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			token = next
		}
	}
}

// Folders yields the children of parent by id (with subtree, everything
// below it); an empty parent lists the organisations' roots.
func (c *Client) Folders(ctx context.Context, parent string, subtree bool, opts ...ReadOption) iter.Seq2[*pb.Folder, error] {
	o := c.options(opts)
	return paged(ctx, c, func(ctx context.Context, token string) ([]*pb.Folder, uint64, string, error) {
		r, err := c.DirectoryService.ListFolders(ctx, &pb.ListFoldersRequest{Parent: parent, Subtree: subtree, PageToken: token, Consistency: o.cons, AsUser: o.asUser})
		return r.GetFolders(), r.GetRevision(), r.GetNextPageToken(), err
	})
}

// Users yields the users placed in folder (home or extra group; with
// subtree, anywhere below it too), by id.
func (c *Client) Users(ctx context.Context, folder string, subtree bool, opts ...ReadOption) iter.Seq2[*pb.User, error] {
	o := c.options(opts)
	return paged(ctx, c, func(ctx context.Context, token string) ([]*pb.User, uint64, string, error) {
		r, err := c.DirectoryService.ListUsers(ctx, &pb.ListUsersRequest{Folder: folder, Subtree: subtree, PageToken: token, Consistency: o.cons, AsUser: o.asUser})
		return r.GetUsers(), r.GetRevision(), r.GetNextPageToken(), err
	})
}

// Grants yields grants by id: those held by holder and on target, each
// filter left out when nil.
func (c *Client) Grants(ctx context.Context, holder, target *pb.ObjectRef, opts ...ReadOption) iter.Seq2[*pb.Grant, error] {
	o := c.options(opts)
	return paged(ctx, c, func(ctx context.Context, token string) ([]*pb.Grant, uint64, string, error) {
		r, err := c.DirectoryService.ListGrants(ctx, &pb.ListGrantsRequest{Holder: holder, Target: target, PageToken: token, Consistency: o.cons, AsUser: o.asUser})
		return r.GetGrants(), r.GetRevision(), r.GetNextPageToken(), err
	})
}

// Locks yields locks by id, only those on target unless it is nil.
func (c *Client) Locks(ctx context.Context, target *pb.ObjectRef, opts ...ReadOption) iter.Seq2[*pb.Lock, error] {
	o := c.options(opts)
	return paged(ctx, c, func(ctx context.Context, token string) ([]*pb.Lock, uint64, string, error) {
		r, err := c.DirectoryService.ListLocks(ctx, &pb.ListLocksRequest{Target: target, PageToken: token, Consistency: o.cons, AsUser: o.asUser})
		return r.GetLocks(), r.GetRevision(), r.GetNextPageToken(), err
	})
}

// Export yields the whole state as mutations that Import accepts into an
// empty store, all at one revision, which it returns through rev once the
// iteration has ended without error. A dropped stream is not resumed
// (the export's revision may have been compacted): run it again.
func (c *Client) Export(ctx context.Context, rev *uint64, opts ...ReadOption) iter.Seq2[*pb.Mutation, error] {
	return func(yield func(*pb.Mutation, error) bool) {
		s, err := c.DirectoryService.Export(ctx, &pb.ExportRequest{Consistency: c.consistency(opts)})
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			c.saw(m.GetRevision())
			if rev != nil {
				*rev = m.GetRevision()
			}
			for _, mu := range m.GetMutations() {
				if !yield(mu, nil) {
					return
				}
			}
		}
	}
}

// ImportProgress is reported after each chunk an Import commits.
type ImportProgress struct {
	Committed uint64 // mutations committed so far
	Revision  uint64 // the revision of the chunk just committed
}

// importSend is how many mutations one Import message carries.
const importSend = 1000

// Import streams mutations to the server, which commits them in order in
// chunks, each atomic; progress, if not nil, is called after each commit.
// The import as a whole is not atomic: after an error the last progress
// reported says how far it got. It is never retried.
func (c *Client) Import(ctx context.Context, mutations iter.Seq[*pb.Mutation], progress func(ImportProgress)) (ImportProgress, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.DirectoryService.Import(ctx)
	if err != nil {
		return ImportProgress{}, err
	}
	var last ImportProgress
	replies := make(chan error, 1)
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				replies <- err
				return
			}
			last = ImportProgress{Committed: r.GetCommittedMutations(), Revision: r.GetRevision()}
			c.saw(last.Revision)
			if progress != nil {
				progress(last)
			}
		}
	}()
	var buf []*pb.Mutation
	var sendErr error
	flush := func() bool {
		if len(buf) == 0 {
			return true
		}
		sendErr = s.Send(&pb.ImportRequest{Mutations: buf})
		buf = nil
		return sendErr == nil
	}
	for m := range mutations {
		if buf = append(buf, m); len(buf) == importSend && !flush() {
			break
		}
	}
	if sendErr == nil && flush() {
		sendErr = s.CloseSend()
	}
	// A failed Send means the server ended the stream: its reply says why.
	err = <-replies
	if err == nil && sendErr != nil && !errors.Is(sendErr, io.EOF) {
		err = fmt.Errorf("client: import: %w", sendErr)
	}
	return last, err
}
