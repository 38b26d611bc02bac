package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/graph/orggen"
	"github.com/canopy-authz/canopy/store"
	"github.com/canopy-authz/canopy/store/etcdstore"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
	"github.com/canopy-authz/canopy/store/storetest"
)

// open returns a store under its own prefix of the cluster.
func open(t *testing.T, c *etcdtest.Cluster, prefix string, maxValue int) *etcdstore.Store {
	t.Helper()
	s, err := etcdstore.Open(context.Background(), c.Client(t), etcdstore.Options{Prefix: prefix, MaxValue: maxValue})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keys counts the keys under prefix.
func keys(t *testing.T, c *clientv3.Client, prefix string) int {
	t.Helper()
	resp, err := c.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return int(resp.Count)
}

// TestRefusedAppendLeavesNoParts: an append refused as a conflict, of a
// commit too large for one etcd value, leaves none of its parts behind.
func TestRefusedAppendLeavesNoParts(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := open(t, c, "/t/", 512)
	ctx := context.Background()
	if err := s.Append(ctx, 0, []graph.Commit{storetest.FolderCommit(1, "x")}); err != nil {
		t.Fatal(err)
	}
	var big []string
	for i := range 200 {
		big = append(big, fmt.Sprintf("a folder id long enough to need parts %d", i))
	}
	if err := s.Append(ctx, 0, []graph.Commit{storetest.FolderCommit(1, big...)}); !errors.Is(err, graph.ErrConflict) {
		t.Fatalf("append at a past revision: %v, want a conflict", err)
	}
	if n := keys(t, c.Client(t), "/t/part/"); n != 0 {
		t.Fatalf("%d parts left behind by a refused append", n)
	}
	if err := s.Append(ctx, 1, []graph.Commit{storetest.FolderCommit(2, big...)}); err != nil {
		t.Fatal(err)
	}
	if n := keys(t, c.Client(t), "/t/part/"); n < 2 {
		t.Fatalf("a commit too large for one value was kept in %d parts", n)
	}
}

// TestSnapshots: a snapshot loads back the records it was given, the
// newest wins, and only the newest two are kept.
func TestSnapshots(t *testing.T) {
	c := etcdtest.Start(t, 1)
	s := open(t, c, "/t/", 2048)
	ctx := context.Background()
	if rev, err := s.Load(func(graph.Record) error { return errors.New("no records expected") }); rev != 0 || err != nil {
		t.Fatalf("an empty store loads revision %d, %v", rev, err)
	}
	recs := func(n int) []graph.Record {
		var out []graph.Record
		for i := range n {
			id := fmt.Sprintf("f%03d", i)
			out = append(out, graph.Record{Kind: graph.RecordFolder, ID: id, Value: []byte(`{"id":"` + id + `"}`)})
		}
		return out
	}
	for rev := uint64(1); rev <= 4; rev++ {
		if err := s.PutSnapshot(ctx, rev*10, recs(int(rev)*100)); err != nil {
			t.Fatal(err)
		}
	}
	var got []graph.Record
	rev, err := s.Load(func(r graph.Record) error { got = append(got, r); return nil })
	if err != nil || rev != 40 || !reflect.DeepEqual(got, recs(400)) {
		t.Fatalf("loaded %d records at %d, %v", len(got), rev, err)
	}
	if n := keys(t, c.Client(t), "/t/snapshot/"); n != 2 {
		t.Fatalf("%d snapshots kept, want 2", n)
	}
}

// node is one canopyd's index over the shared store, and every commit its
// OnCommit was handed.
type node struct {
	ix         *graph.Index
	opened     uint64       // the revision it opened at
	feedErrors atomic.Int64 // times following the store stopped with an error
	mu         sync.Mutex
	seen       []uint64
}

// counting is a store that counts the appends it refuses as conflicts.
type counting struct {
	*etcdstore.Store
	conflicts *atomic.Int64
}

func (c counting) Append(ctx context.Context, base uint64, commits []graph.Commit) error {
	err := c.Store.Append(ctx, base, commits)
	if errors.Is(err, graph.ErrConflict) {
		c.conflicts.Add(1)
	}
	return err
}

// conflicts counts the conflicts of every node's appends.
var conflicts atomic.Int64

func startNode(t *testing.T, c *etcdtest.Cluster, prefix string) *node {
	t.Helper()
	n := &node{}
	ix, err := graph.Open(context.Background(), graph.Options{
		Clock:   graphtest.NewClock(orggen.Start),
		Journal: counting{open(t, c, prefix, 4096), &conflicts},
		OnCommit: func(cs []graph.Commit) {
			n.mu.Lock()
			for _, c := range cs {
				n.seen = append(n.seen, c.Revision)
			}
			n.mu.Unlock()
		},
		OnFeedError: func(error) { n.feedErrors.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ix.Close)
	n.ix, n.opened = ix, ix.Revision()
	return n
}

// TestNodesConverge: three nodes over one etcd, written to at once (so
// their appends conflict and are validated again), end at the same
// revision with the same records as a node started afterwards, every
// revision committed once and handed to each node's OnCommit once, in
// order.
func TestNodesConverge(t *testing.T) {
	c := etcdtest.Start(t, 1)
	nodes := []*node{startNode(t, c, "/n/"), startNode(t, c, "/n/"), startNode(t, c, "/n/")}
	ctx := context.Background()
	org := orggen.Generate(orggen.Design().Scale(0.0005), 100)
	for i, b := range org.Batches {
		if _, err := nodes[i%3].ix.Write(ctx, "load", b, graph.Preconditions{}); err != nil {
			t.Fatal(err)
		}
	}
	churn := orggen.NewChurn(org, nil, 1)
	conflicts.Store(0)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for range 40 {
				batch, undo := churn.Next()
				if _, err := nodes[w%3].ix.Write(ctx, fmt.Sprint("writer", w), batch, graph.Preconditions{}); err != nil {
					// A removal another writer made first is refused on
					// validation, which is right; a conflict never is.
					if errors.Is(err, graph.ErrConflict) {
						t.Errorf("writer %d: %v", w, err)
					}
					continue
				}
				churn.Committed(undo)
			}
		})
	}
	wg.Wait()
	if conflicts.Load() == 0 {
		t.Fatal("no append conflicted: the nodes did not write at once")
	}
	t.Logf("%d appends conflicted and were validated again", conflicts.Load())
	head, err := open(t, c, "/n/", 4096).Revision()
	if err != nil {
		t.Fatal(err)
	}
	late := startNode(t, c, "/n/")
	want, _, err := late.ix.Records()
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := n.ix.WaitFor(wctx, head)
		cancel()
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		got, rev, err := n.ix.Records()
		if err != nil || rev != head || !reflect.DeepEqual(got, want) {
			t.Fatalf("node %d at revision %d (head %d) differs from a fresh load, %v", i, rev, head, err)
		}
		if k := n.feedErrors.Load(); k != 0 {
			t.Fatalf("node %d: following the store failed %d times with etcd up", i, k)
		}
		n.mu.Lock()
		seen := n.seen
		n.mu.Unlock()
		// From the node's opening on (the first node writes revision 1
		// itself, as it opens), each revision once, in order.
		if len(seen) == 0 || seen[0] > n.opened+1 {
			t.Fatalf("node %d, opened at %d: OnCommit began at %v", i, n.opened, seen[:min(1, len(seen))])
		}
		for j, r := range seen {
			if r != seen[0]+uint64(j) {
				t.Fatalf("node %d: OnCommit's commit %d is revision %d, after %d", i, j, r, seen[0])
			}
		}
		if len(seen) > 0 && seen[len(seen)-1] != head {
			t.Fatalf("node %d: OnCommit's last revision is %d, want %d", i, seen[len(seen)-1], head)
		}
	}
	log, err := open(t, c, "/n/", 4096).ReadLog(1, 1<<20)
	if err != nil || uint64(len(log)) != head {
		t.Fatalf("the log holds %d commits for head %d, %v", len(log), head, err)
	}
	// The same answers on every node at the same revision: checks,
	// explanations and lookups.
	sample := org.Checks(200, 3)
	for i, n := range append(nodes, late) {
		for _, q := range sample {
			want, werr := late.ix.Check(q.User, q.Right, q.Resource)
			got, gerr := n.ix.Check(q.User, q.Right, q.Resource)
			if want != got || fmt.Sprint(werr) != fmt.Sprint(gerr) {
				t.Fatalf("node %d, %s %s %v: %+v, %v; a fresh load: %+v, %v", i, q.User, q.Right, q.Resource, got, gerr, want, werr)
			}
			we, werr := late.ix.Explain(q.User, q.Right, q.Resource)
			ge, gerr := n.ix.Explain(q.User, q.Right, q.Resource)
			if !reflect.DeepEqual(we, ge) || fmt.Sprint(werr) != fmt.Sprint(gerr) {
				t.Fatalf("node %d explains %s %s %v otherwise", i, q.User, q.Right, q.Resource)
			}
		}
		for _, q := range sample[:20] {
			wp, werr := late.ix.LookupResources(q.User, q.Right, graph.KindFolder, "", 1000)
			gp, gerr := n.ix.LookupResources(q.User, q.Right, graph.KindFolder, "", 1000)
			if !reflect.DeepEqual(wp, gp) || fmt.Sprint(werr) != fmt.Sprint(gerr) {
				t.Fatalf("node %d looks up %s %s otherwise", i, q.User, q.Right)
			}
		}
	}
}

