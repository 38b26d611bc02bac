package server

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// access implements pb.AccessServiceServer.
type access struct {
	pb.UnimplementedAccessServiceServer
	*Server
}

var _ pb.AccessServiceServer = (*access)(nil)

// lookupChunk is how many ids one streamed lookup message carries.
const lookupChunk = 1000

func (a *access) Check(ctx context.Context, req *pb.CheckRequest) (*pb.CheckResponse, error) {
	x, err := refFromPB(req.GetResource(), "resource")
	if err != nil {
		return nil, a.status(ctx, err)
	}
	if err := a.consistent(ctx, req.GetConsistency()); err != nil {
		return nil, a.status(ctx, err)
	}
	start := time.Now()
	d, err := a.view(ctx).Check(req.GetUser(), req.GetRight(), x)
	a.opts.Metrics.timeCheck(time.Since(start))
	if err != nil {
		return nil, a.status(ctx, err)
	}
	a.opts.Metrics.decided(req.GetRight(), d.Reason)
	return &pb.CheckResponse{Allowed: d.Allowed, Reason: reasonToPB(d.Reason), Revision: d.Revision}, nil
}

func (a *access) BatchCheck(ctx context.Context, req *pb.BatchCheckRequest) (*pb.BatchCheckResponse, error) {
	items := req.GetItems()
	if len(items) > a.opts.MaxBatchCheck {
		return nil, a.status(ctx, invalidf("batch of %d checks: at most %d", len(items), a.opts.MaxBatchCheck))
	}
	if err := a.consistent(ctx, req.GetConsistency()); err != nil {
		return nil, a.status(ctx, err)
	}
	// An item that is malformed, or that the index cannot decide, gets an
	// error of its own; the others are decided all the same.
	reqs := make([]graph.CheckRequest, len(items))
	var bad []error
	for i, it := range items {
		err := it.Problem()
		var x graph.Ref
		if err == nil {
			x, err = refFromPB(it.GetResource(), "resource")
		}
		if err != nil {
			if bad == nil {
				bad = make([]error, len(items))
			}
			bad[i] = invalidf("item %d: %v", i, err) // the index is named only when wrong
			continue
		}
		reqs[i] = graph.CheckRequest{User: it.GetUser(), Right: it.GetRight(), Resource: x}
	}
	ds, errs, rev := a.view(ctx).CheckMany(reqs)
	// One allocation for all the results, not one each.
	results := make([]pb.CheckResult, len(ds))
	out := &pb.BatchCheckResponse{Revision: rev, Results: make([]*pb.CheckResult, len(ds))}
	for i, d := range ds {
		var err error
		switch {
		case bad != nil && bad[i] != nil:
			err = bad[i]
		case errs != nil && errs[i] != nil:
			err = errs[i]
		}
		if err != nil {
			st := status.Convert(a.status(ctx, err))
			results[i].Error = &pb.ItemError{Code: int32(st.Code()), Message: st.Message()}
		} else {
			results[i].Allowed, results[i].Reason = d.Allowed, reasonToPB(d.Reason)
		}
		out.Results[i] = &results[i]
	}
	a.opts.Metrics.decidedMany(reqs, ds)
	return out, nil
}

func (a *access) Explain(ctx context.Context, req *pb.ExplainRequest) (*pb.ExplainResponse, error) {
	x, err := refFromPB(req.GetResource(), "resource")
	if err != nil {
		return nil, a.status(ctx, err)
	}
	if err := a.consistent(ctx, req.GetConsistency()); err != nil {
		return nil, a.status(ctx, err)
	}
	ex, err := a.view(ctx).Explain(req.GetUser(), req.GetRight(), x)
	if err != nil {
		return nil, a.status(ctx, err)
	}
	a.opts.Metrics.decided(req.GetRight(), ex.Reason)
	out := &pb.ExplainResponse{
		Allowed: ex.Allowed, Reason: reasonToPB(ex.Reason), Revision: ex.Revision, Self: ex.Self,
		HolderPath: ex.HolderPath, TargetPath: ex.TargetPath, LockPath: ex.LockPath,
	}
	if ex.Grant != nil {
		out.Grant = grantToPB(*ex.Grant)
	}
	if ex.Lock != nil {
		out.Lock = lockToPB(*ex.Lock)
	}
	return out, nil
}

// streamPage sends a page's ids in chunks. When the deadline comes close it
// stops early and ends with a page token after the last id sent, so a
// result is never cut silently.
func streamPage(ctx context.Context, margin time.Duration, p graph.Page, query string, send func(ids []string, rev uint64, next string) error) error {
	ids := p.IDs
	for len(ids) > 0 {
		n := min(lookupChunk, len(ids))
		chunk, rest := ids[:n], ids[n:]
		next := ""
		switch {
		case len(rest) == 0:
			next = encodeToken(query, p.Next)
		case nearDeadline(ctx, margin):
			next = encodeToken(query, chunk[len(chunk)-1])
			rest = nil
		}
		if err := send(chunk, p.Revision, next); err != nil {
			return err
		}
		ids = rest
	}
	if len(p.IDs) == 0 {
		return send(nil, p.Revision, "")
	}
	return nil
}

