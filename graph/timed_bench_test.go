package graph_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// BenchmarkTimedUserWrites writes, one per op, a user active until a
// time into an index of 100,000 users and no grants: what each write
// costs once many users are timed and few grants exist (the due-queue
// must not be rebuilt, visiting every user, on each of them).
func BenchmarkTimedUserWrites(b *testing.B) {
	ctx := context.Background()
	ix := graphtest.Open(b, graphtest.NewClock(graphtest.Start), nil)
	batch := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "o"}}}
	for i := range 100_000 {
		batch = append(batch, graph.Mutation{CreateUser: &graph.User{ID: fmt.Sprintf("u%d", i), Class: "staff", Home: "o"}})
		if len(batch) == 10_000 {
			if _, err := ix.Write(ctx, "bench", batch, graph.Preconditions{}); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	until := graphtest.Start.Add(time.Hour)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ix.Write(ctx, "bench", []graph.Mutation{{CreateUser: &graph.User{ID: fmt.Sprintf("t%d", i), Class: "staff", Home: "o", ActiveUntil: until}}}, graph.Preconditions{}); err != nil {
			b.Fatal(err)
		}
	}
}
