package graph

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	jsonv2 "github.com/go-json-experiment/json"
)

// RecordKind names the kind of entity a Record holds. The store keeps one
// bucket per kind.
type RecordKind string

// The record kinds, in the order the index loads them at start.
const (
	RecordRight  RecordKind = "right"
	RecordSelf   RecordKind = "self"
	RecordFolder RecordKind = "folder"
	RecordRule   RecordKind = "rule"
	RecordUser   RecordKind = "user"
	RecordGrant  RecordKind = "grant"
	RecordLock   RecordKind = "lock"
)

// RecordKinds lists every record kind in load order.
var RecordKinds = []RecordKind{RecordRight, RecordSelf, RecordFolder, RecordRule, RecordUser, RecordGrant, RecordLock}

// selfKey is the id of the one self-rights record.
const selfKey = "self"

// Record is the stored form of one entity: its kind, its id and its JSON
// encoding. A commit carries the record of every entity its batch touched,
// as the batch left it; a nil Value means the entity was deleted.
type Record struct {
	Kind  RecordKind
	ID    string
	Value []byte
}

// touched returns the record key that primitive mutation m changes.
func touched(m *Mutation) (RecordKind, string) {
	switch {
	case m.CreateFolder != nil:
		return RecordFolder, m.CreateFolder.ID
	case m.RenameFolder != nil:
		return RecordFolder, m.RenameFolder.ID
	case m.RelabelFolder != nil:
		return RecordFolder, m.RelabelFolder.ID
	case m.MoveFolder != nil:
		return RecordFolder, m.MoveFolder.ID
	case m.DeleteFolder != nil:
		return RecordFolder, m.DeleteFolder.ID
	case m.CreateUser != nil:
		return RecordUser, m.CreateUser.ID
	case m.UpdateUser != nil:
		return RecordUser, m.UpdateUser.ID
	case m.MoveUser != nil:
		return RecordUser, m.MoveUser.ID
	case m.SetUserState != nil:
		return RecordUser, m.SetUserState.ID
	case m.DeleteUser != nil:
		return RecordUser, m.DeleteUser.ID
	case m.AddExtraGroup != nil:
		return RecordUser, m.AddExtraGroup.User
	case m.DelExtraGroup != nil:
		return RecordUser, m.DelExtraGroup.User
	case m.AddGrant != nil:
		return RecordGrant, m.AddGrant.ID
	case m.RemoveGrant != nil:
		return RecordGrant, m.RemoveGrant.ID
	case m.ExpireGrant != nil:
		return RecordGrant, m.ExpireGrant.ID
	case m.StartGrant != nil:
		return RecordGrant, m.StartGrant.ID
	case m.AddLock != nil:
		return RecordLock, m.AddLock.ID
	case m.RemoveLock != nil:
		return RecordLock, m.RemoveLock.ID
	case m.SetRule != nil:
		return RecordRule, m.SetRule.Folder
	case m.RemoveRule != nil:
		return RecordRule, m.RemoveRule.ID
	case m.PutRight != nil:
		return RecordRight, m.PutRight.Name
	case m.DeleteRight != nil:
		return RecordRight, m.DeleteRight.ID
	}
	return RecordSelf, selfKey
}

