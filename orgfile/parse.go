package orgfile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/canopy-authz/canopy/graph"
)

// Parse reads an organisation file (YAML, or JSON, which is YAML too).
// name is where it came from, for problems. It checks the file's shape
// and that everything it names exists in it, and reports every problem
// found, with its line and column, as Problems; the File is returned
// whenever the YAML itself could be read.
func Parse(name string, data []byte) (*File, error) {
	f := &File{Name: name, pos: map[key]Pos{}}
	d := &decoder{f: f}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{{File: name, Pos: yamlErrorPos(err), Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 {
		return f, nil // an empty file manages nothing
	}
	top := d.fields(doc.Content[0], "the file", "rights", "self_rights", "organisations", "users", "grants", "locks")
	if n := top["rights"]; n != nil {
		f.ManagesRights = true
		for _, r := range d.seq(n, "rights") {
			d.right(r)
		}
	}
	if n := top["self_rights"]; n != nil {
		f.SelfRights = &graph.SelfRights{Rights: d.strs(n, "self_rights")}
		if f.SelfRights.Rights == nil {
			f.SelfRights.Rights = []string{}
		}
		f.pos[key{"self_rights", ""}] = posOf(n)
	}
	for _, o := range d.seq(top["organisations"], "organisations") {
		d.folder(o, "")
	}
	for _, u := range d.seq(top["users"], "users") {
		d.user(u)
	}
	for _, g := range d.seq(top["grants"], "grants") {
		d.grant(g)
	}
	for _, l := range d.seq(top["locks"], "locks") {
		d.lock(l)
	}
	d.references()
	d.cycles()
	if len(d.probs) > 0 {
		return f, d.probs
	}
	return f, nil
}

// decoder walks a file's YAML nodes, collecting problems as it goes.
type decoder struct {
	f     *File
	probs Problems
	refs  []reference
}

// reference is a name the file uses, checked once everything is read.
type reference struct {
	kind string // "folder", "user" or "right"
	id   string
	what string // what uses it, for the message
	pos  Pos
}

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Column: n.Column} }

// yamlErrorPos finds "line N" in a YAML syntax error.
func yamlErrorPos(err error) Pos {
	var line int
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i:], "line %d", &line)
	}
	return Pos{Line: max(line, 1), Column: 1}
}

func (d *decoder) at(n *yaml.Node, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.f.Name, Pos: posOf(n), Msg: fmt.Sprintf(format, args...)})
}

