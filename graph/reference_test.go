package graph_test

import (
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	unorm "golang.org/x/text/unicode/norm"

	"github.com/canopy-authz/canopy/graph"
)

// refModel is the reference: DESIGN.md section 1 written as plainly as
// possible. Entities sit in maps; every question is answered by walking
// parent pointers and scanning everything. It shares no code with the
// index, so the two can only agree by both being right.
type refModel struct {
	folders map[string]graph.Folder
	users   map[string]graph.User
	grants  map[string]graph.Grant
	locks   map[string]graph.Lock
	rules   map[string][]string
	rights  map[string][]string // name -> directly implied
	self    []string
	// maxDepth is the most levels a written tree may have (as
	// graph.Options.MaxDepth; negative: no limit).
	maxDepth int
}

var errRefused = errors.New("refused")

func newRef() *refModel {
	m := &refModel{
		folders: map[string]graph.Folder{}, users: map[string]graph.User{},
		grants: map[string]graph.Grant{}, locks: map[string]graph.Lock{},
		rules: map[string][]string{}, rights: map[string][]string{},
		maxDepth: graph.DefaultMaxDepth,
	}
	for _, mu := range graph.Bootstrap() {
		if err := m.apply(mu); err != nil {
			panic(err)
		}
	}
	return m
}

func (m *refModel) clone() *refModel {
	c := &refModel{
		folders: maps.Clone(m.folders), users: maps.Clone(m.users),
		grants: maps.Clone(m.grants), locks: maps.Clone(m.locks),
		rules: maps.Clone(m.rules), rights: maps.Clone(m.rights), self: slices.Clone(m.self),
		maxDepth: m.maxDepth,
	}
	return c
}

// deepest returns how many levels the deepest tree has, walking up from
// every folder.
func (m *refModel) deepest() int {
	most := 0
	for id := range m.folders {
		n := 0
		for ; id != ""; id = m.folders[id].Parent {
			n++
		}
		most = max(most, n)
	}
	return most
}

// write applies a batch all or nothing, refusing an expiry not after now.
func (m *refModel) write(batch []graph.Mutation, now time.Time) (*refModel, error) {
	c := m.clone()
	for _, mu := range batch {
		if refusedByClock(mu, now) {
			return m, errRefused
		}
		if err := c.apply(mu); err != nil {
			return m, err
		}
		if (mu.CreateFolder != nil || mu.MoveFolder != nil) && c.maxDepth > 0 && c.deepest() > c.maxDepth {
			return m, errRefused
		}
	}
	return c, nil
}

// due returns the expire_grant batch the service should write at now: every
// grant past its expiry whose expiry is not yet recorded, earliest first,
// then by id.
func (m *refModel) due(now time.Time) []graph.Mutation {
	// What falls due, in order of time, then kind (starts, expiries, ends
	// of users' activity), then id.
	type item struct {
		at   time.Time
		kind int
		id   string
	}
	var items []item
	for id, g := range m.grants {
		if !g.StartsAt.IsZero() && !g.StartsAt.After(now) && !g.Started {
			items = append(items, item{g.StartsAt, 0, id})
		}
		if !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now) && !g.Expired {
			items = append(items, item{g.ExpiresAt, 1, id})
		}
	}
	for id, u := range m.users {
		if u.State == graph.StateActive && !u.ActiveUntil.IsZero() && !u.ActiveUntil.After(now) {
			items = append(items, item{u.ActiveUntil, 2, id})
		}
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		return a.id < b.id
	})
	var out []graph.Mutation
	for _, it := range items {
		switch it.kind {
		case 0:
			out = append(out, graph.Mutation{StartGrant: &graph.Delete{ID: it.id}})
		case 1:
			out = append(out, graph.Mutation{ExpireGrant: &graph.Delete{ID: it.id}})
		default:
			out = append(out, graph.Mutation{SetUserState: &graph.StateChange{ID: it.id, State: graph.StateDisabled}})
		}
	}
	return out
}

