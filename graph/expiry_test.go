package graph_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// commitLog collects the commits an index publishes.
type commitLog struct {
	mu      sync.Mutex
	commits []graph.Commit
	added   chan struct{} // signalled after each group
}

func newCommitLog() *commitLog { return &commitLog{added: make(chan struct{}, 1)} }

func (l *commitLog) publish(cs []graph.Commit) {
	l.mu.Lock()
	l.commits = append(l.commits, cs...)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

func (l *commitLog) last() graph.Commit {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.commits[len(l.commits)-1]
}

// waitFor returns the commits logged once one at revision rev or later is,
// failing the test if none comes within a minute.
func (l *commitLog) waitFor(t testing.TB, rev uint64) []graph.Commit {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		l.mu.Lock()
		commits := slices.Clone(l.commits)
		l.mu.Unlock()
		if len(commits) > 0 && commits[len(commits)-1].Revision >= rev {
			return commits
		}
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("no commit at revision %d logged within a minute", rev)
		}
	}
}

func openLogged(t *testing.T, clock graph.Clock, j graph.Journal, log *commitLog) *graph.Index {
	t.Helper()
	return openWith(t, graph.Options{Clock: clock, Journal: j, OnCommit: log.publish})
}

func openWith(t *testing.T, opts graph.Options) *graph.Index {
	t.Helper()
	ix, err := graph.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ix.Close)
	return ix
}

func grantUntil(id string, at time.Time) graph.Mutation {
	return graph.Mutation{AddGrant: &graph.Grant{ID: id, Holder: graph.UserRef("u"), Target: graph.FolderRef("o"),
		Rights: []string{"read"}, ExpiresAt: at}}
}

// TestExpireDue: expiries are recorded once each, earliest first, as a
// batch by the system, only when the clock has reached them; a grant
// removed first is never announced.
func TestExpireDue(t *testing.T) {
	ctx := context.Background()
	clock := graphtest.NewClock(graphtest.Start)
	log := newCommitLog()
	ix := openLogged(t, clock, nil, log)
	h := graphtest.Start.Add
	if _, err := ix.Write(ctx, "test", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "o"}},
		{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "o"}},
		grantUntil("g3", h(3*time.Hour)), grantUntil("g1b", h(time.Hour)), grantUntil("g1a", h(time.Hour)),
		grantUntil("gone", h(time.Hour)),
		{AddGrant: &graph.Grant{ID: "forever", Holder: graph.UserRef("u"), Rights: []string{"read"}}},
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	if next, ok := ix.NextExpiry(); !ok || !next.Equal(h(time.Hour)) {
		t.Fatalf("next expiry %v %v, want %v", next, ok, h(time.Hour))
	}
	if rev, n, err := ix.ExpireDue(ctx); rev != 0 || n != 0 || err != nil {
		t.Fatalf("nothing due yet: got revision %d, %d grants, %v", rev, n, err)
	}
	if _, err := ix.Write(ctx, "test", []graph.Mutation{{RemoveGrant: &graph.Delete{ID: "gone"}}}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	rev, n, err := ix.ExpireDue(ctx)
	if err != nil || n != 2 {
		t.Fatalf("expire due: %d grants, %v; want 2", n, err)
	}
	c := log.last()
	want := []graph.Mutation{{ExpireGrant: &graph.Delete{ID: "g1a"}}, {ExpireGrant: &graph.Delete{ID: "g1b"}}}
	if c.Revision != rev || c.Actor != graph.SystemActor || !c.Time.Equal(h(time.Hour)) || !reflect.DeepEqual(c.Mutations, want) {
		t.Fatalf("commit %d by %q at %v: %v; want %d by system at %v: %v", c.Revision, c.Actor, c.Time, c.Mutations, rev, h(time.Hour), want)
	}
	if rev, n, _ := ix.ExpireDue(ctx); rev != 0 || n != 0 {
		t.Fatalf("recorded twice: revision %d, %d grants", rev, n)
	}
	gs, _, _, err := ix.ListGrants(graph.UserRef("u"), graph.Ref{}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if g.Expired != (g.ID == "g1a" || g.ID == "g1b") {
			t.Fatalf("grant %s: Expired %v", g.ID, g.Expired)
		}
	}
	if next, ok := ix.NextExpiry(); !ok || !next.Equal(h(3*time.Hour)) {
		t.Fatalf("next expiry %v %v, want %v", next, ok, h(3*time.Hour))
	}
	clock.Advance(5 * time.Hour)
	if _, n, _ := ix.ExpireDue(ctx); n != 1 {
		t.Fatalf("g3: %d grants recorded, want 1", n)
	}
	if _, ok := ix.NextExpiry(); ok {
		t.Fatal("no expiry should be pending")
	}
}

// TestRunExpiry: the scheduler wakes for a grant added while it sleeps and
// records the expiry when its time comes, on the real clock.
func TestRunExpiry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	log := newCommitLog()
	ix := openLogged(t, graph.ClockFunc(time.Now), nil, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ix.RunExpiry(ctx, func(err error) { t.Errorf("run expiry: %v", err) })
	}()
	defer func() { cancel(); <-done }()
	if _, err := ix.Write(ctx, "test", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "o"}},
		{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "o"}},
		grantUntil("soon", time.Now().Add(30*time.Millisecond)),
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-log.added:
		case <-deadline:
			t.Fatal("the expiry was not recorded within 10s")
		}
		if c := log.last(); c.Actor == graph.SystemActor && c.Mutations[0].ExpireGrant != nil {
			if c.Mutations[0].ExpireGrant.ID != "soon" {
				t.Fatalf("recorded %v", c.Mutations)
			}
			return
		}
	}
}

