package etcdstore

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/graph"
)

// ErrCompacted means the log no longer holds a revision a follower needs:
// it must load a snapshot instead. It is graph.ErrLogCompacted, so an
// index that follows the store loads it afresh.
var ErrCompacted = graph.ErrLogCompacted

// followPage is how many commits Follow reads at a time while catching up.
const followPage = 1024

// Follow calls fn with every commit from revision from onwards, in order,
// each once, as they are committed: it reads the log up to its head, then
// watches it. It returns when the watch fails (etcd unreachable, or its
// quorum lost), with ctx's error when ctx ends, with fn's error when fn
// fails, and with an error wrapping ErrCompacted when the log no longer
// holds a revision fn needs. Trying again is the caller's (the index
// follows on from its revision, after a pause, and says why).
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
			return err
		}
		next++
		return nil
	}
	for {
		commits, at, err := s.readLog(ctx, next, followPage)
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
			if oldest, err := s.OldestRevision(); err == nil && oldest > next {
				return fmt.Errorf("etcdstore: follow: the log begins at revision %d, after %d: %w", oldest, next, ErrCompacted)
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
