// Package orgfiletest makes random organisation files for tests: valid
// states of one to three organisations, and valid edits of them, so that
// round trips and plans can be checked on inputs nobody wrote by hand.
package orgfiletest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/orgfile"
)

// Random makes a valid random state, whose expiries lie after now: one to three organisations,
// users of two classes, rules that admit what they hold, grants and locks
// within each organisation, a catalogue with implications.
func Random(r *rand.Rand, now time.Time) *orgfile.File {
	f := &orgfile.File{ManagesRights: true, SelfRights: &graph.SelfRights{Rights: []string{"read"}}}
	f.Rights = []graph.Right{{Name: "read"}, {Name: "edit", Implies: []string{"read"}}, {Name: "assign", Implies: []string{"read"}}}
	for i := range r.IntN(3) {
		f.Rights = append(f.Rights, graph.Right{Name: fmt.Sprintf("r%d", i), Implies: []string{"read"}[:r.IntN(2)]})
	}
	if r.IntN(3) == 0 {
		f.SelfRights.Rights = append(f.SelfRights.Rights, "edit")
	}
	rights := func() []string {
		var out []string
		for _, x := range f.Rights {
			if r.IntN(3) == 0 {
				out = append(out, x.Name)
			}
		}
		if len(out) == 0 {
			out = []string{f.Rights[r.IntN(len(f.Rights))].Name}
		}
		return out
	}
	orgOf := map[string]string{}
	var byOrg = map[string][]string{}
	for o := range 1 + r.IntN(3) {
		root := fmt.Sprintf("org%d", o)
		f.Folders = append(f.Folders, orgfile.Folder{Folder: graph.Folder{ID: root, Name: strings.ToUpper(root)}})
		orgOf[root] = root
		byOrg[root] = []string{root}
		for i := range r.IntN(12) {
			id := fmt.Sprintf("%s-f%d", root, i)
			parent := byOrg[root][r.IntN(len(byOrg[root]))]
			x := orgfile.Folder{Folder: graph.Folder{ID: id, Parent: parent}}
			if r.IntN(2) == 0 {
				x.Name = "Folder " + id
			}
			if r.IntN(4) == 0 {
				x.Labels = map[string]string{"site": []string{"north", "south"}[r.IntN(2)], "odd": "yes, \"quoted\": #1"}
			}
			f.Folders = append(f.Folders, x)
			orgOf[id] = root
			byOrg[root] = append(byOrg[root], id)
		}
	}
	var users []string
	userOrg := map[string]string{}
	for i := range r.IntN(15) {
		id := fmt.Sprintf("u%d", i)
		home := f.Folders[r.IntN(len(f.Folders))].ID
		org := orgOf[home]
		u := graph.User{ID: id, Class: []string{"staff", "candidate"}[r.IntN(2)], Home: home, State: graph.StateActive}
		if r.IntN(3) == 0 {
			u.Name = "User " + id
		}
		switch r.IntN(10) {
		case 0, 1:
			u.State = []graph.State{graph.StateDisabled, graph.StateArchived}[r.IntN(2)]
		case 2:
			u.ActiveUntil = now.Add(time.Duration(1+r.IntN(1000)) * time.Hour)
		}
		for range r.IntN(3) {
			g := byOrg[org][r.IntN(len(byOrg[org]))]
			if g != home && !slices.Contains(u.Extras, g) {
				u.Extras = append(u.Extras, g)
			}
		}
		f.Users = append(f.Users, u)
		users = append(users, id)
		userOrg[id] = org
	}
	// Rules admit every class that is a member below them, and now and
	// then only staff where no candidate is.
	for k := range f.Folders {
		if r.IntN(4) != 0 {
			continue
		}
		f.Folders[k].Admits = []string{"candidate", "staff"}
		if !hasCandidateBelow(f, f.Folders[k].ID) {
			f.Folders[k].Admits = []string{"staff"}
		}
	}
	ref := func(org string) graph.Ref {
		var inOrg []string
		for _, u := range users {
			if userOrg[u] == org {
				inOrg = append(inOrg, u)
			}
		}
		if len(inOrg) > 0 && r.IntN(3) == 0 {
			return graph.UserRef(inOrg[r.IntN(len(inOrg))])
		}
		return graph.FolderRef(byOrg[org][r.IntN(len(byOrg[org]))])
	}
	for i := range r.IntN(10) {
		org := f.Folders[0].ID
		for o := range byOrg {
			if r.IntN(2) == 0 {
				org = o
			}
		}
		g := graph.Grant{ID: fmt.Sprintf("g%d", i), Holder: ref(org), Rights: rights()}
		if r.IntN(4) != 0 {
			g.Target = ref(org)
		}
		if r.IntN(4) == 0 {
			g.ExpiresAt = now.Add(time.Duration(1+r.IntN(1000)) * time.Hour)
		}
		if r.IntN(6) == 0 {
			g.StartsAt = now.Add(time.Duration(r.IntN(500)) * time.Hour)
			if !g.ExpiresAt.IsZero() && !g.StartsAt.Before(g.ExpiresAt) {
				g.StartsAt = time.Time{}
			}
		}
		if r.IntN(3) == 0 {
			g.Reason = "because: it's needed"
		}
		f.Grants = append(f.Grants, g)
	}
	for i := range r.IntN(4) {
		org := f.Folders[r.IntN(len(f.Folders))].ID
		l := graph.Lock{ID: fmt.Sprintf("l%d", i), Target: ref(orgOf[org]), Rights: []string{"edit"}}
		if r.IntN(3) == 0 {
			l.Rights = []string{"read"}
			l.Reason = "QA"
		}
		f.Locks = append(f.Locks, l)
	}
	return reparse(f)
}

