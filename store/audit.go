package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/canopy-authz/canopy/graph"
)

// The audit trail (graph/history.go) is kept in three buckets, written in
// the transaction of the commit they record, and compacted by age alone,
// apart from the change log:
//
//	audit-batch  revKey(rev) -> JSON graph.HistoryBatch: time, actor,
//	             acted-for user
//	audit        rowKey(rev, i) -> JSON graph.HistoryRow, without its
//	             batch: mutation i of rev, its subjects and organisations
//	audit-by     the indexes, each key a tag, a uint16 length and a name,
//	             then a position; values are empty:
//	               'o', "kind/id", rowKey(rev, i): the rows touching an object
//	               'a', actor, revKey(rev): the batches an actor committed
//	               'f', user, revKey(rev): the batches written for a user
//
// Positions are big-endian, so that one object's rows, or one actor's
// batches, are contiguous and in revision order, and a query walks back
// from its newest without reading anything else.
var (
	bucketAuditBatch = []byte("audit-batch")
	bucketAudit      = []byte("audit")
	bucketAuditBy    = []byte("audit-by")
)

// The tags of audit-by's three indexes.
const (
	tagObject   = 'o'
	tagActor    = 'a'
	tagActedFor = 'f'
)

// rowKey encodes a row's position: the revision, then the index.
func rowKey(m graph.HistoryMark) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint64(b, m.Revision)
	binary.BigEndian.PutUint32(b[8:], uint32(m.Index))
	return b
}

// parseRowKey decodes the last 12 bytes of k.
func parseRowKey(k []byte) graph.HistoryMark {
	k = k[len(k)-12:]
	return graph.HistoryMark{Revision: binary.BigEndian.Uint64(k), Index: int(binary.BigEndian.Uint32(k[8:]))}
}

