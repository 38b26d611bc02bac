package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/store/etcdstore"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
)

// TestDifferentialOverEtcd is TestDifferential with the second store:
// two nodes over one real etcd, the random writes and expiries going to
// either in turn, and after every step both nodes, at the same revision,
// compared with the reference: the state, what was refused, decisions
// with their explanations, and lookups.
func TestDifferentialOverEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs etcd")
	}
	c := etcdtest.Start(t, 1)
	cases := propertyCases(t, 20)
	steps, checksPerStep := 30, 30
	for i := 0; i < cases; i++ {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g := newGen(seed)
			g.now = graphtest.Start
			clock := graphtest.NewClock(g.now)
			var nodes [2]*graph.Index
			for k := range nodes {
				s, err := etcdstore.Open(context.Background(), c.Client(t), etcdstore.Options{Prefix: fmt.Sprintf("/diff/%d/", seed)})
				if err != nil {
					t.Fatal(err)
				}
				nodes[k] = openWith(t, graph.Options{Clock: clock, MaxDepth: diffDepth, Journal: s})
			}
			g.m = newRef()
			g.m.maxDepth = diffDepth
			g.build(t, nodes[0])
			level := func() {
				t.Helper()
				head := max(nodes[0].Revision(), nodes[1].Revision())
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for _, ix := range nodes {
					if err := ix.WaitFor(ctx, head); err != nil {
						t.Fatal(err)
					}
				}
			}
			for step := 0; step < steps; step++ {
				level()
				ix := nodes[step%2]
				if g.r.IntN(8) == 0 {
					d := time.Duration(g.r.IntN(40)) * time.Hour
					clock.Advance(d)
					g.now = g.now.Add(d)
				}
				if g.r.IntN(4) == 0 {
					expireDue(t, ix, g.m, g.now)
					level()
				}
				batch := g.batch()
				next, refErr := g.m.write(batch, g.now)
				_, err := ix.Write(context.Background(), "test", batch, graph.Preconditions{})
				if (err == nil) != (refErr == nil) {
					b, _ := json.Marshal(batch)
					t.Fatalf("step %d on node %d: index error %v, reference error %v, batch %s", step, step%2, err, refErr, b)
				}
				g.m = next
				level()
				for k, n := range nodes {
					if d := sameState(modelOf(t, n), g.m); d != "" {
						t.Fatalf("step %d, node %d: %s", step, k, d)
					}
				}
				for k := 0; k < checksPerStep; k++ {
					user, right, x := g.user(), g.right(), g.ref(true)
					for _, n := range nodes {
						compareCheck(t, n, g.m, g.now, user, right, x)
					}
				}
				compareLookups(t, g, nodes[(step+1)%2], g.m)
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d go test ./graph -run TestDifferentialOverEtcd", seed)
		}
	}
}
