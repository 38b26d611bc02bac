package server

import (
	"context"
	"fmt"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// Audit is the store's audit trail (store.DB keeps one).
type Audit interface {
	// History returns the entries q selects, newest first.
	History(ctx context.Context, q graph.HistoryQuery) (graph.HistoryPage, error)
}

// defaultHistoryPage is the page size of a History call that asks for 0.
const defaultHistoryPage = 100

// History answers from the store's audit trail. A caller confined to
// organisations sees the mutations that touched them, and changes to the
// whole service.
func (w *watch) History(ctx context.Context, req *pb.HistoryRequest) (*pb.HistoryResponse, error) {
	if w.opts.Audit == nil {
		return nil, status.Error(codes.Unimplemented, "history: this server's store keeps no audit trail")
	}
	q := graph.HistoryQuery{Actor: req.GetActor(), ActedFor: req.GetActedFor(), From: req.GetFromRevision(), To: req.GetToRevision(), Orgs: confinedTo(ctx)}
	var err error
	if o := req.GetObject(); o != "" {
		if q.Object, err = graph.ParseObject(o); err != nil {
			return nil, w.status(ctx, err)
		}
	}
	if q.Since, err = timeFromPB(req.GetSince(), "history", req.GetObject(), "since"); err != nil {
		return nil, w.status(ctx, err)
	}
	if q.Until, err = timeFromPB(req.GetUntil(), "history", req.GetObject(), "until"); err != nil {
		return nil, w.status(ctx, err)
	}
	if q.Limit, err = w.pageSizeOr("history", req.GetPageSize(), defaultHistoryPage); err != nil {
		return nil, w.status(ctx, err)
	}
	key := queryKey("history", req.GetObject(), q.Actor, q.ActedFor, strconv.FormatUint(q.From, 10), strconv.FormatUint(q.To, 10),
		q.Since.String(), q.Until.String())
	after, err := decodeToken(req.GetPageToken(), key)
	if err != nil {
		return nil, w.status(ctx, err)
	}
	if after != "" {
		if q.Before, err = graph.ParseHistoryMark(after); err != nil {
			return nil, w.status(ctx, invalidf("page token %q is not one this server issued", req.GetPageToken()))
		}
	}
	hctx, sp := w.span(ctx, "canopy.history", attribute.Bool("canopy.history.object", !q.Object.IsZero()), attribute.Int("canopy.limit", q.Limit))
	page, err := w.opts.Audit.History(hctx, q)
	sp.SetAttributes(attribute.Int("canopy.entries", len(page.Entries)))
	endSpan(sp, err)
	if err != nil {
		return nil, w.status(ctx, fmt.Errorf("history: %w", err))
	}
	resp := &pb.HistoryResponse{Entries: make([]*pb.HistoryEntry, len(page.Entries))}
	for i, e := range page.Entries {
		resp.Entries[i] = &pb.HistoryEntry{Revision: e.Revision, Index: uint32(e.Index), CommitTime: timestamppb.New(e.Time),
			Actor: e.Actor, ActedFor: e.ActedFor, Mutation: MutationToPB(e.Mutation)}
	}
	if page.More {
		resp.NextPageToken = encodeToken(key, page.Entries[len(page.Entries)-1].HistoryMark.String())
	}
	return resp, nil
}
