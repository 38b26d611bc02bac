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
	Revision  uint64
	Time      time.Time
	Actor     string
	Mutations []Mutation
	// Places and Touched say where each mutation happened, so that
	// streams can be filtered by organisation and subtree, also on replay
	// (scope.go): Touched[i] lists the places Mutations[i] touched, each
	// standing for itself and every place above it at the time, and is
	// nil for a change to the whole service. Read them with InScope. A
	// log written before scopes were kept has none (Touched is nil).
	Places  []Place
	Touched [][]int32
	Records []Record
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

	queue   chan *writeReq
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the writer has returned
	once    sync.Once
}

type writeReq struct {
	ctx       context.Context
	actor     string
	muts      []Mutation
	pre       Preconditions
	importing bool   // an import: expiries in the past are kept, not refused
	orgs      Orgs   // the organisations the writer is confined to; nil: all
	expire    bool   // ExpireDue: the writer fills muts with the due expiries
	run       func() // not a write: a task for the writer, between groups
	done      chan struct{}
	rev       uint64
	err       error
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
		opts:    opts,
		revCh:   make(chan struct{}),
		expWake: make(chan struct{}, 1),
		queue:   make(chan *writeReq, opts.MaxGroup),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	first, loaded := newState(), uint64(0)
	if opts.Journal != nil {
		// Collected in fixed chunks, never copied: a million records
		// appended to one slice would be copied again at every doubling.
		var chunks [][]Record
		rev, err := opts.Journal.Load(func(r Record) error {
			if len(chunks) == 0 || len(chunks[len(chunks)-1]) == recordChunk {
				chunks = append(chunks, make([]Record, 0, recordChunk))
			}
			chunks[len(chunks)-1] = append(chunks[len(chunks)-1], r)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("graph: load journal: %w", err)
		}
		t := &txn{s: first, forget: true}
		if err := t.restore(chunks); err != nil {
			return nil, fmt.Errorf("graph: load journal at revision %d: %w", rev, err)
		}
		loaded = rev
	}
	ix.sides = [2]*side{{s: first, rev: loaded}, {s: first.clone(nil), rev: loaded}}
	ix.sides[1].mu.Lock() // the spare, held by the writer from now on
	ix.live.Store(ix.sides[0])
	ix.head.Store(loaded)
	ix.rebuildExpiries(first)
	go ix.writer()
	if loaded == 0 {
		// Enqueued directly: the service's own batch is not bound by the
		// limit on callers' writes.
		if _, err := ix.enqueue(ctx, &writeReq{ctx: ctx, actor: SystemActor, muts: Bootstrap()}); err != nil {
			ix.Close()
			return nil, fmt.Errorf("graph: bootstrap: %w", err)
		}
	}
	return ix, nil
}

// MaxBatch returns the most mutations one Write or Import may carry.
func (ix *Index) MaxBatch() int { return ix.opts.MaxBatch }

// Close stops the writer. Writes queued and not yet taken fail with
// ErrClosed; reads go on working on the last state.
func (ix *Index) Close() {
	ix.once.Do(func() { close(ix.stop) })
	<-ix.stopped
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

// spare returns the side that is not live, brought up to date. Only the
// writer calls it.
func (ix *Index) spare() *side {
	ix.catchUp()
	return ix.spareBehind()
}

// spareBehind returns the side that is not live, as it is.
func (ix *Index) spareBehind() *side {
	if ix.live.Load() == ix.sides[0] {
		return ix.sides[1]
	}
	return ix.sides[0]
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

// Preconditions are checked against the state a write is validated against;
// when one fails the write is refused with ErrPrecondition.
type Preconditions struct {
	// Revision, when non-zero, must be the index's revision.
	Revision uint64
	// FoldersExist, UsersExist: these ids must exist.
	FoldersExist []string
	UsersExist   []string
	// FoldersAbsent, UsersAbsent: these ids must not exist.
	FoldersAbsent []string
	UsersAbsent   []string
}

func (p *Preconditions) check(s *state, rev uint64) error {
	if p.Revision != 0 && p.Revision != rev {
		return newErr("precondition", fmt.Sprint(p.Revision), ErrPrecondition, "revision is %d", rev)
	}
	for _, id := range p.FoldersExist {
		if _, ok := s.folders.get(id); !ok {
			return newErr("precondition", id, ErrPrecondition, "folder does not exist")
		}
	}
	for _, id := range p.UsersExist {
		if _, ok := s.users.get(id); !ok {
			return newErr("precondition", id, ErrPrecondition, "user does not exist")
		}
	}
	for _, id := range p.FoldersAbsent {
		if _, ok := s.folders.get(id); ok {
			return newErr("precondition", id, ErrPrecondition, "folder exists")
		}
	}
	for _, id := range p.UsersAbsent {
		if _, ok := s.users.get(id); ok {
			return newErr("precondition", id, ErrPrecondition, "user exists")
		}
	}
	return nil
}

// Write applies a batch of mutations atomically: all of them or, with an
// error naming the offending id, none. It returns once the batch is durable
// in the journal and visible to readers, with its revision. actor is
// recorded in the change log.
//
// A write whose context ends before the writer takes it is refused and
// never committed; once taken, it completes whatever the context does.
func (ix *Index) Write(ctx context.Context, actor string, muts []Mutation, pre Preconditions) (uint64, error) {
	return ix.write(ctx, &writeReq{ctx: ctx, actor: actor, muts: muts, pre: pre})
}

// Import writes a batch as Write does, except that a grant whose expiry has
// already passed is accepted (and is simply expired): restoring an export
// must not depend on when it is restored.
func (ix *Index) Import(ctx context.Context, actor string, muts []Mutation) (uint64, error) {
	return ix.write(ctx, &writeReq{ctx: ctx, actor: actor, muts: muts, importing: true})
}

func (ix *Index) write(ctx context.Context, req *writeReq) (uint64, error) {
	actor, muts := req.actor, req.muts
	if len(muts) == 0 {
		return 0, newErr("write", actor, ErrInvalid, "a batch needs at least one mutation")
	}
	if len(muts) > ix.opts.MaxBatch {
		return 0, newErr("write", actor, ErrInvalid, "a batch holds at most %d mutations (the limit of mutations per write), not %d", ix.opts.MaxBatch, len(muts))
	}
	return ix.enqueue(ctx, req)
}

// enqueue hands a write to the writer and waits for its outcome.
func (ix *Index) enqueue(ctx context.Context, req *writeReq) (uint64, error) {
	req.done = make(chan struct{})
	if ix.isClosed() {
		return 0, ErrClosed
	}
	select {
	case ix.queue <- req:
	case <-ix.stop:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, fmt.Errorf("write: %w", ctx.Err())
	}
	select {
	case <-req.done:
	case <-ix.stopped:
		// Queued as Close ran: the writer may have returned without
		// taking it, and then nothing will.
		select {
		case <-req.done:
		default:
			return 0, ErrClosed
		}
	}
	return req.rev, req.err
}

// writer takes queued writes in groups and commits each group with one
// journal append.
func (ix *Index) writer() {
	defer close(ix.stopped)
	for {
		var group, tasks []*writeReq
		take := func(req *writeReq) {
			if req.run != nil {
				tasks = append(tasks, req)
			} else {
				group = append(group, req)
			}
		}
		select {
		case req := <-ix.queue:
			take(req)
		case <-ix.stop:
			ix.drain()
			ix.closeShadow()
			return
		}
	more:
		for len(group)+len(tasks) < ix.opts.MaxGroup {
			select {
			case req := <-ix.queue:
				take(req)
			default:
				break more
			}
		}
		if len(group) > 0 {
			ix.commitGroup(group)
		}
		for _, req := range tasks {
			req.run()
			close(req.done)
		}
		ix.catchUp() // now that the callers have their answers
	}
}

// closeShadow applies what the shadow has queued and ends it, once the
// writer has stopped.
func (ix *Index) closeShadow() {
	ix.mu.Lock()
	sh := ix.sh
	ix.sh = nil
	ix.mu.Unlock()
	if sh != nil {
		sh.close()
	}
}

// drain refuses every write still queued after Close.
func (ix *Index) drain() {
	for {
		select {
		case req := <-ix.queue:
			req.err = ErrClosed
			close(req.done)
		default:
			return
		}
	}
}

// commitGroup applies each write of the group to the spare, which no
// reader reads, validating it against the state the earlier ones leave (a
// write that fails is rolled back alone), appends the accepted batches to
// the journal, and then publishes the spare: it becomes the live side, and
// the other is brought up to date (publish). When the journal fails, the
// spare is rolled back to the live state.
func (ix *Index) commitGroup(group []*writeReq) {
	now := ix.opts.Clock.Now().UTC()
	var accepted []*writeReq
	var commits []Commit

	sp := ix.spare()
	base := sp.rev
	t := &txn{s: sp.s, scoped: true, maxDepth: ix.opts.MaxDepth}
	// The primitives of the whole group, in arrays sized once: growing
	// them copies every pointer they hold (see paged), and the commits
	// take their parts without a copy.
	total := 0
	for _, req := range group {
		total += len(req.muts)
	}
	t.done, t.undo, t.scopes = make([]Mutation, 0, total), make([]Mutation, 0, total), make([][]int32, 0, total)
	for _, req := range group {
		if err := req.ctx.Err(); err != nil {
			req.err = fmt.Errorf("write: %w", err)
			continue
		}
		rev := base + uint64(len(commits))
		if err := req.pre.check(sp.s, rev); err != nil {
			req.err = err
			continue
		}
		if req.expire {
			// Against the trial state, which the earlier batches of the
			// group have changed already.
			if req.muts = ix.due(sp.s, now.UnixNano()); len(req.muts) == 0 {
				continue
			}
		} else if err := precheck(req.muts, now, req.importing, ix.opts.IDs, ix.opts.MaxIDBytes); err != nil {
			req.err = err
			continue
		}
		mark := len(t.done)
		t.table, t.orgs = newScopeTable(), req.orgs
		if err := t.applyBatch(req.muts); err != nil {
			req.err = err
			continue
		}
		prims := t.done[mark:len(t.done):len(t.done)]
		touched := t.scopes[mark:len(t.scopes):len(t.scopes)]
		var recs []Record
		if ix.opts.Journal != nil {
			var err error
			if recs, err = sp.s.records(prims); err != nil {
				t.rollbackTo(mark)
				req.err = err
				continue
			}
		}
		commits = append(commits, Commit{Revision: rev + 1, Time: now, Actor: req.actor, Mutations: prims, Places: t.table.places, Touched: touched, Records: recs})
		accepted = append(accepted, req)
	}
	var err error
	if len(commits) > 0 && ix.opts.Journal != nil {
		err = ix.opts.Journal.Append(context.Background(), base, commits)
	}
	if err != nil {
		t.rollbackTo(0) // the spare is the live state again
	} else if len(commits) > 0 {
		ix.publish(sp, commits)
		if ix.opts.OnCommit != nil {
			ix.opts.OnCommit(commits)
		}
	}
	if err != nil && !errors.Is(err, ErrConflict) {
		err = fmt.Errorf("%w: %w", ErrStorage, err)
	}
	for i, req := range accepted {
		if err != nil {
			req.err = fmt.Errorf("write: commit: %w", err)
		} else {
			req.rev = commits[i].Revision
		}
	}
	for _, req := range group {
		close(req.done)
	}
}

// precheck refuses, in a batch a caller wrote, what depends on the clock
// (an expiry that is not in the future; kept in an import), what only
// the service may write (expire_grant, a grant already marked expired,
// outside an import), and ids the grammar ids refuses or longer than
// maxID bytes. It is checked when a batch is written, never when one is
// replayed or a store is loaded.
func precheck(muts []Mutation, now time.Time, importing bool, ids IDGrammar, maxID int) error {
	for i := range muts {
		if e := muts[i].ExpireGrant; e != nil {
			return newErr("expire_grant", e.ID, ErrInvalid, "only the service records that a grant expired")
		}
		if op, id, creates := creates(&muts[i]); creates {
			if why := ids.why(id); why != "" {
				return newErr(op, id, ErrInvalid, "id %s", why)
			}
			if len(id) > maxID {
				return newErr(op, id, ErrInvalid, "id is %d bytes long; the limit of id length is %d", len(id), maxID)
			}
		}
		g := muts[i].AddGrant
		if g == nil || importing {
			continue
		}
		if g.Expired {
			return newErr("add_grant", g.ID, ErrInvalid, "expired is set by the service, not by a write")
		}
		if !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now) {
			return newErr("add_grant", g.ID, ErrInvalid, "expiry %s is not after now (%s)",
				g.ExpiresAt.UTC().Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// creates returns the operation and id of a mutation that creates an
// entity with an id of its own.
func creates(m *Mutation) (op, id string, ok bool) {
	switch {
	case m.CreateFolder != nil:
		return "create_folder", m.CreateFolder.ID, true
	case m.CreateUser != nil:
		return "create_user", m.CreateUser.ID, true
	case m.AddGrant != nil:
		return "add_grant", m.AddGrant.ID, true
	case m.AddLock != nil:
		return "add_lock", m.AddLock.ID, true
	}
	return "", "", false
}

// publish makes the spare sp, to which the commits have been applied, the
// live side, and takes the other for the next spare: it waits for the
// readers still reading it to finish (new readers go to sp) and notes the
// commits it has still to apply (catchUp), which the writer does once the
// writes' callers have their answer. Only the writer calls it.
func (ix *Index) publish(sp *side, commits []Commit) {
	old := ix.live.Load()
	sp.rev = commits[len(commits)-1].Revision
	sp.mu.Unlock()
	ix.live.Store(sp)
	ix.head.Store(sp.rev)

	ix.mu.Lock()
	for i := range commits {
		if ix.sh != nil && !ix.sh.push(commits[i]) {
			ix.sh = nil // it ended; the next watch makes another
		}
		ix.noteExpiries(sp.s, commits[i].Mutations)
	}
	ix.dropStale(sp.s)
	close(ix.revCh)
	ix.revCh = make(chan struct{})
	ix.mu.Unlock()

	old.mu.Lock()
	ix.behind = commits
}

// catchUp applies to the spare the commits it is behind the live side by,
// with the same function, so that it is at the same revision again. The
// writer calls it once the callers of a write have their answer, and
// spare before handing the spare out.
func (ix *Index) catchUp() {
	if len(ix.behind) == 0 {
		return
	}
	sp := ix.spareBehind()
	t := &txn{s: sp.s, forget: true}
	for i := range ix.behind {
		if err := t.applyBatch(ix.behind[i].Mutations); err != nil {
			// The batch was just applied to the other side, which was
			// this very state.
			panic(fmt.Sprintf("graph: committed batch %d does not apply to the second side: %v", ix.behind[i].Revision, err))
		}
	}
	sp.rev = ix.behind[len(ix.behind)-1].Revision
	ix.behind = nil
}

// Apply applies a batch committed elsewhere (a distributed journal's change
// feed) through the same function as local writes, access streams
// included. Its revision must be the next one. It runs on the writer.
func (ix *Index) Apply(c Commit) error {
	var err error
	if _, qerr := ix.enqueue(context.Background(), &writeReq{ctx: context.Background(), run: func() {
		sp := ix.spare()
		if c.Revision != sp.rev+1 {
			err = newErr("apply", fmt.Sprint(c.Revision), ErrConflict, "index is at revision %d", sp.rev)
			return
		}
		if err = (&txn{s: sp.s}).applyBatch(c.Mutations); err == nil {
			ix.publish(sp, []Commit{c})
		}
	}}); qerr != nil {
		return qerr
	}
	return err
}

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
