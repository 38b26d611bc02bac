// Package scenario reads scenario files: a start time and a list of steps,
// each writing a batch (or expecting it refused), moving the clock, and
// listing the decisions expected afterwards. The files are YAML in the
// shape of graph.Mutation's JSON encoding, so they read like the change log.
package scenario

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/canopy-authz/canopy/graph"
)

// File is a parsed scenario.
type File struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	Steps []Step    `json:"steps"`
}

// Step is one step of a scenario, done in field order: advance the clock,
// write, then check.
type Step struct {
	Advance string           `json:"advance,omitempty"` // a time.ParseDuration string
	Write   []graph.Mutation `json:"write,omitempty"`
	// Error, when set, is the refusal expected for Write (see ErrorName).
	Error  string   `json:"error,omitempty"`
	Checks []string `json:"checks,omitempty"`
}

// Check is one expected decision: "user right resource -> reason".
type Check struct {
	User     string
	Right    string
	Resource graph.Ref
	Want     graph.Reason
}

// String formats the check as it is written in a file.
func (c Check) String() string {
	res := "-"
	if !c.Resource.IsZero() {
		res = c.Resource.String()
	}
	return fmt.Sprintf("%s %s %s -> %s", c.User, c.Right, res, c.Want)
}

// Parse reads a scenario file and every check line in it.
func Parse(data []byte) (*File, error) {
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	for i, s := range f.Steps {
		if s.Advance != "" {
			if _, err := time.ParseDuration(s.Advance); err != nil {
				return nil, fmt.Errorf("scenario %s step %d: advance: %w", f.Name, i, err)
			}
		}
		for _, line := range s.Checks {
			if _, err := ParseCheck(line); err != nil {
				return nil, fmt.Errorf("scenario %s step %d: %w", f.Name, i, err)
			}
		}
	}
	return &f, nil
}

// ParseCheck parses "user right resource -> reason", where resource is
// folder:ID, user:ID, or - for none (a capability).
func ParseCheck(line string) (Check, error) {
	f := strings.Fields(line)
	if len(f) != 5 || f[3] != "->" {
		return Check{}, fmt.Errorf("check %q: want \"user right resource -> reason\"", line)
	}
	c := Check{User: f[0], Right: f[1]}
	if f[2] != "-" {
		kind, id, ok := strings.Cut(f[2], ":")
		switch {
		case ok && kind == "folder" && id != "":
			c.Resource = graph.FolderRef(id)
		case ok && kind == "user" && id != "":
			c.Resource = graph.UserRef(id)
		default:
			return Check{}, fmt.Errorf("check %q: resource %q is not folder:ID, user:ID or -", line, f[2])
		}
	}
	for r := graph.ReasonAllowed; r <= graph.ReasonLocked; r++ {
		if r.String() == f[4] {
			c.Want = r
		}
	}
	if c.Want == 0 {
		return Check{}, fmt.Errorf("check %q: unknown reason %q", line, f[4])
	}
	return c, nil
}

// errorNames names the graph's sentinel errors for scenario files.
var errorNames = []struct {
	name string
	err  error
}{
	{"invalid", graph.ErrInvalid},
	{"not_found", graph.ErrNotFound},
	{"already_exists", graph.ErrAlreadyExists},
	{"cycle", graph.ErrCycle},
	{"cross_org", graph.ErrCrossOrg},
	{"not_empty", graph.ErrNotEmpty},
	{"placement", graph.ErrPlacement},
	{"unknown_right", graph.ErrUnknownRight},
	{"precondition", graph.ErrPrecondition},
}

// ErrorName returns the scenario name of the sentinel err wraps, or "".
func ErrorName(err error) string {
	for _, e := range errorNames {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return ""
}
