package etcdstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/graph"
)

// ErrCompacted means the log no longer holds a revision a follower needs:
// it must load a snapshot instead. It is graph.ErrLogCompacted, so an
// index that follows the store loads it afresh.
var ErrCompacted = graph.ErrLogCompacted

// fnError carries an error of the follower's own function out of Follow.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// followPage is how many commits Follow reads at a time while catching up.
const followPage = 1024

// Follow calls fn with every commit from revision from onwards, in order,
// each once, as they are committed: it reads the log up to its head, then
// watches it. When etcd is unreachable or loses its quorum it waits and
// tries again from where it was. It returns ctx's error when ctx ends,
// fn's error when fn fails, and an error wrapping ErrCompacted when the
// log no longer holds a revision fn needs.
func (s *Store) Follow(ctx context.Context, from uint64, fn func(graph.Commit) error) error {
	next := from
	deliver := func(c graph.Commit) error {
		switch {
		case c.Revision < next:
			return nil // had it already
		case c.Revision > next:
			return fmt.Errorf("etcdstore: follow: the log holds revision %d but not %d: %w", c.Revision, next, ErrCompacted)
		}
		if err := fn(c); err != nil {
			return fnError{err}
		}
		next++
		return nil
	}
	wait := 50 * time.Millisecond
	for {
		err := s.followOnce(ctx, &next, deliver)
		var fe fnError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &fe):
			return fe.err
		case errors.Is(err, ErrCompacted):
			return err
		case err == nil:
			wait = 50 * time.Millisecond
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// followOnce reads the log from *next to its head, then watches it until
// the watch fails. It returns nil when it should simply start again.
func (s *Store) followOnce(ctx context.Context, next *uint64, deliver func(graph.Commit) error) error {
	for {
		commits, at, err := s.readLog(ctx, *next, followPage)
		if err != nil {
			return err
		}
		for _, c := range commits {
			if err := deliver(c); err != nil {
				return err
			}
		}
		if len(commits) == followPage {
			continue
		}
		if len(commits) == 0 {
			if oldest, err := s.OldestRevision(); err == nil && oldest > *next {
				return fmt.Errorf("etcdstore: follow: the log begins at revision %d, after %d: %w", oldest, *next, ErrCompacted)
			}
		}
		return s.watch(ctx, at, deliver)
	}
}

// watch delivers the groups put in the log after etcd revision at.
func (s *Store) watch(ctx context.Context, at int64, deliver func(graph.Commit) error) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for resp := range s.c.Watch(wctx, s.key(prefixLog), clientv3.WithPrefix(), clientv3.WithRev(at+1)) {
		if err := resp.Err(); err != nil {
			return fmt.Errorf("etcdstore: watch the log: %w", err)
		}
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut {
				continue // compaction of old groups
			}
			commits, err := s.decodeGroup(ctx, string(ev.Kv.Key), ev.Kv.Value)
			if err != nil {
				return err
			}
			for _, c := range commits {
				if err := deliver(c); err != nil {
					return err
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("etcdstore: the watch of the log ended")
}
