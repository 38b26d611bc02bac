package orgfile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/canopy-authz/canopy/graph"
)

// Change is one step of a plan: what it does, to what, and the mutation
// that does it.
type Change struct {
	// Action is "create", "change", "move" or "delete".
	Action string
	// Kind is "right", "self_rights", "folder", "placement_rule", "user",
	// "extra_group", "grant" or "lock".
	Kind     string
	ID       string
	Detail   string // what changes, for people
	Mutation graph.Mutation
	// Quiet marks a step of the mechanics rather than of the change: a
	// placement rule lifted while users and folders move, and set again
	// as it was at the end of the batch. Plans shown to people leave
	// these out.
	Quiet bool
}

// String writes the change as one line: +, ~, > or - then what.
func (c Change) String() string {
	sym := map[string]string{"create": "+", "change": "~", "move": ">", "delete": "-"}[c.Action]
	s := fmt.Sprintf("%s %s %s", sym, strings.ReplaceAll(c.Kind, "_", " "), c.ID)
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// Mutations returns the changes that create everything f holds in a
// store that has none of it, in an order one batch accepts.
func (f *File) Mutations() []Change { return Plan(&File{}, f, false) }

// Plan returns the changes that make the state cur (a server's, as
// FromMutations reads it) match the file want, in an order one batch
// accepts: the catalogue and the self rights; with prune, the grants,
// locks and users the file leaves out; the placement rules of every
// organisation whose folders or users change, lifted; folders top down;
// users; grants and locks; with prune, the folders (leaves first) and
// rights the file leaves out; and last the placement rules, set as the
// file has them. While the rules are lifted no intermediate state stands
// in the way, and setting them at the end checks the final one. Without
// prune nothing the file leaves out is deleted: a file manages the
// organisations it lists, and the catalogue when it has a rights section.
func Plan(cur, want *File, prune bool) []Change {
	p := &planner{cur: cur, want: want, prune: prune, touched: map[string]bool{}}
	p.index()
	p.rights()
	if prune {
		p.pruneEarly()
	}
	head := p.out
	p.out = nil
	p.folders()
	p.users()
	moves := p.out
	p.out = append(head, p.liftRules()...)
	p.out = append(p.out, moves...)
	p.grantsAndLocks()
	if prune {
		p.pruneLate()
	}
	p.setRules()
	return p.out
}

// planner holds the two states being compared and the changes so far.
type planner struct {
	cur, want *File
	prune     bool
	out       []Change

	curFolders, wantFolders map[string]Folder
	curUsers, wantUsers     map[string]graph.User
	curGrants, wantGrants   map[string]graph.Grant
	curLocks, wantLocks     map[string]graph.Lock
	orgs                    map[string]bool // the organisations want manages
	curOrg                  map[string]string
	curUserOrg              map[string]string
	wantOrg                 map[string]string // folder -> its organisation in want
	touched                 map[string]bool   // organisations whose folders or users change
}

func byID[T any](list []T, id func(T) string) map[string]T {
	m := make(map[string]T, len(list))
	for _, x := range list {
		m[id(x)] = x
	}
	return m
}

func (p *planner) index() {
	p.curFolders = byID(p.cur.Folders, func(f Folder) string { return f.ID })
	p.wantFolders = byID(p.want.Folders, func(f Folder) string { return f.ID })
	p.curUsers = byID(p.cur.Users, func(u graph.User) string { return u.ID })
	p.wantUsers = byID(p.want.Users, func(u graph.User) string { return u.ID })
	p.curGrants = byID(p.cur.Grants, func(g graph.Grant) string { return g.ID })
	p.wantGrants = byID(p.want.Grants, func(g graph.Grant) string { return g.ID })
	p.curLocks = byID(p.cur.Locks, func(l graph.Lock) string { return l.ID })
	p.wantLocks = byID(p.want.Locks, func(l graph.Lock) string { return l.ID })
	p.orgs = map[string]bool{}
	for _, f := range p.want.Folders {
		if f.Parent == "" {
			p.orgs[f.ID] = true
		}
	}
	p.curOrg = orgs(p.cur.Folders)
	p.wantOrg = orgs(p.want.Folders)
	p.curUserOrg = map[string]string{}
	for _, u := range p.cur.Users {
		p.curUserOrg[u.ID] = p.curOrg[u.Home]
	}
}

// orgs maps each folder to its organisation's root; parents come first.
func orgs(folders []Folder) map[string]string {
	out := make(map[string]string, len(folders))
	for _, f := range folders {
		if f.Parent == "" {
			out[f.ID] = f.ID
		} else {
			out[f.ID] = out[f.Parent]
		}
	}
	return out
}

func (p *planner) add(action, kind, id, detail string, m graph.Mutation) {
	p.out = append(p.out, Change{Action: action, Kind: kind, ID: id, Detail: detail, Mutation: m})
}

// managed reports whether a ref of the server's state lies in one of the
// organisations the file manages.
func (p *planner) managed(r graph.Ref) bool {
	switch r.Kind {
	case graph.KindFolder:
		return p.orgs[p.curOrg[r.ID]]
	case graph.KindUser:
		return p.orgs[p.curUserOrg[r.ID]]
	}
	return false
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// topo orders rights so that each comes after the rights it implies; a
// cycle's rights come last, in file order, for the index to refuse.
func topo(rights []graph.Right) []graph.Right {
	placed := map[string]bool{}
	var out []graph.Right
	for len(out) < len(rights) {
		progress := false
		for _, r := range rights {
			if placed[r.Name] {
				continue
			}
			ready := true
			for _, i := range r.Implies {
				if !placed[i] && slices.ContainsFunc(rights, func(x graph.Right) bool { return x.Name == i }) {
					ready = false
				}
			}
			if ready {
				placed[r.Name], progress = true, true
				out = append(out, r)
			}
		}
		if !progress {
			for _, r := range rights {
				if !placed[r.Name] {
					placed[r.Name] = true
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func (p *planner) rights() {
	if p.want.ManagesRights {
		cur := byID(p.cur.Rights, func(r graph.Right) string { return r.Name })
		for _, r := range topo(p.want.Rights) {
			c, ok := cur[r.Name]
			switch {
			case !ok:
				p.add("create", "right", r.Name, impliesWords(r.Implies), graph.Mutation{PutRight: &graph.Right{Name: r.Name, Implies: slices.Clone(r.Implies)}})
			case !sameSet(c.Implies, r.Implies):
				p.add("change", "right", r.Name, "implies "+orNothing(c.Implies)+" -> "+orNothing(r.Implies), graph.Mutation{PutRight: &graph.Right{Name: r.Name, Implies: slices.Clone(r.Implies)}})
			}
		}
	}
	if s := p.want.SelfRights; s != nil && (p.cur.SelfRights == nil || !sameSet(p.cur.SelfRights.Rights, s.Rights)) {
		var was []string
		if p.cur.SelfRights != nil {
			was = p.cur.SelfRights.Rights
		}
		p.add("change", "self_rights", "", orNothing(was)+" -> "+orNothing(s.Rights), graph.Mutation{SetSelfRights: &graph.SelfRights{Rights: slices.Clone(s.Rights)}})
	}
}

func impliesWords(r []string) string {
	if len(r) == 0 {
		return ""
	}
	return "implies " + strings.Join(r, ", ")
}

func orNothing(r []string) string {
	if len(r) == 0 {
		return "nothing"
	}
	return "[" + strings.Join(r, ", ") + "]"
}

func (p *planner) folders() {
	for _, w := range p.want.Folders {
		c, ok := p.curFolders[w.ID]
		if !ok {
			where := "a new organisation"
			if w.Parent != "" {
				where = "in " + w.Parent
			}
			p.add("create", "folder", w.ID, where, graph.Mutation{CreateFolder: &graph.Folder{ID: w.ID, Name: w.Name, Parent: w.Parent, Labels: maps.Clone(w.Labels)}})
			p.touched[p.wantOrg[w.ID]] = true
			continue
		}
		if c.Parent != w.Parent {
			p.add("move", "folder", w.ID, c.Parent+" -> "+w.Parent, graph.Mutation{MoveFolder: &graph.Move{ID: w.ID, To: w.Parent}})
			p.touched[p.wantOrg[w.ID]] = true
		}
		if c.Name != w.Name {
			p.add("change", "folder", w.ID, fmt.Sprintf("name %q -> %q", c.Name, w.Name), graph.Mutation{RenameFolder: &graph.Rename{ID: w.ID, Name: w.Name}})
		}
		if !maps.Equal(c.Labels, w.Labels) {
			p.add("change", "folder", w.ID, "labels "+labelWords(c.Labels)+" -> "+labelWords(w.Labels), graph.Mutation{RelabelFolder: &graph.Relabel{ID: w.ID, Labels: maps.Clone(w.Labels)}})
		}
	}
}

// liftRules removes, for the rest of the batch, the placement rules of
// the managed organisations whose folders or users change, and those the
// file drops or changes anywhere it manages; setRules puts back what the
// file has.
func (p *planner) liftRules() []Change {
	var out []Change
	for _, c := range p.cur.Folders {
		org := p.curOrg[c.ID]
		if len(c.Admits) == 0 || !p.orgs[org] {
			continue
		}
		w, kept := p.wantFolders[c.ID]
		m := graph.Mutation{RemoveRule: &graph.Delete{ID: c.ID}}
		switch {
		case !kept && p.touched[org]:
			out = append(out, Change{Action: "change", Kind: "placement_rule", ID: c.ID, Detail: "lifted until the end of the batch", Mutation: m, Quiet: true})
		case !kept:
		case len(w.Admits) == 0:
			out = append(out, Change{Action: "delete", Kind: "placement_rule", ID: c.ID, Detail: "admitted " + strings.Join(c.Admits, ", "), Mutation: m})
		case !sameSet(c.Admits, w.Admits) || p.touched[org]:
			out = append(out, Change{Action: "change", Kind: "placement_rule", ID: c.ID, Detail: "lifted until the end of the batch", Mutation: m, Quiet: true})
		}
	}
	return out
}

// setRules sets the rules the file has that are new, changed, or were
// lifted, and, without prune, puts back those lifted from folders the file
// leaves out (with prune, those folders are gone).
func (p *planner) setRules() {
	if !p.prune {
		for _, c := range p.cur.Folders {
			if _, kept := p.wantFolders[c.ID]; !kept && len(c.Admits) > 0 && p.touched[p.curOrg[c.ID]] {
				p.out = append(p.out, Change{Action: "change", Kind: "placement_rule", ID: c.ID, Detail: "set again", Quiet: true,
					Mutation: graph.Mutation{SetRule: &graph.PlacementRule{Folder: c.ID, Classes: slices.Clone(c.Admits)}}})
			}
		}
	}
	for _, w := range p.want.Folders {
		if len(w.Admits) == 0 {
			continue
		}
		c, existed := p.curFolders[w.ID]
		m := graph.Mutation{SetRule: &graph.PlacementRule{Folder: w.ID, Classes: slices.Clone(w.Admits)}}
		switch {
		case !existed || len(c.Admits) == 0:
			p.out = append(p.out, Change{Action: "create", Kind: "placement_rule", ID: w.ID, Detail: "admits " + strings.Join(w.Admits, ", "), Mutation: m})
		case !sameSet(c.Admits, w.Admits):
			p.out = append(p.out, Change{Action: "change", Kind: "placement_rule", ID: w.ID, Detail: "admits " + strings.Join(c.Admits, ", ") + " -> " + strings.Join(w.Admits, ", "), Mutation: m})
		case p.touched[p.curOrg[w.ID]]:
			p.out = append(p.out, Change{Action: "change", Kind: "placement_rule", ID: w.ID, Detail: "set again", Mutation: m, Quiet: true})
		}
	}
}

func labelWords(l map[string]string) string {
	if len(l) == 0 {
		return "none"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		out = append(out, k+"="+l[k])
	}
	return strings.Join(out, ",")
}

func (p *planner) users() {
	for _, w := range p.want.Users {
		c, ok := p.curUsers[w.ID]
		if !ok {
			u := w
			u.Extras = slices.Clone(w.Extras)
			p.add("create", "user", w.ID, fmt.Sprintf("%s in %s", w.Class, w.Home), graph.Mutation{CreateUser: &u})
			p.touched[p.wantOrg[w.Home]] = true
			continue
		}
		before := len(p.out)
		if c.Name != w.Name || c.Class != w.Class {
			p.add("change", "user", w.ID, fmt.Sprintf("name %q class %s -> name %q class %s", c.Name, c.Class, w.Name, w.Class),
				graph.Mutation{UpdateUser: &graph.UserUpdate{ID: w.ID, Name: w.Name, Class: w.Class}})
		}
		if c.Home != w.Home {
			p.add("move", "user", w.ID, c.Home+" -> "+w.Home, graph.Mutation{MoveUser: &graph.Move{ID: w.ID, To: w.Home}})
		}
		for _, g := range c.Extras {
			if !slices.Contains(w.Extras, g) {
				p.add("delete", "extra_group", w.ID+" in "+g, "", graph.Mutation{DelExtraGroup: &graph.Membership{User: w.ID, Folder: g}})
			}
		}
		for _, g := range w.Extras {
			if !slices.Contains(c.Extras, g) {
				p.add("create", "extra_group", w.ID+" in "+g, "", graph.Mutation{AddExtraGroup: &graph.Membership{User: w.ID, Folder: g}})
			}
		}
		if c.State != w.State || !c.ActiveUntil.Equal(w.ActiveUntil) {
			p.add("change", "user", w.ID, fmt.Sprintf("state %s -> %s", stateWords(c), stateWords(w)),
				graph.Mutation{SetUserState: &graph.StateChange{ID: w.ID, State: w.State, ActiveUntil: w.ActiveUntil}})
		}
		if len(p.out) > before {
			p.touched[p.wantOrg[w.Home]] = true
		}
	}
}

// stateWords says a user's state, with its end when it has one.
func stateWords(u graph.User) string {
	if u.ActiveUntil.IsZero() {
		return string(u.State)
	}
	return string(u.State) + " until " + u.ActiveUntil.UTC().Format(time.RFC3339)
}

// sameGrant compares grants as a file states them (the server's Expired
// and Started flags are not part of that).
func sameGrant(a, b graph.Grant) bool {
	return a.Holder == b.Holder && a.Target == b.Target && sameSet(a.Rights, b.Rights) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.StartsAt.Equal(b.StartsAt) && a.Reason == b.Reason
}

func sameLock(a, b graph.Lock) bool {
	return a.Target == b.Target && sameSet(a.Rights, b.Rights) && a.Reason == b.Reason
}

// grantsAndLocks adds what is new and replaces what changed (there is no
// update of a grant or lock: it is removed and added again).
func (p *planner) grantsAndLocks() {
	for _, w := range p.want.Grants {
		c, ok := p.curGrants[w.ID]
		if !ok || !sameGrant(c, w) {
			g := w
			g.Rights = slices.Clone(w.Rights)
			p.put("grant", w.ID, ok, graph.Mutation{RemoveGrant: &graph.Delete{ID: w.ID}}, graph.Mutation{AddGrant: &g}, grantWords(w))
		}
	}
	for _, w := range p.want.Locks {
		c, ok := p.curLocks[w.ID]
		if !ok || !sameLock(c, w) {
			l := w
			l.Rights = slices.Clone(w.Rights)
			p.put("lock", w.ID, ok, graph.Mutation{RemoveLock: &graph.Delete{ID: w.ID}}, graph.Mutation{AddLock: &l},
				fmt.Sprintf("denies %s on %s", strings.Join(w.Rights, ", "), refWords(w.Target)))
		}
	}
}

// put adds a grant or lock, first removing the one it replaces when it
// existed.
func (p *planner) put(kind, id string, existed bool, remove, add graph.Mutation, detail string) {
	action := "create"
	if existed {
		action = "change"
		p.add("change", kind, id, "replaced", remove)
	}
	p.add(action, kind, id, detail, add)
}

func grantWords(g graph.Grant) string {
	s := fmt.Sprintf("%s gets %s on %s", refWords(g.Holder), strings.Join(g.Rights, ", "), refWords(g.Target))
	if !g.StartsAt.IsZero() {
		s += " from " + g.StartsAt.UTC().Format(time.RFC3339)
	}
	if !g.ExpiresAt.IsZero() {
		s += " until " + g.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z07:00")
	}
	return s
}

// refWords writes a reference as a file does: folder/ID, user/ID, or
// "capabilities" for none.
func refWords(r graph.Ref) string {
	if r.IsZero() {
		return "capabilities"
	}
	return r.Kind.String() + "/" + r.ID
}

// pruneEarly deletes the grants, locks and users of the managed
// organisations that the file leaves out, before anything moves.
func (p *planner) pruneEarly() {
	for _, c := range p.cur.Grants {
		if _, kept := p.wantGrants[c.ID]; !kept && (p.managed(c.Holder) || p.managed(c.Target)) {
			p.add("delete", "grant", c.ID, grantWords(c), graph.Mutation{RemoveGrant: &graph.Delete{ID: c.ID}})
		}
	}
	for _, c := range p.cur.Locks {
		if _, kept := p.wantLocks[c.ID]; !kept && p.managed(c.Target) {
			p.add("delete", "lock", c.ID, "", graph.Mutation{RemoveLock: &graph.Delete{ID: c.ID}})
		}
	}
	for _, c := range p.cur.Users {
		if _, kept := p.wantUsers[c.ID]; !kept && p.orgs[p.curUserOrg[c.ID]] {
			p.add("delete", "user", c.ID, "", graph.Mutation{DeleteUser: &graph.Delete{ID: c.ID}})
		}
	}
}

// pruneLate deletes the folders of the managed organisations that the
// file leaves out, from the leaves up, once what stays has moved out of
// them, and then the rights it leaves out, once nothing uses them.
func (p *planner) pruneLate() {
	for i := len(p.cur.Folders) - 1; i >= 0; i-- { // children before parents
		c := p.cur.Folders[i]
		if _, kept := p.wantFolders[c.ID]; !kept && p.orgs[p.curOrg[c.ID]] {
			p.add("delete", "folder", c.ID, "", graph.Mutation{DeleteFolder: &graph.Delete{ID: c.ID}})
		}
	}
	if p.want.ManagesRights {
		want := byID(p.want.Rights, func(r graph.Right) string { return r.Name })
		cur := topo(p.cur.Rights)
		for i := len(cur) - 1; i >= 0; i-- { // implying rights before what they imply
			if _, kept := want[cur[i].Name]; !kept {
				p.add("delete", "right", cur[i].Name, "", graph.Mutation{DeleteRight: &graph.Delete{ID: cur[i].Name}})
			}
		}
	}
}
