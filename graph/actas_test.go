package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/scenario"
)

// errNotAllowed is the reference's refusal of an acted write.
var errNotAllowed = errors.New("not allowed")

// refNeed is one right a mutation needs on one object, in the reference.
type refNeed struct {
	right string
	x     graph.Ref
}

// needs is DESIGN.md section 5's table, read plainly: the rights a
// mutation written on behalf of a user needs, or never.
func (m *refModel) needs(mu graph.Mutation) (out []refNeed, never bool) {
	edit := func(x graph.Ref) { out = append(out, refNeed{"edit", x}) }
	grant := func(g graph.Grant) {
		on := g.Target
		if on.IsZero() {
			on = g.Holder
		}
		out = append(out, refNeed{"assign", on})
		for _, r := range g.Rights {
			out = append(out, refNeed{r, g.Target})
		}
	}
	switch {
	case mu.CreateFolder != nil:
		if mu.CreateFolder.Parent == "" {
			return nil, true
		}
		edit(graph.FolderRef(mu.CreateFolder.Parent))
	case mu.RenameFolder != nil:
		edit(graph.FolderRef(mu.RenameFolder.ID))
	case mu.RelabelFolder != nil:
		edit(graph.FolderRef(mu.RelabelFolder.ID))
	case mu.DeleteFolder != nil:
		edit(graph.FolderRef(mu.DeleteFolder.ID))
	case mu.MoveFolder != nil:
		edit(graph.FolderRef(mu.MoveFolder.ID))
		edit(graph.FolderRef(mu.MoveFolder.To))
	case mu.CreateUser != nil:
		edit(graph.FolderRef(mu.CreateUser.Home))
		for _, f := range mu.CreateUser.Extras {
			edit(graph.FolderRef(f))
		}
	case mu.UpdateUser != nil:
		edit(graph.UserRef(mu.UpdateUser.ID))
	case mu.SetUserState != nil:
		edit(graph.UserRef(mu.SetUserState.ID))
	case mu.DeleteUser != nil:
		edit(graph.UserRef(mu.DeleteUser.ID))
	case mu.MoveUser != nil:
		edit(graph.UserRef(mu.MoveUser.ID))
		edit(graph.FolderRef(mu.MoveUser.To))
	case mu.AddExtraGroup != nil:
		edit(graph.UserRef(mu.AddExtraGroup.User))
		edit(graph.FolderRef(mu.AddExtraGroup.Folder))
	case mu.DelExtraGroup != nil:
		edit(graph.UserRef(mu.DelExtraGroup.User))
		edit(graph.FolderRef(mu.DelExtraGroup.Folder))
	case mu.AddGrant != nil:
		grant(*mu.AddGrant)
	case mu.RemoveGrant != nil:
		if g, ok := m.grants[mu.RemoveGrant.ID]; ok {
			grant(g)
		}
	case mu.AddLock != nil:
		out = append(out, refNeed{"assign", mu.AddLock.Target})
	case mu.RemoveLock != nil:
		if l, ok := m.locks[mu.RemoveLock.ID]; ok {
			out = append(out, refNeed{"assign", l.Target})
		}
	default: // rules, the catalogue, self rights, expiries
		return nil, true
	}
	return out, false
}

// actedWrite is write on behalf of user: before each mutation, in the
// state the earlier ones left, user must be allowed every right it needs.
func (m *refModel) actedWrite(user string, batch []graph.Mutation, now time.Time) (*refModel, error) {
	// What depends on the clock, or only the service writes, is refused
	// for the whole batch first, as for any write.
	for _, mu := range batch {
		if refusedByClock(mu, now) {
			return m, errRefused
		}
	}
	c := m.clone()
	for _, mu := range batch {
		needs, never := c.needs(mu)
		if never {
			return m, errNotAllowed
		}
		for _, n := range needs {
			if _, ok := c.rights[n.right]; !ok || !n.x.IsZero() && !c.exists(n.x) {
				return m, errRefused // a right or an object that does not exist is an error, not a refusal
			}
			if c.check(user, n.right, n.x, now).reason != graph.ReasonAllowed {
				return m, errNotAllowed
			}
		}
		next, err := c.write([]graph.Mutation{mu}, now)
		if err != nil {
			return m, err
		}
		c = next
	}
	return c, nil
}

