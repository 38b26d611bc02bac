package graph

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Access streams are worked out on a shadow: a copy of the state that
// follows the index's commits on a goroutine of its own. Comparing a
// user's access before and after a change means undoing and redoing the
// change in place, which on the index itself would hold the write lock
// (and so every check) for as long as it takes. On the shadow neither the
// writer nor any reader waits for it; what it costs is the shadow's own
// lag behind the index, and memory: while it exists the index's state is
// held twice.
//
// The writer makes the shadow when the first user is watched, between two
// groups of commits so that it copies a committed state, into memory the
// caller made ready (clone.go), and hands it every commit it applies from
// then on. It is dropped shadowLinger after the last watch stops, so that
// a stream that reconnects finds it still there.

// ErrBehind: an access stream fell too far behind the writes it follows.
var ErrBehind = errors.New("fell behind")

// maxShadowBacklog is the most commits the shadow may have waiting. A
// commit that would queue more drops it, and every access watch ends with
// ErrBehind: the writer never waits for the shadow.
var maxShadowBacklog = 1 << 16

// shadowLinger is how long the shadow is kept after the last watch stops.
var shadowLinger = 30 * time.Second

// errIdle ends a shadow that no watch has used for shadowLinger.
var errIdle = errors.New("no user watched")

// shadow is the copy access streams are worked out on, and the goroutine
// that keeps it up with the index.
type shadow struct {
	onAccess func([]Commit)

	qmu   sync.Mutex // guards queue
	queue []Commit   // committed, not yet applied here
	wake  chan struct{}

	mu      sync.Mutex // guards the fields below
	s       *state
	rev     uint64
	revCh   chan struct{}  // closed when rev next advances
	watched map[string]int // users whose access is followed, with their watch counts

	users atomic.Int64  // len(watched), for Stats
	busy  *atomic.Int64 // the index's nanoseconds spent applying commits while a user was watched

	finish  chan struct{} // closed by close: apply what is queued, then end
	ended   chan struct{} // closed when the shadow stops for good, err set
	endOnce sync.Once
	err     error
	done    chan struct{} // closed when run has returned
}

func newShadow(s *state, rev uint64, onAccess func([]Commit), busy *atomic.Int64) *shadow {
	return &shadow{
		onAccess: onAccess, wake: make(chan struct{}, 1), busy: busy,
		s: s, rev: rev, revCh: make(chan struct{}), watched: map[string]int{},
		finish: make(chan struct{}), ended: make(chan struct{}), done: make(chan struct{}),
	}
}

// push queues a commit the index has applied. It never waits for the
// shadow's work, and ends the shadow rather than queue without bound. It
// reports whether the shadow goes on.
func (sh *shadow) push(c Commit) bool {
	select {
	case <-sh.ended:
		return false
	default:
	}
	c.Records = nil
	sh.qmu.Lock()
	full := len(sh.queue) >= maxShadowBacklog
	if !full {
		sh.queue = append(sh.queue, c)
	}
	sh.qmu.Unlock()
	if full {
		sh.end(fmt.Errorf("access streams: more than %d commits waiting: %w", maxShadowBacklog, ErrBehind))
		return false
	}
	select {
	case sh.wake <- struct{}{}:
	default:
	}
	return true
}

// backlog returns how many commits wait to be applied.
func (sh *shadow) backlog() int {
	sh.qmu.Lock()
	defer sh.qmu.Unlock()
	return len(sh.queue)
}

// end stops the shadow for good with err; the first call wins.
func (sh *shadow) end(err error) {
	sh.endOnce.Do(func() {
		sh.err = err
		close(sh.ended)
	})
}

// close applies what is queued, hands it on, and ends the shadow with
// ErrClosed. Nothing may be pushed after it.
func (sh *shadow) close() {
	close(sh.finish)
	<-sh.done
}