// started reports whether grant g has begun to apply at now: it has no
// start, its start is recorded, or its start has come.
func started(g graph.Grant, now time.Time) bool {
	return g.StartsAt.IsZero() || g.Started || !now.Before(g.StartsAt)
}

// refusedByClock reports whether a written batch is refused for mu before
// anything is applied: what only the service writes (expire_grant,
// start_grant, the expired and started marks), and an expiry or an
// active-until that is not in the future.
func refusedByClock(mu graph.Mutation, now time.Time) bool {
	if mu.ExpireGrant != nil || mu.StartGrant != nil {
		return true
	}
	if g := mu.AddGrant; g != nil && (g.Expired || g.Started || !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now)) {
		return true
	}
	if u := mu.CreateUser; u != nil && !u.ActiveUntil.IsZero() && !u.ActiveUntil.After(now) {
		return true
	}
	if c := mu.SetUserState; c != nil && !c.ActiveUntil.IsZero() && !c.ActiveUntil.After(now) {
		return true
	}
	return false
}

func norm(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// okID is the id grammar a write may create (graph.IDText): text with no
// control, format, private-use or separator characters, no white space at
// either end, in normal form C.
func okID(s string) bool {
	if s == "" || len(s) > graph.MaxIDLen || !utf8.ValidString(s) {
		return false
	}
	if s != strings.TrimSpace(s) || unorm.NFC.String(s) != s {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp)
	})
}

func okText(s string) bool { return len(s) <= graph.MaxTextLen && utf8.ValidString(s) }

func okLabels(l map[string]string) bool {
	if len(l) > graph.MaxLabels {
		return false
	}
	for k, v := range l {
		if !okWord(k) || !okText(v) {
			return false
		}
	}
	return true
}

func okWord(s string) bool {
	if s == "" || len(s) > graph.MaxWordLen {
		return false
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')) {
			return false
		}
	}
	return true
}

func (m *refModel) root(f string) string {
	for m.folders[f].Parent != "" {
		f = m.folders[f].Parent
	}
	return f
}

// above returns f and every folder above it.
func (m *refModel) above(f string) []string {
	var out []string
	for ; f != ""; f = m.folders[f].Parent {
		out = append(out, f)
	}
	return out
}

func (m *refModel) memberOf(u graph.User, f string) bool {
	for _, g := range append([]string{u.Home}, u.Extras...) {
		if slices.Contains(m.above(g), f) {
			return true
		}
	}
	return false
}

func (m *refModel) orgOf(r graph.Ref) string {
	if r.Kind == graph.KindFolder {
		return m.root(r.ID)
	}
	return m.root(m.users[r.ID].Home)
}

func (m *refModel) exists(r graph.Ref) bool {
	switch r.Kind {
	case graph.KindFolder:
		_, ok := m.folders[r.ID]
		return ok
	case graph.KindUser:
		_, ok := m.users[r.ID]
		return ok
	}
	return false
}

// placementHolds reports whether every user satisfies every rule.
func (m *refModel) placementHolds() bool {
	for _, u := range m.users {
		for f, classes := range m.rules {
			if m.memberOf(u, f) && !slices.Contains(classes, u.Class) {
				return false
			}
		}
	}
	return true
}

func (m *refModel) known(rights []string) bool {
	for _, r := range rights {
		if _, ok := m.rights[r]; !ok {
			return false
		}
	}
	return true
}

func (m *refModel) named(r graph.Ref) bool {
	for _, g := range m.grants {
		if g.Holder == r || g.Target == r {
			return true
		}
	}
	for _, l := range m.locks {
		if l.Target == r {
			return true
		}
	}
	return false
}