// TestCompactKeepsWhatANodeStartsFrom: compaction removes only the log
// before the newest snapshot, a node started afterwards loads the
// snapshot and the log after it and has the same records, and a follower
// that needs a removed revision is told so.
func TestCompactKeepsWhatANodeStartsFrom(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	s := open(t, c, "/c/", 4096)
	first := startNode(t, c, "/c/")
	org := orggen.Generate(orggen.Design().Scale(0.0005), 50)
	write := func(batches [][]graph.Mutation) {
		for _, b := range batches {
			if _, err := first.ix.Write(ctx, "load", b, graph.Preconditions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	half := len(org.Batches) / 2
	write(org.Batches[:half])
	recs, snapRev, err := first.ix.Records()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSnapshot(ctx, snapRev, recs); err != nil {
		t.Fatal(err)
	}
	write(org.Batches[half:])
	removed, err := s.Compact(ctx, orggen.Start.Add(time.Hour), store.Retention{Revisions: 1})
	if err != nil || removed != int(snapRev) {
		t.Fatalf("compaction removed %d commits, want the %d up to the snapshot, %v", removed, snapRev, err)
	}
	if oldest, err := s.OldestRevision(); oldest != snapRev+1 || err != nil {
		t.Fatalf("oldest revision %d, want %d, %v", oldest, snapRev+1, err)
	}
	late := startNode(t, c, "/c/")
	want, head, _ := first.ix.Records()
	got, rev, err := late.ix.Records()
	if err != nil || rev != head || !reflect.DeepEqual(got, want) {
		t.Fatalf("a node started after compaction is at %d (want %d) or differs, %v", rev, head, err)
	}
	err = s.Follow(ctx, 2, func(graph.Commit) error { return errors.New("nothing should be delivered") })
	if !errors.Is(err, etcdstore.ErrCompacted) {
		t.Fatalf("following from a removed revision: %v, want ErrCompacted", err)
	}
}

// TestExpiryRecordedOncePerCluster: every node records the grants that
// fell due at once, and the log holds each expiry once.
func TestExpiryRecordedOncePerCluster(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	clock := graphtest.NewClock(graphtest.Start)
	var nodes []*graph.Index
	for range 3 {
		ix, err := graph.Open(ctx, graph.Options{Clock: clock, Journal: open(t, c, "/x/", 4096)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ix.Close)
		nodes = append(nodes, ix)
	}
	batch := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "o"}}, {CreateUser: &graph.User{ID: "u", Class: "staff", Home: "o"}}}
	for i := range 20 {
		batch = append(batch, graph.Mutation{AddGrant: &graph.Grant{ID: fmt.Sprint("g", i), Holder: graph.UserRef("u"), Rights: []string{"read"},
			ExpiresAt: graphtest.Start.Add(time.Duration(i+1) * time.Minute)}})
	}
	if _, err := nodes[0].Write(ctx, "test", batch, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	for step := range 4 {
		clock.Advance(5 * time.Minute)
		var wg sync.WaitGroup
		for i, ix := range nodes {
			wg.Go(func() {
				if _, _, err := ix.ExpireDue(ctx); err != nil {
					t.Errorf("step %d, node %d: %v", step, i, err)
				}
			})
		}
		wg.Wait()
	}
	log, err := open(t, c, "/x/", 4096).ReadLog(1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	expired := map[string]int{}
	for _, cm := range log {
		for _, m := range cm.Mutations {
			if m.ExpireGrant != nil {
				expired[m.ExpireGrant.ID]++
			}
		}
	}
	if len(expired) != 20 {
		t.Fatalf("%d grants recorded as expired, want 20", len(expired))
	}
	for id, n := range expired {
		if n != 1 {
			t.Fatalf("grant %s recorded as expired %d times", id, n)
		}
	}
}

// TestNoNewEnemy: access revoked on node A, then new content written on
// A, then checked on node B at the content's revision: B never allows
// what the revoke took away, over many rounds.
func TestNoNewEnemy(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	a, b := startNode(t, c, "/e/"), startNode(t, c, "/e/")
	if _, err := a.ix.Write(ctx, "t", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "docs"}},
		{CreateFolder: &graph.Folder{ID: "team", Parent: "docs"}},
		{CreateUser: &graph.User{ID: "eve", Class: "staff", Home: "team"}},
		{CreateFolder: &graph.Folder{ID: "elsewhere", Parent: "docs"}},
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	stale := 0
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	for i := range rounds {
		grant := fmt.Sprint("g", i)
		if _, err := a.ix.Write(ctx, "t", []graph.Mutation{{AddGrant: &graph.Grant{ID: grant, Holder: graph.UserRef("eve"), Target: graph.FolderRef("elsewhere"), Rights: []string{"read"}}}}, graph.Preconditions{}); err != nil {
			t.Fatal(err)
		}
		if d, err := a.ix.Check("eve", "read", graph.FolderRef("elsewhere")); err != nil || !d.Allowed {
			t.Fatalf("the grant does not give eve read: %+v, %v", d, err)
		}
		if _, err := a.ix.Write(ctx, "t", []graph.Mutation{{RemoveGrant: &graph.Delete{ID: grant}}}, graph.Preconditions{}); err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprint("secret", i)
		rev, err := a.ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: content, Parent: "elsewhere"}}}, graph.Preconditions{})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = b.ix.WaitFor(wctx, rev)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		d, err := b.ix.Check("eve", "read", graph.FolderRef(content))
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			stale++
		}
	}
	if stale > 0 {
		t.Fatalf("%d of %d checks on node B allowed what node A had revoked", stale, rounds)
	}
}

