package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
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
			s, err := exportSnapshot(ctx, cl, a.read())
			if err != nil {
				return err
			}
			roots := s.children[""]
			if len(args) == 1 {
				if s.folders[args[0]] == nil {
					return fmt.Errorf("folders tree: no folder %q", args[0])
				}
				roots = []string{args[0]}
			}
			out := treeOut{Revision: s.revision}
			for _, r := range roots {
				out.Folders = append(out.Folders, s.node(r, depth))
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

// node builds the tree below folder id, down to depth levels (0: all).
func (s *snapshot) node(id string, depth int) *treeNode {
	f := s.folders[id]
	n := &treeNode{ID: id, Name: f.GetName(), Users: len(s.placed[id]), Classes: s.rules[id]}
	for _, g := range s.grants {
		if namesFolder(g.GetHolder(), id) || namesFolder(g.GetTarget(), id) {
			n.Grants++
		}
	}
	for _, l := range s.locks {
		if namesFolder(l.GetTarget(), id) {
			n.Locks++
		}
	}
	if depth != 1 {
		for _, c := range s.children[id] {
			n.Children = append(n.Children, s.node(c, max(depth-1, 0)))
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
