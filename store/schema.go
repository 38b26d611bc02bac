package store

import (
	"encoding/binary"
	"fmt"

	"github.com/canopy-authz/canopy/graph"
)

// Every bucket and key layout of the file.
//
//	meta                      schema version and the revision
//	  "schema"  -> uint64 big-endian (schemaVersion)
//	  "revision"-> uint64 big-endian: the revision of the last commit
//	  "oldest"  -> uint64 big-endian: the oldest revision still in the log
//	               (absent: 1, nothing compacted yet)
//	  "id"      -> 32 hex digits: the store's identity, new on restore
//	log                       the change log, one entry per revision
//	  revKey(rev) -> graph.MarshalCommit of the commit
//	audit-batch, audit, audit-by
//	                          the audit trail, apart from the log (audit.go)
//	right, self, folder, rule, user, grant, lock
//	                          the current state, one bucket per graph.RecordKind
//	  id -> JSON of the entity (graph.Record.Value)
//
// Keys of the log are big-endian so that bbolt's byte order is revision
// order and a cursor can seek to a revision.
var (
	bucketMeta = []byte("meta")
	bucketLog  = []byte("log")

	keySchema   = []byte("schema")
	keyRevision = []byte("revision")
	keyOldest   = []byte("oldest")
	// keyID holds the store's identity: 32 hex digits, made when the file
	// is, and made anew when a backup is restored, so that a revision of
	// one history is never taken for the same number in another.
	keyID = []byte("id")
)

// schemaVersion is the layout this package writes; Open refuses others.
const schemaVersion = 1

// kindBucket returns the bucket name of a record kind.
func kindBucket(k graph.RecordKind) []byte { return []byte(k) }

// revKey encodes a revision as a log key.
func revKey(rev uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], rev)
	return b[:]
}

// parseRevKey decodes a log key or a stored revision.
func parseRevKey(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("revision key has %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