// TestActingAsAgreesWithTheReference: on random worlds and random
// batches written on behalf of random users, the index accepts an acted
// write exactly when the reference does (every mutation's required right
// allowed, in order), refuses for a missing right with ErrNotAllowed,
// and ends in the reference's state.
func TestActingAsAgreesWithTheReference(t *testing.T) {
	var accepted, notAllowed, refused int
	for i := 0; i < propertyCases(t, 60); i++ {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g, ix := builtWorld(t, seed)
			deputies := g.deputies(t, ix)
			for step := 0; step < 40; step++ {
				user, batch := g.user(), g.batch()
				if g.r.IntN(2) == 0 {
					user, batch = g.pick(deputies), batch[:1]
				}
				next, refErr := g.m.actedWrite(user, batch, g.now)
				_, err := ix.WriteAs(context.Background(), "test", user, batch, graph.Preconditions{})
				if (err == nil) != (refErr == nil) || errors.Is(refErr, errNotAllowed) && !errors.Is(err, graph.ErrNotAllowed) {
					b, _ := json.Marshal(batch)
					t.Fatalf("step %d, acting as %s: index %v, reference %v, batch %s", step, user, err, refErr, b)
				}
				switch {
				case err == nil:
					accepted++
					g.m = next
				case errors.Is(err, graph.ErrNotAllowed):
					notAllowed++
				default:
					refused++
				}
				if d := sameState(modelOf(t, ix), g.m); d != "" {
					t.Fatalf("step %d: %s", step, d)
				}
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d go test ./graph -run TestActingAsAgreesWithTheReference", seed)
		}
	}
	t.Logf("acted writes: %d accepted, %d refused for a missing right, %d refused otherwise", accepted, notAllowed, refused)
	if accepted == 0 || notAllowed == 0 {
		t.Fatalf("the cases tried nothing useful: %d accepted, %d refused for a missing right", accepted, notAllowed)
	}
}

// deputies grants a few users edit and assign over their whole
// organisation, in the index and the reference, so that writes on their
// behalf are often allowed: random users on random worlds almost never
// are. Locks and the other organisation still refuse them.
func (g *gen) deputies(t *testing.T, ix *graph.Index) []string {
	t.Helper()
	var out []string
	var batch []graph.Mutation
	for _, id := range keys(g.m.users) {
		if len(out) == 3 {
			break
		}
		u := g.m.users[id]
		if u.State == graph.StateDisabled || g.r.IntN(3) != 0 {
			continue
		}
		out = append(out, id)
		batch = append(batch, graph.Mutation{AddGrant: &graph.Grant{
			ID: "deputy-" + id, Holder: graph.UserRef(id),
			Target: graph.FolderRef(g.m.root(u.Home)), Rights: []string{"edit", "assign"},
		}})
	}
	if len(out) == 0 {
		return []string{g.user()}
	}
	next, err := g.m.write(batch, g.now)
	if err != nil {
		t.Fatalf("deputies: reference refused: %v", err)
	}
	if _, err := ix.Write(context.Background(), "build", batch, graph.Preconditions{}); err != nil {
		t.Fatalf("deputies: %v", err)
	}
	g.m = next
	return out
}

// seeded opens an index holding the first step of a seed example, and of
// the following steps as many as given.
func seeded(t *testing.T, name string, steps int) *graph.Index {
	t.Helper()
	f, err := scenario.Example(name)
	if err != nil {
		t.Fatal(err)
	}
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), nil)
	for _, step := range f.Steps[:1+steps] {
		if _, err := ix.Write(context.Background(), "seed", step.Write, graph.Preconditions{}); err != nil {
			t.Fatal(err)
		}
	}
	return ix
}

