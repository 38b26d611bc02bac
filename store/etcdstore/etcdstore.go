// Package etcdstore keeps Canopy's change log in etcd, so that any number
// of canopyd nodes serve one organisation set, each deciding from its own
// index: the journal every node appends to, and the feed each follows.
//
// Every key lies under one prefix:
//
//	id                      32 hex digits: the store's identity
//	head                    16 hex digits: the revision of the last commit
//	log/<first>             a group of commits, revisions first to last,
//	                        committed together (JSON group)
//	snapshot/<rev>          a copy of every record at rev (JSON manifest)
//	part/<id>/<i>           the parts of a group or snapshot too large for
//	                        one etcd request, in order
//	partof/<id>             which group or snapshot parts <id> belong to
//
// Revisions in keys are 16 hex digits, so key order is revision order. A
// group is committed by one transaction that succeeds only while head
// still names the revision it was validated against: it puts the group,
// moves head, and names the group's parts, written before it. Parts of a
// transaction that failed are removed by their writer, or, when the
// writer stopped first, by Sweep (every node runs it with compaction).
// So a group appears whole or not at all, and the revisions are a
// gapless sequence however many nodes write.
package etcdstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/graph"
)

// Store is Canopy's journal and change log in etcd. Its methods may be
// called from any goroutine.
type Store struct {
	c      *clientv3.Client
	kv     timedKV
	prefix string
	max    int
	// ahead holds the commits a lost append brought back, which the next
	// ReadLog from their first revision returns without asking etcd.
	mu    sync.Mutex
	ahead []graph.Commit
}

var (
	_ graph.Journal = (*Store)(nil)
	_ graph.Feed    = (*Store)(nil)
)

// Options configure Open.
type Options struct {
	// Prefix is put before every key: one etcd cluster may hold several
	// stores. Empty means "/canopy/".
	Prefix string
	// MaxValue is the largest value put in one request; larger groups and
	// snapshots go in parts of this size. Zero means 1 MiB, under etcd's
	// default request limit of 1.5 MiB.
	MaxValue int
	// RequestTimeout bounds each request to etcd; zero means 5 s. A
	// request to a member without a leader fails at once.
	RequestTimeout time.Duration
}

// Open uses the etcd cluster c holds a connection to, making the store's
// identity and head when the prefix holds none. The caller closes c.
func Open(ctx context.Context, c *clientv3.Client, opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = "/canopy/"
	}
	if opts.MaxValue <= 0 {
		opts.MaxValue = 1 << 20
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	s := &Store{c: c, kv: timedKV{c.KV, opts.RequestTimeout}, prefix: opts.Prefix, max: opts.MaxValue}
	_, err := c.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(s.key(keyHead)), "=", 0)).
		Then(clientv3.OpPut(s.key(keyHead), revKey(0)), clientv3.OpPut(s.key(keyID), newID())).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("etcdstore: open %s: %w", opts.Prefix, err)
	}
	return s, nil
}

const (
	keyHead      = "head"
	keyID        = "id"
	prefixLog    = "log/"
	prefixSnap   = "snapshot/"
	prefixPart   = "part/"
	prefixPartOf = "partof/"
)

// key returns the full key of name.
func (s *Store) key(name string) string { return s.prefix + name }

// revKey encodes a revision as 16 hex digits.
func revKey(rev uint64) string { return fmt.Sprintf("%016x", rev) }

// parseRev decodes revKey.
func parseRev(b string) (uint64, error) {
	if len(b) != 16 {
		return 0, fmt.Errorf("revision %q has %d digits, want 16", b, len(b))
	}
	rev, err := strconv.ParseUint(b, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("revision %q: %w", b, err)
	}
	return rev, nil
}

// newID returns 32 random hex digits.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return hex.EncodeToString(b[:])
}

// partsID returns a new id for a group's or snapshot's parts: the time,
// then random digits, so that Sweep can tell parts left behind long ago
// from those of an append still under way.
func partsID(now time.Time) string { return fmt.Sprintf("%016x-%s", now.Unix(), newID()) }

