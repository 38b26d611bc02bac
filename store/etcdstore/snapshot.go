package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/graph"
)

// manifest is the stored form of a snapshot: where its parts are. Each
// part is a JSON array of records, whole, so parts decode one by one.
type manifest struct {
	Revision uint64 `json:"revision"`
	ID       string `json:"id"`
	Parts    int    `json:"parts"`
	Records  int    `json:"records"`
}

// storedRecord is a record inside a snapshot part.
type storedRecord struct {
	Kind  graph.RecordKind `json:"kind"`
	ID    string           `json:"id"`
	Value json.RawMessage  `json:"value"`
}

// keepSnapshots is how many snapshots PutSnapshot leaves behind.
const keepSnapshots = 2

// PutSnapshot stores recs, every record of the state at revision rev, as
// the snapshot a node that starts (or falls behind the log's oldest
// revision) loads, and removes all but the newest keepSnapshots. It
// writes the parts first and the manifest last, in one transaction that
// refuses a second snapshot of the same revision.
func (s *Store) PutSnapshot(ctx context.Context, rev uint64, recs []graph.Record) error {
	m := manifest{Revision: rev, ID: partsID(time.Now()), Records: len(recs)}
	var part []storedRecord
	size := 0
	flush := func() error {
		if len(part) == 0 {
			return nil
		}
		b, err := json.Marshal(part)
		if err != nil {
			return fmt.Errorf("etcdstore: encode snapshot %d: %w", rev, err)
		}
		if _, err := s.kv.Put(ctx, s.partKey(m.ID, m.Parts), string(b)); err != nil {
			s.dropParts(ctx, m.ID, m.Parts+1)
			return fmt.Errorf("etcdstore: write part %d of snapshot %d: %w", m.Parts, rev, err)
		}
		m.Parts++
		part, size = part[:0], 0
		return nil
	}
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		if size+len(r.Value)+len(r.ID)+32 > s.max {
			if err := flush(); err != nil {
				return err
			}
		}
		part = append(part, storedRecord{Kind: r.Kind, ID: r.ID, Value: r.Value})
		size += len(r.Value) + len(r.ID) + 32
	}
	if err := flush(); err != nil {
		return err
	}
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("etcdstore: encode snapshot %d: %w", rev, err)
	}
	key := s.key(prefixSnap + revKey(rev))
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(key), "=", 0)).
		Then(clientv3.OpPut(key, string(v)), clientv3.OpPut(s.key(prefixPartOf+m.ID), prefixSnap+revKey(rev))).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdstore: write snapshot %d: %w", rev, err)
	}
	if !resp.Succeeded { // another node took it first
		s.dropParts(ctx, m.ID, m.Parts)
	}
	return s.dropOldSnapshots(ctx)
}

// dropOldSnapshots removes every snapshot but the newest keepSnapshots.
func (s *Store) dropOldSnapshots(ctx context.Context) error {
	resp, err := s.kv.Get(ctx, s.key(prefixSnap), clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	if err != nil {
		return fmt.Errorf("etcdstore: list snapshots: %w", err)
	}
	for i, kv := range resp.Kvs {
		if i < keepSnapshots {
			continue
		}
		var m manifest
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return fmt.Errorf("etcdstore: decode %s: %w", kv.Key, err)
		}
		if err := s.dropWithParts(ctx, string(kv.Key), m.ID, m.Parts); err != nil {
			return err
		}
	}
	return nil
}

// Load calls fn with every record of the newest snapshot and returns its
// revision, or 0 when there is none. The index then reads the log from
// the revision after it (graph.Feed).
func (s *Store) Load(fn func(graph.Record) error) (uint64, error) {
	ctx := context.Background()
	resp, err := s.kv.Get(ctx, s.key(prefixSnap), clientv3.WithLastKey()...)
	if err != nil {
		return 0, fmt.Errorf("etcdstore: find the newest snapshot: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	var m manifest
	if err := json.Unmarshal(resp.Kvs[0].Value, &m); err != nil {
		return 0, fmt.Errorf("etcdstore: decode %s: %w", resp.Kvs[0].Key, err)
	}
	// Read at the manifest's etcd revision: a snapshot removed meanwhile
	// is still whole there.
	at, n := resp.Header.Revision, 0
	for i := 0; i < m.Parts; i++ {
		pr, err := s.kv.Get(ctx, s.partKey(m.ID, i), clientv3.WithRev(at))
		if err != nil {
			return 0, fmt.Errorf("etcdstore: read part %d of snapshot %d: %w", i, m.Revision, err)
		}
		if len(pr.Kvs) == 0 {
			return 0, fmt.Errorf("etcdstore: part %d of snapshot %d is missing", i, m.Revision)
		}
		var part []storedRecord
		if err := json.Unmarshal(pr.Kvs[0].Value, &part); err != nil {
			return 0, fmt.Errorf("etcdstore: decode part %d of snapshot %d: %w", i, m.Revision, err)
		}
		for _, r := range part {
			if err := fn(graph.Record{Kind: r.Kind, ID: r.ID, Value: r.Value}); err != nil {
				return 0, err
			}
			n++
		}
	}
	if n != m.Records {
		return 0, fmt.Errorf("etcdstore: snapshot %d holds %d records, its manifest says %d", m.Revision, n, m.Records)
	}
	return m.Revision, nil
}