// fields reads a mapping whose keys must be among allowed, reporting any
// other key, a repeated key, or a node that is not a mapping.
func (d *decoder) fields(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		d.at(n, "%s: want a mapping of %s", what, strings.Join(allowed, ", "))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case !slices.Contains(allowed, k.Value):
			d.at(k, "%s: unknown field %q (known: %s)", what, k.Value, strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			d.at(k, "%s: field %q given twice", what, k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

// seq reads a sequence (an absent one is empty).
func (d *decoder) seq(n *yaml.Node, what string) []*yaml.Node {
	if n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.at(n, "%s: want a list", what)
		return nil
	}
	return n.Content
}

// str reads a scalar as a string ("" when n is nil).
func (d *decoder) str(n *yaml.Node, what string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.at(n, "%s: want a single value", what)
		return ""
	}
	return n.Value
}

// strs reads a list of scalars; a single scalar is a list of one.
func (d *decoder) strs(n *yaml.Node, what string) []string {
	if n != nil && n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	var out []string
	for _, e := range d.seq(n, what) {
		if s := d.str(e, what); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// id reads a required id and records where the entity is, refusing a
// second entity of the kind with the same id.
func (d *decoder) id(n *yaml.Node, fields map[string]*yaml.Node, kind, what string) (string, bool) {
	v := fields["id"]
	if kind == "right" {
		v = fields["name"]
	}
	s := d.str(v, what+" id")
	if s == "" {
		d.at(n, "%s: an id is required", what)
		return "", false
	}
	k := key{kind, s}
	if p, dup := d.f.pos[k]; dup {
		d.at(v, "%s %q is defined twice (first at line %d)", kind, s, p.Line)
		return s, false
	}
	d.f.pos[k] = posOf(n)
	return s, true
}

func (d *decoder) refer(kind, id, what string, n *yaml.Node) {
	d.refs = append(d.refs, reference{kind: kind, id: id, what: what, pos: posOf(n)})
}

// ref reads folder/ID or user/ID.
func (d *decoder) ref(n *yaml.Node, what string) graph.Ref {
	s := d.str(n, what)
	kind, id, ok := strings.Cut(s, "/")
	if ok && id != "" && (kind == "folder" || kind == "user") {
		d.refer(kind, id, what, n)
		if kind == "folder" {
			return graph.FolderRef(id)
		}
		return graph.UserRef(id)
	}
	d.at(n, "%s %q: want folder/ID or user/ID", what, s)
	return graph.Ref{}
}

// rightsOf reads a list of rights and notes each as used.
func (d *decoder) rightsOf(n *yaml.Node, what string) []string {
	out := d.strs(n, what)
	for i, r := range out {
		at := n
		if n.Kind == yaml.SequenceNode && i < len(n.Content) {
			at = n.Content[i]
		}
		d.refer("right", r, what, at)
	}
	return out
}

func (d *decoder) right(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		if id, ok := d.id(n, map[string]*yaml.Node{"name": n}, "right", "right"); ok {
			d.f.Rights = append(d.f.Rights, graph.Right{Name: id})
		}
		return
	}
	fs := d.fields(n, "right", "name", "implies")
	id, ok := d.id(n, fs, "right", "right")
	r := graph.Right{Name: id}
	if fs["implies"] != nil {
		r.Implies = d.rightsOf(fs["implies"], "right "+id+": implies")
	}
	if ok {
		d.f.Rights = append(d.f.Rights, r)
	}
}

func (d *decoder) folder(n *yaml.Node, parent string) {
	fs := d.fields(n, "folder", "id", "name", "labels", "admits", "folders")
	id, ok := d.id(n, fs, "folder", "folder")
	x := Folder{Folder: graph.Folder{ID: id, Name: d.str(fs["name"], "folder "+id+": name"), Parent: parent}}
	if l := fs["labels"]; l != nil {
		if l.Kind != yaml.MappingNode {
			d.at(l, "folder %s: labels: want a mapping of key: value", id)
		} else {
			x.Labels = map[string]string{}
			for i := 0; i+1 < len(l.Content); i += 2 {
				x.Labels[d.str(l.Content[i], "label")] = d.str(l.Content[i+1], "label value")
			}
		}
	}
	if fs["admits"] != nil {
		x.Admits = d.strs(fs["admits"], "folder "+id+": admits")
		if len(x.Admits) == 0 {
			d.at(fs["admits"], "folder %s: admits: name at least one class (leave it out to admit every class)", id)
		}
	}
	if ok {
		d.f.Folders = append(d.f.Folders, x)
	}
	for _, c := range d.seq(fs["folders"], "folder "+id+": folders") {
		d.folder(c, id)
	}
}

func (d *decoder) user(n *yaml.Node) {
	fs := d.fields(n, "user", "id", "name", "class", "home", "extra_groups", "state", "active_until")
	id, ok := d.id(n, fs, "user", "user")
	u := graph.User{ID: id, Name: d.str(fs["name"], "user "+id+": name"), Class: d.str(fs["class"], "user "+id+": class"),
		Home: d.str(fs["home"], "user "+id+": home"), State: graph.StateActive}
	if u.Class == "" {
		d.at(n, "user %s: a class is required", id)
	}
	if u.Home == "" {
		d.at(n, "user %s: a home folder is required", id)
	} else {
		d.refer("folder", u.Home, "user "+id+": home", fs["home"])
	}
	if e := fs["extra_groups"]; e != nil {
		u.Extras = d.strs(e, "user "+id+": extra_groups")
		for i, g := range u.Extras {
			at := e
			if e.Kind == yaml.SequenceNode {
				at = e.Content[i]
			}
			d.refer("folder", g, "user "+id+": extra group", at)
		}
		slices.Sort(u.Extras)
	}
	if s := fs["state"]; s != nil {
		switch st := graph.State(d.str(s, "state")); st {
		case graph.StateActive, graph.StateDisabled, graph.StateArchived:
			u.State = st
		default:
			d.at(s, "user %s: state %q: want active, disabled or archived", id, st)
		}
	}
	if e := fs["active_until"]; e != nil {
		u.ActiveUntil = d.when(e, "user", id, "active_until")
		if u.State != graph.StateActive {
			d.at(e, "user %s: active_until: only an active user may have it, not a %s one", id, u.State)
		}
	}
	if ok {
		d.f.Users = append(d.f.Users, u)
	}
}

func (d *decoder) grant(n *yaml.Node) {
	fs := d.fields(n, "grant", "id", "holder", "target", "rights", "starts_at", "expires_at", "reason")
	id, ok := d.id(n, fs, "grant", "grant")
	g := graph.Grant{ID: id, Reason: d.str(fs["reason"], "grant "+id+": reason")}
	if fs["holder"] == nil {
		d.at(n, "grant %s: a holder (folder/ID or user/ID) is required", id)
	} else {
		g.Holder = d.ref(fs["holder"], "grant "+id+": holder")
	}
	if fs["target"] != nil {
		g.Target = d.ref(fs["target"], "grant "+id+": target")
	}
	if fs["rights"] == nil {
		d.at(n, "grant %s: rights are required", id)
	} else {
		g.Rights = d.rightsOf(fs["rights"], "grant "+id+": rights")
		if len(g.Rights) == 0 {
			d.at(fs["rights"], "grant %s: name at least one right", id)
		}
	}
	if e := fs["expires_at"]; e != nil {
		g.ExpiresAt = d.when(e, "grant", id, "expires_at")
	}
	if e := fs["starts_at"]; e != nil {
		g.StartsAt = d.when(e, "grant", id, "starts_at")
		if !g.ExpiresAt.IsZero() && !g.StartsAt.Before(g.ExpiresAt) {
			d.at(e, "grant %s: starts_at %s is not before expires_at", id, e.Value)
		}
	}
	if ok {
		d.f.Grants = append(d.f.Grants, g)
	}
}

// when reads a time field of the kind's record id, in RFC 3339.
func (d *decoder) when(e *yaml.Node, kind, id, field string) time.Time {
	t, err := time.Parse(time.RFC3339, d.str(e, field))
	if err != nil {
		d.at(e, "%s %s: %s %q: want an RFC 3339 time such as 2026-03-06T17:00:00Z", kind, id, field, e.Value)
	}
	return t.UTC()
}

func (d *decoder) lock(n *yaml.Node) {
	fs := d.fields(n, "lock", "id", "target", "rights", "reason")
	id, ok := d.id(n, fs, "lock", "lock")
	l := graph.Lock{ID: id, Reason: d.str(fs["reason"], "lock "+id+": reason")}
	if fs["target"] == nil {
		d.at(n, "lock %s: a target (folder/ID or user/ID) is required", id)
	} else {
		l.Target = d.ref(fs["target"], "lock "+id+": target")
	}
	if fs["rights"] != nil {
		l.Rights = d.rightsOf(fs["rights"], "lock "+id+": rights")
	}
	if len(l.Rights) == 0 {
		l.Rights = slices.Clone(graph.DefaultLockRights)
	}
	if ok {
		d.f.Locks = append(d.f.Locks, l)
	}
}

// references reports every folder, user and right the file names but does
// not define. Rights are checked only when the file has a rights section:
// without one it leaves the catalogue to the server.
func (d *decoder) references() {
	for _, r := range d.refs {
		if r.kind == "right" && !d.f.ManagesRights {
			continue
		}
		if _, ok := d.f.pos[key{r.kind, r.id}]; !ok {
			what := map[string]string{"folder": "a folder", "user": "a user", "right": "a right"}[r.kind]
			d.probs = append(d.probs, Problem{File: d.f.Name, Pos: r.pos, Msg: fmt.Sprintf("%s: %q is not %s of this file", r.what, r.id, what)})
		}
	}
}

// cycles reports each right of the file that implies itself, through any
// chain of implications.
func (d *decoder) cycles() {
	implies := map[string][]string{}
	for _, r := range d.f.Rights {
		implies[r.Name] = r.Implies
	}
	for _, r := range d.f.Rights {
		seen := map[string]bool{}
		next := slices.Clone(r.Implies)
		for len(next) > 0 {
			x := next[len(next)-1]
			next = next[:len(next)-1]
			if x == r.Name {
				d.probs = append(d.probs, d.f.problem("right", r.Name, "right %s implies itself through its implications", r.Name))
				break
			}
			if !seen[x] {
				seen[x] = true
				next = append(next, implies[x]...)
			}
		}
	}
}