// ID returns the store's identity, made when the prefix was first used.
func (s *Store) ID() (string, error) {
	resp, err := s.kv.Get(context.Background(), s.key(keyID))
	if err != nil {
		return "", fmt.Errorf("etcdstore: read id: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", fmt.Errorf("etcdstore: %s holds no id", s.prefix)
	}
	return string(resp.Kvs[0].Value), nil
}

// Revision returns the revision of the last commit, read from the
// cluster's quorum (a linearizable read).
func (s *Store) Revision() (uint64, error) {
	return s.head(context.Background())
}

// head returns the revision of the last commit.
func (s *Store) head(ctx context.Context) (uint64, error) {
	resp, err := s.kv.Get(ctx, s.key(keyHead))
	if err != nil {
		return 0, fmt.Errorf("etcdstore: read head: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, fmt.Errorf("etcdstore: %s holds no head", s.prefix)
	}
	rev, err := parseRev(string(resp.Kvs[0].Value))
	if err != nil {
		return 0, fmt.Errorf("etcdstore: head: %w", err)
	}
	return rev, nil
}

// group is the stored form of commits appended together.
type group struct {
	// ID is the append's own: after a failed request, finding it in the
	// log tells whether the append took effect.
	ID    string `json:"id"`
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Time is the last commit's, for compaction by age.
	Time time.Time `json:"time"`
	// Entries are the commits (graph.MarshalCommit), when they fit in one
	// value; otherwise Parts says how many parts hold them, as one JSON
	// array split in pieces.
	Entries []json.RawMessage `json:"entries,omitempty"`
	Parts   int               `json:"parts,omitempty"`
}

// Append commits the commits, which follow revision base, as one group,
// all or none. It fails with graph.ErrConflict, storing nothing, when
// the store is no longer at base (another node committed first). It
// returns once etcd's quorum has the group on disk.
func (s *Store) Append(ctx context.Context, base uint64, commits []graph.Commit) error {
	if len(commits) == 0 {
		return nil
	}
	g := group{ID: partsID(time.Now()), First: base + 1, Last: base + uint64(len(commits)), Time: commits[len(commits)-1].Time}
	size := 0
	for i, c := range commits {
		if c.Revision != base+uint64(i)+1 {
			return fmt.Errorf("etcdstore: commit revision %d does not follow %d: %w", c.Revision, base+uint64(i), graph.ErrConflict)
		}
		b, err := graph.MarshalCommit(c)
		if err != nil {
			return fmt.Errorf("etcdstore: %w", err)
		}
		g.Entries = append(g.Entries, b)
		size += len(b)
	}
	ops := []clientv3.Op{clientv3.OpPut(s.key(keyHead), revKey(g.Last))}
	if size > s.max {
		all, err := json.Marshal(g.Entries)
		if err != nil {
			return fmt.Errorf("etcdstore: encode revisions %d-%d: %w", g.First, g.Last, err)
		}
		if g.Parts, err = s.putParts(ctx, g.ID, all); err != nil {
			return err
		}
		g.Entries = nil
		ops = append(ops, clientv3.OpPut(s.key(prefixPartOf+g.ID), prefixLog+revKey(g.First)))
	}
	v, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("etcdstore: encode revisions %d-%d: %w", g.First, g.Last, err)
	}
	ops = append(ops, clientv3.OpPut(s.key(prefixLog+revKey(g.First)), string(v)))
	resp, err := s.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(s.key(keyHead)), "=", revKey(base))).
		Then(ops...).
		// Lost: the same answer brings what was committed first, so
		// the node validates again without another round trip.
		Else(clientv3.OpGet(s.key(keyHead)), clientv3.OpGet(s.key(prefixLog+revKey(base+1)),
			clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.key(prefixLog))), clientv3.WithLimit(16))).
		Commit()
	if err != nil {
		if errors.Is(err, rpctypes.ErrNoLeader) {
			s.dropParts(ctx, g.ID, g.Parts)
			return fmt.Errorf("etcdstore: commit revisions %d-%d: etcd has lost its quorum (%w); nothing was committed", g.First, g.Last, err)
		}
		// The request may have been applied all the same: the log says.
		got, found, rerr := s.groupAt(context.WithoutCancel(ctx), g.First)
		switch {
		case rerr == nil && found && got.ID == g.ID:
			return nil
		case rerr == nil && found: // another node's group holds the revision
			s.dropParts(ctx, g.ID, g.Parts)
			return fmt.Errorf("etcdstore: append after revision %d: another node committed first: %w", base, graph.ErrConflict)
		case rerr == nil:
			rerr = errors.New("not yet")
		}
		return fmt.Errorf("etcdstore: commit revisions %d-%d: etcd did not answer (%w), nor whether it committed (%w): %w; if it does, every node applies it from the log",
			g.First, g.Last, err, rerr, graph.ErrUnknownOutcome)
	}
	if !resp.Succeeded {
		s.dropParts(ctx, g.ID, g.Parts)
		s.keepAhead(ctx, base, resp.Responses[1].GetResponseRange().Kvs)
		now := "?"
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			if rev, err := parseRev(string(kvs[0].Value)); err == nil {
				now = fmt.Sprint(rev)
			}
		}
		return fmt.Errorf("etcdstore: append after revision %d, but the store is at %s: %w", base, now, graph.ErrConflict)
	}
	return nil
}

