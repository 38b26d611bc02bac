package graph

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
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
func (s *state) allRecords() ([]Record, error) {
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
	for id, i := range s.folders.byID {
		folders = append(folders, id)
		if s.folder(i).rule != nil {
			rules = append(rules, id)
		}
	}
	for id := range s.users.byID {
		users = append(users, id)
	}
	for id := range s.grants.byID {
		grants = append(grants, id)
	}
	for id := range s.locks.byID {
		locks = append(locks, id)
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

// restoreMutations turns a full set of records into the mutations that
// build the same state from nothing: rights before the rights that imply
// them, parents before children, rules before users.
func restoreMutations(recs []Record) ([]Mutation, error) {
	var (
		rights  = map[string]Right{}
		self    *SelfRights
		folders = map[string]Folder{}
		rules   []PlacementRule
		users   []User
		grants  []Grant
		locks   []Lock
	)
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		var key string // the id inside the value, which must be the record's key
		var err error
		switch r.Kind {
		case RecordRight:
			var v Right
			err = json.Unmarshal(r.Value, &v)
			rights[v.Name], key = v, v.Name
		case RecordSelf:
			self = new(SelfRights)
			err = json.Unmarshal(r.Value, self)
			key = selfKey
		case RecordFolder:
			var v Folder
			err = json.Unmarshal(r.Value, &v)
			folders[v.ID], key = v, v.ID
		case RecordRule:
			var v PlacementRule
			err = json.Unmarshal(r.Value, &v)
			rules, key = append(rules, v), v.Folder
		case RecordUser:
			var v User
			err = json.Unmarshal(r.Value, &v)
			users, key = append(users, v), v.ID
		case RecordGrant:
			var v Grant
			err = json.Unmarshal(r.Value, &v)
			grants, key = append(grants, v), v.ID
		case RecordLock:
			var v Lock
			err = json.Unmarshal(r.Value, &v)
			locks, key = append(locks, v), v.ID
		default:
			err = fmt.Errorf("unknown record kind")
		}
		if err == nil && (key != r.ID || !validID(key)) {
			err = fmt.Errorf("the record holds %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s %q: %w", r.Kind, r.ID, err)
		}
	}
	var out []Mutation
	// Rights: depth-first so that implied rights come first.
	names := make([]string, 0, len(rights))
	for n := range rights {
		names = append(names, n)
	}
	sort.Strings(names)
	placed := map[string]bool{}
	var place func(n string, depth int)
	place = func(n string, depth int) {
		r, ok := rights[n]
		if placed[n] || !ok || depth > MaxRights {
			return
		}
		placed[n] = true
		for _, imp := range r.Implies {
			place(imp, depth+1)
		}
		out = append(out, Mutation{PutRight: &r})
	}
	for _, n := range names {
		place(n, 0)
	}
	if self != nil {
		out = append(out, Mutation{SetSelfRights: self})
	}
	// Folders: breadth-first from the roots, siblings by id.
	children := map[string][]string{}
	for id, f := range folders {
		children[f.Parent] = append(children[f.Parent], id)
	}
	queue, made := []string{""}, 0
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		kids := children[p]
		sort.Strings(kids)
		for _, id := range kids {
			f := folders[id]
			out = append(out, Mutation{CreateFolder: &f})
			queue = append(queue, id)
			made++
		}
	}
	if made != len(folders) {
		return nil, fmt.Errorf("restore: %d of %d folders are not below any root", len(folders)-made, len(folders))
	}
	for i := range rules {
		out = append(out, Mutation{SetRule: &rules[i]})
	}
	for i := range users {
		out = append(out, Mutation{CreateUser: &users[i]})
	}
	for i := range grants {
		out = append(out, Mutation{AddGrant: &grants[i]})
	}
	for i := range locks {
		out = append(out, Mutation{AddLock: &locks[i]})
	}
	return out, nil
}