// lookupLimit returns how many ids a lookup asking for a page of n may
// return: all up to the limit for 0, n when it is within the limit.
func (s *Server) lookupLimit(op string, n uint32) (int, error) {
	limit := s.opts.MaxLookupResults
	if int64(n) > int64(limit) {
		return 0, invalidf("%s: page_size %d is over the limit of %d results a lookup", op, n, limit)
	}
	if n == 0 {
		return limit, nil
	}
	return int(n), nil
}

// nearDeadline reports whether less than margin is left before ctx's deadline.
func nearDeadline(ctx context.Context, margin time.Duration) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < margin
}

func (a *access) LookupResources(req *pb.LookupResourcesRequest, stream grpc.ServerStreamingServer[pb.LookupResourcesResponse]) error {
	ctx := stream.Context()
	kind := kindFromPB(req.GetKind())
	if kind == graph.KindNone {
		return a.status(ctx, invalidf("lookup for user %q: kind must be OBJECT_KIND_FOLDER or OBJECT_KIND_USER", req.GetUser()))
	}
	query := queryKey("lookup_resources", req.GetUser(), req.GetRight(), kind.String())
	after, limit, err := a.startPage(ctx, "lookup_resources", query, req, a.lookupLimit)
	if err != nil {
		return err
	}
	ctx, sp := a.span(ctx, "canopy.lookup", attribute.String("canopy.lookup", "resources"), attribute.String("canopy.right", req.GetRight()))
	p, err := a.view(ctx).LookupResources(req.GetUser(), req.GetRight(), kind, after, limit)
	if err != nil {
		endSpan(sp, err)
		return a.status(ctx, err)
	}
	err = streamPage(ctx, a.opts.DeadlineMargin, p, query, func(ids []string, rev uint64, next string) error {
		sp.AddEvent("page", trace.WithAttributes(attribute.Int("canopy.results", len(ids)), attribute.Int64("canopy.revision", int64(rev))))
		return stream.Send(&pb.LookupResourcesResponse{Ids: ids, Revision: rev, NextPageToken: next})
	})
	endSpan(sp, err)
	return err
}

func (a *access) LookupSubjects(req *pb.LookupSubjectsRequest, stream grpc.ServerStreamingServer[pb.LookupSubjectsResponse]) error {
	ctx := stream.Context()
	x, err := refFromPB(req.GetResource(), "resource")
	if err != nil {
		return a.status(ctx, err)
	}
	query := queryKey("lookup_subjects", req.GetRight(), x.String())
	after, limit, err := a.startPage(ctx, "lookup_subjects", query, req, a.lookupLimit)
	if err != nil {
		return err
	}
	ctx, sp := a.span(ctx, "canopy.lookup", attribute.String("canopy.lookup", "subjects"), attribute.String("canopy.right", req.GetRight()))
	p, err := a.view(ctx).LookupSubjects(req.GetRight(), x, after, limit)
	if err != nil {
		endSpan(sp, err)
		return a.status(ctx, err)
	}
	err = streamPage(ctx, a.opts.DeadlineMargin, p, query, func(ids []string, rev uint64, next string) error {
		sp.AddEvent("page", trace.WithAttributes(attribute.Int("canopy.results", len(ids)), attribute.Int64("canopy.revision", int64(rev))))
		return stream.Send(&pb.LookupSubjectsResponse{UserIds: ids, Revision: rev, NextPageToken: next})
	})
	endSpan(sp, err)
	return err
}

func (a *access) EffectiveAccess(ctx context.Context, req *pb.EffectiveAccessRequest) (*pb.EffectiveAccessResponse, error) {
	if err := a.consistent(ctx, req.GetConsistency()); err != nil {
		return nil, a.status(ctx, err)
	}
	acc, err := a.view(ctx).EffectiveAccess(req.GetUser())
	if err != nil {
		return nil, a.status(ctx, err)
	}
	out := &pb.EffectiveAccessResponse{User: userToPB(acc.User), SelfRights: acc.SelfRights, Revision: acc.Revision}
	for _, e := range acc.Entries {
		pe := &pb.AccessEntry{Grant: grantToPB(e.Grant), Via: e.Via, Rights: e.Rights}
		for _, l := range e.Locks {
			pe.Locks = append(pe.Locks, lockToPB(l))
		}
		out.Entries = append(out.Entries, pe)
	}
	return out, nil
}