// TestActingAsInTheSeeds: the seed documents' cases, written on behalf of
// the people in them.
func TestActingAsInTheSeeds(t *testing.T) {
	ctx := context.Background()
	as := func(ix *graph.Index, user string, muts ...graph.Mutation) error {
		_, err := ix.WriteAs(ctx, "console", user, muts, graph.Preconditions{})
		return err
	}
	refused := func(err error, mentions ...string) bool {
		if !errors.Is(err, graph.ErrNotAllowed) {
			return false
		}
		for _, m := range mentions {
			if !strings.Contains(err.Error(), m) {
				return false
			}
		}
		return true
	}
	reset := func(id, class string) graph.Mutation {
		return graph.Mutation{UpdateUser: &graph.UserUpdate{ID: id, Name: "password reset", Class: class}}
	}

	atlas := seeded(t, "atlas", 0)
	if err := as(atlas, "tom", reset("carl", "candidate")); err != nil {
		t.Errorf("the IT1 teacher resets an IT1 candidate's password: %v", err)
	}
	if err := as(atlas, "tom", reset("cara", "candidate")); !refused(err, "edit", "user:cara") {
		t.Errorf("the IT1 teacher resets an IT2 candidate's password: %v", err)
	}
	test := graph.Mutation{AddGrant: &graph.Grant{ID: "test-1", Holder: graph.UserRef("carl"), Target: graph.FolderRef("it1"), Rights: []string{"read"}}}
	if err := as(atlas, "tom", test); !refused(err, "assign", "folder:it1") {
		t.Errorf("the teacher assigns a test: %v", err)
	}
	if err := as(atlas, "ian", reset("carl", "candidate")); !refused(err, "edit", "user:carl") {
		t.Errorf("an invigilator edits a candidate: %v", err)
	}
	if err := as(atlas, "alice", graph.Mutation{CreateUser: &graph.User{ID: "cleo", Class: "candidate", Home: "it1"}}, test); err != nil {
		t.Errorf("Admin Main creates a candidate and assigns a test: %v", err)
	}
	give := graph.Mutation{AddGrant: &graph.Grant{ID: "admin-2", Holder: graph.UserRef("tom"), Target: graph.FolderRef("it1"), Rights: []string{"user_administrator"}}}
	if err := as(atlas, "alice", give); !refused(err, "user_administrator", "folder:it1") {
		t.Errorf("Admin Main gives a right she does not hold there: %v", err)
	}
	if err := as(atlas, "alice", graph.Mutation{SetSelfRights: &graph.SelfRights{Rights: []string{"read"}}}); !refused(err, "self rights") {
		t.Errorf("self rights on behalf of a user: %v", err)
	}

	// Aptem: an administrator creates the inspector's account and grant;
	// the inspector, acting, can change nothing.
	aptem := seeded(t, "aptem", 0)
	if _, err := aptem.Write(ctx, "seed", []graph.Mutation{
		{CreateUser: &graph.User{ID: "admin", Class: "staff", Home: "staff"}},
		{AddGrant: &graph.Grant{ID: "admin-all", Holder: graph.UserRef("admin"), Target: graph.FolderRef("provider"), Rights: []string{"edit", "assign", "view_all_in_group", "trainee_assessor"}}},
		{AddGrant: &graph.Grant{ID: "admin-console", Holder: graph.UserRef("admin"), Rights: []string{"console"}}},
	}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	f, err := scenario.Example("aptem")
	if err != nil {
		t.Fatal(err)
	}
	if err := as(aptem, "admin", f.Steps[1].Write...); err != nil {
		t.Fatalf("the administrator creates the inspector's account and grant: %v", err)
	}
	if err := as(aptem, "tutor", f.Steps[2].Write...); err != nil {
		t.Fatalf("the tutor activates the inspector: %v", err)
	}
	for _, m := range []graph.Mutation{
		reset("lea", "learner"),
		{AddExtraGroup: &graph.Membership{User: "liam", Folder: "ofsted"}},
		{AddGrant: &graph.Grant{ID: "more", Holder: graph.UserRef("inspector"), Target: graph.FolderRef("cohort-a"), Rights: []string{"read"}}},
		{RemoveGrant: &graph.Delete{ID: "visit"}},
		{CreateFolder: &graph.Folder{ID: "notes", Parent: "ofsted"}},
	} {
		if err := as(aptem, "inspector", m); !refused(err) {
			t.Errorf("the inspector, acting: %v: %v", m, err)
		}
	}
}

// refReads is what the reference says user may read: the folders, the
// users, the grants (through what they are on) and the locks, sorted.
func (m *refModel) refReads(user string, now time.Time) (folders, users, grants, locks []string) {
	reads := func(x graph.Ref) bool { return m.check(user, "read", x, now).reason == graph.ReasonAllowed }
	for id := range m.folders {
		if reads(graph.FolderRef(id)) {
			folders = append(folders, id)
		}
	}
	for id := range m.users {
		if reads(graph.UserRef(id)) {
			users = append(users, id)
		}
	}
	for id, g := range m.grants {
		on := g.Target
		if on.IsZero() {
			on = g.Holder
		}
		if reads(on) {
			grants = append(grants, id)
		}
	}
	for id, l := range m.locks {
		if reads(l.Target) {
			locks = append(locks, id)
		}
	}
	for _, s := range [][]string{folders, users, grants, locks} {
		slices.Sort(s)
	}
	return folders, users, grants, locks
}

// pagesOf reads a list a few records a page, as a caller would, and
// returns the ids of every page joined.
func pagesOf(t *testing.T, list func(after string, limit int) ([]string, string, error)) []string {
	t.Helper()
	var all []string
	after := ""
	for {
		ids, next, err := list(after, 3)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids...)
		if next == "" {
			return all
		}
		after = next
	}
}

