package orgfile

import (
	"fmt"

	"github.com/canopy-authz/canopy/graph"
)

// File is an organisation file: the desired state of some organisations
// and, when present, of the rights catalogue and the self rights.
type File struct {
	// Name is where the file came from, for problems ("" for none).
	Name string
	// Rights is the catalogue; nil when the file does not manage it.
	Rights []graph.Right
	// ManagesRights is set when the file has a rights section, even an
	// empty one.
	ManagesRights bool
	// SelfRights is nil when the file does not manage the self rights.
	SelfRights *graph.SelfRights
	// Folders lists every folder, each parent before its children, roots
	// (organisations) with an empty Parent.
	Folders []Folder
	Users   []graph.User
	Grants  []graph.Grant
	Locks   []graph.Lock

	pos map[key]Pos // where each entity was written, when parsed
}

// Folder is a folder and the classes its placement rule admits (none: no
// rule).
type Folder struct {
	graph.Folder
	Admits []string
}

// Pos is a place in a file: 1-based line and column.
type Pos struct {
	Line, Column int
}

// key names an entity of a file for its position.
type key struct {
	kind string // "folder", "user", "grant", "lock", "right", "self_rights", "file"
	id   string
}

// Problem is one thing wrong with a file, where it is.
type Problem struct {
	File string
	Pos  Pos
	Msg  string
}

// String formats the problem as file:line:column: message.
func (p Problem) String() string {
	name := p.File
	if name == "" {
		name = "<input>"
	}
	return fmt.Sprintf("%s:%d:%d: %s", name, p.Pos.Line, p.Pos.Column, p.Msg)
}

// Problems is a list of problems as one error.
type Problems []Problem

// Error lists every problem, one a line.
func (ps Problems) Error() string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += "\n"
		}
		s += p.String()
	}
	return s
}

// PosOf returns where the entity of kind ("folder", "user", "grant",
// "lock", "right") with id was written, or the zero Pos.
func (f *File) PosOf(kind, id string) Pos { return f.pos[key{kind, id}] }

// problem makes a problem at the entity's place in f.
func (f *File) problem(kind, id, format string, args ...any) Problem {
	return Problem{File: f.Name, Pos: f.pos[key{kind, id}], Msg: fmt.Sprintf(format, args...)}
}