// hasCandidateBelow reports whether a candidate is a member of folder id.
func hasCandidateBelow(f *orgfile.File, id string) bool {
	parent := map[string]string{}
	for _, x := range f.Folders {
		parent[x.ID] = x.Parent
	}
	below := func(x string) bool {
		for ; x != ""; x = parent[x] {
			if x == id {
				return true
			}
		}
		return false
	}
	for _, u := range f.Users {
		if u.Class != "candidate" {
			continue
		}
		for _, g := range append([]string{u.Home}, u.Extras...) {
			if below(g) {
				return true
			}
		}
	}
	return false
}

// reparse gives a built file the positions and canonical order of one read
// from text.
func reparse(f *orgfile.File) *orgfile.File {
	back, err := orgfile.Parse("random.yaml", orgfile.Render(f))
	if err != nil {
		panic(fmt.Sprintf("a random file does not parse: %v\n%s", err, orgfile.Render(f)))
	}
	return back
}

// Edit makes a second valid state from f (valid at now) by random changes: renames,
// relabels, moves within an organisation, new and removed folders, users,
// grants and locks, changed classes, states, extra groups, rules and
// rights.
func Edit(r *rand.Rand, f *orgfile.File, now time.Time) *orgfile.File {
	for try := 0; ; try++ {
		g := reparse(f)
		mutate(r, g, now)
		g = reparse(g)
		ix, err := orgfile.Load(context.Background(), g, graph.ClockFunc(func() time.Time { return now }))
		if ix != nil {
			ix.Close()
		}
		if err == nil {
			return g
		}
		if try > 100 {
			panic("no valid edit in 100 tries: " + err.Error())
		}
	}
}