// byPrefix returns the start of the audit-by keys of one name.
func byPrefix(tag byte, name string) []byte {
	b := make([]byte, 0, 3+len(name)+12)
	b = append(b, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	return append(b, name...)
}

// batchKeys returns the audit-by keys of a batch.
func batchKeys(b graph.HistoryBatch, rev uint64) [][]byte {
	keys := [][]byte{append(byPrefix(tagActor, b.Actor), revKey(rev)...)}
	if b.ActedFor != "" {
		keys = append(keys, append(byPrefix(tagActedFor, b.ActedFor), revKey(rev)...))
	}
	return keys
}

// rowKeys appends the audit-by keys of the row at m to keys.
func rowKeys(keys [][]byte, row *graph.HistoryRow, m graph.HistoryMark) [][]byte {
	for _, o := range row.Subjects {
		keys = append(keys, append(byPrefix(tagObject, o.String()), rowKey(m)...))
	}
	return keys
}

// fill is how full bbolt packs the pages of the buckets only ever
// appended to in key order: fuller than its default half, which suits
// keys that land anywhere.
const fill = 0.95

// appendAudit records commit c in the trail, inside tx, and appends the
// keys it needs in audit-by to keys: Append puts them all at once, in
// order, since bbolt inserts one key at a time into an unsplit page and a
// large import's keys in random order cost time quadratic in the page.
func appendAudit(tx *bolt.Tx, c *graph.Commit, keys [][]byte) ([][]byte, error) {
	batch := c.Batch()
	hb, err := json.Marshal(batch)
	if err != nil {
		return nil, fmt.Errorf("store: encode audit of revision %d: %w", c.Revision, err)
	}
	batches, rows := tx.Bucket(bucketAuditBatch), tx.Bucket(bucketAudit)
	batches.FillPercent, rows.FillPercent = fill, fill
	if err := batches.Put(revKey(c.Revision), hb); err != nil {
		return nil, fmt.Errorf("store: write audit of revision %d: %w", c.Revision, err)
	}
	keys = append(keys, batchKeys(batch, c.Revision)...)
	for i := range c.Mutations {
		m := graph.HistoryMark{Revision: c.Revision, Index: i}
		row := c.Row(i)
		v, err := json.Marshal(row)
		if err != nil {
			return nil, fmt.Errorf("store: encode audit row %s: %w", m, err)
		}
		if err := rows.Put(rowKey(m), v); err != nil {
			return nil, fmt.Errorf("store: write audit row %s: %w", m, err)
		}
		keys = rowKeys(keys, &row, m)
	}
	return keys, nil
}

// putAuditKeys puts the audit-by keys appendAudit gathered, in order.
func putAuditKeys(tx *bolt.Tx, keys [][]byte) error {
	slices.SortFunc(keys, bytes.Compare)
	by := tx.Bucket(bucketAuditBy)
	for _, k := range keys {
		if err := by.Put(k, nil); err != nil {
			return fmt.Errorf("store: index the audit trail: %w", err)
		}
	}
	return nil
}

// auditRows yields the rows of the trail newest first, from the one
// before end: those of q's index when q names an object, an actor or a
// user acted for, else all of them. The value is nil when the row is gone.
func auditRows(tx *bolt.Tx, q *graph.HistoryQuery, end graph.HistoryMark) iter.Seq2[graph.HistoryMark, []byte] {
	rows := tx.Bucket(bucketAudit)
	return func(yield func(graph.HistoryMark, []byte) bool) {
		var prefix []byte
		switch {
		case !q.Object.IsZero():
			prefix = byPrefix(tagObject, q.Object.String())
			c := tx.Bucket(bucketAuditBy).Cursor()
			for k, _ := seekBefore(c, append(prefix, rowKey(end)...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
				m := parseRowKey(k)
				if !yield(m, rows.Get(rowKey(m))) {
					return
				}
			}
			return
		case q.Actor != "":
			prefix = byPrefix(tagActor, q.Actor)
		case q.ActedFor != "":
			prefix = byPrefix(tagActedFor, q.ActedFor)
		default:
			c := rows.Cursor()
			for k, v := seekBefore(c, rowKey(end)); k != nil; k, v = c.Prev() {
				if !yield(parseRowKey(k), v) {
					return
				}
			}
			return
		}
		// The batches of one actor or acted-for user, then their rows.
		c, rc := tx.Bucket(bucketAuditBy).Cursor(), rows.Cursor()
		// The last batch at or before end's revision: keys are the prefix
		// and 8 bytes, so those up to it sort before it and a zero byte.
		for k, _ := seekBefore(c, append(append(prefix, revKey(end.Revision)...), 0)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			rev := binary.BigEndian.Uint64(k[len(k)-8:])
			from := graph.HistoryMark{Revision: rev + 1}
			if rev == end.Revision {
				from = end
			}
			for rk, rv := seekBefore(rc, rowKey(from)); rk != nil && binary.BigEndian.Uint64(rk) == rev; rk, rv = rc.Prev() {
				if !yield(parseRowKey(rk), rv) {
					return
				}
			}
		}
	}
}

// History returns the entries of the audit trail q selects, newest first.
// With q.Object, q.Actor or q.ActedFor set it reads that index, so its
// cost follows the object's or the actor's history, not the trail's size;
// the other tests filter what the index gives. A scan stops at the first
// batch older than q.Since: commit times follow revisions.
func (d *DB) History(ctx context.Context, q graph.HistoryQuery) (graph.HistoryPage, error) {
	var page graph.HistoryPage
	end, err := q.End()
	if err != nil {
		return page, fmt.Errorf("store: %w", err)
	}
	err = d.bolt.View(func(tx *bolt.Tx) error {
		batches := tx.Bucket(bucketAuditBatch)
		var cached uint64
		var batch graph.HistoryBatch
		for m, v := range auditRows(tx, &q, end) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if v == nil {
				continue // compacted away
			}
			if m.Revision != cached {
				bv := batches.Get(revKey(m.Revision))
				if bv == nil {
					continue
				}
				batch = graph.HistoryBatch{}
				if err := json.Unmarshal(bv, &batch); err != nil {
					return fmt.Errorf("store: decode audit of revision %d: %w", m.Revision, err)
				}
				cached = m.Revision
			}
			var row graph.HistoryRow
			if err := json.Unmarshal(v, &row); err != nil {
				return fmt.Errorf("store: decode audit row %s: %w", m, err)
			}
			if !q.Collect(&page, graph.HistoryEntry{HistoryMark: m, HistoryBatch: batch, Mutation: row.Mutation}, row.Organisations()) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return graph.HistoryPage{}, fmt.Errorf("store: history: %w", err)
	}
	return page, nil
}

// seekBefore moves c to the last key before key and returns it and its
// value (nil when there is none).
func seekBefore(c *bolt.Cursor, key []byte) ([]byte, []byte) {
	if k, _ := c.Seek(key); k == nil {
		return c.Last()
	}
	return c.Prev()
}

// CompactAudit removes from the audit trail the batches committed more than
// age before now, in short transactions, and returns how many entries it
// removed. Zero age keeps everything.
func (d *DB) CompactAudit(now time.Time, age time.Duration) (int, error) {
	if age <= 0 {
		return 0, nil
	}
	removed := 0
	for {
		n, more, err := d.compactAuditSome(now.Add(-age))
		removed += n
		if err != nil || !more {
			return removed, err
		}
	}
}

// compactAuditSome removes up to compactChunk entries of batches committed
// before cut, oldest first, and reports whether there may be more. A
// batch's shared part goes with its last entry.
func (d *DB) compactAuditSome(cut time.Time) (int, bool, error) {
	n := 0
	more := false
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		batches, rows, by := tx.Bucket(bucketAuditBatch).Cursor(), tx.Bucket(bucketAudit).Cursor(), tx.Bucket(bucketAuditBy)
		for k, v := batches.First(); k != nil; k, v = batches.First() {
			rev, err := parseRevKey(k)
			if err != nil {
				return fmt.Errorf("store: audit: %w", err)
			}
			var batch graph.HistoryBatch
			if err := json.Unmarshal(v, &batch); err != nil {
				return fmt.Errorf("store: decode audit of revision %d: %w", rev, err)
			}
			if !batch.Time.Before(cut) {
				return nil
			}
			for rk, rv := rows.Seek(revKey(rev)); rk != nil && bytes.HasPrefix(rk, k); rk, rv = rows.Seek(revKey(rev)) {
				if n == compactChunk {
					more = true
					return nil
				}
				m := parseRowKey(rk)
				var row graph.HistoryRow
				if err := json.Unmarshal(rv, &row); err != nil {
					return fmt.Errorf("store: decode audit row %s: %w", m, err)
				}
				for _, key := range rowKeys(nil, &row, m) {
					if err := by.Delete(key); err != nil {
						return fmt.Errorf("store: compact audit row %s: %w", m, err)
					}
				}
				if err := rows.Delete(); err != nil {
					return fmt.Errorf("store: compact audit row %s: %w", m, err)
				}
				n++
			}
			for _, key := range batchKeys(batch, rev) {
				if err := by.Delete(key); err != nil {
					return fmt.Errorf("store: compact audit of revision %d: %w", rev, err)
				}
			}
			if err := batches.Delete(); err != nil {
				return fmt.Errorf("store: compact audit of revision %d: %w", rev, err)
			}
		}
		return nil
	})
	return n, more, err
}
