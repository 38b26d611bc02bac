// Package orggen generates organisations for benchmarks and load tests:
// deterministic (seeded) folder trees, users with extra groups, grants and
// locks, in the shape DESIGN.md section 4 measures, written as ordinary
// write batches.
package orggen

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/canopy-authz/canopy/graph"
)

// Shape is the size of a generated organisation.
type Shape struct {
	Orgs      int // tenants, each with its own root
	Folders   int // in all, roots included
	MaxDepth  int // the deepest folder is this many levels below its root
	Users     int
	MaxExtras int // each user gets 0..MaxExtras extra groups
	Grants    int
	Locks     int
	Seed      uint64
}

// Design is the organisation of DESIGN.md section 4: 100,000 folders up to
// 12 deep, 1,000,000 users with up to 3 extra groups, 200,000 grants and
// 10,000 locks (in 10 tenants).
func Design() Shape {
	return Shape{Orgs: 10, Folders: 100_000, MaxDepth: 12, Users: 1_000_000, MaxExtras: 3, Grants: 200_000, Locks: 10_000, Seed: 1}
}

// Scale returns s with every count multiplied by f (at least one of each).
func (s Shape) Scale(f float64) Shape {
	n := func(x int) int { return max(1, int(float64(x)*f)) }
	s.Folders, s.Users, s.Grants, s.Locks = n(s.Folders), n(s.Users), n(s.Grants), n(s.Locks)
	s.Orgs = min(s.Orgs, s.Folders)
	return s
}

// Org is a generated organisation: its write batches, in order, and the ids
// it created, for drawing checks.
type Org struct {
	Shape   Shape
	Batches [][]graph.Mutation
	Folders []string
	Users   []string
	org     map[string]int // folder or user id -> tenant
	byOrg   [][]string     // tenant -> folder ids
	usersBy [][]string     // tenant -> user ids
}

// Start is the time the generated expiries count from.
var Start = time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC)

