package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// ErrResync is what Watch yields, wrapped with the server's message, when
// the revision to resume from is older than the change log keeps: the
// caller's copy cannot be brought up to date change by change and must be
// rebuilt (from Export), then watched from the export's revision + 1.
var ErrResync = errors.New("client: watch revision no longer kept; resync from an export")

// reconnects reports whether a stream that failed with err should be
// opened again: the server was unreachable, restarting, or cut off a
// stream that fell behind.
func reconnects(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}

// streamBackoff waits before reconnecting a stream, doubling the wait
// after each failure in a row up to the retry's MaxBackoff; it reports
// false when ctx ends first.
func (c *Client) streamBackoff(ctx context.Context, wait *time.Duration) bool {
	t := time.NewTimer(*wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	if *wait *= 2; *wait > c.retry.MaxBackoff {
		*wait = c.retry.MaxBackoff
	}
	return true
}

// Watch yields committed changes from revision from on (0: from the
// newest committed revision + 1, that is what is committed from now on),
// in revision order, filtered by filter (nil: everything), one response
// per revision: a batch the server split into parts (WatchResponse.more)
// is joined first. When the connection drops or the server restarts it
// reconnects, with backoff, and resumes after the last revision yielded
// whole, so nothing is missed or repeated. It ends when ctx does
// (yielding nothing more), or with an error it yields: one wrapping
// ErrResync when the revision to resume from is no longer kept, or belongs
// to another history (the server's store was restored from a backup
// since), or any error not worth reconnecting on.
func (c *Client) Watch(ctx context.Context, from uint64, filter *pb.WatchFilter) iter.Seq2[*pb.WatchResponse, error] {
	return func(yield func(*pb.WatchResponse, error) bool) {
		if from == 0 {
			st, err := c.Status(ctx)
			if err != nil {
				yield(nil, fmt.Errorf("client: watch: read the head revision: %w", err))
				return
			}
			from = st.GetRevision() + 1
		}
		wait := c.retry.Backoff
		storeID := "" // the store whose history from continues, once known
		for {
			s, err := c.WatchService.Watch(ctx, &pb.WatchRequest{FromRevision: from, Filter: filter, StoreId: storeID})
			var whole *pb.WatchResponse // the revision being joined from its parts
			for err == nil {
				var m *pb.WatchResponse
				if m, err = s.Recv(); err != nil {
					break
				}
				if whole != nil && whole.GetRevision() == m.GetRevision() {
					whole.Mutations = append(whole.Mutations, m.GetMutations()...)
				} else {
					whole = m
				}
				if m.GetMore() {
					continue
				}
				done := whole
				done.More, whole = false, nil
				storeID = done.GetStoreId()
				wait = c.retry.Backoff
				c.saw(done.GetRevision())
				from = done.GetRevision() + 1
				if !yield(done, nil) {
					return
				}
			}
			switch {
			case ctx.Err() != nil:
				return
			case status.Code(err) == codes.OutOfRange:
				yield(nil, fmt.Errorf("%w: %s", ErrResync, status.Convert(err).Message()))
				return
			case !reconnects(err):
				yield(nil, err)
				return
			case !c.streamBackoff(ctx, &wait):
				return
			}
		}
	}
}

// WatchAccess yields user's effective access as the server streams it:
// first everything the user has (a response with no Cause, whose gained
// regions are the whole access), then each change, with the mutation that
// caused it. When the connection drops or the server restarts it
// reconnects, with backoff, and the server sends the whole access again
// (again with no Cause): the caller replaces its copy with it. It ends
// when ctx does, or with an error not worth reconnecting on, which it
// yields.
func (c *Client) WatchAccess(ctx context.Context, user string) iter.Seq2[*pb.WatchAccessResponse, error] {
	return func(yield func(*pb.WatchAccessResponse, error) bool) {
		wait := c.retry.Backoff
		for {
			s, err := c.WatchService.WatchAccess(ctx, &pb.WatchAccessRequest{User: user})
			for err == nil {
				var m *pb.WatchAccessResponse
				if m, err = s.Recv(); err != nil {
					break
				}
				wait = c.retry.Backoff
				c.saw(m.GetRevision())
				if !yield(m, nil) {
					return
				}
			}
			switch {
			case ctx.Err() != nil:
				return
			case !reconnects(err):
				yield(nil, err)
				return
			case !c.streamBackoff(ctx, &wait):
				return
			}
		}
	}
}

// History yields the audit trail's entries that q selects (its page_size
// and page_token set the first page; later pages follow by themselves),
// newest first: who changed what, and when.
func (c *Client) History(ctx context.Context, q *pb.HistoryRequest) iter.Seq2[*pb.HistoryEntry, error] {
	q = proto.CloneOf(q)
	return paged(ctx, c, func(ctx context.Context, token string) ([]*pb.HistoryEntry, uint64, string, error) {
		if token != "" {
			q.PageToken = token
		}
		r, err := c.WatchService.History(ctx, q)
		return r.GetEntries(), 0, r.GetNextPageToken(), err
	})
}
