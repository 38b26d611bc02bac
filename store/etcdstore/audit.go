package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/graph"
)

// The audit trail (graph/history.go) is built from the change log, whose
// entries carry each mutation's subjects, rather than in the append's own
// transaction: etcd takes at most 128 operations in one, and a batch of a
// hundred thousand mutations needs several keys each. Any node may build
// it (IndexAudit), and every node does, after its own appends and with
// compaction; the work is idempotent, and each of its transactions holds
// only while audit/through still says where it began:
//
//	audit/through                 16 hex digits: every revision up to it
//	                              is in the trail
//	audit/row/<rev>/<i>           JSON graph.HistoryRow, with its batch:
//	                              mutation i of rev
//	audit/o/<n>:<object>/<rev>/<i> the rows touching an object ("kind/id")
//	audit/a/<n>:<actor>/<rev>     the batches an actor committed
//	audit/f/<n>:<user>/<rev>      the batches written for a user
//
// <n> is the name's length in 4 hex digits, so that no name's keys fall
// under another's prefix; <i> is 8 hex digits. History reads the rows up
// to audit/through from these indexes, and the revisions after it from
// the log itself, so what was just committed is in it at once. The log is
// never compacted past audit/through.
const (
	keyAuditThrough  = "audit/through"
	prefixAuditRow   = "audit/row/"
	prefixAuditObj   = "audit/o/"
	prefixAuditActor = "audit/a/"
	prefixAuditFor   = "audit/f/"
)

// maxTxnOps is the most operations this store puts in one transaction,
// under etcd's default limit of 128 (--max-txn-ops).
const maxTxnOps = 100

// markKey encodes a row's position.
func markKey(m graph.HistoryMark) string { return fmt.Sprintf("%s/%08x", revKey(m.Revision), m.Index) }

// parseMark decodes the position a key ends with.
func parseMark(key string) (graph.HistoryMark, error) {
	if len(key) < 25 || key[len(key)-9] != '/' {
		return graph.HistoryMark{}, fmt.Errorf("etcdstore: audit key %q ends in no position", key)
	}
	rev, err := parseRev(key[len(key)-25 : len(key)-9])
	if err != nil {
		return graph.HistoryMark{}, fmt.Errorf("etcdstore: audit key %q: %w", key, err)
	}
	i, err := strconv.ParseUint(key[len(key)-8:], 16, 32)
	if err != nil {
		return graph.HistoryMark{}, fmt.Errorf("etcdstore: audit key %q: %w", key, err)
	}
	return graph.HistoryMark{Revision: rev, Index: int(i)}, nil
}

// named returns the prefix of one name's keys in an index.
func (s *Store) named(index, name string) string {
	return s.key(fmt.Sprintf("%s%04x:%s/", index, len(name), name))
}

// rowKeys returns the index keys of a row at m (the row's own key aside).
func (s *Store) rowKeys(r *graph.HistoryRow, m graph.HistoryMark) []string {
	var keys []string
	for _, o := range r.Subjects {
		keys = append(keys, s.named(prefixAuditObj, o.String())+markKey(m))
	}
	return keys
}

// batchKeys returns the index keys of a batch at rev, its first row r.
func (s *Store) batchKeys(r *graph.HistoryRow, rev uint64) []string {
	keys := []string{s.named(prefixAuditActor, r.Actor) + revKey(rev)}
	if r.ActedFor != "" {
		keys = append(keys, s.named(prefixAuditFor, r.ActedFor)+revKey(rev))
	}
	return keys
}

