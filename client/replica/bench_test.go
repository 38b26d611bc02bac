package replica_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/client/replica"
	"github.com/canopy-authz/canopy/graph"
)

// BenchmarkReplicaLag: one write at a time committed on the server (with
// fsync), timed from the write's call to the moment the replica has
// applied its revision; reports the median and p99 of that, and of the
// lag alone, from the write's acknowledgement.
func BenchmarkReplicaLag(b *testing.B) {
	w := newWorld(b, 1, replica.Options{})
	ctx := context.Background()
	var total, lag []time.Duration
	b.ResetTimer()
	for range b.N {
		batch, undo := w.churn.Next()
		t0 := time.Now()
		rev, err := w.srv.Index.Write(ctx, "bench", batch, graph.Preconditions{})
		if err != nil {
			continue
		}
		t1 := time.Now()
		w.churn.Committed(undo)
		if _, err := w.r.Check(ctx, "nobody", "read", graph.Ref{}, replica.AtLeast(rev)); err != nil && ctx.Err() != nil {
			b.Fatal(err)
		}
		total, lag = append(total, time.Since(t0)), append(lag, time.Since(t1))
	}
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"write-to-replica", total}, {"lag", lag}} {
		slices.Sort(m.d)
		b.ReportMetric(float64(m.d[len(m.d)/2].Microseconds()), m.name+"-p50-us")
		b.ReportMetric(float64(m.d[len(m.d)*99/100].Microseconds()), m.name+"-p99-us")
	}
}

// BenchmarkReplicaCheck: a check answered by a replica, in process.
func BenchmarkReplicaCheck(b *testing.B) {
	w := newWorld(b, 1, replica.Options{})
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		c := w.checks[i%len(w.checks)]
		if _, err := w.r.Check(ctx, c.User, c.Right, c.Resource); err != nil && ctx.Err() != nil {
			b.Fatal(err)
		}
	}
}
