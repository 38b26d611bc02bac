package orgfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/canopy-authz/canopy/graph"
)

// FromMutations reads a state given as the mutations that create it (an
// Export) into a File that manages all of it: every organisation, the
// catalogue and the self rights.
func FromMutations(muts []graph.Mutation) (*File, error) {
	f := &File{ManagesRights: true, SelfRights: &graph.SelfRights{Rights: []string{}}}
	folders := map[string]int{}
	users := map[string]int{}
	for i, m := range muts {
		switch {
		case m.PutRight != nil:
			f.Rights = append(f.Rights, *m.PutRight)
		case m.SetSelfRights != nil:
			f.SelfRights = &graph.SelfRights{Rights: slices.Clone(m.SetSelfRights.Rights)}
		case m.CreateFolder != nil:
			folders[m.CreateFolder.ID] = len(f.Folders)
			f.Folders = append(f.Folders, Folder{Folder: *m.CreateFolder})
		case m.SetRule != nil:
			k, ok := folders[m.SetRule.Folder]
			if !ok {
				return nil, fmt.Errorf("orgfile: mutation %d: placement rule of folder %q before the folder", i, m.SetRule.Folder)
			}
			f.Folders[k].Admits = slices.Clone(m.SetRule.Classes)
		case m.CreateUser != nil:
			users[m.CreateUser.ID] = len(f.Users)
			f.Users = append(f.Users, *m.CreateUser)
		case m.AddExtraGroup != nil:
			k, ok := users[m.AddExtraGroup.User]
			if !ok {
				return nil, fmt.Errorf("orgfile: mutation %d: extra group of user %q before the user", i, m.AddExtraGroup.User)
			}
			f.Users[k].Extras = append(f.Users[k].Extras, m.AddExtraGroup.Folder)
		case m.AddGrant != nil:
			f.Grants = append(f.Grants, *m.AddGrant)
		case m.AddLock != nil:
			f.Locks = append(f.Locks, *m.AddLock)
		default:
			return nil, fmt.Errorf("orgfile: mutation %d: %v is not part of a state", i, m)
		}
	}
	f.canonical()
	return f, nil
}

// canonical sorts everything into the order Render writes: folders depth
// first with children by id, everything else by id, every list of names
// sorted.
func (f *File) canonical() {
	children := map[string][]Folder{}
	for _, x := range f.Folders {
		x.Admits = slices.Sorted(slices.Values(x.Admits))
		children[x.Parent] = append(children[x.Parent], x)
	}
	var out []Folder
	var walk func(parent string)
	walk = func(parent string) {
		kids := children[parent]
		slices.SortFunc(kids, func(a, b Folder) int { return strings.Compare(a.ID, b.ID) })
		for _, k := range kids {
			out = append(out, k)
			walk(k.ID)
		}
	}
	walk("")
	f.Folders = out
	slices.SortFunc(f.Rights, func(a, b graph.Right) int { return strings.Compare(a.Name, b.Name) })
	for i := range f.Rights {
		slices.Sort(f.Rights[i].Implies)
	}
	if f.SelfRights != nil {
		slices.Sort(f.SelfRights.Rights)
	}
	slices.SortFunc(f.Users, func(a, b graph.User) int { return strings.Compare(a.ID, b.ID) })
	for i := range f.Users {
		slices.Sort(f.Users[i].Extras)
	}
	slices.SortFunc(f.Grants, func(a, b graph.Grant) int { return strings.Compare(a.ID, b.ID) })
	for i := range f.Grants {
		slices.Sort(f.Grants[i].Rights)
	}
	slices.SortFunc(f.Locks, func(a, b graph.Lock) int { return strings.Compare(a.ID, b.ID) })
	for i := range f.Locks {
		slices.Sort(f.Locks[i].Rights)
	}
}

