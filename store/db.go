package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/canopy-authz/canopy/graph"
)

// FileName is the name of the bbolt file inside a data folder.
const FileName = "canopy.db"

// ErrInUse means another process has the file open.
var ErrInUse = errors.New("store: file is in use by another process")

// DB is Canopy's bbolt store: the current state, one bucket per kind of
// entity, and the change log. It is the graph.Journal of a single node.
type DB struct {
	bolt *bolt.DB
	path string
}

var _ graph.Journal = (*DB)(nil)

// Options configure Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the file. Zero means one second.
	LockTimeout time.Duration
}

// Open opens (creating it and its folder if need be) the store in the data
// folder dir. When another process holds the file it fails with ErrInUse
// after opts.LockTimeout rather than waiting forever.
func Open(dir string, opts Options) (*DB, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: create data folder: %w", err)
	}
	path := filepath.Join(dir, FileName)
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %s)", ErrInUse, path, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	d := &DB{bolt: b, path: path}
	if err := d.init(); err != nil {
		b.Close()
		return nil, err
	}
	return d, nil
}

// init creates the buckets of a new file and checks the schema of an old one.
func (d *DB) init() error {
	return d.bolt.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("store: create meta bucket: %w", err)
		}
		if v := meta.Get(keySchema); v != nil {
			got, err := parseRevKey(v)
			if err != nil || got != schemaVersion {
				return fmt.Errorf("store: %s has schema %d (%v); this build reads %d", d.path, got, err, schemaVersion)
			}
		} else if err := meta.Put(keySchema, revKey(schemaVersion)); err != nil {
			return fmt.Errorf("store: write schema: %w", err)
		}
		if meta.Get(keyID) == nil {
			if err := meta.Put(keyID, newID()); err != nil {
				return fmt.Errorf("store: write the store id: %w", err)
			}
		}
		names := [][]byte{bucketLog, bucketAuditBatch, bucketAudit, bucketAuditBy}
		for _, k := range graph.RecordKinds {
			names = append(names, kindBucket(k))
		}
		for _, n := range names {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return fmt.Errorf("store: create bucket %s: %w", n, err)
			}
		}
		return nil
	})
}

// newID returns a fresh store identity.
func newID() []byte {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return []byte(hex.EncodeToString(b[:]))
}

// ID returns the store's identity (see keyID), which changes when a
// backup is restored.
func (d *DB) ID() (string, error) {
	var id string
	err := d.bolt.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(keyID))
		return nil
	})
	return id, err
}

// Path returns the file's path.
func (d *DB) Path() string { return d.path }

// Close closes the file. Every acknowledged commit is on disk already.
func (d *DB) Close() error {
	if err := d.bolt.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", d.path, err)
	}
	return nil
}

func revisionOf(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(keyRevision)
	if v == nil {
		return 0, nil
	}
	return parseRevKey(v)
}

// Revision returns the revision of the last commit.
func (d *DB) Revision() (uint64, error) {
	var rev uint64
	err := d.bolt.View(func(tx *bolt.Tx) error {
		var err error
		rev, err = revisionOf(tx)
		return err
	})
	return rev, err
}

// Load calls fn with every stored record, kind by kind in graph.RecordKinds
// order, and returns the revision they are at. fn runs inside a read
// transaction: it must not block.
func (d *DB) Load(fn func(graph.Record) error) (uint64, error) {
	var rev uint64
	err := d.bolt.View(func(tx *bolt.Tx) error {
		var err error
		if rev, err = revisionOf(tx); err != nil {
			return fmt.Errorf("store: read revision: %w", err)
		}
		for _, k := range graph.RecordKinds {
			err := tx.Bucket(kindBucket(k)).ForEach(func(id, v []byte) error {
				// bbolt's slices are valid only inside the transaction.
				return fn(graph.Record{Kind: k, ID: string(id), Value: append([]byte(nil), v...)})
			})
			if err != nil {
				return fmt.Errorf("store: load %s: %w", k, err)
			}
		}
		return nil
	})
	return rev, err
}