// pausable is a store whose Follow waits while paused, as a node cut off
// from etcd would.
type pausable struct {
	*etcdstore.Store
	resume chan struct{}
}

func (p pausable) Follow(ctx context.Context, from uint64, fn func(graph.Commit) error) error {
	select {
	case <-p.resume:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.Store.Follow(ctx, from, fn)
}

// TestNodeBehindCompactionLoadsAfresh: a node that falls behind past the
// log's compaction loads the newest snapshot and the log after it, in
// place, says so (OnReload), and then has the same records as the others
// and follows on.
func TestNodeBehindCompactionLoadsAfresh(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	a := startNode(t, c, "/r/")
	p := pausable{open(t, c, "/r/", 4096), make(chan struct{})}
	reloaded := make(chan uint64, 1)
	b, err := graph.Open(ctx, graph.Options{Clock: graphtest.NewClock(orggen.Start), Journal: p, OnReload: func(rev uint64) { reloaded <- rev }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	org := orggen.Generate(orggen.Design().Scale(0.0005), 50)
	for _, batch := range org.Batches {
		if _, err := a.ix.Write(ctx, "load", batch, graph.Preconditions{}); err != nil {
			t.Fatal(err)
		}
	}
	recs, rev, err := a.ix.Records()
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, c, "/r/", 4096)
	if err := s.PutSnapshot(ctx, rev, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "after-snapshot"}}}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Compact(ctx, orggen.Start.Add(time.Hour), store.Retention{Revisions: 1}); err != nil {
		t.Fatal(err)
	}
	if b.Revision() >= rev {
		t.Fatalf("node b is at %d: it should be behind %d", b.Revision(), rev)
	}
	close(p.resume)
	select {
	case got := <-reloaded:
		if got < rev {
			t.Fatalf("reloaded at %d, before the snapshot's %d", got, rev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("node b did not load afresh within 30 s")
	}
	last, err := a.ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "after-reload"}}}, graph.Preconditions{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.WaitFor(wctx, last); err != nil {
		t.Fatalf("node b does not follow after its reload: %v", err)
	}
	want, _, _ := a.ix.Records()
	got, _, _ := b.Records()
	if !reflect.DeepEqual(got, want) {
		t.Fatal("node b differs from node a after its reload")
	}
}