// apply applies one mutation in place, or returns errRefused (the model is
// then to be thrown away).
func (m *refModel) apply(mu graph.Mutation) error {
	refuse := errRefused
	switch {
	case mu.CreateFolder != nil:
		f := *mu.CreateFolder
		if _, dup := m.folders[f.ID]; !okID(f.ID) || dup || !okText(f.Name) || !okLabels(f.Labels) {
			return refuse
		}
		if _, ok := m.folders[f.Parent]; f.Parent != "" && !ok {
			return refuse
		}
		if len(f.Labels) == 0 {
			f.Labels = nil
		}
		m.folders[f.ID] = f
	case mu.RenameFolder != nil:
		f, ok := m.folders[mu.RenameFolder.ID]
		if !ok || !okText(mu.RenameFolder.Name) {
			return refuse
		}
		f.Name = mu.RenameFolder.Name
		m.folders[f.ID] = f
	case mu.RelabelFolder != nil:
		f, ok := m.folders[mu.RelabelFolder.ID]
		if !ok || !okLabels(mu.RelabelFolder.Labels) {
			return refuse
		}
		f.Labels = maps.Clone(mu.RelabelFolder.Labels)
		if len(f.Labels) == 0 {
			f.Labels = nil
		}
		m.folders[f.ID] = f
	case mu.MoveFolder != nil:
		f, ok := m.folders[mu.MoveFolder.ID]
		_, ok2 := m.folders[mu.MoveFolder.To]
		if !ok || !ok2 || f.Parent == "" || m.root(f.ID) != m.root(mu.MoveFolder.To) ||
			slices.Contains(m.above(mu.MoveFolder.To), f.ID) {
			return refuse
		}
		f.Parent = mu.MoveFolder.To
		m.folders[f.ID] = f
		if !m.placementHolds() {
			return refuse
		}
	case mu.DeleteFolder != nil:
		d := *mu.DeleteFolder
		if _, ok := m.folders[d.ID]; !ok {
			return refuse
		}
		var sub []string
		for id := range m.folders {
			if slices.Contains(m.above(id), d.ID) {
				sub = append(sub, id)
			}
		}
		inSub := func(f string) bool { return slices.Contains(sub, f) }
		if !d.Cascade {
			if len(sub) > 1 || m.named(graph.FolderRef(d.ID)) {
				return refuse
			}
			for _, u := range m.users {
				if u.Home == d.ID || slices.Contains(u.Extras, d.ID) {
					return refuse
				}
			}
		}
		for id, u := range m.users {
			if inSub(u.Home) {
				delete(m.users, id)
				m.dropNaming(graph.UserRef(id))
				continue
			}
			u.Extras = norm(slices.DeleteFunc(slices.Clone(u.Extras), inSub))
			m.users[id] = u
		}
		for _, f := range sub {
			m.dropNaming(graph.FolderRef(f))
			delete(m.rules, f)
			delete(m.folders, f)
		}
	case mu.CreateUser != nil:
		u := *mu.CreateUser
		if u.State == "" {
			u.State = graph.StateActive
		}
		_, dup := m.users[u.ID]
		_, home := m.folders[u.Home]
		if !okID(u.ID) || dup || !okWord(u.Class) || !home || !okText(u.Name) ||
			(u.State != graph.StateActive && u.State != graph.StateDisabled && u.State != graph.StateArchived) {
			return refuse
		}
		if len(norm(u.Extras)) != len(u.Extras) {
			return refuse
		}
		for _, e := range u.Extras {
			if _, ok := m.folders[e]; !ok || m.root(e) != m.root(u.Home) {
				return refuse
			}
		}
		u.Extras = norm(u.Extras)
		if !u.ActiveUntil.IsZero() {
			if u.State != graph.StateActive {
				return refuse
			}
			u.ActiveUntil = u.ActiveUntil.UTC()
		}
		m.users[u.ID] = u
		if !m.placementHolds() {
			return refuse
		}
	case mu.UpdateUser != nil:
		u, ok := m.users[mu.UpdateUser.ID]
		if !ok || !okWord(mu.UpdateUser.Class) || !okText(mu.UpdateUser.Name) {
			return refuse
		}
		u.Name, u.Class = mu.UpdateUser.Name, mu.UpdateUser.Class
		m.users[u.ID] = u
		if !m.placementHolds() {
			return refuse
		}
	case mu.MoveUser != nil:
		u, ok := m.users[mu.MoveUser.ID]
		_, ok2 := m.folders[mu.MoveUser.To]
		if !ok || !ok2 || m.root(u.Home) != m.root(mu.MoveUser.To) {
			return refuse
		}
		u.Home = mu.MoveUser.To
		m.users[u.ID] = u
		if !m.placementHolds() {
			return refuse
		}
	case mu.SetUserState != nil:
		u, ok := m.users[mu.SetUserState.ID]
		s := mu.SetUserState.State
		if !ok || (s != graph.StateActive && s != graph.StateDisabled && s != graph.StateArchived) {
			return refuse
		}
		if until := mu.SetUserState.ActiveUntil; !until.IsZero() && s != graph.StateActive {
			return refuse
		}
		u.State, u.ActiveUntil = s, mu.SetUserState.ActiveUntil
		if !u.ActiveUntil.IsZero() {
			u.ActiveUntil = u.ActiveUntil.UTC()
		}
		m.users[u.ID] = u
	case mu.DeleteUser != nil:
		d := *mu.DeleteUser
		if _, ok := m.users[d.ID]; !ok || !d.Cascade && m.named(graph.UserRef(d.ID)) {
			return refuse
		}
		delete(m.users, d.ID)
		m.dropNaming(graph.UserRef(d.ID))
	case mu.AddExtraGroup != nil:
		g := *mu.AddExtraGroup
		u, ok := m.users[g.User]
		_, ok2 := m.folders[g.Folder]
		if !ok || !ok2 || slices.Contains(u.Extras, g.Folder) || m.root(g.Folder) != m.root(u.Home) {
			return refuse
		}
		u.Extras = norm(append(slices.Clone(u.Extras), g.Folder))
		m.users[u.ID] = u
		if !m.placementHolds() {
			return refuse
		}
	case mu.DelExtraGroup != nil:
		g := *mu.DelExtraGroup
		u, ok := m.users[g.User]
		if !ok || !slices.Contains(u.Extras, g.Folder) {
			return refuse
		}
		u.Extras = norm(slices.DeleteFunc(slices.Clone(u.Extras), func(f string) bool { return f == g.Folder }))
		m.users[u.ID] = u
	case mu.AddGrant != nil:
		g := *mu.AddGrant
		if g.Target.Kind == graph.KindNone && g.Target.ID != "" {
			return refuse
		}
		if _, dup := m.grants[g.ID]; !okID(g.ID) || dup || !m.exists(g.Holder) || !okText(g.Reason) ||
			(!g.Target.IsZero() && (!m.exists(g.Target) || m.orgOf(g.Holder) != m.orgOf(g.Target))) ||
			len(g.Rights) == 0 || !m.known(g.Rights) {
			return refuse
		}
		if g.Expired && g.ExpiresAt.IsZero() || g.Started && g.StartsAt.IsZero() {
			return refuse
		}
		if !g.StartsAt.IsZero() {
			g.StartsAt = g.StartsAt.UTC()
			if !g.ExpiresAt.IsZero() && !g.StartsAt.Before(g.ExpiresAt) {
				return refuse
			}
		}
		g.Rights = norm(g.Rights)
		if !g.ExpiresAt.IsZero() {
			g.ExpiresAt = g.ExpiresAt.UTC()
		}
		m.grants[g.ID] = g
	case mu.RemoveGrant != nil:
		if _, ok := m.grants[mu.RemoveGrant.ID]; !ok {
			return refuse
		}
		delete(m.grants, mu.RemoveGrant.ID)
	case mu.ExpireGrant != nil:
		g, ok := m.grants[mu.ExpireGrant.ID]
		if !ok || g.ExpiresAt.IsZero() || g.Expired {
			return refuse
		}
		g.Expired = true
		m.grants[g.ID] = g
	case mu.StartGrant != nil:
		g, ok := m.grants[mu.StartGrant.ID]
		if !ok || g.StartsAt.IsZero() || g.Started {
			return refuse
		}
		g.Started = true
		m.grants[g.ID] = g
	case mu.AddLock != nil:
		l := *mu.AddLock
		if len(l.Rights) == 0 {
			l.Rights = []string{"edit"}
		}
		if _, dup := m.locks[l.ID]; !okID(l.ID) || dup || !m.exists(l.Target) || !m.known(l.Rights) || !okText(l.Reason) {
			return refuse
		}
		l.Rights = norm(l.Rights)
		m.locks[l.ID] = l
	case mu.RemoveLock != nil:
		if _, ok := m.locks[mu.RemoveLock.ID]; !ok {
			return refuse
		}
		delete(m.locks, mu.RemoveLock.ID)
	case mu.SetRule != nil:
		r := *mu.SetRule
		if _, ok := m.folders[r.Folder]; !ok {
			return refuse
		}
		for _, c := range r.Classes {
			if !okWord(c) {
				return refuse
			}
		}
		m.rules[r.Folder] = append([]string{}, norm(r.Classes)...)
		if !m.placementHolds() {
			return refuse
		}
	case mu.RemoveRule != nil:
		if _, ok := m.rules[mu.RemoveRule.ID]; !ok {
			return refuse
		}
		delete(m.rules, mu.RemoveRule.ID)
	case mu.PutRight != nil:
		r := *mu.PutRight
		if !okWord(r.Name) || !m.known(r.Implies) {
			return refuse
		}
		m.rights[r.Name] = norm(r.Implies)
		for _, i := range r.Implies {
			if m.implies(i, r.Name) {
				return refuse
			}
		}
	case mu.DeleteRight != nil:
		n := mu.DeleteRight.ID
		if _, ok := m.rights[n]; !ok || slices.Contains(m.self, n) {
			return refuse
		}
		for _, imp := range m.rights {
			if slices.Contains(imp, n) {
				return refuse
			}
		}
		for _, g := range m.grants {
			if slices.Contains(g.Rights, n) {
				return refuse
			}
		}
		for _, l := range m.locks {
			if slices.Contains(l.Rights, n) {
				return refuse
			}
		}
		delete(m.rights, n)
	case mu.SetSelfRights != nil:
		if !m.known(mu.SetSelfRights.Rights) {
			return refuse
		}
		m.self = norm(mu.SetSelfRights.Rights)
	default:
		return refuse
	}
	return nil
}

