package orgfile

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/canopy-authz/canopy/graph"
)

// Load builds a fresh in-memory index (the real one) and writes f into it
// as a server would into an empty store, mutation by mutation, so that
// every refusal is found, not only the first; each is reported as a
// Problem at the place of the entity it concerns. When f does not manage
// the catalogue, the rights it names beyond the defaults are added first,
// since the server it is meant for holds them. The index is returned even
// with problems (with what was accepted); Close it when done.
func Load(ctx context.Context, f *File, clock graph.Clock) (*graph.Index, error) {
	ix, err := graph.Open(ctx, graph.Options{Clock: clock})
	if err != nil {
		return nil, fmt.Errorf("orgfile: open an index: %w", err)
	}
	base, err := FromMutations(graph.Bootstrap())
	if err != nil {
		ix.Close()
		return nil, err
	}
	want := f
	if !f.ManagesRights {
		w := *f
		w.ManagesRights, w.Rights = true, slices.Clone(base.Rights)
		for _, r := range usedRights(f) {
			if !slices.ContainsFunc(w.Rights, func(x graph.Right) bool { return x.Name == r }) {
				w.Rights = append(w.Rights, graph.Right{Name: r})
			}
		}
		want = &w
	}
	var probs Problems
	for _, c := range Plan(base, want, true) {
		if _, err := ix.Write(ctx, "canopy validate", []graph.Mutation{c.Mutation}, graph.Preconditions{}); err != nil {
			kind, id := c.Kind, c.ID
			switch kind {
			case "extra_group": // "USER in FOLDER"
				user, _, _ := strings.Cut(id, " in ")
				kind, id = "user", user
			case "placement_rule":
				kind = "folder"
			}
			probs = append(probs, f.problem(kind, id, "%s %s: %v", kind, id, err))
		}
	}
	if len(probs) > 0 {
		return ix, probs
	}
	return ix, nil
}

// usedRights lists the rights f names anywhere.
func usedRights(f *File) []string {
	var out []string
	for _, g := range f.Grants {
		out = append(out, g.Rights...)
	}
	for _, l := range f.Locks {
		out = append(out, l.Rights...)
	}
	if f.SelfRights != nil {
		out = append(out, f.SelfRights.Rights...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