// records returns the current record of every entity the primitives touched,
// each once, in the order first touched.
func (s *state) records(prims []Mutation) ([]Record, error) {
	type key struct {
		k  RecordKind
		id string
	}
	seen := map[key]bool{}
	var out []Record
	for i := range prims {
		k, id := touched(&prims[i])
		if seen[key{k, id}] {
			continue
		}
		seen[key{k, id}] = true
		r, err := s.record(k, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// record returns the stored form of one entity, with a nil Value when it
// does not exist.
func (s *state) record(k RecordKind, id string) (Record, error) {
	var v any
	switch k {
	case RecordFolder:
		if i, ok := s.folders.get(id); ok {
			v = s.folderView(i)
		}
	case RecordUser:
		if i, ok := s.users.get(id); ok {
			v = s.userView(i)
		}
	case RecordGrant:
		if i, ok := s.grants.get(id); ok {
			v = s.grantView(i)
		}
	case RecordLock:
		if i, ok := s.locks.get(id); ok {
			v = s.lockView(i)
		}
	case RecordRule:
		if i, ok := s.folders.get(id); ok && s.folder(i).rule != nil {
			v = PlacementRule{Folder: id, Classes: slices.Clone(s.folder(i).rule)}
		}
	case RecordRight:
		if i, ok := s.cat.lookup(id); ok {
			v = Right{Name: id, Implies: s.cat.list(s.cat.implies[i])}
		}
	case RecordSelf:
		v = SelfRights{Rights: s.cat.list(s.cat.self)}
	}
	r := Record{Kind: k, ID: id}
	if v == nil {
		return r, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return r, fmt.Errorf("encode %s %q: %w", k, id, err)
	}
	r.Value = b
	return r, nil
}

// allRecords returns the record of every entity, by kind in load order and
// by id within a kind.
func (s *state) allRecords(o Orgs) ([]Record, error) {
	var keys []Record
	add := func(k RecordKind, ids []string) {
		sort.Strings(ids)
		for _, id := range ids {
			keys = append(keys, Record{Kind: k, ID: id})
		}
	}
	var rights, folders, rules, users, grants, locks []string
	for n := range s.cat.slot {
		rights = append(rights, n)
	}
	for id, i := range s.folders.all() {
		if !o.hasFolder(s, i) {
			continue
		}
		folders = append(folders, id)
		if s.folder(i).rule != nil {
			rules = append(rules, id)
		}
	}
	for id, i := range s.users.all() {
		if o.hasUser(s, i) {
			users = append(users, id)
		}
	}
	for id, i := range s.grants.all() {
		if o.hasGrant(s, i) {
			grants = append(grants, id)
		}
	}
	for id, i := range s.locks.all() {
		if o.hasLock(s, i) {
			locks = append(locks, id)
		}
	}
	add(RecordRight, rights)
	add(RecordSelf, []string{selfKey})
	add(RecordFolder, folders)
	add(RecordRule, rules)
	add(RecordUser, users)
	add(RecordGrant, grants)
	add(RecordLock, locks)
	for i := range keys {
		r, err := s.record(keys[i].Kind, keys[i].ID)
		if err != nil {
			return nil, err
		}
		keys[i] = r
	}
	return keys, nil
}

// decoded holds records decoded into entities, by kind.
type decoded struct {
	rights  []Right
	self    *SelfRights
	folders []Folder
	rules   []PlacementRule
	users   []User
	grants  []Grant
	locks   []Lock
}

// recordChunk is how many records a chunk holds when records are collected
// or decoded in chunks. A variable for tests, which use small chunks.
var recordChunk = 1 << 16

// chunked splits recs into chunks of recordChunk, without copying.
func chunked(recs []Record) [][]Record {
	var out [][]Record
	for len(recs) > 0 {
		n := min(recordChunk, len(recs))
		out, recs = append(out, recs[:n]), recs[n:]
	}
	return out
}

// decode decodes chunks of records; every record's key must be a valid id
// and the id inside its value.
func decode(chunks [][]Record) (*decoded, error) {
	d := &decoded{}
	for _, recs := range chunks {
		if err := d.add(recs); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// add decodes records into d. Records are encoded by encoding/json and
// decoded by encoding/json/v2's implementation (the go-json-experiment
// mirror, which becomes an alias of the standard library's at Go 1.27):
// it decodes a user record in about half the time with a fifth of the
// allocations, and start-up is mostly decoding. On what encoding/json
// writes the two agree (FuzzRecordDecode); v2 is stricter only on what it
// never writes: names in another case, duplicate names, invalid UTF-8.
func (d *decoded) add(recs []Record) error {
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		var key string
		var err error
		switch r.Kind {
		case RecordRight:
			var v Right
			err = jsonv2.Unmarshal(r.Value, &v)
			d.rights, key = append(d.rights, v), v.Name
		case RecordSelf:
			d.self = new(SelfRights)
			err = jsonv2.Unmarshal(r.Value, d.self)
			key = selfKey
		case RecordFolder:
			var v Folder
			err = jsonv2.Unmarshal(r.Value, &v)
			d.folders, key = append(d.folders, v), v.ID
		case RecordRule:
			var v PlacementRule
			err = jsonv2.Unmarshal(r.Value, &v)
			d.rules, key = append(d.rules, v), v.Folder
		case RecordUser:
			var v User
			err = jsonv2.Unmarshal(r.Value, &v)
			d.users, key = append(d.users, v), v.ID
		case RecordGrant:
			var v Grant
			err = jsonv2.Unmarshal(r.Value, &v)
			d.grants, key = append(d.grants, v), v.ID
		case RecordLock:
			var v Lock
			err = jsonv2.Unmarshal(r.Value, &v)
			d.locks, key = append(d.locks, v), v.ID
		default:
			err = fmt.Errorf("unknown record kind")
		}
		if err == nil && (key != r.ID || !validID(key)) {
			err = fmt.Errorf("the record holds %q", key)
		}
		if err != nil {
			return fmt.Errorf("decode %s %q: %w", r.Kind, r.ID, err)
		}
	}
	return nil
}

// decodeAll decodes chunks of records on every core (decodeAhead) and
// merges them, in order.
func decodeAll(chunks [][]Record) (*decoded, error) {
	chunk, stop := decodeAhead(chunks)
	defer stop()
	all := &decoded{}
	for i := range chunks {
		d, err := chunk(i)
		if err != nil {
			return nil, err
		}
		all.addStructure(d)
		all.users = append(all.users, d.users...)
		all.grants = append(all.grants, d.grants...)
		all.locks = append(all.locks, d.locks...)
	}
	return all, nil
}

// addStructure adds p's rights, self rights, folders and rules to d.
func (d *decoded) addStructure(p *decoded) {
	d.rights = append(d.rights, p.rights...)
	d.folders = append(d.folders, p.folders...)
	d.rules = append(d.rules, p.rules...)
	if p.self != nil {
		d.self = p.self
	}
}

// restore builds the state from a full set of records by applying their
// creation mutations in dependency order (see inOrder), one by one rather
// than building a list first: at a million users that list alone would be
// hundreds of megabytes for the garbage collector to scan.
//
// Decoding and applying overlap: every core decodes chunks, in order,
// while this goroutine applies each chunk's entities as soon as it is
// decoded and everything it depends on is applied. The rights, self
// rights, folders and rules go first (folders must be ordered parents
// first), then each chunk's users, then grants, then locks; the order of
// entities within a kind is the records' order, as it was when everything
// was decoded first, so the state built is the same.
func (t *txn) restore(chunks [][]Record) error {
	// Size the tables first, while the heap is small: sized after decoding,
	// the same allocations cost 12% more start-up (measured).
	counts := make([]kindCounts, len(chunks))
	var n kindCounts
	for i, c := range chunks {
		for j := range c {
			counts[i].add(c[j].Kind)
		}
		for k, m := range counts[i] {
			n[k] += m
		}
	}
	t.s.reserve(n.of(RecordFolder), n.of(RecordUser), n.of(RecordGrant), n.of(RecordLock))
	chunk, stop := decodeAhead(chunks)
	defer stop()
	var structure decoded
	for i := range chunks {
		// A record of no known kind is decoded here too, to be refused.
		if counts[i].of(RecordRight)+counts[i].of(RecordSelf)+counts[i].of(RecordFolder)+counts[i].of(RecordRule)+counts[i][7] == 0 {
			continue
		}
		d, err := chunk(i)
		if err != nil {
			return err
		}
		structure.addStructure(d)
	}
	apply := func(m Mutation) error { return t.apply(&m) }
	if err := structure.inOrder(apply); err != nil {
		return err
	}
	for _, k := range []RecordKind{RecordUser, RecordGrant, RecordLock} {
		for i := range chunks {
			if counts[i].of(k) == 0 {
				continue
			}
			d, err := chunk(i)
			if err != nil {
				return err
			}
			if err := d.creations(k, apply); err != nil {
				return err
			}
			// Applied, they are garbage: let the collector have them.
			switch k {
			case RecordUser:
				d.users = nil
			case RecordGrant:
				d.grants = nil
			case RecordLock:
				d.locks = nil
			}
		}
	}
	return nil
}

// kindCounts counts records by kind, in RecordKinds order, and last those
// of no known kind (decoding refuses them).
type kindCounts [8]int

// slot is k's place in kindCounts.
func slot(k RecordKind) int {
	switch k {
	case RecordRight:
		return 0
	case RecordSelf:
		return 1
	case RecordFolder:
		return 2
	case RecordRule:
		return 3
	case RecordUser:
		return 4
	case RecordGrant:
		return 5
	case RecordLock:
		return 6
	}
	return 7
}

func (c *kindCounts) add(k RecordKind) { c[slot(k)]++ }

func (c *kindCounts) of(k RecordKind) int { return c[slot(k)] }

// decodeAhead decodes each chunk of records on its own, on every core, in
// order, without waiting to be asked. chunk(i) waits for chunk i and
// returns it; stop ends the decoding and waits for it.
func decodeAhead(chunks [][]Record) (chunk func(int) (*decoded, error), stop func()) {
	parts := make([]*decoded, len(chunks))
	errs := make([]error, len(chunks))
	ready := make([]chan struct{}, len(chunks))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	var next atomic.Int64
	var stopped atomic.Bool
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(chunks))) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) || stopped.Load() {
					return
				}
				parts[i], errs[i] = decode(chunks[i : i+1])
				close(ready[i])
			}
		})
	}
	chunk = func(i int) (*decoded, error) {
		<-ready[i]
		return parts[i], errs[i]
	}
	stop = func() {
		stopped.Store(true)
		wg.Wait()
	}
	return chunk, stop
}

