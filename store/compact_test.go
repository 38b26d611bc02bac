package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/store"
	"github.com/canopy-authz/canopy/store/storetest"
)

// appendLog appends n commits, one minute apart from start, as one group.
func appendLog(t *testing.T, db *store.DB, n int, start time.Time) {
	t.Helper()
	commits := make([]graph.Commit, n)
	for i := range commits {
		commits[i] = graph.Commit{Revision: uint64(i + 1), Time: start.Add(time.Duration(i+1) * time.Minute), Actor: "t"}
	}
	if err := db.Append(context.Background(), 0, commits); err != nil {
		t.Fatal(err)
	}
}

func TestCompact(t *testing.T) {
	start := graphtest.Start
	now := start.Add(2500 * time.Minute) // entry i is 2500-i minutes old
	for _, tc := range []struct {
		name   string
		r      store.Retention
		oldest uint64
	}{
		{"nothing asked", store.Retention{}, 1},
		{"keep 100 revisions", store.Retention{Revisions: 100}, 2401},
		{"keep an hour", store.Retention{Age: time.Hour}, 2440},
		{"both: the wider window wins", store.Retention{Revisions: 100, Age: time.Hour}, 2401},
		{"both, age wider", store.Retention{Revisions: 10, Age: 2 * time.Hour}, 2380},
		{"everything old: the newest stays", store.Retention{Revisions: 1, Age: time.Nanosecond}, 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := storetest.Open(t, "")
			appendLog(t, db, 2500, start)
			removed, err := db.Compact(now, tc.r)
			if err != nil {
				t.Fatal(err)
			}
			oldest, err := db.OldestRevision()
			if err != nil || oldest != tc.oldest || removed != int(tc.oldest-1) {
				t.Fatalf("oldest %d (want %d), removed %d, %v", oldest, tc.oldest, removed, err)
			}
			log, err := db.ReadLog(0, 1<<20)
			if err != nil || len(log) != int(2500-tc.oldest+1) || log[0].Revision != tc.oldest {
				t.Fatalf("log holds %d entries from %d", len(log), log[0].Revision)
			}
		})
	}
}