// Generate builds the organisation. Batches hold at most batchSize
// mutations (graph.MaxBatchSize when zero).
func Generate(s Shape, batchSize int) *Org {
	if batchSize <= 0 {
		batchSize = graph.MaxBatchSize
	}
	r := rand.New(rand.NewPCG(s.Seed, s.Seed+1))
	o := &Org{Shape: s, org: map[string]int{}, byOrg: make([][]string, s.Orgs), usersBy: make([][]string, s.Orgs)}
	var batch []graph.Mutation
	emit := func(m graph.Mutation) {
		batch = append(batch, m)
		if len(batch) == batchSize {
			o.Batches = append(o.Batches, batch)
			batch = nil
		}
	}
	roles := []string{"user_administrator", "manage_ilr", "view_reports"}
	emit(graph.Mutation{PutRight: &graph.Right{Name: "user_administrator"}})
	emit(graph.Mutation{PutRight: &graph.Right{Name: "manage_ilr", Implies: []string{"edit"}}})
	emit(graph.Mutation{PutRight: &graph.Right{Name: "view_reports", Implies: []string{"read"}}})

	// Folders: each tenant's root, then each new folder under a random
	// earlier folder of a random tenant that is not yet at the deepest level.
	depth := map[string]int{}
	open := make([][]string, s.Orgs) // folders that may take children
	for t := 0; t < s.Orgs; t++ {
		id := fmt.Sprintf("t%d", t)
		emit(graph.Mutation{CreateFolder: &graph.Folder{ID: id, Name: fmt.Sprintf("Tenant %d", t)}})
		o.add(id, t)
		open[t] = append(open[t], id)
	}
	for i := s.Orgs; i < s.Folders; i++ {
		t := r.IntN(s.Orgs)
		parent := open[t][r.IntN(len(open[t]))]
		id := fmt.Sprintf("f%d", i)
		emit(graph.Mutation{CreateFolder: &graph.Folder{ID: id, Parent: parent}})
		o.add(id, t)
		depth[id] = depth[parent] + 1
		if depth[id] < s.MaxDepth {
			open[t] = append(open[t], id)
		}
	}
	classes := []string{"candidate", "candidate", "candidate", "staff"}
	for i := 0; i < s.Users; i++ {
		t := r.IntN(s.Orgs)
		u := graph.User{ID: fmt.Sprintf("u%d", i), Class: classes[r.IntN(len(classes))], Home: o.folderIn(r, t)}
		for k := r.IntN(s.MaxExtras + 1); k > 0; k-- {
			e := o.folderIn(r, t)
			if e != u.Home && !contains(u.Extras, e) {
				u.Extras = append(u.Extras, e)
			}
		}
		emit(graph.Mutation{CreateUser: &u})
		o.Users = append(o.Users, u.ID)
		o.org[u.ID] = t
		o.usersBy[t] = append(o.usersBy[t], u.ID)
	}
	rights := [][]string{{"read"}, {"edit"}, {"assign"}, {"read", "assign"}, {"manage_ilr"}, {"view_reports"}}
	for i := 0; i < s.Grants; i++ {
		t := r.IntN(s.Orgs)
		g := graph.Grant{ID: fmt.Sprintf("g%d", i), Rights: rights[r.IntN(len(rights))]}
		if r.IntN(10) < 7 {
			g.Holder = graph.FolderRef(o.folderIn(r, t))
		} else {
			g.Holder = graph.UserRef(o.userIn(r, t))
		}
		switch k := r.IntN(50); {
		case k == 0:
			g.Rights = []string{roles[r.IntN(len(roles))]} // a capability
		case k < 40:
			g.Target = graph.FolderRef(o.folderIn(r, t))
		default:
			g.Target = graph.UserRef(o.userIn(r, t))
		}
		if r.IntN(10) == 0 {
			g.ExpiresAt = Start.Add(time.Duration(1+r.IntN(24*365)) * time.Hour)
		}
		emit(graph.Mutation{AddGrant: &g})
	}
	for i := 0; i < s.Locks; i++ {
		t := r.IntN(s.Orgs)
		l := graph.Lock{ID: fmt.Sprintf("l%d", i), Target: graph.UserRef(o.userIn(r, t))}
		if r.IntN(10) < 3 {
			l.Target = graph.FolderRef(o.folderIn(r, t))
		}
		emit(graph.Mutation{AddLock: &l})
	}
	if len(batch) > 0 {
		o.Batches = append(o.Batches, batch)
	}
	return o
}

func (o *Org) add(folder string, t int) {
	o.Folders = append(o.Folders, folder)
	o.org[folder] = t
	o.byOrg[t] = append(o.byOrg[t], folder)
}

func (o *Org) folderIn(r *rand.Rand, t int) string { return o.byOrg[t][r.IntN(len(o.byOrg[t]))] }

// FolderFor returns a random folder of the organisation that user (or
// folder) id belongs to, for writes that must stay inside one tree.
func (o *Org) FolderFor(r *rand.Rand, id string) string { return o.folderIn(r, o.org[id]) }

func (o *Org) userIn(r *rand.Rand, t int) string {
	if len(o.usersBy[t]) == 0 {
		return fmt.Sprintf("u%d", r.IntN(max(1, len(o.Users))))
	}
	return o.usersBy[t][r.IntN(len(o.usersBy[t]))]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Checks draws n checks: a random user, a right, and a folder or user of
// the same tenant (every tenth a capability check).
func (o *Org) Checks(n int, seed uint64) []graph.CheckRequest {
	r := rand.New(rand.NewPCG(seed, seed+1))
	rights := []string{"read", "read", "edit", "assign", "manage_ilr"}
	out := make([]graph.CheckRequest, n)
	for i := range out {
		u := o.Users[r.IntN(len(o.Users))]
		t := o.org[u]
		c := graph.CheckRequest{User: u, Right: rights[r.IntN(len(rights))]}
		switch k := r.IntN(10); {
		case k == 0:
			c.Right = "user_administrator"
		case k < 5:
			c.Resource = graph.FolderRef(o.folderIn(r, t))
		default:
			c.Resource = graph.UserRef(o.userIn(r, t))
		}
		out[i] = c
	}
	return out
}