// inOrder calls emit with the mutations that create the decoded entities
// from nothing, in an order that passes every check: rights before the
// rights that imply them, the self rights, folders parents first (siblings
// by id), rules, then users, grants and locks.
func (d *decoded) inOrder(emit func(Mutation) error) error {
	rights := make(map[string]Right, len(d.rights))
	for _, r := range d.rights {
		rights[r.Name] = r
	}
	names := make([]string, 0, len(rights))
	for n := range rights {
		names = append(names, n)
	}
	sort.Strings(names)
	placed := map[string]bool{}
	var place func(n string, depth int) error
	place = func(n string, depth int) error {
		r, ok := rights[n]
		if placed[n] || !ok || depth > MaxRights {
			return nil
		}
		placed[n] = true
		for _, imp := range r.Implies {
			if err := place(imp, depth+1); err != nil {
				return err
			}
		}
		return emit(Mutation{PutRight: &r})
	}
	for _, n := range names {
		if err := place(n, 0); err != nil {
			return err
		}
	}
	if d.self != nil {
		if err := emit(Mutation{SetSelfRights: d.self}); err != nil {
			return err
		}
	}
	children := make(map[string][]int, len(d.folders))
	for i, f := range d.folders {
		children[f.Parent] = append(children[f.Parent], i)
	}
	queue, made := []string{""}, 0
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		kids := children[p]
		sort.Slice(kids, func(a, b int) bool { return d.folders[kids[a]].ID < d.folders[kids[b]].ID })
		for _, k := range kids {
			if err := emit(Mutation{CreateFolder: &d.folders[k]}); err != nil {
				return err
			}
			queue = append(queue, d.folders[k].ID)
			made++
		}
	}
	if made != len(d.folders) {
		return fmt.Errorf("restore: %d of %d folders are not below any root", len(d.folders)-made, len(d.folders))
	}
	for i := range d.rules {
		if err := emit(Mutation{SetRule: &d.rules[i]}); err != nil {
			return err
		}
	}
	for _, k := range []RecordKind{RecordUser, RecordGrant, RecordLock} {
		if err := d.creations(k, emit); err != nil {
			return err
		}
	}
	return nil
}

