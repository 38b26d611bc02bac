package graph

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The audit trail keeps every committed mutation with its revision, time,
// actor and the user it was written for, and finds them by the objects
// they touched or by who made them (DESIGN.md section 5). The index says
// what each mutation touched, as the commit's Subjects; a store keeps the
// trail and answers History queries (store.DB).
//
// The subjects of a primitive mutation are the entity it changes and the
// ones it names, as they were when it was applied:
//
//   - a folder change: the folder; a creation or deletion also its parent,
//     a move its old parent and its new one;
//   - a user change: the user; a creation or deletion also its home and
//     extra groups, a move its old home and its new one, an extra group
//     the folder;
//   - a grant (added, removed, started or expired): the grant, its holder
//     and its target;
//   - a lock: the lock and its target; a placement rule: its folder;
//   - a right of the catalogue: the right. The self rights have none.

// An Object names an entity of the audit trail: a folder, user, grant,
// lock or right. Its text form is kind/id, as in "user/c1".
type Object struct {
	Kind RecordKind
	ID   string
}

// objectKinds are the kinds an Object may have.
var objectKinds = []RecordKind{RecordFolder, RecordUser, RecordGrant, RecordLock, RecordRight}

// String returns kind/id.
func (o Object) String() string { return string(o.Kind) + "/" + o.ID }

// IsZero reports whether o names nothing.
func (o Object) IsZero() bool { return o == Object{} }

// MarshalText encodes o as kind/id, as a change log keeps it.
func (o Object) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText decodes what MarshalText encoded.
func (o *Object) UnmarshalText(b []byte) error {
	var err error
	*o, err = ParseObject(string(b))
	return err
}

// ParseObject reads kind/id, refusing another kind or an empty id with
// ErrInvalid naming the text.
func ParseObject(s string) (Object, error) {
	kind, id, ok := strings.Cut(s, "/")
	if !ok || id == "" || !slices.Contains(objectKinds, RecordKind(kind)) {
		return Object{}, newErr("history", Clip(s), ErrInvalid, "an object is folder/ID, user/ID, grant/ID, lock/ID or right/NAME")
	}
	return Object{Kind: RecordKind(kind), ID: id}, nil
}