// auditThrough returns the revision the trail is built up to.
func (s *Store) auditThrough(ctx context.Context) (uint64, error) {
	resp, err := s.kv.Get(ctx, s.key(keyAuditThrough))
	if err != nil {
		return 0, fmt.Errorf("etcdstore: read %s: %w", keyAuditThrough, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return parseRev(string(resp.Kvs[0].Value))
}

// errAuditMoved means another node moved audit/through first.
var errAuditMoved = errors.New("etcdstore: another node built the audit trail further")

// whileThrough commits ops in one transaction that holds only while
// audit/through still says through.
func (s *Store) whileThrough(ctx context.Context, through uint64, ops []clientv3.Op) error {
	resp, err := s.kv.Txn(ctx).If(clientv3.Compare(clientv3.Value(s.key(keyAuditThrough)), "=", revKey(through))).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("etcdstore: write the audit trail: %w", err)
	}
	if !resp.Succeeded {
		return errAuditMoved
	}
	return nil
}

// IndexAudit builds the audit trail from the change log up to the head,
// and returns how many mutations it added. Nodes may run it at once: each
// transaction holds only while the trail is where it began, and what two
// nodes write is the same.
func (s *Store) IndexAudit(ctx context.Context) (int, error) {
	// Start the trail, so that transactions can compare with it.
	_, err := s.kv.Txn(ctx).If(clientv3.Compare(clientv3.Version(s.key(keyAuditThrough)), "=", 0)).
		Then(clientv3.OpPut(s.key(keyAuditThrough), revKey(0))).Commit()
	if err != nil {
		return 0, fmt.Errorf("etcdstore: start the audit trail: %w", err)
	}
	added := 0
	for {
		through, err := s.auditThrough(ctx)
		if err != nil {
			return added, err
		}
		commits, _, err := s.readLog(ctx, through+1, 256)
		if err != nil || len(commits) == 0 {
			return added, err
		}
		var ops []clientv3.Op
		flush := func(last bool) error {
			for len(ops) >= maxTxnOps || last && len(ops) > 0 {
				k := min(len(ops), maxTxnOps)
				if err := s.whileThrough(ctx, through, ops[:k]); err != nil {
					return err
				}
				ops = ops[k:]
			}
			return nil
		}
		n := 0
		for _, c := range commits {
			for i := range c.Mutations {
				m := graph.HistoryMark{Revision: c.Revision, Index: i}
				r := c.Row(i)
				r.HistoryBatch = c.Batch()
				v, err := json.Marshal(r)
				if err != nil {
					return added, fmt.Errorf("etcdstore: encode audit row %s: %w", m, err)
				}
				ops = append(ops, clientv3.OpPut(s.key(prefixAuditRow)+markKey(m), string(v)))
				for _, k := range s.rowKeys(&r, m) {
					ops = append(ops, clientv3.OpPut(k, ""))
				}
				if i == 0 {
					for _, k := range s.batchKeys(&r, c.Revision) {
						ops = append(ops, clientv3.OpPut(k, ""))
					}
				}
				n++
				if err := flush(false); err != nil {
					return added, s.moved(err)
				}
			}
		}
		ops = append(ops, clientv3.OpPut(s.key(keyAuditThrough), revKey(commits[len(commits)-1].Revision)))
		if err := flush(true); err != nil {
			return added, s.moved(err)
		}
		added += n
	}
}

// moved turns errAuditMoved into success: another node did the work.
func (s *Store) moved(err error) error {
	if errors.Is(err, errAuditMoved) {
		return nil
	}
	return err
}

// History returns the entries of the audit trail q selects, newest first:
// those after audit/through from the log, then those of the trail, from
// the index q names (object, actor, acted-for user), so that the cost
// follows the answer. As store.DB.History, a scan stops at the first
// batch older than q.Since.
func (s *Store) History(ctx context.Context, q graph.HistoryQuery) (graph.HistoryPage, error) {
	var page graph.HistoryPage
	end, err := q.End()
	if err != nil {
		return page, fmt.Errorf("etcdstore: %w", err)
	}
	through, err := s.auditThrough(ctx)
	if err != nil {
		return page, err
	}
	// The revisions after the trail, from the log.
	if end.Revision > through+1 || end.Revision == through+1 && end.Index > 0 {
		tail, _, err := s.readLog(ctx, through+1, math.MaxInt)
		if err != nil {
			return page, fmt.Errorf("etcdstore: history: %w", err)
		}
		for k := len(tail) - 1; k >= 0; k-- {
			c := &tail[k]
			for i := len(c.Mutations) - 1; i >= 0; i-- {
				m := graph.HistoryMark{Revision: c.Revision, Index: i}
				if !m.Before(end) || !q.Object.IsZero() && (i >= len(c.Subjects) || !slices.Contains(c.Subjects[i], q.Object)) {
					continue
				}
				if !q.Collect(&page, graph.HistoryEntry{HistoryMark: m, HistoryBatch: c.Batch(), Mutation: c.Mutations[i]}, c.Orgs(i)) {
					return page, nil
				}
			}
		}
	}
	if top := (graph.HistoryMark{Revision: through + 1}); top.Before(end) {
		end = top
	}
	var scanErr error
	for m, r := range s.auditRows(ctx, &q, end, &scanErr) {
		if !q.Collect(&page, graph.HistoryEntry{HistoryMark: m, HistoryBatch: r.HistoryBatch, Mutation: r.Mutation}, r.Organisations()) {
			break
		}
	}
	if scanErr != nil {
		return graph.HistoryPage{}, fmt.Errorf("etcdstore: history: %w", scanErr)
	}
	return page, nil
}

// scanPage is how many keys one request of a scan reads.
const scanPage = 64

// scanBack yields the keys and values in [from, to), last first, a page
// at a time; a failure ends it and is left in *errp.
func (s *Store) scanBack(ctx context.Context, from, to string, keysOnly bool, errp *error) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(to), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(scanPage)}
			if keysOnly {
				opts = append(opts, clientv3.WithKeysOnly())
			}
			resp, err := s.kv.Get(ctx, from, opts...)
			if err != nil {
				*errp = err
				return
			}
			for _, kv := range resp.Kvs {
				if !yield(string(kv.Key), kv.Value) {
					return
				}
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return
			}
			to = string(resp.Kvs[len(resp.Kvs)-1].Key)
		}
	}
}

