package graph

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// feedPage is how many commits the index reads from a feed at a time.
const feedPage = 1024

// replayFeed applies to t's state, which holds the records the feed
// loaded at revision rev, every commit the feed's log holds after rev,
// and returns the revision reached.
func replayFeed(t *txn, f Feed, rev uint64) (uint64, error) {
	for {
		commits, err := f.ReadLog(rev+1, feedPage)
		if err != nil {
			return rev, fmt.Errorf("graph: read the log after revision %d: %w", rev, err)
		}
		for _, c := range commits {
			if c.Revision != rev+1 {
				return rev, fmt.Errorf("graph: the log holds revision %d after %d", c.Revision, rev)
			}
			if err := t.applyBatch(c.Mutations); err != nil {
				return rev, fmt.Errorf("graph: replay revision %d: %w", c.Revision, err)
			}
			rev = c.Revision
		}
		if len(commits) < feedPage {
			return rev, nil
		}
	}
}

// follow applies what the feed commits, whoever commits it, until the
// index closes. When following stops with an error it says so
// (Options.OnFeedError) and starts again from the index's revision.
func (ix *Index) follow() {
	defer close(ix.followed)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ix.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	const first = 50 * time.Millisecond
	wait := first
	for {
		from := ix.Revision() + 1
		err := ix.feed.Follow(ctx, from, ix.Apply)
		if ctx.Err() != nil {
			return
		}
		if ix.Revision() >= from {
			wait = first // it got somewhere: a new fault, not the same one
		}
		if errors.Is(err, ErrLogCompacted) {
			if err = ix.reload(ctx); err == nil {
				continue
			}
		}
		if ix.opts.OnFeedError != nil {
			ix.opts.OnFeedError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// applyCommitted applies to the spare the commits, committed in the
// journal already, that the index does not have yet, publishes them and
// hands them to OnCommit. The commits must follow each other; those at or
// below the index's revision are skipped. Only the writer calls it.
func (ix *Index) applyCommitted(cs []Commit) error {
	sp := ix.spare()
	t := &txn{s: sp.s}
	var fresh []Commit
	for _, c := range cs {
		at := sp.rev + uint64(len(fresh))
		if c.Revision <= at {
			continue
		}
		if c.Revision != at+1 {
			t.rollbackTo(0)
			return newErr("apply", fmt.Sprint(c.Revision), ErrConflict, "index is at revision %d", at)
		}
		if err := t.applyBatch(c.Mutations); err != nil {
			t.rollbackTo(0)
			return fmt.Errorf("graph: committed revision %d does not apply: %w", c.Revision, err)
		}
		fresh = append(fresh, c)
	}
	if len(fresh) == 0 {
		return nil
	}
	ix.publish(sp, fresh)
	if ix.opts.OnCommit != nil {
		ix.opts.OnCommit(fresh)
	}
	return nil
}

// readFeed applies what the feed's log holds past the index's revision:
// after a conflict, what another node committed first. Only the writer
// calls it.
func (ix *Index) readFeed() error {
	for {
		commits, err := ix.feed.ReadLog(ix.head.Load()+1, feedPage)
		if err != nil {
			return fmt.Errorf("graph: read the log after revision %d: %w", ix.head.Load(), err)
		}
		if err := ix.applyCommitted(commits); err != nil {
			return err
		}
		if len(commits) < feedPage {
			return nil
		}
	}
}

// reload loads the feed afresh, off the writer (it may take seconds), and
// has the writer replace both sides with the new state, when it is newer.
// Readers still on an old side finish on it; new ones read the new.
// Access streams end (their shadow is dropped) and OnReload is called,
// since the commits skipped were never handed on.
func (ix *Index) reload(ctx context.Context) error {
	s, rev, err := loadJournal(ix.feed)
	if err != nil {
		return fmt.Errorf("graph: load the feed afresh: %w", err)
	}
	_, err = ix.enqueue(ctx, &writeReq{ctx: ctx, run: func() {
		if rev <= ix.head.Load() {
			return // caught up some other way
		}
		sides := [2]*side{{s: s, rev: rev}, {s: s.clone(nil), rev: rev}}
		sides[1].mu.Lock() // the spare, held by the writer from now on
		ix.sides, ix.behind = sides, nil
		ix.live.Store(sides[0])
		ix.head.Store(rev)
		ix.mu.Lock()
		ix.exp = ix.exp[:0]
		ix.rebuildExpiries(s)
		sh := ix.sh
		ix.sh = nil
		close(ix.revCh)
		ix.revCh = make(chan struct{})
		ix.mu.Unlock()
		if sh != nil {
			sh.close()
		}
		if ix.opts.OnReload != nil {
			ix.opts.OnReload(rev)
		}
	}})
	return err
}