// TestReadingAsAgreesWithTheReference: on random worlds after random
// writes, the directory read as a random user holds exactly what the
// reference says that user may read, page after page, and a get of
// anything else is refused with ErrNotAllowed.
func TestReadingAsAgreesWithTheReference(t *testing.T) {
	var seen, hidden int
	for i := 0; i < propertyCases(t, 40); i++ {
		seed := graphtest.Seed(t, i)
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			g, ix := builtWorld(t, seed)
			for step := 0; step < 20; step++ {
				batch := g.batch()
				if next, err := g.m.write(batch, g.now); err == nil {
					if _, err := ix.Write(context.Background(), "t", batch, graph.Preconditions{}); err != nil {
						t.Fatal(err)
					}
					g.m = next
				}
				user := g.user()
				if _, ok := g.m.users[user]; !ok {
					continue
				}
				r := ix.ReadAs(user)
				folders, users, grants, locks := g.m.refReads(user, g.now)
				got := pagesOf(t, func(after string, limit int) ([]string, string, error) {
					fs, next, _, err := r.ListFolders("", true, after, limit)
					return idsOf(fs, func(f graph.Folder) string { return f.ID }), next, err
				})
				if !slices.Equal(got, folders) {
					t.Fatalf("step %d, %s reads folders %v, reference %v", step, user, got, folders)
				}
				var gotUsers []string
				for root, f := range g.m.folders {
					if f.Parent != "" {
						continue
					}
					us := pagesOf(t, func(after string, limit int) ([]string, string, error) {
						us, next, _, err := r.ListUsers(root, true, after, limit)
						return idsOf(us, func(u graph.User) string { return u.ID }), next, err
					})
					gotUsers = append(gotUsers, us...)
				}
				slices.Sort(gotUsers)
				if !slices.Equal(gotUsers, users) {
					t.Fatalf("step %d, %s reads users %v, reference %v", step, user, gotUsers, users)
				}
				gotGrants := pagesOf(t, func(after string, limit int) ([]string, string, error) {
					gs, next, _, err := r.ListGrants(graph.Ref{}, graph.Ref{}, after, limit)
					return idsOf(gs, func(g graph.Grant) string { return g.ID }), next, err
				})
				if !slices.Equal(gotGrants, grants) {
					t.Fatalf("step %d, %s reads grants %v, reference %v", step, user, gotGrants, grants)
				}
				gotLocks := pagesOf(t, func(after string, limit int) ([]string, string, error) {
					ls, next, _, err := r.ListLocks(graph.Ref{}, after, limit)
					return idsOf(ls, func(l graph.Lock) string { return l.ID }), next, err
				})
				if !slices.Equal(gotLocks, locks) {
					t.Fatalf("step %d, %s reads locks %v, reference %v", step, user, gotLocks, locks)
				}
				for id := range g.m.folders {
					_, _, _, err := r.GetFolder(id)
					if want := slices.Contains(folders, id); (err == nil) != want || err != nil && !errors.Is(err, graph.ErrNotAllowed) {
						t.Fatalf("step %d, %s gets folder %s: %v, reference reads it: %v", step, user, id, err, want)
					}
				}
				for id := range g.m.users {
					_, _, err := r.GetUser(id)
					if want := slices.Contains(users, id); (err == nil) != want || err != nil && !errors.Is(err, graph.ErrNotAllowed) {
						t.Fatalf("step %d, %s gets user %s: %v, reference reads it: %v", step, user, id, err, want)
					}
				}
				seen += len(folders) + len(users)
				hidden += len(g.m.folders) + len(g.m.users) - len(folders) - len(users)
			}
		})
		if !ok {
			t.Fatalf("replay with CANOPY_SEED=%d go test ./graph -run TestReadingAsAgreesWithTheReference", seed)
		}
	}
	t.Logf("records read as a user: %d visible, %d hidden", seen, hidden)
	if seen == 0 || hidden == 0 {
		t.Fatalf("the cases tried nothing useful: %d visible, %d hidden", seen, hidden)
	}
}

// idsOf returns the ids of records, in their order.
func idsOf[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for k, x := range xs {
		out[k] = id(x)
	}
	return out
}