// putParts writes b in parts of at most s.max bytes under id, each in a
// request of its own, and returns how many.
func (s *Store) putParts(ctx context.Context, id string, b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		k := min(len(b), s.max)
		if _, err := s.kv.Put(ctx, s.partKey(id, n), string(b[:k])); err != nil {
			s.dropParts(ctx, id, n)
			return 0, fmt.Errorf("etcdstore: write part %d of %s: %w", n, id, err)
		}
		b, n = b[k:], n+1
	}
	return n, nil
}

// partKey is the key of part i of id.
func (s *Store) partKey(id string, i int) string {
	return s.key(fmt.Sprintf("%s%s/%08x", prefixPart, id, i))
}

// dropParts removes the parts of id, if it has any, as best it can: what
// stays behind is removed by Sweep.
func (s *Store) dropParts(ctx context.Context, id string, n int) {
	if n == 0 {
		return
	}
	_, _ = s.kv.Delete(context.WithoutCancel(ctx), s.key(prefixPart+id+"/"), clientv3.WithPrefix())
}

// getParts reads and joins the n parts of id.
func (s *Store) getParts(ctx context.Context, id string, n int) ([]byte, error) {
	var out []byte
	for i := 0; i < n; i++ {
		resp, err := s.kv.Get(ctx, s.partKey(id, i))
		if err != nil {
			return nil, fmt.Errorf("etcdstore: read part %d of %s: %w", i, id, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, fmt.Errorf("etcdstore: part %d of %s is missing", i, id)
		}
		out = append(out, resp.Kvs[0].Value...)
	}
	return out, nil
}

// groupAt returns the group that begins at revision first, and whether
// there is one.
func (s *Store) groupAt(ctx context.Context, first uint64) (group, bool, error) {
	resp, err := s.kv.Get(ctx, s.key(prefixLog+revKey(first)))
	if err != nil {
		return group{}, false, err
	}
	if len(resp.Kvs) == 0 {
		return group{}, false, nil
	}
	var g group
	if err := json.Unmarshal(resp.Kvs[0].Value, &g); err != nil {
		return group{}, false, fmt.Errorf("etcdstore: decode %s: %w", resp.Kvs[0].Key, err)
	}
	return g, true, nil
}

// decodeGroup decodes a stored group and the commits it holds.
func (s *Store) decodeGroup(ctx context.Context, key string, v []byte) ([]graph.Commit, error) {
	var g group
	if err := json.Unmarshal(v, &g); err != nil {
		return nil, fmt.Errorf("etcdstore: decode %s: %w", key, err)
	}
	entries := g.Entries
	if g.Parts > 0 {
		b, err := s.getParts(ctx, g.ID, g.Parts)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &entries); err != nil {
			return nil, fmt.Errorf("etcdstore: decode parts of %s: %w", key, err)
		}
	}
	if uint64(len(entries)) != g.Last-g.First+1 {
		return nil, fmt.Errorf("etcdstore: %s holds %d commits for revisions %d-%d", key, len(entries), g.First, g.Last)
	}
	out := make([]graph.Commit, len(entries))
	for i, e := range entries {
		c, err := graph.UnmarshalCommit(e)
		if err != nil {
			return nil, fmt.Errorf("etcdstore: %s: %w", key, err)
		}
		if c.Revision != g.First+uint64(i) {
			return nil, fmt.Errorf("etcdstore: %s holds revision %d at place %d", key, c.Revision, i)
		}
		out[i] = c
	}
	return out, nil
}

