package graph

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Clock tells the index what time it is. Decisions about expiry and the
// commit time of a batch come from it and from nowhere else.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function, such as time.Now, to Clock.
type ClockFunc func() time.Time

// Now returns f().
func (f ClockFunc) Now() time.Time { return f() }

// Commit is a batch as it is made durable: its revision, when and by whom it
// was written, the primitive mutations it applied (cascades expanded), and
// the record of every entity it touched as the batch left it.
type Commit struct {
	Revision uint64
	Time     time.Time
	Actor    string
	// ActedFor is the user the batch was written on behalf of
	// (Index.WriteAs), "" for none.
	ActedFor  string
	Mutations []Mutation
	// Places and Touched say where each mutation happened, so that
	// streams can be filtered by organisation and subtree, also on replay
	// (scope.go): Touched[i] lists the places Mutations[i] touched, each
	// standing for itself and every place above it at the time, and is
	// nil for a change to the whole service. Read them with InScope. A
	// log written before scopes were kept has none (Touched is nil).
	Places  []Place
	Touched [][]int32
	// Subjects[i] lists the objects Mutations[i] touched, for the audit
	// trail (history.go). It is filled in the commits handed to the
	// journal; a change log keeps it when its store builds the trail from
	// the log (etcdstore), and then gives it back.
	Subjects [][]Object
	Records  []Record
	// Access holds the changes the batch made to the effective access of
	// the users being watched (Index.WatchAccess), in mutation order. It
	// is filled only in the commits handed to Options.OnAccess, and not
	// kept in the log.
	Access []AccessChange
}

// Journal makes batches durable and gives them back at start. The bbolt
// store is one; a distributed engine could be another.
type Journal interface {
	// Load calls fn with every stored record, in any order, and returns the
	// revision they are at (0 for an empty journal).
	Load(fn func(Record) error) (uint64, error)
	// Append durably stores commits, which carry revisions base+1, base+2,
	// and so on, all or none. It returns an error wrapping ErrConflict,
	// storing nothing, when the journal's revision is not base. It returns
	// only once the commits are on stable storage.
	Append(ctx context.Context, base uint64, commits []Commit) error
}

// Feed is a journal that other nodes append to as well (a distributed
// store). Its Load gives the records at some revision no newer than its
// head; the index then reads the log from there before it opens, follows
// it for as long as it is open, and, when an append conflicts, reads what
// was committed first and validates the batches again.
type Feed interface {
	Journal
	// ReadLog returns up to max commits from revision from onwards, in
	// revision order.
	ReadLog(from uint64, max int) ([]Commit, error)
	// Follow calls fn with every commit from revision from onwards, in
	// order, as it is committed, until ctx ends or fn fails (it returns
	// the error that stopped it).
	Follow(ctx context.Context, from uint64, fn func(Commit) error) error
}

// Options configure an Index.
type Options struct {
	// Clock gives decision and commit times. Required.
	Clock Clock
	// Journal makes writes durable. Nil keeps the index in memory only.
	Journal Journal
	// MaxGroup is the most batches committed together. Zero means 256.
	MaxGroup int
	// OnCommit, if set, is called after each group of commits is applied,
	// in revision order, from the writer's goroutine. It must not block.
	OnCommit func([]Commit)
	// IDs is the grammar of the ids writes may create (zero: IDText).
	IDs IDGrammar
	// MaxDepth is the most levels a tree may have, its root being level
	// 1; a write that would make a tree deeper is refused with
	// ErrInvalid. Zero means DefaultMaxDepth; negative, no limit. Like the
	// id grammar it holds for writes, not for loading or applying a feed.
	MaxDepth int
	// MaxBatch is the most mutations one Write or Import may carry; more
	// is refused with ErrInvalid naming the limit. Zero means
	// MaxBatchSize, which is also the most it may be.
	MaxBatch int
	// MaxIDBytes is the longest id, in bytes, a write may create; longer
	// is refused with ErrInvalid naming the limit. Zero means MaxIDLen,
	// which is also the most it may be. Like the grammar it holds for
	// writes, not for loading.
	MaxIDBytes int
	// OnFeedError, if set, is called when following a Feed stops with an
	// error; the index tries again from its revision after a pause.
	OnFeedError func(error)
	// OnReload, if set, is called on the writer's goroutine when the index
	// has loaded a Feed afresh because its log no longer held the revision
	// the index needed (ErrLogCompacted): the commits in between were never
	// handed to OnCommit, so whoever follows them must start again.
	OnReload func(rev uint64)
	// OnAccess, if set, is called while any user's access is watched
	// (WatchAccess), with the commits in revision order, each with the
	// watched users' changes in Commit.Access, once they are worked out:
	// shortly after OnCommit, from a goroutine of the index's. It must not
	// block.
	OnAccess func([]Commit)
}