// run applies queued commits in order and hands each, with its access
// changes, to onAccess.
func (sh *shadow) run() {
	defer close(sh.done)
	for {
		finishing := false
		select {
		case <-sh.ended:
			return
		default:
		}
		select {
		case <-sh.wake:
		case <-sh.finish:
			finishing = true
		case <-sh.ended:
			return
		}
		sh.qmu.Lock()
		batch := sh.queue
		sh.queue = nil
		sh.qmu.Unlock()
		for i := range batch {
			if err := sh.apply(&batch[i]); err != nil {
				sh.end(err)
				return
			}
			// Each commit is handed on as soon as it is worked out, not
			// after the ones queued behind it.
			if sh.onAccess != nil {
				sh.onAccess(batch[i : i+1])
			}
		}
		if finishing {
			sh.end(ErrClosed)
			return
		}
	}
}

// apply applies one commit and fills in its access changes.
func (sh *shadow) apply(c *Commit) error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.Revision != sh.rev+1 {
		return fmt.Errorf("access streams: commit %d follows revision %d: %w", c.Revision, sh.rev, ErrConflict)
	}
	start := time.Now()
	users := slices.Sorted(maps.Keys(sh.watched))
	access, err := applyWatched(sh.s, c.Mutations, users)
	if err != nil {
		return fmt.Errorf("access streams: apply revision %d: %w", c.Revision, err)
	}
	if len(users) > 0 {
		sh.busy.Add(int64(time.Since(start)))
	}
	c.Access = access
	sh.rev = c.Revision
	close(sh.revCh)
	sh.revCh = make(chan struct{})
	return nil
}

// waitFor returns once the shadow has applied revision rev.
func (sh *shadow) waitFor(ctx context.Context, rev uint64) error {
	cur, err := waitRevision(ctx, rev, func() (uint64, <-chan struct{}) {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return sh.rev, sh.revCh
	}, sh.ended)
	switch {
	case errors.Is(err, errEnded):
		return sh.err
	case err != nil:
		return fmt.Errorf("access streams: wait for revision %d (at %d): %w", rev, cur, err)
	}
	return nil
}

// AccessWatch follows one user's effective access (Index.WatchAccess).
type AccessWatch struct {
	// Start is the user's access at Revision, as the Gained regions of a
	// change with Mutation -1.
	Start AccessChange
	// Revision is the revision Start is at. Every later commit that
	// changes the user's access reaches Options.OnAccess with the change
	// in Commit.Access, in revision order, until Stop is called or Ended
	// is closed.
	Revision uint64

	ix   *Index
	sh   *shadow
	once sync.Once
}

// Ended is closed when the changes stop before Stop is called: the index
// closed, or the streams fell too far behind the writes. Err says which.
func (w *AccessWatch) Ended() <-chan struct{} { return w.sh.ended }

// Err returns why Ended was closed: an error wrapping ErrClosed or
// ErrBehind. It is nil while the watch goes on.
func (w *AccessWatch) Err() error {
	select {
	case <-w.sh.ended:
		return w.sh.err
	default:
		return nil
	}
}

// Stop stops following the user. It may be called more than once.
func (w *AccessWatch) Stop() {
	w.once.Do(func() {
		ix, sh, user := w.ix, w.sh, w.Start.User
		ix.shMu.Lock()
		defer ix.shMu.Unlock()
		sh.mu.Lock()
		if sh.watched[user]--; sh.watched[user] <= 0 {
			delete(sh.watched, user)
		}
		sh.users.Store(int64(len(sh.watched)))
		sh.mu.Unlock()
		ix.retireIfIdle(sh)
	})
}

// retireIfIdle drops sh, shadowLinger from now, if no user is watched on
// it then. ix.shMu must be held.
func (ix *Index) retireIfIdle(sh *shadow) {
	idle := func() bool {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return len(sh.watched) == 0
	}
	if !idle() {
		return
	}
	if shadowLinger <= 0 {
		ix.dropShadow(sh)
		return
	}
	t := time.AfterFunc(shadowLinger, func() {
		ix.shMu.Lock()
		defer ix.shMu.Unlock()
		if idle() {
			ix.dropShadow(sh)
		}
	})
	if old := ix.linger.Swap(t); old != nil {
		old.Stop() // this one looks again later
	}
}

