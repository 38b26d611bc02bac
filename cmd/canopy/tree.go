package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/orgfile"
)

// treeNode is one folder of a drawn tree, with what is attached to it; its
// JSON uses the API's field names.
type treeNode struct {
	ID       string      `json:"id"`
	Name     string      `json:"name,omitempty"`
	Users    int         `json:"users"`
	Grants   int         `json:"grants"`
	Locks    int         `json:"locks"`
	Classes  []string    `json:"placement_rule_classes,omitempty"`
	Children []*treeNode `json:"children,omitempty"`
}

// treeOut is the JSON of a drawn tree.
type treeOut struct {
	Revision uint64      `json:"revision,string"`
	Folders  []*treeNode `json:"folders"`
}

func (a *app) treeCommand() *cobra.Command {
	var depth int
	cmd := &cobra.Command{
		Use:   "tree [ROOT]",
		Short: "Draw the folder tree below ROOT (no root: every organisation) with its counts",
		Long: `Draws the folders as a tree. Each folder shows its name, the users
placed in it (home or extra group), the grants held by it or aimed at it,
the locks on it, and the classes its placement rule admits.`,
		Example: `  canopy folders tree acme
  canopy folders tree --depth 2 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, err := a.call(cmd)
			if err != nil {
				return err
			}
			f, rev, err := serverFile(ctx, cl, a.read())
			if err != nil {
				return err
			}
			c := newCounts(f)
			roots := c.children[""]
			if len(args) == 1 {
				x, ok := c.folders[args[0]]
				if !ok {
					return fmt.Errorf("folders tree: no folder %q", args[0])
				}
				roots = []orgfile.Folder{x}
			}
			out := treeOut{Revision: rev}
			for _, r := range roots {
				out.Folders = append(out.Folders, c.node(r, depth))
			}
			return a.emit(out, func(w io.Writer) error {
				for _, n := range out.Folders {
					drawTree(w, n, "", "")
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&depth, "depth", 0, "levels below the root to draw (0: all)")
	return cmd
}

// counts is what a drawn tree shows of a state, counted once: each
// folder's children (by id, as the file orders them), and the users, grants
// and locks at each folder.
type counts struct {
	folders              map[string]orgfile.Folder
	children             map[string][]orgfile.Folder // parent ("" for the roots) -> children
	users, grants, locks map[string]int
}

func newCounts(f *orgfile.File) *counts {
	c := &counts{folders: map[string]orgfile.Folder{}, children: map[string][]orgfile.Folder{},
		users: map[string]int{}, grants: map[string]int{}, locks: map[string]int{}}
	for _, x := range f.Folders {
		c.folders[x.ID] = x
		c.children[x.Parent] = append(c.children[x.Parent], x)
	}
	for _, u := range f.Users {
		for _, g := range append([]string{u.Home}, u.Extras...) {
			c.users[g]++
		}
	}
	for _, g := range f.Grants {
		if g.Holder.Kind == graph.KindFolder {
			c.grants[g.Holder.ID]++
		}
		if g.Target.Kind == graph.KindFolder && g.Target != g.Holder {
			c.grants[g.Target.ID]++
		}
	}
	for _, l := range f.Locks {
		if l.Target.Kind == graph.KindFolder {
			c.locks[l.Target.ID]++
		}
	}
	return c
}

// node builds the tree below folder x, down to depth levels (0: all).
func (c *counts) node(x orgfile.Folder, depth int) *treeNode {
	n := &treeNode{ID: x.ID, Name: x.Name, Users: c.users[x.ID], Grants: c.grants[x.ID], Locks: c.locks[x.ID], Classes: x.Admits}
	if depth != 1 {
		for _, k := range c.children[x.ID] {
			n.Children = append(n.Children, c.node(k, max(depth-1, 0)))
		}
	}
	return n
}

// drawTree writes n and its children with box-drawing branches.
func drawTree(w io.Writer, n *treeNode, lead, childLead string) {
	var facts []string
	if n.Name != "" && n.Name != n.ID {
		facts = append(facts, fmt.Sprintf("%q", n.Name))
	}
	plural := func(k int, word string) {
		if k > 0 {
			if k > 1 {
				word += "s"
			}
			facts = append(facts, fmt.Sprintf("%d %s", k, word))
		}
	}
	plural(n.Users, "user")
	plural(n.Grants, "grant")
	plural(n.Locks, "lock")
	if len(n.Classes) > 0 {
		facts = append(facts, "admits "+strings.Join(n.Classes, ","))
	}
	line := lead + n.ID
	if len(facts) > 0 {
		line += "  " + strings.Join(facts, " · ")
	}
	fmt.Fprintln(w, line)
	for i, c := range n.Children {
		if i == len(n.Children)-1 {
			drawTree(w, c, childLead+"└── ", childLead+"    ")
		} else {
			drawTree(w, c, childLead+"├── ", childLead+"│   ")
		}
	}
}
