package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/store"
)

// NewestSnapshot returns the revision of the newest snapshot, 0 if none.
func (s *Store) NewestSnapshot(ctx context.Context) (uint64, error) {
	resp, err := s.kv.Get(ctx, s.key(prefixSnap), append(clientv3.WithLastKey(), clientv3.WithKeysOnly())...)
	if err != nil {
		return 0, fmt.Errorf("etcdstore: find the newest snapshot: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return s.keyRev(resp.Kvs[0].Key, prefixSnap)
}

// Compact removes the groups of the log that are outside the retention
// window at time now (as store.DB.Compact: outside both of its windows)
// and wholly at or before the newest snapshot, so that a node can always
// start from a snapshot and the log after it, and in the audit trail
// already, which is built from the log: it builds the trail first
// (IndexAudit). It returns how many
// commits it removed. etcd keeps old versions of keys until etcd itself
// is compacted (its --auto-compaction-retention).
func (s *Store) Compact(ctx context.Context, now time.Time, r store.Retention) (int, error) {
	if r.Revisions == 0 && r.Age == 0 {
		return 0, nil
	}
	snap, err := s.NewestSnapshot(ctx)
	if err != nil {
		return 0, err
	}
	head, err := s.head(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := s.IndexAudit(ctx); err != nil {
		return 0, err
	}
	through, err := s.auditThrough(ctx)
	if err != nil {
		return 0, err
	}
	resp, err := s.kv.Get(ctx, s.key(prefixLog), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(1000))
	if err != nil {
		return 0, fmt.Errorf("etcdstore: list the log: %w", err)
	}
	removed := 0
	for _, kv := range resp.Kvs {
		var g group
		if err := json.Unmarshal(kv.Value, &g); err != nil {
			return removed, fmt.Errorf("etcdstore: decode %s: %w", kv.Key, err)
		}
		inWindow := r.Revisions > 0 && head-g.Last < r.Revisions || r.Age > 0 && now.Sub(g.Time) <= r.Age
		if g.Last > snap || g.Last > through || g.Last >= head || inWindow {
			break
		}
		if err := s.dropWithParts(ctx, string(kv.Key), g.ID, g.Parts); err != nil {
			return removed, err
		}
		removed += int(g.Last - g.First + 1)
	}
	return removed, nil
}

// sweepAge is how old parts with no group or snapshot naming them must
// be before Sweep removes them: far longer than any append takes.
const sweepAge = 10 * time.Minute

// Sweep removes the parts that no group or snapshot names and that were
// written more than sweepAge before now: those of an append or snapshot
// whose writer stopped between writing them and its transaction. It
// returns how many sets of parts it removed.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	resp, err := s.kv.Get(ctx, s.key(prefixPart), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, fmt.Errorf("etcdstore: list parts: %w", err)
	}
	ids := map[string]bool{}
	for _, kv := range resp.Kvs {
		id, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), s.key(prefixPart)), "/")
		ids[id] = true
	}
	removed := 0
	for id := range ids {
		stamp, _, _ := strings.Cut(id, "-")
		secs, err := strconv.ParseInt(stamp, 16, 64)
		if err != nil || now.Sub(time.Unix(secs, 0)) < sweepAge {
			continue // not ours to judge, or maybe still being written
		}
		named, err := s.kv.Get(ctx, s.key(prefixPartOf+id), clientv3.WithCountOnly())
		if err != nil {
			return removed, fmt.Errorf("etcdstore: look up parts %s: %w", id, err)
		}
		if named.Count > 0 {
			continue
		}
		// Only while still unnamed: a transaction naming them now keeps them.
		if _, err := s.kv.Txn(ctx).If(clientv3.Compare(clientv3.Version(s.key(prefixPartOf+id)), "=", 0)).
			Then(clientv3.OpDelete(s.key(prefixPart+id+"/"), clientv3.WithPrefix())).Commit(); err != nil {
			return removed, fmt.Errorf("etcdstore: remove parts %s: %w", id, err)
		}
		removed++
	}
	return removed, nil
}

// dropWithParts removes key, a group or a snapshot's manifest, with the
// name of its parts, in one transaction, and then the parts themselves:
// no reader finds the key without its parts.
func (s *Store) dropWithParts(ctx context.Context, key, id string, parts int) error {
	if _, err := s.kv.Txn(ctx).Then(clientv3.OpDelete(key), clientv3.OpDelete(s.key(prefixPartOf+id))).Commit(); err != nil {
		return fmt.Errorf("etcdstore: remove %s: %w", key, err)
	}
	s.dropParts(ctx, id, parts)
	return nil
}