func mutate(r *rand.Rand, f *orgfile.File, now time.Time) {
	// Drop some folders that are leaves, with what names them.
	gone := map[string]bool{}
	for _, x := range f.Folders {
		leaf := !slices.ContainsFunc(f.Folders, func(y orgfile.Folder) bool { return y.Parent == x.ID })
		if leaf && x.Parent != "" && r.IntN(6) == 0 {
			gone[x.ID] = true
		}
	}
	f.Folders = slices.DeleteFunc(f.Folders, func(x orgfile.Folder) bool { return gone[x.ID] })
	f.Users = slices.DeleteFunc(f.Users, func(u graph.User) bool { return gone[u.Home] || r.IntN(8) == 0 })
	kept := map[string]bool{}
	for _, u := range f.Users {
		kept[u.ID] = true
	}
	named := func(x graph.Ref) bool {
		return x.IsZero() || x.Kind == graph.KindFolder && !gone[x.ID] || x.Kind == graph.KindUser && kept[x.ID]
	}
	f.Grants = slices.DeleteFunc(f.Grants, func(g graph.Grant) bool { return !named(g.Holder) || !named(g.Target) || r.IntN(6) == 0 })
	f.Locks = slices.DeleteFunc(f.Locks, func(l graph.Lock) bool { return !named(l.Target) || r.IntN(4) == 0 })
	orgOf := map[string]string{}
	for _, x := range f.Folders {
		if x.Parent == "" {
			orgOf[x.ID] = x.ID
		} else {
			orgOf[x.ID] = orgOf[x.Parent]
		}
	}
	inOrg := func(org string) []string {
		var out []string
		for _, x := range f.Folders {
			if orgOf[x.ID] == org {
				out = append(out, x.ID)
			}
		}
		return out
	}
	for k := range f.Folders {
		x := &f.Folders[k]
		switch r.IntN(8) {
		case 0:
			x.Name = "Renamed " + x.ID
		case 1:
			x.Labels = map[string]string{"site": "east"}
		case 2:
			if x.Parent != "" { // move under a folder of the organisation that is not below it
				cands := inOrg(orgOf[x.ID])
				to := cands[r.IntN(len(cands))]
				if !isBelow(f, to, x.ID) {
					x.Parent = to
				}
			}
		case 3:
			x.Admits = nil
		case 4:
			x.Admits = []string{"candidate", "staff"}
		}
	}
	for k := range f.Users {
		u := &f.Users[k]
		org := orgOf[u.Home]
		switch r.IntN(6) {
		case 0:
			cands := inOrg(org)
			u.Home = cands[r.IntN(len(cands))]
		case 1:
			u.Class = []string{"staff", "candidate"}[r.IntN(2)]
			u.Name = "Changed"
		case 2:
			u.State, u.ActiveUntil = []graph.State{graph.StateActive, graph.StateDisabled}[r.IntN(2)], time.Time{}
			if u.State == graph.StateActive && r.IntN(2) == 0 {
				u.ActiveUntil = now.Add(time.Duration(1+r.IntN(1000)) * time.Hour)
			}
		case 3:
			u.Extras = slices.DeleteFunc(u.Extras, func(string) bool { return r.IntN(2) == 0 })
			cands := inOrg(org)
			if g := cands[r.IntN(len(cands))]; g != u.Home && !slices.Contains(u.Extras, g) {
				u.Extras = append(u.Extras, g)
			}
		}
		u.Extras = slices.DeleteFunc(u.Extras, func(g string) bool { return gone[g] || g == u.Home })
	}
	for k := range f.Grants {
		if r.IntN(5) == 0 {
			f.Grants[k].Rights = []string{"read"}
			f.Grants[k].Reason = "narrowed"
		}
	}
	n := len(f.Folders)
	for i := range r.IntN(4) {
		p := f.Folders[r.IntN(n)]
		f.Folders = append(f.Folders, orgfile.Folder{Folder: graph.Folder{ID: fmt.Sprintf("new%d", i), Parent: p.ID}})
		f.Users = append(f.Users, graph.User{ID: fmt.Sprintf("newu%d", i), Class: "staff", Home: fmt.Sprintf("new%d", i), State: graph.StateActive})
		f.Grants = append(f.Grants, graph.Grant{ID: fmt.Sprintf("newg%d", i), Holder: graph.FolderRef(fmt.Sprintf("new%d", i)), Target: graph.FolderRef(p.ID), Rights: []string{"edit"}})
	}
	if r.IntN(3) == 0 {
		f.Rights = append(f.Rights, graph.Right{Name: "extra", Implies: []string{"edit"}})
		f.Grants = append(f.Grants, graph.Grant{ID: "uses-extra", Holder: graph.FolderRef(f.Folders[0].ID), Rights: []string{"extra"}})
	}
	if r.IntN(3) == 0 {
		f.Rights = slices.DeleteFunc(f.Rights, func(x graph.Right) bool {
			used := slices.ContainsFunc(f.Grants, func(g graph.Grant) bool { return slices.Contains(g.Rights, x.Name) }) ||
				slices.ContainsFunc(f.Locks, func(l graph.Lock) bool { return slices.Contains(l.Rights, x.Name) }) ||
				slices.Contains(f.SelfRights.Rights, x.Name) ||
				slices.ContainsFunc(f.Rights, func(y graph.Right) bool { return slices.Contains(y.Implies, x.Name) })
			return strings.HasPrefix(x.Name, "r") && !used
		})
	}
	if r.IntN(4) == 0 {
		f.SelfRights.Rights = []string{"read"}
	}
}

// isBelow reports whether folder x is id or lies below it in f.
func isBelow(f *orgfile.File, x, id string) bool {
	parent := map[string]string{}
	for _, y := range f.Folders {
		parent[y.ID] = y.Parent
	}
	for ; x != ""; x = parent[x] {
		if x == id {
			return true
		}
	}
	return false
}