// dropNaming removes every grant and lock that names r.
func (m *refModel) dropNaming(r graph.Ref) {
	for id, g := range m.grants {
		if g.Holder == r || g.Target == r {
			delete(m.grants, id)
		}
	}
	for id, l := range m.locks {
		if l.Target == r {
			delete(m.locks, id)
		}
	}
}

// implies reports whether right a is b or implies b, directly or not.
func (m *refModel) implies(a, b string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(r string) bool {
		if r == b {
			return true
		}
		if seen[r] {
			return false
		}
		seen[r] = true
		for _, i := range m.rights[r] {
			if walk(i) {
				return true
			}
		}
		return false
	}
	return walk(a)
}

// covers reports whether target t covers resource x: the folder itself,
// anything below it and every member of it; the user itself; or, for no
// target, no resource.
func (m *refModel) covers(t, x graph.Ref) bool {
	switch t.Kind {
	case graph.KindNone:
		return x.IsZero()
	case graph.KindUser:
		return x == t
	}
	switch x.Kind {
	case graph.KindFolder:
		return slices.Contains(m.above(x.ID), t.ID)
	case graph.KindUser:
		return m.memberOf(m.users[x.ID], t.ID)
	}
	return false
}

func (m *refModel) reaches(g graph.Grant, u graph.User) bool {
	if g.Holder.Kind == graph.KindUser {
		return g.Holder.ID == u.ID
	}
	return m.memberOf(u, g.Holder.ID)
}