// TestExpireDueAfterClose: a closed index refuses.
func TestExpireDueAfterClose(t *testing.T) {
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), nil)
	ix.Close()
	if _, _, err := ix.ExpireDue(context.Background()); !errors.Is(err, graph.ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

// TestFarExpiry: a grant that expires after 2262, which int64 nanoseconds
// cannot hold, is in effect until then.
func TestFarExpiry(t *testing.T) {
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), nil)
	muts := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "r"}}, {CreateUser: &graph.User{ID: "u", Class: "staff", Home: "r"}}}
	for _, y := range []int{2300, 9999} {
		muts = append(muts, graph.Mutation{AddGrant: &graph.Grant{ID: fmt.Sprint("g", y), Holder: graph.UserRef("u"), Target: graph.FolderRef("r"),
			Rights: []string{"read"}, ExpiresAt: time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)}})
	}
	if _, err := ix.Write(context.Background(), "t", muts, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	ex, err := ix.Explain("u", "read", graph.FolderRef("r"))
	if err != nil || !ex.Allowed || ex.Grant == nil || ex.Grant.ID != "g2300" {
		t.Fatalf("grants expiring in 2300 and 9999: %+v, %v", ex, err)
	}
}

// TestTimeBoxedAccess: the inspector's grant applies from its start to
// its expiry to the instant, and the account stops being active at its
// end, before the service records either; then the service records the
// start, the expiry and the end (disabling the account) as system, in
// order, each once.
func TestTimeBoxedAccess(t *testing.T) {
	ctx := context.Background()
	clock := graphtest.NewClock(graphtest.Start)
	log := newCommitLog()
	ix := openLogged(t, clock, nil, log)
	h := graphtest.Start.Add
	if _, err := ix.Write(ctx, "admin", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "college"}},
		{CreateUser: &graph.User{ID: "lena", Class: "learner", Home: "college"}},
		{CreateUser: &graph.User{ID: "inspector", Class: "staff", Home: "college", ActiveUntil: h(72 * time.Hour)}},
		{AddGrant: &graph.Grant{ID: "visit", Holder: graph.UserRef("inspector"), Target: graph.UserRef("lena"), Rights: []string{"read"},
			StartsAt: h(24 * time.Hour), ExpiresAt: h(48 * time.Hour)}},
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	reason := func() graph.Reason {
		d, err := ix.Check("inspector", "read", graph.UserRef("lena"))
		if err != nil {
			t.Fatal(err)
		}
		return d.Reason
	}
	steps := []struct {
		at   time.Duration
		want graph.Reason
	}{
		{24*time.Hour - 1, graph.ReasonNoGrant}, {24 * time.Hour, graph.ReasonAllowed},
		{48*time.Hour - 1, graph.ReasonAllowed}, {48 * time.Hour, graph.ReasonExpired},
		{72*time.Hour - 1, graph.ReasonExpired}, {72 * time.Hour, graph.ReasonNotActive},
	}
	at := time.Duration(0)
	for _, s := range steps {
		clock.Advance(s.at - at)
		at = s.at
		if got := reason(); got != s.want {
			t.Fatalf("at start+%v: %v, want %v", s.at, got, s.want)
		}
	}
	rev, n, err := ix.ExpireDue(ctx)
	if err != nil || n != 3 {
		t.Fatalf("recording what fell due: %d changes, %v", n, err)
	}
	c := log.last()
	want := []graph.Mutation{
		{StartGrant: &graph.Delete{ID: "visit"}},
		{ExpireGrant: &graph.Delete{ID: "visit"}},
		{SetUserState: &graph.StateChange{ID: "inspector", State: graph.StateDisabled}},
	}
	if c.Revision != rev || c.Actor != graph.SystemActor || !reflect.DeepEqual(c.Mutations, want) {
		t.Fatalf("commit %d by %q: %v; want by system: %v", c.Revision, c.Actor, c.Mutations, want)
	}
	if _, n, _ := ix.ExpireDue(ctx); n != 0 {
		t.Fatalf("recorded twice: %d", n)
	}
	u, _, err := ix.GetUser("inspector")
	if err != nil || u.State != graph.StateDisabled || !u.ActiveUntil.IsZero() {
		t.Fatalf("the inspector after the visit: %+v, %v", u, err)
	}
	if reason() != graph.ReasonNotActive {
		t.Fatal("the inspector is active again")
	}
	// What the clock decides is refused when written: an end in the past,
	// an end for a user who is not active, the service's own marks.
	for _, m := range []graph.Mutation{
		{SetUserState: &graph.StateChange{ID: "lena", State: graph.StateActive, ActiveUntil: h(time.Hour)}},
		{SetUserState: &graph.StateChange{ID: "lena", State: graph.StateDisabled, ActiveUntil: h(100 * time.Hour)}},
		{StartGrant: &graph.Delete{ID: "visit"}},
		{AddGrant: &graph.Grant{ID: "late", Holder: graph.UserRef("lena"), Rights: []string{"read"}, StartsAt: h(200 * time.Hour), ExpiresAt: h(100 * time.Hour)}},
	} {
		if _, err := ix.Write(ctx, "admin", []graph.Mutation{m}, graph.Preconditions{}); !errors.Is(err, graph.ErrInvalid) {
			t.Errorf("%v: %v, want invalid", m, err)
		}
	}
}