// WatchAccess starts following user's effective access, from a revision no
// older than the index's when it is called: the access then is Start, and
// every change after it reaches Options.OnAccess. An unknown user is an
// error. The first watch makes the index's shadow, which copies the state
// once: writes wait for that (0.3-0.4 s for a million users), and reads
// do not.
func (ix *Index) WatchAccess(ctx context.Context, user string) (*AccessWatch, error) {
	return ix.watchAccess(ctx, nil, user)
}

func (ix *Index) watchAccess(ctx context.Context, o Orgs, user string) (*AccessWatch, error) {
	target := ix.Revision()
	ix.shMu.Lock()
	defer ix.shMu.Unlock()
	sh, err := ix.liveShadow(ctx)
	if err != nil {
		return nil, err
	}
	w, err := sh.watch(ctx, target, o, user)
	if err != nil {
		ix.retireIfIdle(sh) // it may have been made for this call alone
		return nil, err
	}
	w.ix = ix
	return w, nil
}

// watch adds a watch of user once the shadow has reached revision target.
// A caller confined to o may watch only a user of o's.
func (sh *shadow) watch(ctx context.Context, target uint64, o Orgs, user string) (*AccessWatch, error) {
	if err := sh.waitFor(ctx, target); err != nil {
		return nil, fmt.Errorf("watch the access of %q: %w", user, err)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if err := o.see(sh.s, "watch_access", UserRef(user)); err != nil {
		return nil, err
	}
	if _, ok := sh.s.users.get(user); !ok {
		return nil, newErr("watch_access", user, ErrNotFound, "no such user")
	}
	sh.watched[user]++
	sh.users.Store(int64(len(sh.watched)))
	start := startAccess(sh.s, user)
	start.User = user
	return &AccessWatch{Start: start, Revision: sh.rev, sh: sh}, nil
}

// liveShadow returns the shadow, making one when there is none or the last
// one ended. ix.shMu must be held.
func (ix *Index) liveShadow(ctx context.Context) (*shadow, error) {
	ix.mu.Lock()
	sh := ix.sh
	ix.mu.Unlock()
	if sh != nil {
		select {
		case <-sh.ended:
		default:
			return sh, nil
		}
	}
	// Measure on the writer, allocate here, copy on the writer: the
	// writer waits only for the bytes to be moved.
	var size roomSize
	_, err := ix.enqueue(ctx, &writeReq{ctx: ctx, run: func() {
		// On the writer, between groups: the live side does not change.
		size = ix.live.Load().s.roomNeeded()
	}})
	if err != nil {
		return nil, fmt.Errorf("access streams: measure the state: %w", err)
	}
	// Allocated on this goroutine, which the collector also charges for
	// the memory, rather than on the writer.
	r := newRoom(size)
	_, err = ix.enqueue(ctx, &writeReq{ctx: ctx, run: func() {
		// On the writer, between groups: the live side is a committed
		// state, and nothing changes it while it is copied.
		v := ix.live.Load()
		s, rev := v.s.clone(r), v.rev
		ix.mu.Lock()
		sh = newShadow(s, rev, ix.opts.OnAccess, &ix.accessBusy)
		ix.sh = sh
		ix.mu.Unlock()
		go sh.run()
	}})
	if err != nil {
		return nil, fmt.Errorf("access streams: copy the state: %w", err)
	}
	return sh, nil
}

// dropShadow ends sh and, if it is the index's shadow, removes it.
// ix.shMu must be held.
func (ix *Index) dropShadow(sh *shadow) {
	ix.mu.Lock()
	if ix.sh == sh {
		ix.sh = nil
	}
	ix.mu.Unlock()
	sh.end(fmt.Errorf("access streams: %w", errIdle))
}
