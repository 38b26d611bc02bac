package client

import (
	"context"
	"errors"
	"io"
	"iter"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// Decision is the answer to Check.
type Decision struct {
	Allowed  bool
	Reason   pb.Reason
	Revision uint64
	// Err is why an item of a BatchCheck could not be decided (a status
	// error with the code the item would have got alone, its message
	// naming the item); nil when it was decided, and always for Check.
	Err error
}

// Check asks whether user may exercise right on resource (nil for a
// capability).
func (c *Client) Check(ctx context.Context, user, right string, resource *pb.ObjectRef, opts ...ReadOption) (Decision, error) {
	r, err := c.AccessService.Check(ctx, &pb.CheckRequest{User: user, Right: right, Resource: resource, Consistency: c.consistency(opts)})
	if err != nil {
		return Decision{}, err
	}
	c.saw(r.GetRevision())
	return Decision{Allowed: r.GetAllowed(), Reason: r.GetReason(), Revision: r.GetRevision()}, nil
}

// CheckItem is one question of a BatchCheck.
type CheckItem struct {
	User     string
	Right    string
	Resource *pb.ObjectRef // nil for a capability
}

// BatchCheck decides every item at one revision and returns the decisions
// in the items' order. An item that could not be decided has its own Err;
// the call's error is for the whole batch (too many items, say).
func (c *Client) BatchCheck(ctx context.Context, items []CheckItem, opts ...ReadOption) ([]Decision, error) {
	req := &pb.BatchCheckRequest{Consistency: c.consistency(opts)}
	for _, it := range items {
		req.Items = append(req.Items, &pb.CheckItem{User: it.User, Right: it.Right, Resource: it.Resource})
	}
	r, err := c.AccessService.BatchCheck(ctx, req)
	if err != nil {
		return nil, err
	}
	c.saw(r.GetRevision())
	out := make([]Decision, len(r.GetResults()))
	for i, res := range r.GetResults() {
		out[i] = Decision{Allowed: res.GetAllowed(), Reason: res.GetReason(), Revision: r.GetRevision()}
		if e := res.GetError(); e != nil {
			out[i].Err = status.Error(codes.Code(e.GetCode()), e.GetMessage())
		}
	}
	return out, nil
}

// Explain decides like Check and says why: the grant and the folder paths
// that allowed, or the lock that denied.
func (c *Client) Explain(ctx context.Context, user, right string, resource *pb.ObjectRef, opts ...ReadOption) (*pb.ExplainResponse, error) {
	r, err := c.AccessService.Explain(ctx, &pb.ExplainRequest{User: user, Right: right, Resource: resource, Consistency: c.consistency(opts)})
	if err != nil {
		return nil, err
	}
	c.saw(r.GetRevision())
	return r, nil
}

// EffectiveAccess returns every grant that reaches user and what it covers.
func (c *Client) EffectiveAccess(ctx context.Context, user string, opts ...ReadOption) (*pb.EffectiveAccessResponse, error) {
	r, err := c.AccessService.EffectiveAccess(ctx, &pb.EffectiveAccessRequest{User: user, Consistency: c.consistency(opts)})
	if err != nil {
		return nil, err
	}
	c.saw(r.GetRevision())
	return r, nil
}

// LookupResources yields, in ascending order, the id of every folder or
// user (kind) that user may exercise right on, following page tokens to
// the end. A stream cut by a dropped connection is opened again and goes
// on after the last id yielded. It stops at the first error, which it
// yields.
func (c *Client) LookupResources(ctx context.Context, user, right string, kind pb.ObjectKind, opts ...ReadOption) iter.Seq2[string, error] {
	cons := c.consistency(opts)
	return lookup(ctx, c, func(ctx context.Context, token string) (func() (lookupPage, error), error) {
		s, err := c.AccessService.LookupResources(ctx, &pb.LookupResourcesRequest{User: user, Right: right, Kind: kind, PageToken: token, Consistency: cons})
		if err != nil {
			return nil, err
		}
		return func() (lookupPage, error) {
			m, err := s.Recv()
			return lookupPage{m.GetIds(), m.GetRevision(), m.GetNextPageToken()}, err
		}, nil
	})
}

// LookupSubjects yields, in ascending order, the id of every active user
// with right on resource (nil: everyone holding the capability), as
// LookupResources does.
func (c *Client) LookupSubjects(ctx context.Context, right string, resource *pb.ObjectRef, opts ...ReadOption) iter.Seq2[string, error] {
	cons := c.consistency(opts)
	return lookup(ctx, c, func(ctx context.Context, token string) (func() (lookupPage, error), error) {
		s, err := c.AccessService.LookupSubjects(ctx, &pb.LookupSubjectsRequest{Right: right, Resource: resource, PageToken: token, Consistency: cons})
		if err != nil {
			return nil, err
		}
		return func() (lookupPage, error) {
			m, err := s.Recv()
			return lookupPage{m.GetUserIds(), m.GetRevision(), m.GetNextPageToken()}, err
		}, nil
	})
}

// lookupPage is what one message of either lookup stream holds.
type lookupPage struct {
	ids  []string
	rev  uint64
	next string // set on the last message of a stream cut by page size
}

// lookup follows a lookup's streams from page to page; open starts one
// from a page token and returns its receive function. Ids come in
// ascending order, so a stream that fails in a way worth retrying is
// opened again from the same page token and what was yielded already is
// skipped.
func lookup(ctx context.Context, c *Client, open func(ctx context.Context, token string) (func() (lookupPage, error), error)) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		token, last, yielded := "", "", false
		for {
			var next string
			err := c.withRetry(ctx, func() error {
				recv, err := open(ctx, token)
				if err != nil {
					return err
				}
				for {
					p, err := recv()
					if errors.Is(err, io.EOF) {
						return nil
					}
					if err != nil {
						return err
					}
					c.saw(p.rev)
					for _, id := range p.ids {
						if yielded && id <= last {
							continue
						}
						last, yielded = id, true
						if !yield(id, nil) {
							return errStop
						}
					}
					next = p.next
				}
			})
			switch {
			case errors.Is(err, errStop):
				return
			case err != nil:
				yield("", err)
				return
			case next == "":
				return
			}
			token = next
		}
	}
}

// errStop ends a stream's loop when the caller stops iterating.
var errStop = errors.New("client: iteration stopped")