// auditRows yields the trail's rows before end, newest first: those of
// q's index when q names an object, an actor or a user acted for, else
// all of them. A failure ends it and is left in *errp.
func (s *Store) auditRows(ctx context.Context, q *graph.HistoryQuery, end graph.HistoryMark, errp *error) iter.Seq2[graph.HistoryMark, *graph.HistoryRow] {
	rows := s.key(prefixAuditRow)
	decode := func(k string, v []byte) (graph.HistoryMark, *graph.HistoryRow, bool) {
		m, err := parseMark(k)
		if err != nil {
			*errp = err
			return m, nil, false
		}
		var r graph.HistoryRow
		if err := json.Unmarshal(v, &r); err != nil {
			*errp = fmt.Errorf("decode audit row %s: %w", m, err)
			return m, nil, false
		}
		return m, &r, true
	}
	// rowsOf yields the rows of one revision before end, newest first.
	rowsOf := func(rev uint64, yield func(graph.HistoryMark, *graph.HistoryRow) bool) bool {
		to := rows + revKey(rev) + "0" // just past rev's "/..." keys
		if rev == end.Revision {
			to = rows + markKey(end)
		}
		for k, v := range s.scanBack(ctx, rows+revKey(rev)+"/", to, false, errp) {
			m, r, ok := decode(k, v)
			if !ok || !yield(m, r) {
				return false
			}
		}
		return *errp == nil
	}
	return func(yield func(graph.HistoryMark, *graph.HistoryRow) bool) {
		switch {
		case !q.Object.IsZero():
			prefix := s.named(prefixAuditObj, q.Object.String())
			var marks []graph.HistoryMark
			// fetch reads the rows of marks in one transaction.
			fetch := func() bool {
				ops := make([]clientv3.Op, len(marks))
				for i, m := range marks {
					ops[i] = clientv3.OpGet(rows + markKey(m))
				}
				resp, err := s.kv.Txn(ctx).Then(ops...).Commit()
				if err != nil {
					*errp = err
					return false
				}
				for i, rr := range resp.Responses {
					kvs := rr.GetResponseRange().GetKvs()
					if len(kvs) == 0 {
						continue // compacted away
					}
					_, r, ok := decode(string(kvs[0].Key), kvs[0].Value)
					if !ok || !yield(marks[i], r) {
						return false
					}
				}
				marks = marks[:0]
				return true
			}
			for k := range s.scanBack(ctx, prefix, prefix+markKey(end), true, errp) {
				m, err := parseMark(k)
				if err != nil {
					*errp = err
					return
				}
				if marks = append(marks, m); len(marks) == scanPage && !fetch() {
					return
				}
			}
			if *errp == nil && len(marks) > 0 {
				fetch()
			}
		case q.Actor != "" || q.ActedFor != "":
			prefix := s.named(prefixAuditActor, q.Actor)
			if q.Actor == "" {
				prefix = s.named(prefixAuditFor, q.ActedFor)
			}
			for k := range s.scanBack(ctx, prefix, prefix+revKey(end.Revision)+"\x00", true, errp) {
				rev, err := parseRev(strings.TrimPrefix(k, prefix))
				if err != nil {
					*errp = fmt.Errorf("audit key %q: %w", k, err)
					return
				}
				if !rowsOf(rev, yield) {
					return
				}
			}
		default:
			for k, v := range s.scanBack(ctx, rows, rows+markKey(end), false, errp) {
				m, r, ok := decode(k, v)
				if !ok || !yield(m, r) {
					return
				}
			}
		}
	}
}

// CompactAudit removes from the audit trail the batches committed more
// than age before now, oldest first, a transaction of at most maxTxnOps
// operations at a time, and returns how many entries it removed. Zero age
// keeps everything.
func (s *Store) CompactAudit(ctx context.Context, now time.Time, age time.Duration) (int, error) {
	if age <= 0 {
		return 0, nil
	}
	cut := now.Add(-age)
	rows := s.key(prefixAuditRow)
	removed := 0
	for {
		resp, err := s.kv.Get(ctx, rows, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(scanPage))
		if err != nil {
			return removed, fmt.Errorf("etcdstore: list the audit trail: %w", err)
		}
		var ops []clientv3.Op
		n, done := 0, len(resp.Kvs) == 0
		for _, kv := range resp.Kvs {
			m, err := parseMark(string(kv.Key))
			if err != nil {
				return removed, err
			}
			var r graph.HistoryRow
			if err := json.Unmarshal(kv.Value, &r); err != nil {
				return removed, fmt.Errorf("etcdstore: decode audit row %s: %w", m, err)
			}
			if !r.Time.Before(cut) {
				done = true
				break
			}
			keys := append(s.rowKeys(&r, m), string(kv.Key))
			if m.Index == 0 {
				keys = append(keys, s.batchKeys(&r, m.Revision)...)
			}
			if len(ops)+len(keys) > maxTxnOps && len(ops) > 0 {
				break
			}
			for _, k := range keys {
				ops = append(ops, clientv3.OpDelete(k))
			}
			n++
		}
		if len(ops) > 0 {
			if _, err := s.kv.Txn(ctx).Then(ops...).Commit(); err != nil {
				return removed, fmt.Errorf("etcdstore: compact the audit trail: %w", err)
			}
			removed += n
		}
		if done || len(ops) == 0 {
			return removed, nil
		}
	}
}
