// Package replica is Canopy's index inside a service: a copy of a
// canopyd's state, loaded from its Export at one revision and kept up to
// date by its Watch, that answers Check, BatchCheck and Explain in
// process with the index's own code, at the index's own speed, with no
// network hop.
//
// It is the same follower as a canopyd node over etcd (graph.Feed): a
// replica's index applies every commit the server sends through the one
// function every index applies batches with, so at revision N it decides
// exactly as the server does at N. It resumes after a dropped connection,
// loads afresh when the server no longer holds the revision it needs
// (OUT_OF_RANGE), and refuses to answer (ErrStale) when it has not
// reached the server for longer than Options.MaxStaleness.
//
//	c, _ := client.Dial("canopy:7070")
//	r, err := replica.Open(ctx, c, replica.Options{})
//	d, err := r.Check(ctx, "tom", "edit", graph.UserRef("carl"))
//
// It never writes: write through the client, then read at the write's
// revision with replica.AtLeast(rev).
package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-authz/canopy/client"
	"github.com/canopy-authz/canopy/graph"
)

// ErrStale means the replica has not reached its server for longer than
// Options.MaxStaleness, so it cannot say how far behind it is.
var ErrStale = errors.New("replica: out of touch with the server")

// Options configure a replica.
type Options struct {
	// MaxStaleness is the longest a replica answers for without having
	// reached the server; past it, reads that ask for no revision fail
	// with ErrStale. Zero means 10 s.
	MaxStaleness time.Duration
	// Clock gives decision times; nil means the system clock.
	Clock graph.Clock
	// OnError, if set, is told of errors following the server, which the
	// replica recovers from by itself.
	OnError func(error)
}

// Replica is a followed copy of a canopyd's index. Its methods may be
// called from any goroutine.
type Replica struct {
	c    *client.Client
	opts Options
	ix   atomic.Pointer[graph.Index]
	// head is the server's revision at the last poll, contact the time
	// (Unix nanoseconds) of the last poll that reached it.
	head    atomic.Uint64
	contact atomic.Int64

	reloading atomic.Bool
	mu        sync.Mutex // serializes loads and Close
	closed    bool
	// swapped is closed when a fresh index replaces ix, and replaced;
	// swapMu, held only for that, guards it.
	swapMu  sync.Mutex
	swapped chan struct{}
	stop    context.CancelFunc
	polled  chan struct{}
}

// Open loads the server's state through c and starts following it.
func Open(ctx context.Context, c *client.Client, opts Options) (*Replica, error) {
	if opts.MaxStaleness <= 0 {
		opts.MaxStaleness = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = graph.ClockFunc(time.Now)
	}
	r := &Replica{c: c, opts: opts, polled: make(chan struct{}), swapped: make(chan struct{})}
	if err := r.poll(ctx); err != nil {
		return nil, err
	}
	ix, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	r.ix.Store(ix)
	pctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go r.polling(pctx)
	return r, nil
}

// load opens an index over the server as a feed.
func (r *Replica) load(ctx context.Context) (*graph.Index, error) {
	ix, err := graph.Open(ctx, graph.Options{Clock: r.opts.Clock, Journal: remoteFeed{r.c}, MaxDepth: -1, OnFeedError: r.feedError})
	if err != nil {
		return nil, fmt.Errorf("replica: load: %w", err)
	}
	return ix, nil
}

// feedError is told why following stopped. When the server no longer
// holds the revision needed, the replica loads afresh and swaps the new
// index in; readers of the old one finish on it.
func (r *Replica) feedError(err error) {
	if r.opts.OnError != nil {
		r.opts.OnError(err)
	}
	if !errors.Is(err, client.ErrResync) || !r.reloading.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.reloading.Store(false)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.closed {
			return
		}
		ix, err := r.load(context.Background())
		if err != nil {
			if r.opts.OnError != nil {
				r.opts.OnError(err)
			}
			return
		}
		r.swapMu.Lock()
		old := r.ix.Swap(ix)
		close(r.swapped)
		r.swapped = make(chan struct{})
		r.swapMu.Unlock()
		old.Close()
	}()
}