// Render writes f as an organisation file in canonical form: the same
// state always gives the same bytes. It sorts f's lists in place.
func Render(f *File) []byte {
	f.canonical()
	var b bytes.Buffer
	b.WriteString("# A Canopy organisation file: see docs/organisation-file.md.\n")
	if f.ManagesRights {
		b.WriteString("rights:\n")
		for _, r := range f.Rights {
			if len(r.Implies) == 0 {
				fmt.Fprintf(&b, "  - %s\n", scalar(r.Name))
			} else {
				fmt.Fprintf(&b, "  - {name: %s, implies: %s}\n", scalar(r.Name), list(r.Implies))
			}
		}
	}
	if f.SelfRights != nil {
		fmt.Fprintf(&b, "self_rights: %s\n", list(f.SelfRights.Rights))
	}
	if len(f.Folders) > 0 {
		b.WriteString("organisations:\n")
		children := map[string][]Folder{}
		for _, x := range f.Folders {
			children[x.Parent] = append(children[x.Parent], x)
		}
		var walk func(parent, indent string)
		walk = func(parent, indent string) {
			for _, x := range children[parent] {
				fmt.Fprintf(&b, "%s- id: %s\n", indent, scalar(x.ID))
				if x.Name != "" {
					fmt.Fprintf(&b, "%s  name: %s\n", indent, scalar(x.Name))
				}
				if len(x.Labels) > 0 {
					var kv []string
					for _, k := range slices.Sorted(maps.Keys(x.Labels)) {
						kv = append(kv, scalar(k)+": "+scalar(x.Labels[k]))
					}
					fmt.Fprintf(&b, "%s  labels: {%s}\n", indent, strings.Join(kv, ", "))
				}
				if len(x.Admits) > 0 {
					fmt.Fprintf(&b, "%s  admits: %s\n", indent, list(x.Admits))
				}
				if len(children[x.ID]) > 0 {
					fmt.Fprintf(&b, "%s  folders:\n", indent)
					walk(x.ID, indent+"    ")
				}
			}
		}
		walk("", "  ")
	}
	if len(f.Users) > 0 {
		b.WriteString("users:\n")
		for _, u := range f.Users {
			parts := []string{"id: " + scalar(u.ID)}
			if u.Name != "" {
				parts = append(parts, "name: "+scalar(u.Name))
			}
			parts = append(parts, "class: "+scalar(u.Class), "home: "+scalar(u.Home))
			if len(u.Extras) > 0 {
				parts = append(parts, "extra_groups: "+list(u.Extras))
			}
			if u.State != "" && u.State != graph.StateActive {
				parts = append(parts, "state: "+string(u.State))
			}
			if !u.ActiveUntil.IsZero() {
				parts = append(parts, "active_until: "+scalar(u.ActiveUntil.UTC().Format(time.RFC3339Nano)))
			}
			fmt.Fprintf(&b, "  - {%s}\n", strings.Join(parts, ", "))
		}
	}
	if len(f.Grants) > 0 {
		b.WriteString("grants:\n")
		for _, g := range f.Grants {
			parts := []string{"id: " + scalar(g.ID), "holder: " + scalar(refWords(g.Holder))}
			if !g.Target.IsZero() {
				parts = append(parts, "target: "+scalar(refWords(g.Target)))
			}
			parts = append(parts, "rights: "+list(g.Rights))
			if !g.StartsAt.IsZero() {
				parts = append(parts, "starts_at: "+scalar(g.StartsAt.UTC().Format(time.RFC3339Nano)))
			}
			if !g.ExpiresAt.IsZero() {
				parts = append(parts, "expires_at: "+scalar(g.ExpiresAt.UTC().Format(time.RFC3339Nano)))
			}
			if g.Reason != "" {
				parts = append(parts, "reason: "+scalar(g.Reason))
			}
			fmt.Fprintf(&b, "  - {%s}\n", strings.Join(parts, ", "))
		}
	}
	if len(f.Locks) > 0 {
		b.WriteString("locks:\n")
		for _, l := range f.Locks {
			parts := []string{"id: " + scalar(l.ID), "target: " + scalar(refWords(l.Target)), "rights: " + list(l.Rights)}
			if l.Reason != "" {
				parts = append(parts, "reason: "+scalar(l.Reason))
			}
			fmt.Fprintf(&b, "  - {%s}\n", strings.Join(parts, ", "))
		}
	}
	return b.Bytes()
}

// plain is what may stand unquoted in a flow collection.
var plain = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_ ./@+()-]*$`)

// scalar writes s so that YAML reads it back as the same string: plain
// when that is unambiguous, else double-quoted (as JSON, which YAML reads).
func scalar(s string) string {
	if plain.MatchString(s) && !strings.HasSuffix(s, " ") {
		var back any
		if yaml.Unmarshal([]byte(s), &back) == nil && back == s {
			return s
		}
	}
	q, _ := json.Marshal(s) // a string always marshals
	return string(q)
}

// list writes names as a flow sequence.
func list(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = scalar(n)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// DropExpired removes the grants whose expiry is at or before now (and
// those the server has marked expired) and returns how many it removed.
// A file cannot hold them: a write refuses an expiry in the past.
func (f *File) DropExpired(now time.Time) int {
	n := len(f.Grants)
	f.Grants = slices.DeleteFunc(f.Grants, func(g graph.Grant) bool {
		return g.Expired || !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now)
	})
	return n - len(f.Grants)
}