// keepAhead keeps the commits of the groups a lost append brought back,
// which follow revision base.
func (s *Store) keepAhead(ctx context.Context, base uint64, kvs []*mvccpb.KeyValue) {
	var ahead []graph.Commit
	for _, kv := range kvs {
		commits, err := s.decodeGroup(ctx, string(kv.Key), kv.Value)
		if err != nil {
			return // ReadLog asks etcd
		}
		ahead = append(ahead, commits...)
	}
	if len(ahead) == 0 || ahead[0].Revision != base+1 {
		return
	}
	s.mu.Lock()
	s.ahead = ahead
	s.mu.Unlock()
}

// ReadLog returns up to max commits from revision from onwards, in
// revision order (from the oldest the log holds, if from is older).
func (s *Store) ReadLog(from uint64, max int) ([]graph.Commit, error) {
	s.mu.Lock()
	ahead := s.ahead
	s.ahead = nil
	s.mu.Unlock()
	if len(ahead) > 0 && ahead[0].Revision <= from && from <= ahead[len(ahead)-1].Revision {
		ahead = ahead[from-ahead[0].Revision:]
		return ahead[:min(max, len(ahead))], nil
	}
	out, _, err := s.readLog(context.Background(), from, max)
	return out, err
}

// readLog is ReadLog, which also returns the etcd revision it read at.
func (s *Store) readLog(ctx context.Context, from uint64, max int) ([]graph.Commit, int64, error) {
	// The group holding from is the last that begins at or before it.
	start := s.key(prefixLog + revKey(from))
	resp, err := s.kv.Get(ctx, s.key(prefixLog), clientv3.WithRange(s.key(prefixLog+revKey(from+1))),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return nil, 0, fmt.Errorf("etcdstore: read log at %d: %w", from, err)
	}
	at := resp.Header.Revision
	if len(resp.Kvs) > 0 {
		start = string(resp.Kvs[0].Key)
	}
	var out []graph.Commit
	end := clientv3.GetPrefixRangeEnd(s.key(prefixLog))
	for len(out) < max {
		resp, err := s.kv.Get(ctx, start, clientv3.WithRange(end), clientv3.WithRev(at), clientv3.WithLimit(64))
		if err != nil {
			return nil, 0, fmt.Errorf("etcdstore: read log at %d: %w", from, err)
		}
		for _, kv := range resp.Kvs {
			commits, err := s.decodeGroup(ctx, string(kv.Key), kv.Value)
			if err != nil {
				return nil, 0, err
			}
			for _, c := range commits {
				if c.Revision >= from && len(out) < max {
					out = append(out, c)
				}
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	return out, at, nil
}

// OldestRevision returns the oldest revision the log still holds (1 until
// anything has been compacted away, or while the log is empty).
func (s *Store) OldestRevision() (uint64, error) {
	resp, err := s.kv.Get(context.Background(), s.key(prefixLog), clientv3.WithPrefix(), clientv3.WithLimit(1),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithKeysOnly())
	if err != nil {
		return 0, fmt.Errorf("etcdstore: read the oldest revision: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 1, nil
	}
	return s.keyRev(resp.Kvs[0].Key, prefixLog)
}

// keyRev returns the revision a key under prefix names.
func (s *Store) keyRev(key []byte, prefix string) (uint64, error) {
	rev, err := parseRev(strings.TrimPrefix(string(key), s.key(prefix)))
	if err != nil {
		return 0, fmt.Errorf("etcdstore: %s: %w", key, err)
	}
	return rev, nil
}