// poll reads the server's revision once.
func (r *Replica) poll(ctx context.Context) error {
	st, err := r.c.Status(ctx)
	if err != nil {
		return fmt.Errorf("replica: read the server's revision: %w", err)
	}
	r.head.Store(st.GetRevision())
	r.contact.Store(time.Now().UnixNano())
	return nil
}

// polling polls the server four times per MaxStaleness until ctx ends.
func (r *Replica) polling(ctx context.Context) {
	defer close(r.polled)
	tick := time.NewTicker(max(r.opts.MaxStaleness/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, r.opts.MaxStaleness)
		if err := r.poll(pctx); err != nil && ctx.Err() == nil && r.opts.OnError != nil {
			r.opts.OnError(err)
		}
		cancel()
	}
}

// Close stops following and releases the index.
func (r *Replica) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stop()
	<-r.polled
	r.ix.Load().Close()
}

// Revision returns the revision the replica's index is at.
func (r *Replica) Revision() uint64 { return r.ix.Load().Revision() }

// Lag says how far behind the server the replica is: the revisions
// between its index and the server's newest at the last poll, and how
// long ago that poll reached the server.
func (r *Replica) Lag() (revisions uint64, since time.Duration) {
	head, rev := r.head.Load(), r.Revision()
	if head > rev {
		revisions = head - rev
	}
	return revisions, time.Since(time.Unix(0, r.contact.Load()))
}

// ReadOption asks for a read at least as fresh as it says.
type ReadOption func(*readOptions)

type readOptions struct {
	atLeast uint64
	fully   bool
}

// AtLeast answers at revision rev or later: the read waits, within its
// context's deadline, for the replica to apply rev (a revision a write
// through the server returned, say).
func AtLeast(rev uint64) ReadOption { return func(o *readOptions) { o.atLeast = max(o.atLeast, rev) } }

// FullyConsistent asks the server for its newest revision first, and then
// answers at that revision or later.
func FullyConsistent() ReadOption { return func(o *readOptions) { o.fully = true } }

// ready returns the index to answer from once it is as fresh as asked.
func (r *Replica) ready(ctx context.Context, opts []ReadOption) (*graph.Index, error) {
	var o readOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.fully {
		st, err := r.c.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("replica: read the server's revision: %w", err)
		}
		o.atLeast = max(o.atLeast, st.GetRevision())
	}
	if o.atLeast == 0 {
		if _, since := r.Lag(); since > r.opts.MaxStaleness {
			return nil, fmt.Errorf("%w: last reached %s ago, at revision %d", ErrStale, since.Round(time.Millisecond), r.head.Load())
		}
		return r.ix.Load(), nil
	}
	for {
		r.swapMu.Lock()
		ix, swapped := r.ix.Load(), r.swapped
		r.swapMu.Unlock()
		// A fresh load replaces the index waited on: wait on the new one.
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-swapped:
				cancel()
			case <-wctx.Done():
			}
		}()
		err := ix.WaitFor(wctx, o.atLeast)
		cancel()
		if err == nil {
			return ix, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("replica: wait for revision %d (at %d): %w", o.atLeast, ix.Revision(), err)
		}
	}
}

// Check decides whether user may exercise right on x, in process.
func (r *Replica) Check(ctx context.Context, user, right string, x graph.Ref, opts ...ReadOption) (graph.Decision, error) {
	ix, err := r.ready(ctx, opts)
	if err != nil {
		return graph.Decision{}, err
	}
	return ix.Check(user, right, x)
}

// BatchCheck decides every request at one revision, in process, as
// graph.Index.CheckMany does: a request that cannot be decided has its
// own error in errs. err is for the whole call (the replica is stale, or
// the wait for a revision ended).
func (r *Replica) BatchCheck(ctx context.Context, reqs []graph.CheckRequest, opts ...ReadOption) (ds []graph.Decision, errs []error, rev uint64, err error) {
	ix, err := r.ready(ctx, opts)
	if err != nil {
		return nil, nil, 0, err
	}
	ds, errs, rev = ix.CheckMany(reqs)
	return ds, errs, rev, nil
}

// Explain decides like Check and says why, in process.
func (r *Replica) Explain(ctx context.Context, user, right string, x graph.Ref, opts ...ReadOption) (graph.Explanation, error) {
	ix, err := r.ready(ctx, opts)
	if err != nil {
		return graph.Explanation{}, err
	}
	return ix.Explain(user, right, x)
}