// creations calls emit with the mutations that create the decoded users,
// grants or locks (k says which), in the order they were decoded.
func (d *decoded) creations(k RecordKind, emit func(Mutation) error) error {
	var err error
	switch k {
	case RecordUser:
		for i := 0; i < len(d.users) && err == nil; i++ {
			err = emit(Mutation{CreateUser: &d.users[i]})
		}
	case RecordGrant:
		for i := 0; i < len(d.grants) && err == nil; i++ {
			err = emit(Mutation{AddGrant: &d.grants[i]})
		}
	case RecordLock:
		for i := 0; i < len(d.locks) && err == nil; i++ {
			err = emit(Mutation{AddLock: &d.locks[i]})
		}
	}
	return err
}

// Snapshot is a copy of the whole state at one revision, taken under the
// index's read lock and then independent of it, so a caller may take its
// time with it (send it over a network) without holding up writers.
type Snapshot struct {
	Revision uint64
	d        *decoded
}

// Snapshot copies the whole state.
func (ix *Index) Snapshot() (*Snapshot, error) {
	return ix.snapshot(nil)
}

func (ix *Index) snapshot(o Orgs) (*Snapshot, error) {
	recs, rev, err := ix.records(o)
	if err != nil {
		return nil, err
	}
	d, err := decodeAll(chunked(recs))
	if err != nil {
		return nil, err
	}
	return &Snapshot{Revision: rev, d: d}, nil
}