// Append stores commits in one transaction, so one fsync covers the whole
// group: each commit's records, its change-log entry and its audit trail
// (audit.go), and the new revision. It refuses with graph.ErrConflict, storing nothing, when the
// stored revision is not base or the commits do not follow it. It returns
// after bbolt has synced the file.
func (d *DB) Append(ctx context.Context, base uint64, commits []graph.Commit) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: append: %w", err)
	}
	return d.bolt.Update(func(tx *bolt.Tx) error {
		rev, err := revisionOf(tx)
		if err != nil {
			return fmt.Errorf("store: read revision: %w", err)
		}
		if rev != base {
			return fmt.Errorf("store: append after revision %d, but the store is at %d: %w", base, rev, graph.ErrConflict)
		}
		logB := tx.Bucket(bucketLog)
		var auditKeys [][]byte
		for _, c := range commits {
			if c.Revision != rev+1 {
				return fmt.Errorf("store: commit revision %d does not follow %d: %w", c.Revision, rev, graph.ErrConflict)
			}
			rev = c.Revision
			logged := c
			logged.Subjects = nil // the trail keeps them; the log need not
			entry, err := graph.MarshalCommit(logged)
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if err := logB.Put(revKey(c.Revision), entry); err != nil {
				return fmt.Errorf("store: write log entry %d: %w", c.Revision, err)
			}
			if auditKeys, err = appendAudit(tx, &c, auditKeys); err != nil {
				return err
			}
			for _, r := range c.Records {
				b := tx.Bucket(kindBucket(r.Kind))
				if b == nil {
					return fmt.Errorf("store: revision %d: unknown record kind %q", c.Revision, r.Kind)
				}
				if r.Value == nil {
					err = b.Delete([]byte(r.ID))
				} else {
					err = b.Put([]byte(r.ID), r.Value)
				}
				if err != nil {
					return fmt.Errorf("store: revision %d: write %s %q: %w", c.Revision, r.Kind, r.ID, err)
				}
			}
		}
		if err := putAuditKeys(tx, auditKeys); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyRevision, revKey(rev))
	})
}

// ReadLog returns up to max change-log entries from revision from onwards,
// in revision order, with their mutations (records are not kept in the
// log). The transaction ends before it returns, so callers may send the
// entries over the network at leisure.
func (d *DB) ReadLog(from uint64, max int) ([]graph.Commit, error) {
	var out []graph.Commit
	err := d.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Seek(revKey(from)); k != nil && len(out) < max; k, v = c.Next() {
			c, err := graph.UnmarshalCommit(v)
			if err != nil {
				rev, _ := parseRevKey(k)
				return fmt.Errorf("store: revision %d: %w", rev, err)
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// OldestRevision returns the oldest revision the change log still holds
// (1 until anything has been compacted away).
func (d *DB) OldestRevision() (uint64, error) {
	oldest := uint64(1)
	err := d.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyOldest); v != nil {
			var err error
			oldest, err = parseRevKey(v)
			return err
		}
		return nil
	})
	return oldest, err
}

// Retention is how much of the change log to keep. An entry is compacted
// away only when it is outside both windows: more than Revisions behind
// the newest and older than Age. A zero field does not limit; both zero
// keep everything.
type Retention struct {
	Revisions uint64
	Age       time.Duration
}

// compactChunk is how many log entries one compaction transaction deletes,
// so that a writer waits for at most one short transaction.
const compactChunk = 1000

// Compact removes the log entries outside the retention window at time
// now, in short transactions, and returns how many it removed. The newest
// entry is always kept.
func (d *DB) Compact(now time.Time, r Retention) (int, error) {
	if r.Revisions == 0 && r.Age == 0 {
		return 0, nil
	}
	removed := 0
	for {
		n, more, err := d.compactSome(now, r)
		removed += n
		if err != nil || !more {
			return removed, err
		}
	}
}

// compactSome deletes up to compactChunk expired entries from the start of
// the log and reports whether there may be more.
func (d *DB) compactSome(now time.Time, r Retention) (int, bool, error) {
	n := 0
	more := false
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		head, err := revisionOf(tx)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucketLog).Cursor()
		var next uint64
		for k, v := c.First(); k != nil; k, v = c.First() {
			rev, err := parseRevKey(k)
			if err != nil {
				return err
			}
			next = rev
			if rev >= head || r.Revisions > 0 && head-rev < r.Revisions {
				break
			}
			if r.Age > 0 {
				var e struct {
					Time time.Time `json:"time"`
				}
				if err := json.Unmarshal(v, &e); err != nil {
					return fmt.Errorf("store: decode log entry %d: %w", rev, err)
				}
				if now.Sub(e.Time) <= r.Age {
					break
				}
			}
			if n == compactChunk {
				more = true
				break
			}
			if err := c.Delete(); err != nil {
				return fmt.Errorf("store: compact log entry %d: %w", rev, err)
			}
			n++
			next = rev + 1
		}
		if n == 0 {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(keyOldest, revKey(next))
	})
	return n, more, err
}

// Size returns the file's size in bytes.
func (d *DB) Size() (int64, error) {
	var n int64
	err := d.bolt.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n, err
}

// Stats are figures about the file, for metrics.
type Stats struct {
	FileBytes int64 // the file's size
	TxStarted int   // read transactions started since open
	TxOpen    int   // read transactions open now
	FreePages int   // pages on the freelist
}

// Stats returns the file's figures.
func (d *DB) Stats() (Stats, error) {
	bs := d.bolt.Stats()
	size, err := d.Size()
	return Stats{FileBytes: size, TxStarted: bs.TxN, TxOpen: bs.OpenTxN, FreePages: bs.FreePageN}, err
}

// Check verifies the file's internal consistency (bbolt's page checks).
func (d *DB) Check() error {
	return d.bolt.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain it all: the checker stops only then
			if first == nil {
				first = fmt.Errorf("store: %s is inconsistent: %w", d.path, err)
			}
		}
		return first
	})
}
