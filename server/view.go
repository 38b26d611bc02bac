package server

import (
	"context"

	"github.com/canopy-authz/canopy/graph"
)

// view is the index as one call may see it: the whole of it, or, for a
// caller confined to some organisations (a token's organisations), the
// graph.Confined part. *graph.Index and *graph.Confined both are one.
type view interface {
	directoryReads
	Check(user, right string, x graph.Ref) (graph.Decision, error)
	CheckMany(reqs []graph.CheckRequest) ([]graph.Decision, []error, uint64)
	Explain(user, right string, x graph.Ref) (graph.Explanation, error)
	LookupResources(user, right string, kind graph.Kind, after string, limit int) (graph.Page, error)
	LookupSubjects(right string, x graph.Ref, after string, limit int) (graph.Page, error)
	EffectiveAccess(user string) (graph.Access, error)
	Snapshot() (*graph.Snapshot, error)
	Stats() graph.Stats
	WatchAccess(ctx context.Context, user string) (*graph.AccessWatch, error)
	Write(ctx context.Context, actor string, muts []graph.Mutation, pre graph.Preconditions) (uint64, error)
	WriteAs(ctx context.Context, actor, user string, muts []graph.Mutation, pre graph.Preconditions) (uint64, error)
	Import(ctx context.Context, actor string, muts []graph.Mutation) (uint64, error)
	ReadAs(user string) *graph.Reader
	Preview(ctx context.Context, req graph.PreviewRequest) (graph.Preview, error)
	FolderCounts(id string) (graph.FolderCounts, uint64, error)
}

// directoryReads are the directory's gets and lists, as a view or a
// graph.Reader (on behalf of a user) answers them.
type directoryReads interface {
	GetFolder(id string) (graph.Folder, *graph.PlacementRule, uint64, error)
	GetUser(id string) (graph.User, uint64, error)
	ListFolders(parent string, subtree bool, after string, limit int) ([]graph.Folder, string, uint64, error)
	ListUsers(folder string, subtree bool, after string, limit int) ([]graph.User, string, uint64, error)
	ListGrants(holder, target graph.Ref, after string, limit int) ([]graph.Grant, string, uint64, error)
	ListLocks(target graph.Ref, after string, limit int) ([]graph.Lock, string, uint64, error)
}

var _ directoryReads = (*graph.Reader)(nil)

// reads returns the directory as the call of ctx may read it: on behalf
// of asUser when it names one, else as view does. A caller that may only
// act for users must name one.
func (s *Server) reads(ctx context.Context, asUser string) (directoryReads, error) {
	if err := mustActFor(ctx, asUser, ScopeRead); err != nil {
		return nil, err
	}
	if asUser == "" {
		return s.view(ctx), nil
	}
	return s.view(ctx).ReadAs(asUser), nil
}

var (
	_ view = (*graph.Index)(nil)
	_ view = (*graph.Confined)(nil)
)

// view returns what the call of ctx may see: the index confined to its
// caller's organisations, or the whole index.
func (s *Server) view(ctx context.Context) view {
	if o := confinedTo(ctx); o != nil {
		return s.ix.Confine(o)
	}
	return s.ix
}

// confinedTo returns the organisations the caller of ctx is confined to,
// nil when it is not.
func confinedTo(ctx context.Context) graph.Orgs {
	if c := callerOf(ctx); c != nil {
		return c.orgs
	}
	return nil
}