// Index is the in-memory access graph. Reads may be called from any number
// of goroutines and never wait for disk or for the writer; writes are
// queued to one writer goroutine, which commits them in groups, so a
// reader sees all of a batch or none of it (see "Readers and the writer"
// in doc.go).
type Index struct {
	opts Options

	// sides are the two copies of the state; live is the one readers
	// read, the other is the spare, which only the writer touches and
	// whose mu it holds for writing throughout.
	sides [2]*side
	live  atomic.Pointer[side]
	head  atomic.Uint64 // the revision of the live side
	// behind are the commits the spare has still to apply (catchUp).
	// Only the writer touches it.
	behind []Commit

	mu    sync.Mutex    // guards the fields below; never held by a reader
	revCh chan struct{} // closed when head next advances
	exp   expiries      // expiries not yet recorded, as of the live side
	// sh is the copy access streams are worked out on (shadow.go), nil
	// while no user is watched; made and dropped under shMu.
	sh *shadow

	expWake chan struct{} // signalled when a grant with an expiry is added

	shMu       sync.Mutex
	linger     atomic.Pointer[time.Timer] // the last timer set to drop an idle shadow
	accessBusy atomic.Int64               // nanoseconds the shadows spent on watched users' access

	// feed is the journal when other nodes append to it too; nil else.
	feed Feed

	queue   chan *writeReq
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the writer has returned
	// followed is closed when the follower of the feed has returned.
	followed chan struct{}
	once     sync.Once
}

// Open builds an index from the journal's records, starts its writer, and,
// when the journal is empty, writes the Bootstrap batch as revision 1.
func Open(ctx context.Context, opts Options) (*Index, error) {
	if opts.Clock == nil {
		return nil, errors.New("graph: Options.Clock is required")
	}
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 256
	}
	if opts.MaxDepth == 0 {
		opts.MaxDepth = DefaultMaxDepth
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = MaxBatchSize
	}
	if opts.MaxBatch < 0 || opts.MaxBatch > MaxBatchSize {
		return nil, fmt.Errorf("graph: Options.MaxBatch %d: want 1 to %d", opts.MaxBatch, MaxBatchSize)
	}
	if opts.MaxIDBytes == 0 {
		opts.MaxIDBytes = MaxIDLen
	}
	if opts.MaxIDBytes < 0 || opts.MaxIDBytes > MaxIDLen {
		return nil, fmt.Errorf("graph: Options.MaxIDBytes %d: want 1 to %d", opts.MaxIDBytes, MaxIDLen)
	}
	ix := &Index{
		opts:     opts,
		revCh:    make(chan struct{}),
		expWake:  make(chan struct{}, 1),
		queue:    make(chan *writeReq, opts.MaxGroup),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
		followed: make(chan struct{}),
	}
	first, loaded := newState(), uint64(0)
	if opts.Journal != nil {
		ix.feed, _ = opts.Journal.(Feed)
		var err error
		if first, loaded, err = loadJournal(opts.Journal); err != nil {
			return nil, err
		}
	}
	ix.sides = [2]*side{{s: first, rev: loaded}, {s: first.clone(nil), rev: loaded}}
	ix.sides[1].mu.Lock() // the spare, held by the writer from now on
	ix.live.Store(ix.sides[0])
	ix.head.Store(loaded)
	ix.rebuildExpiries(first)
	go ix.writer()
	if ix.feed != nil {
		go ix.follow()
	} else {
		close(ix.followed)
	}
	if loaded == 0 {
		// Enqueued directly: the service's own batch is not bound by the
		// limit on callers' writes. Another node may write it first.
		if _, err := ix.enqueue(ctx, &writeReq{ctx: ctx, actor: SystemActor, muts: Bootstrap(), bootstrap: true}); err != nil {
			ix.Close()
			return nil, fmt.Errorf("graph: bootstrap: %w", err)
		}
	}
	return ix, nil
}