// Mutations calls emit with the mutations that rebuild the snapshot in an
// empty store, in an order Write (or Import) accepts.
func (s *Snapshot) Mutations(emit func(Mutation) error) error { return s.d.inOrder(emit) }

// CreationRecord returns the record that a mutation creating an entity
// from nothing stands for: one of those Snapshot.Mutations emits
// (put_right, set_self_rights, create_folder, set_placement_rule,
// create_user, add_grant, add_lock). A copy of the state received as
// mutations (an Export) is loaded from these records at its own revision.
func CreationRecord(m Mutation) (Record, error) {
	var (
		k  RecordKind
		id string
		v  any
	)
	switch {
	case m.PutRight != nil:
		k, id, v = RecordRight, m.PutRight.Name, m.PutRight
	case m.SetSelfRights != nil:
		k, id, v = RecordSelf, selfKey, m.SetSelfRights
	case m.CreateFolder != nil:
		k, id, v = RecordFolder, m.CreateFolder.ID, m.CreateFolder
	case m.SetRule != nil:
		k, id, v = RecordRule, m.SetRule.Folder, m.SetRule
	case m.CreateUser != nil:
		k, id, v = RecordUser, m.CreateUser.ID, m.CreateUser
	case m.AddGrant != nil:
		k, id, v = RecordGrant, m.AddGrant.ID, m.AddGrant
	case m.AddLock != nil:
		k, id, v = RecordLock, m.AddLock.ID, m.AddLock
	default:
		op, id, _ := m.op()
		return Record{}, newErr(op, id, ErrInvalid, "creates no entity from nothing")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Record{}, fmt.Errorf("encode %s %q: %w", k, id, err)
	}
	return Record{Kind: k, ID: id, Value: b}, nil
}