// TestLargeBatchWholeOnEveryNode: a 100,000-mutation write, far larger
// than one etcd request, commits whole: another node applies all of it
// at one revision; refused at its last mutation, it leaves nothing, parts
// included.
func TestLargeBatchWholeOnEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 mutations twice")
	}
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	a, b := startNode(t, c, "/l/"), startNode(t, c, "/l/")
	batch := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "big"}}}
	for i := range 99_999 {
		batch = append(batch, graph.Mutation{CreateFolder: &graph.Folder{ID: fmt.Sprint("f", i), Parent: "big"}})
	}
	bad := append(slices.Clone(batch[:len(batch)-1]), graph.Mutation{CreateFolder: &graph.Folder{ID: "orphan", Parent: "nowhere"}})
	before := keys(t, c.Client(t), "/l/part/")
	if _, err := a.ix.Write(ctx, "t", bad, graph.Preconditions{}); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("the refused batch: %v", err)
	}
	if n := keys(t, c.Client(t), "/l/part/"); n != before {
		t.Fatalf("a refused batch left %d parts", n-before)
	}
	rev, err := a.ix.Write(ctx, "t", batch, graph.Preconditions{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := b.ix.WaitFor(wctx, rev); err != nil {
		t.Fatal(err)
	}
	if st := b.ix.Stats(); st.Folders != 100_000 || st.Revision != rev {
		t.Fatalf("node b at %d holds %d folders, want 100,000 at %d", st.Revision, st.Folders, rev)
	}
	if n := keys(t, c.Client(t), "/l/part/"); n < 2 {
		t.Fatalf("the batch was kept in %d parts", n)
	}
	// Its audit trail, read from the log and then from the trail built
	// in transactions within etcd's limit on operations.
	s := open(t, c, "/l/", 0)
	for _, build := range []bool{false, true} {
		if build {
			start := time.Now()
			n, err := s.IndexAudit(ctx)
			if err != nil || n < 100_000 {
				t.Fatalf("built the trail of %d mutations: %v", n, err)
			}
			t.Logf("built the trail of %d mutations in %s", n, time.Since(start).Round(time.Millisecond))
		}
		p, err := s.History(ctx, graph.HistoryQuery{Object: graph.Object{Kind: graph.RecordFolder, ID: "big"}, Limit: 2})
		if err != nil || len(p.Entries) != 2 || !p.More || p.Entries[0].Mutation.CreateFolder.ID != "f99998" || p.Entries[0].Revision != rev {
			t.Fatalf("built %v: big's history: %+v, %v", build, p, err)
		}
		p, err = s.History(ctx, graph.HistoryQuery{Object: graph.Object{Kind: graph.RecordFolder, ID: "f5"}, Limit: 2})
		if err != nil || len(p.Entries) != 1 || p.More || p.Entries[0].Index != 6 {
			t.Fatalf("built %v: f5's history: %+v, %v", build, p, err)
		}
	}
}

// TestWatchAccessOnAnotherNode: a user's access watched on node B changes
// when a grant is given on node A.
func TestWatchAccessOnAnotherNode(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	a := startNode(t, c, "/w/")
	changes := make(chan graph.AccessChange, 16)
	b, err := graph.Open(ctx, graph.Options{Clock: graphtest.NewClock(orggen.Start), Journal: open(t, c, "/w/", 4096), OnAccess: func(cs []graph.Commit) {
		for _, cm := range cs {
			for _, ch := range cm.Access {
				changes <- ch
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rev, err := a.ix.Write(ctx, "t", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "docs"}},
		{CreateFolder: &graph.Folder{ID: "team", Parent: "docs"}},
		{CreateUser: &graph.User{ID: "eve", Class: "staff", Home: "team"}},
		{CreateFolder: &graph.Folder{ID: "elsewhere", Parent: "docs"}},
	}, graph.Preconditions{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.WaitFor(wctx, rev); err != nil {
		t.Fatal(err)
	}
	w, err := b.WatchAccess(ctx, "eve")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := a.ix.Write(ctx, "t", []graph.Mutation{{AddGrant: &graph.Grant{ID: "g", Holder: graph.UserRef("eve"), Target: graph.FolderRef("elsewhere"), Rights: []string{"read"}}}}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-changes:
		if ch.User != "eve" || len(ch.Gained) == 0 {
			t.Fatalf("the change on node b: %+v", ch)
		}
	case <-wctx.Done():
		t.Fatal("node b's access watch saw no change")
	}
}

// TestFollowerBehindEtcdCompaction: a node cut off while etcd compacts
// its own history (not Canopy's log) follows on from its revision when
// it is back, with no gap and no duplicate.
func TestFollowerBehindEtcdCompaction(t *testing.T) {
	c := etcdtest.Start(t, 1)
	ctx := context.Background()
	a := startNode(t, c, "/k/")
	p := pausable{open(t, c, "/k/", 4096), make(chan struct{})}
	seen := make(chan uint64, 1024)
	b, err := graph.Open(ctx, graph.Options{Clock: graphtest.NewClock(orggen.Start), Journal: p,
		OnCommit: func(cs []graph.Commit) {
			for _, cm := range cs {
				seen <- cm.Revision
			}
		},
		OnReload: func(uint64) { t.Error("the node loaded afresh: Canopy's log was whole") }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	from := b.Revision()
	var last uint64
	for i := range 30 {
		if last, err = a.ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: fmt.Sprint("f", i)}}}, graph.Preconditions{}); err != nil {
			t.Fatal(err)
		}
	}
	cl := c.Client(t)
	resp, err := cl.Get(ctx, "/k/head")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	close(p.resume)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.WaitFor(wctx, last); err != nil {
		t.Fatal(err)
	}
	for want := from + 1; want <= last; want++ {
		if got := <-seen; got != want {
			t.Fatalf("node b applied revision %d, want %d", got, want)
		}
	}
	want, _, _ := a.ix.Records()
	got, _, _ := b.Records()
	if !reflect.DeepEqual(got, want) {
		t.Fatal("node b differs from node a")
	}
}
