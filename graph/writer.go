package graph

// The writer: the one goroutine that applies writes to the spare side,
// commits them to the journal and publishes them (doc.go, "Writes" and
// "Readers and the writer").

import (
	"context"
	"errors"
	"fmt"
	"time"
)

type writeReq struct {
	ctx       context.Context
	actor     string
	muts      []Mutation
	pre       Preconditions
	importing bool   // an import: expiries in the past are kept, not refused
	orgs      Orgs   // the organisations the writer is confined to; nil: all
	expire    bool   // ExpireDue: the writer fills muts with the due expiries
	bootstrap bool   // the first batch: written only at revision 0
	as        string // the user the batch is written on behalf of; "" for none
	run       func() // not a write: a task for the writer, between groups
	done      chan struct{}
	rev       uint64
	err       error
}

// spare returns the side that is not live, brought up to date. Only the
// writer calls it.
func (ix *Index) spare() *side {
	ix.catchUp()
	sp := ix.spareBehind()
	sp.s.compactTexts()
	return sp
}

// spareBehind returns the side that is not live, as it is.
func (ix *Index) spareBehind() *side {
	if ix.live.Load() == ix.sides[0] {
		return ix.sides[1]
	}
	return ix.sides[0]
}

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
	folder := func(id string) bool { _, ok := s.folders.get(id); return ok }
	user := func(id string) bool { _, ok := s.users.get(id); return ok }
	for _, c := range []struct {
		ids  []string
		has  func(string) bool
		want bool
		why  string
	}{
		{p.FoldersExist, folder, true, "folder does not exist"},
		{p.UsersExist, user, true, "user does not exist"},
		{p.FoldersAbsent, folder, false, "folder exists"},
		{p.UsersAbsent, user, false, "user exists"},
	} {
		for _, id := range c.ids {
			if c.has(id) != c.want {
				return newErr("precondition", id, ErrPrecondition, "%s", c.why)
			}
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

// WriteAs writes a batch as Write does, on behalf of user: every mutation
// is also allowed by the decision rule only when user holds the rights it
// needs, in the state the mutations before it leave (actas.go). A batch
// that needs a right user lacks is refused with ErrNotAllowed, naming the
// mutation, the right and the object, and changes nothing. The change log
// records both actor and user (Commit.ActedFor).
func (ix *Index) WriteAs(ctx context.Context, actor, user string, muts []Mutation, pre Preconditions) (uint64, error) {
	if user == "" {
		return 0, newErr("write", actor, ErrInvalid, "acting as nobody: name the user")
	}
	return ix.write(ctx, &writeReq{ctx: ctx, actor: actor, as: user, muts: muts, pre: pre})
}

// Import writes a batch as Write does, except that a grant whose expiry has
// already passed is accepted (and is simply expired): restoring an export
// must not depend on when it is restored.
func (ix *Index) Import(ctx context.Context, actor string, muts []Mutation) (uint64, error) {
	return ix.write(ctx, &writeReq{ctx: ctx, actor: actor, muts: muts, importing: true})
}

func (ix *Index) write(ctx context.Context, req *writeReq) (uint64, error) {
	if err := ix.checkBatch(req); err != nil {
		return 0, err
	}
	return ix.enqueue(ctx, req)
}

// checkBatch refuses a batch that is empty or too large, before it is
// queued.
func (ix *Index) checkBatch(req *writeReq) error {
	actor, muts := req.actor, req.muts
	if len(muts) == 0 {
		return newErr("write", actor, ErrInvalid, "a batch needs at least one mutation")
	}
	if len(muts) > ix.opts.MaxBatch {
		return newErr("write", actor, ErrInvalid, "a batch holds at most %d mutations (the limit of mutations per write), not %d", ix.opts.MaxBatch, len(muts))
	}
	return nil
}

// validate applies req's batch with t, as the write it is, to a state at
// revision rev: its preconditions, what precheck refuses, the rules of
// acting as a user and of confinement, and every mutation's own. On error
// nothing of it stays applied.
func (ix *Index) validate(t *txn, req *writeReq, rev uint64, now time.Time) error {
	if err := req.pre.check(t.s, rev); err != nil {
		return err
	}
	if !req.expire {
		if err := precheck(req.muts, now, req.importing, ix.opts.IDs, ix.opts.MaxIDBytes); err != nil {
			return err
		}
	}
	t.table, t.orgs, t.as = newScopeTable(), req.orgs, nil
	if req.as != "" {
		t.as = &actingAs{user: req.as, now: now.UnixNano()}
	}
	return t.applyBatch(req.muts)
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
	completed := false
	defer func() {
		for _, req := range group {
			if !completed && req.err == nil {
				// Unwinding a panic (the store's, in the middle of its
				// commit): nothing of the group is known to be durable,
				// so none of it may be answered as committed in the
				// moment before the process ends.
				req.err, req.rev = fmt.Errorf("write: %w: the commit did not complete", ErrStorage), 0
			}
			close(req.done)
		}
	}()
	try := group
	// A refusal is checked again only until the node has read the store
	// once since the writes came: that reaches the head they came after.
	rechecked := false
	for attempt := 1; ; attempt++ {
		err := ix.tryGroup(try)
		if ix.feed == nil || attempt == maxAttempts {
			break
		}
		conflict := errors.Is(err, ErrConflict)
		if err != nil && !conflict {
			break // the store failed: there is nothing to validate again
		}
		var refused []*writeReq
		for _, req := range try {
			if req.err != nil && req.ctx.Err() == nil {
				refused = append(refused, req)
			}
		}
		if !conflict && (len(refused) == 0 || rechecked) {
			break
		}
		// Another node committed first, or this node may be behind the
		// store and have refused what the newest state allows: take what
		// was committed and, if there was anything, validate the group
		// again on top of it.
		was := ix.head.Load()
		if err := ix.readFeed(); err != nil {
			for _, req := range try {
				if conflict || req.err != nil {
					req.err = fmt.Errorf("write: %w: %w", ErrStorage, err)
				}
			}
			break
		}
		rechecked = true
		if !conflict {
			if ix.head.Load() == was {
				break // the refusals stand: the node was up to date
			}
			try = refused // the others are committed
		}
		for _, req := range try {
			req.err, req.rev = nil, 0
		}
	}
	completed = true
}

// maxAttempts is how many times a group is validated and appended before
// a conflict is the answer: each conflict means another node committed.
const maxAttempts = 100

// tryGroup validates and appends the group once, as commitGroup says, and
// returns the journal's error, if any.
func (ix *Index) tryGroup(group []*writeReq) error {
	now := ix.opts.Clock.Now().UTC()
	var accepted []*writeReq
	var commits []Commit

	sp := ix.spare()
	base := sp.rev
	t := &txn{s: sp.s, scoped: true, audited: ix.opts.Journal != nil, maxDepth: ix.opts.MaxDepth}
	// The primitives of the whole group, in arrays sized once: growing
	// them copies every pointer they hold (see paged), and the commits
	// take their parts without a copy.
	total := 0
	for _, req := range group {
		total += len(req.muts)
	}
	t.done, t.undo, t.scopes = make([]Mutation, 0, total), make([]Mutation, 0, total), make([][]int32, 0, total)
	if t.audited {
		t.subjects = make([][]Object, 0, total)
	}
	for _, req := range group {
		if err := req.ctx.Err(); err != nil {
			req.err = fmt.Errorf("write: %w", err)
			continue
		}
		rev := base + uint64(len(commits))
		if req.bootstrap && rev != 0 {
			continue // written by another node
		}
		if req.expire {
			// Against the trial state, which the earlier batches of the
			// group have changed already.
			if req.muts = ix.due(sp.s, now.UnixNano()); len(req.muts) == 0 {
				continue
			}
		}
		mark := len(t.done)
		if err := ix.validate(t, req, rev, now); err != nil {
			req.err = err
			continue
		}
		prims := t.done[mark:len(t.done):len(t.done)]
		touched := t.scopes[mark:len(t.scopes):len(t.scopes)]
		var recs []Record
		var subjects [][]Object
		if ix.opts.Journal != nil {
			subjects = t.subjects[mark:len(t.subjects):len(t.subjects)]
			var err error
			if recs, err = sp.s.records(prims); err != nil {
				t.rollbackTo(mark)
				req.err = err
				continue
			}
		}
		commits = append(commits, Commit{Revision: rev + 1, Time: now, Actor: req.actor, ActedFor: req.as, Mutations: prims, Places: t.table.places, Touched: touched, Subjects: subjects, Records: recs})
		accepted = append(accepted, req)
	}
	var err error
	if len(commits) > 0 && ix.opts.Journal != nil {
		// In the context of the group's first write, for its values (a
		// trace), never its end: the group is every writer's.
		err = ix.opts.Journal.Append(context.WithoutCancel(accepted[0].ctx), base, commits)
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
	return err
}

// precheck refuses, in a batch a caller wrote, what depends on the clock
// (an expiry or an active-until that is not in the future; kept in an
// import), what only the service may write (expire_grant, start_grant, a
// grant already marked expired or started,
// outside an import), and ids the grammar ids refuses or longer than
// maxID bytes. It is checked when a batch is written, never when one is
// replayed or a store is loaded.
func precheck(muts []Mutation, now time.Time, importing bool, ids IDGrammar, maxID int) error {
	for i := range muts {
		yieldAfter(i)
		if e := muts[i].StartGrant; e != nil {
			return newErr("start_grant", e.ID, ErrInvalid, "only the service records that a grant started")
		}
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
		if importing {
			continue
		}
		if err := precheckUntil(&muts[i], now); err != nil {
			return err
		}
		g := muts[i].AddGrant
		if g == nil {
			continue
		}
		if g.Expired {
			return newErr("add_grant", g.ID, ErrInvalid, "expired is set by the service, not by a write")
		}
		if g.Started {
			return newErr("add_grant", g.ID, ErrInvalid, "started is set by the service, not by a write")
		}
		if !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now) {
			return newErr("add_grant", g.ID, ErrInvalid, "expiry %s is not after now (%s)",
				g.ExpiresAt.UTC().Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// precheckUntil refuses a user made active until a time that is not
// after now: like an expiry, it must be in the future when written.
func precheckUntil(m *Mutation, now time.Time) error {
	op, id, at := "", "", time.Time{}
	switch {
	case m.CreateUser != nil:
		op, id, at = "create_user", m.CreateUser.ID, m.CreateUser.ActiveUntil
	case m.SetUserState != nil:
		op, id, at = "set_user_state", m.SetUserState.ID, m.SetUserState.ActiveUntil
	}
	if !at.IsZero() && !at.After(now) {
		return newErr(op, id, ErrInvalid, "active until %s, which is not after now (%s)",
			at.UTC().Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
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
// feed) through the same function as local writes, access streams and
// OnCommit included. A revision the index has already is skipped; a later
// one than the next is refused with ErrConflict. It runs on the writer.
func (ix *Index) Apply(c Commit) error {
	var err error
	if _, qerr := ix.enqueue(context.Background(), &writeReq{ctx: context.Background(), run: func() {
		err = ix.applyCommitted([]Commit{c})
	}}); qerr != nil {
		return qerr
	}
	return err
}