func (m *refModel) gives(rights []string, r string) bool {
	for _, x := range rights {
		if m.implies(x, r) {
			return true
		}
	}
	return false
}

// refDecision is the reference's answer with everything that could explain it.
type refDecision struct {
	reason  graph.Reason
	grants  []string // applicable unexpired grants, sorted
	expired []string // applicable expired grants, sorted
	pending []string // applicable grants not started yet, sorted
	self    bool
	locks   []string // denying locks, sorted
}

func (m *refModel) check(user, right string, x graph.Ref, now time.Time) refDecision {
	var d refDecision
	u, ok := m.users[user]
	if !ok {
		d.reason = graph.ReasonUnknownUser
		return d
	}
	if u.State != graph.StateActive || !u.ActiveUntil.IsZero() && !now.Before(u.ActiveUntil) {
		d.reason = graph.ReasonNotActive
		return d
	}
	for id, g := range m.grants {
		if !m.reaches(g, u) || !m.gives(g.Rights, right) || !m.covers(g.Target, x) {
			continue
		}
		if !started(g, now) {
			d.pending = append(d.pending, id)
			continue
		}
		if !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt) {
			d.expired = append(d.expired, id)
		} else {
			d.grants = append(d.grants, id)
		}
	}
	sort.Strings(d.grants)
	sort.Strings(d.expired)
	sort.Strings(d.pending)
	d.self = x == graph.UserRef(user) && m.gives(m.self, right)
	if len(d.grants) == 0 && !d.self {
		d.reason = graph.ReasonNoGrant
		if len(d.expired) > 0 {
			d.reason = graph.ReasonExpired
		}
		return d
	}
	for id, l := range m.locks {
		if !x.IsZero() && m.covers(l.Target, x) && slices.ContainsFunc(l.Rights, func(lr string) bool { return m.implies(right, lr) }) {
			d.locks = append(d.locks, id)
		}
	}
	sort.Strings(d.locks)
	if len(d.locks) > 0 {
		d.reason = graph.ReasonLocked
		return d
	}
	d.reason = graph.ReasonAllowed
	return d
}