// loadJournal builds a state from the journal's records and, for a feed,
// the log after them, and returns it with its revision.
func loadJournal(j Journal) (*state, uint64, error) {
	// Collected in fixed chunks, never copied: a million records
	// appended to one slice would be copied again at every doubling.
	var chunks [][]Record
	rev, err := j.Load(func(r Record) error {
		if len(chunks) == 0 || len(chunks[len(chunks)-1]) == recordChunk {
			chunks = append(chunks, make([]Record, 0, recordChunk))
		}
		chunks[len(chunks)-1] = append(chunks[len(chunks)-1], r)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("graph: load journal: %w", err)
	}
	s := newState()
	t := &txn{s: s, forget: true}
	if err := t.restore(chunks); err != nil {
		return nil, 0, fmt.Errorf("graph: load journal at revision %d: %w", rev, err)
	}
	if f, ok := j.(Feed); ok {
		if rev, err = replayFeed(t, f, rev); err != nil {
			return nil, 0, err
		}
	}
	return s, rev, nil
}

// MaxBatch returns the most mutations one Write or Import may carry.
func (ix *Index) MaxBatch() int { return ix.opts.MaxBatch }

// Close stops the writer. Writes queued and not yet taken fail with
// ErrClosed; reads go on working on the last state.
func (ix *Index) Close() {
	ix.once.Do(func() { close(ix.stop) })
	<-ix.stopped
	<-ix.followed
	if t := ix.linger.Load(); t != nil {
		t.Stop() // the shadow it would drop is gone already
	}
}

// side is one copy of the state and the revision it is at.
type side struct {
	// mu is held for reading by each reader of s, and for writing by the
	// writer while s is the spare.
	mu  sync.RWMutex
	s   *state
	rev uint64
}

// read returns the live side, held for reading: the caller reads v.s and
// v.rev and then calls v.mu.RUnlock. It never waits for the writer, which
// holds only the spare: a side that stops being live as it is taken
// fails TryRLock (the writer waits for it) or the second look, and the
// other, live by then, is taken instead.
func (ix *Index) read() *side {
	for {
		v := ix.live.Load()
		if v.mu.TryRLock() {
			if ix.live.Load() == v {
				return v
			}
			v.mu.RUnlock()
		}
	}
}

// Revision returns the revision the index is at.
func (ix *Index) Revision() uint64 { return ix.head.Load() }

// WaitFor returns once the index has reached revision rev, or with the
// context's error when it ends first.
func (ix *Index) WaitFor(ctx context.Context, rev uint64) error {
	cur, err := waitRevision(ctx, rev, func() (uint64, <-chan struct{}) {
		ix.mu.Lock()
		defer ix.mu.Unlock()
		return ix.head.Load(), ix.revCh
	}, nil)
	if err != nil {
		return fmt.Errorf("wait for revision %d (at %d): %w", rev, cur, err)
	}
	return nil
}

// waitRevision returns once read reports a revision of at least want. read
// gives the revision with a channel closed when it next advances. It gives
// up when ctx ends, with ctx's error, or when ended (nil: never) is
// closed, with errEnded; either way with the revision reached.
func waitRevision(ctx context.Context, want uint64, read func() (uint64, <-chan struct{}), ended <-chan struct{}) (uint64, error) {
	for {
		cur, next := read()
		if cur >= want {
			return cur, nil
		}
		select {
		case <-next:
		case <-ended:
			return cur, errEnded
		case <-ctx.Done():
			return cur, ctx.Err()
		}
	}
}

// errEnded: what waitRevision waited on ended first.
var errEnded = errors.New("ended")

// Records returns the record of every entity, by kind in load order and by
// id within a kind, with the revision they are at.
func (ix *Index) Records() ([]Record, uint64, error) {
	return ix.records(nil)
}

func (ix *Index) records(o Orgs) ([]Record, uint64, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	recs, err := v.s.allRecords(o)
	return recs, v.rev, err
}

// Stats counts what the index holds.
type Stats struct {
	Revision                             uint64
	Folders, Users, Grants, Locks, Rules int
	Rights                               int
	// Watched is how many users' access is streamed (WatchAccess);
	// AccessTime is the time the shadow spent applying commits while any
	// was, the cost of working out their changes; AccessBacklog is how
	// many commits the shadow has still to apply.
	Watched       int
	AccessTime    time.Duration
	AccessBacklog int
}

// Stats returns the index's counts.
func (ix *Index) Stats() Stats {
	v := ix.read()
	st := Stats{
		Revision: v.rev,
		Folders:  v.s.folders.len(), Users: v.s.users.len(),
		Grants: v.s.grants.len(), Locks: v.s.locks.len(), Rules: v.s.rules,
		Rights: len(v.s.cat.slot),
	}
	v.mu.RUnlock()
	ix.mu.Lock()
	sh := ix.sh
	ix.mu.Unlock()
	st.AccessTime = time.Duration(ix.accessBusy.Load())
	if sh != nil {
		st.AccessBacklog = sh.backlog()
		st.Watched = int(sh.users.Load())
	}
	return st
}