// subjectsOf returns what primitive m touched (see above), which has just
// been applied to s; inv is its inverse, which still names what m removed
// or replaced.
func (s *state) subjectsOf(m, inv *Mutation) []Object {
	var out []Object
	add := func(k RecordKind, id string) {
		if o := (Object{Kind: k, ID: id}); id != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	ref := func(r Ref) {
		switch r.Kind {
		case KindFolder:
			add(RecordFolder, r.ID)
		case KindUser:
			add(RecordUser, r.ID)
		}
	}
	placed := func(u *User) {
		add(RecordUser, u.ID)
		add(RecordFolder, u.Home)
		for _, e := range u.Extras {
			add(RecordFolder, e)
		}
	}
	grant := func(g *Grant) {
		add(RecordGrant, g.ID)
		ref(g.Holder)
		ref(g.Target)
	}
	marked := func(id string) {
		add(RecordGrant, id)
		if g, ok := s.grants.get(id); ok {
			holder, target := s.ends(g)
			ref(holder)
			ref(target)
		}
	}
	switch {
	case m.CreateFolder != nil:
		add(RecordFolder, m.CreateFolder.ID)
		add(RecordFolder, m.CreateFolder.Parent)
	case m.RenameFolder != nil:
		add(RecordFolder, m.RenameFolder.ID)
	case m.RelabelFolder != nil:
		add(RecordFolder, m.RelabelFolder.ID)
	case m.MoveFolder != nil:
		add(RecordFolder, m.MoveFolder.ID)
		add(RecordFolder, inv.MoveFolder.To)
		add(RecordFolder, m.MoveFolder.To)
	case m.DeleteFolder != nil:
		add(RecordFolder, m.DeleteFolder.ID)
		add(RecordFolder, inv.CreateFolder.Parent)
	case m.CreateUser != nil:
		placed(m.CreateUser)
	case m.UpdateUser != nil:
		add(RecordUser, m.UpdateUser.ID)
	case m.MoveUser != nil:
		add(RecordUser, m.MoveUser.ID)
		add(RecordFolder, inv.MoveUser.To)
		add(RecordFolder, m.MoveUser.To)
	case m.SetUserState != nil:
		add(RecordUser, m.SetUserState.ID)
	case m.DeleteUser != nil:
		placed(inv.CreateUser)
	case m.AddExtraGroup != nil:
		add(RecordUser, m.AddExtraGroup.User)
		add(RecordFolder, m.AddExtraGroup.Folder)
	case m.DelExtraGroup != nil:
		add(RecordUser, m.DelExtraGroup.User)
		add(RecordFolder, m.DelExtraGroup.Folder)
	case m.AddGrant != nil:
		grant(m.AddGrant)
	case m.RemoveGrant != nil:
		grant(inv.AddGrant)
	case m.ExpireGrant != nil:
		marked(m.ExpireGrant.ID)
	case m.StartGrant != nil:
		marked(m.StartGrant.ID)
	case m.AddLock != nil:
		add(RecordLock, m.AddLock.ID)
		ref(m.AddLock.Target)
	case m.RemoveLock != nil:
		add(RecordLock, inv.AddLock.ID)
		ref(inv.AddLock.Target)
	case m.SetRule != nil:
		add(RecordFolder, m.SetRule.Folder)
	case m.RemoveRule != nil:
		add(RecordFolder, m.RemoveRule.ID)
	case m.PutRight != nil:
		add(RecordRight, m.PutRight.Name)
	case m.DeleteRight != nil:
		add(RecordRight, m.DeleteRight.ID)
	}
	return out
}

// Orgs returns the organisations (root folders) mutation i of the commit
// touched, each once, or nil for a change to the whole service (the
// catalogue, the self rights). Like InOrgs it is strict: a commit that
// kept no places touched no organisation that it can name.
func (c *Commit) Orgs(i int) []string {
	out := []string{}
	if len(c.Touched) != len(c.Mutations) {
		return out
	}
	if c.Touched[i] == nil {
		return nil
	}
	for _, k := range c.Touched[i] {
		root := ""
		for ; k >= 0 && int(k) < len(c.Places); k = c.Places[k].Parent {
			root = c.Places[k].ID
		}
		if root != "" && !slices.Contains(out, root) {
			out = append(out, root)
		}
	}
	return out
}

// HistoryQuery selects entries of the audit trail. Every field set must
// match; the zero query selects everything.
type HistoryQuery struct {
	// Object, when set, selects the mutations that touched it (see the
	// subjects above). A store answers it from an index, in time
	// proportional to the object's history.
	Object Object
	// Actor, when set, selects the mutations of batches that actor
	// committed; ActedFor those written on behalf of that user.
	Actor    string
	ActedFor string
	// From and To bound the revisions, both included; zero bounds none.
	From, To uint64
	// Since and Until bound the commit times: Since included, Until not;
	// zero bounds none.
	Since, Until time.Time
	// Orgs, when not nil, keeps only the mutations that a caller confined
	// to these organisations may see (Commit.Orgs): those that touched
	// one of them, and changes to the whole service.
	Orgs Orgs
	// Before, when set, resumes a query: only entries older than it.
	Before HistoryMark
	// Limit is the most entries to return (at least 1).
	Limit int
}

// End returns the position a store's walk back from the newest entry
// starts before (excluded): the newest that To and Before allow. It
// refuses a Limit below 1.
func (q *HistoryQuery) End() (HistoryMark, error) {
	if q.Limit < 1 {
		return HistoryMark{}, fmt.Errorf("history: limit %d: want at least 1", q.Limit)
	}
	end := HistoryMark{Revision: math.MaxUint64}
	if q.To > 0 && q.To < math.MaxUint64 {
		end = HistoryMark{Revision: q.To + 1}
	}
	if !q.Before.IsZero() && q.Before.Before(end) {
		end = q.Before
	}
	return end, nil
}

// HistoryMark is the position of one entry in the trail: its revision and
// its index among the batch's primitive mutations. Later revisions, and
// later mutations of one batch, are newer.
type HistoryMark struct {
	Revision uint64
	Index    int
}

// IsZero reports whether m is no position.
func (m HistoryMark) IsZero() bool { return m == HistoryMark{} }

// Before reports whether m is older than o.
func (m HistoryMark) Before(o HistoryMark) bool {
	return m.Revision < o.Revision || m.Revision == o.Revision && m.Index < o.Index
}

// String returns revision.index.
func (m HistoryMark) String() string { return fmt.Sprintf("%d.%d", m.Revision, m.Index) }

// ParseHistoryMark reads what String wrote.
func ParseHistoryMark(s string) (HistoryMark, error) {
	var m HistoryMark
	if _, err := fmt.Sscanf(s, "%d.%d", &m.Revision, &m.Index); err != nil || m.String() != s || m.Revision == 0 || m.Index < 0 {
		return HistoryMark{}, fmt.Errorf("history position %q: want REVISION.INDEX", s)
	}
	return m, nil
}

// HistoryBatch is what the entries of one commit share: its time, its
// actor and the user it was written for.
type HistoryBatch struct {
	Time     time.Time `json:"time,omitzero"`
	Actor    string    `json:"actor,omitempty"`
	ActedFor string    `json:"acted_for,omitempty"`
}

// Batch returns what the entries of c share.
func (c *Commit) Batch() HistoryBatch {
	return HistoryBatch{Time: c.Time, Actor: c.Actor, ActedFor: c.ActedFor}
}

// HistoryEntry is one committed primitive mutation of the trail.
type HistoryEntry struct {
	HistoryMark
	HistoryBatch
	Mutation Mutation
}

// HistoryRow is an entry as a store keeps it (JSON): the mutation, what
// it touched and where, and its batch unless the store keeps that apart
// (then the zero batch, which encodes as nothing).
type HistoryRow struct {
	HistoryBatch
	Mutation Mutation `json:"m"`
	Subjects []Object `json:"s,omitempty"`
	// All marks a change to the whole service; otherwise Orgs are the
	// organisations it touched (Commit.Orgs).
	All  bool     `json:"all,omitempty"`
	Orgs []string `json:"orgs,omitempty"`
}

// Row returns the row of mutation i of c, without its batch.
func (c *Commit) Row(i int) HistoryRow {
	r := HistoryRow{Mutation: c.Mutations[i], Orgs: c.Orgs(i)}
	r.All = r.Orgs == nil
	if i < len(c.Subjects) {
		r.Subjects = c.Subjects[i]
	}
	return r
}

// Organisations returns what the row touched as Matches takes it: nil
// for the whole service.
func (r *HistoryRow) Organisations() []string {
	if r.All {
		return nil
	}
	if r.Orgs == nil {
		return []string{}
	}
	return r.Orgs
}

// HistoryPage is an answer to a HistoryQuery: its entries, newest first,
// and whether older ones match too (resume with Before set to the last
// entry's mark).
type HistoryPage struct {
	Entries []HistoryEntry
	More    bool
}

// Collect offers p the entry e, touching orgs, met by a store walking
// back from q.End (newest first) through the entries of q's object,
// actor or acted-for user. It keeps e when q selects it, and reports
// whether the walk goes on: not once e is older than q.From or q.Since
// (commit times follow revisions), nor once the page is full and another
// entry matches (p.More).
func (q *HistoryQuery) Collect(p *HistoryPage, e HistoryEntry, orgs []string) bool {
	if e.Revision < q.From || !q.Since.IsZero() && e.Time.Before(q.Since) {
		return false
	}
	if !q.Matches(e.Time, e.Actor, e.ActedFor, orgs) {
		return true
	}
	if len(p.Entries) == q.Limit {
		p.More = true
		return false
	}
	p.Entries = append(p.Entries, e)
	return true
}

// Matches reports whether an entry of a batch with this time, actor and
// acted-for user, touching orgs (Commit.Orgs), passes q's tests other than
// Object, To and Before, which a store applies as it seeks, and From,
// which Collect applies.
func (q *HistoryQuery) Matches(t time.Time, actor, actedFor string, orgs []string) bool {
	if q.Actor != "" && actor != q.Actor || q.ActedFor != "" && actedFor != q.ActedFor {
		return false
	}
	if !q.Since.IsZero() && t.Before(q.Since) || !q.Until.IsZero() && !t.Before(q.Until) {
		return false
	}
	if q.Orgs != nil && orgs != nil && !slices.ContainsFunc(orgs, func(o string) bool { return q.Orgs[o] }) {
		return false
	}
	return true
}