// resources returns every resource of the kind user may exercise right on.
func (m *refModel) resources(user, right string, kind graph.Kind, now time.Time) []string {
	var out []string
	if kind == graph.KindFolder {
		for id := range m.folders {
			if m.check(user, right, graph.FolderRef(id), now).reason == graph.ReasonAllowed {
				out = append(out, id)
			}
		}
	} else {
		for id := range m.users {
			if m.check(user, right, graph.UserRef(id), now).reason == graph.ReasonAllowed {
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// subjects returns every user who may exercise right on x.
func (m *refModel) subjects(right string, x graph.Ref, now time.Time) []string {
	var out []string
	for id := range m.users {
		if m.check(id, right, x, now).reason == graph.ReasonAllowed {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// coverage lists everything target t covers, as refs.
func (m *refModel) coverage(t graph.Ref) map[graph.Ref]bool {
	out := map[graph.Ref]bool{}
	for id := range m.folders {
		if m.covers(t, graph.FolderRef(id)) {
			out[graph.FolderRef(id)] = true
		}
	}
	for id := range m.users {
		if m.covers(t, graph.UserRef(id)) {
			out[graph.UserRef(id)] = true
		}
	}
	return out
}

// refEntry is one entry of the reference's effective access.
type refEntry struct {
	grant  string
	rights []string
	locks  []string
}

// effective returns the grants reaching user, unexpired, with their
// implied rights and the locks that deny one of them on something covered.
func (m *refModel) effective(user string, now time.Time) []refEntry {
	u := m.users[user]
	var out []refEntry
	for id, g := range m.grants {
		if !m.reaches(g, u) || !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt) {
			continue // unexpired, and those still to start among them
		}
		e := refEntry{grant: id}
		for r := range m.rights {
			if m.gives(g.Rights, r) {
				e.rights = append(e.rights, r)
			}
		}
		sort.Strings(e.rights)
		cov := m.coverage(g.Target)
		for lid, l := range m.locks {
			if !slices.ContainsFunc(l.Rights, func(r string) bool { return slices.Contains(e.rights, r) }) {
				continue
			}
			for x := range m.coverage(l.Target) {
				if cov[x] {
					e.locks = append(e.locks, lid)
					break
				}
			}
		}
		sort.Strings(e.locks)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].grant < out[j].grant })
	return out
}
