package scenario

import (
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/canopy-authz/canopy/examples"
)

// Examples returns the names of the seed examples ("aptem", "atlas").
func Examples() []string {
	files, _ := fs.Glob(examples.Files, "*.yaml") // the pattern is valid
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(f, ".yaml")
	}
	sort.Strings(names)
	return names
}

// Example parses the seed example called name.
func Example(name string) (*File, error) {
	raw, err := examples.Files.ReadFile(name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("scenario: no example %q (there are %s)", name, strings.Join(Examples(), ", "))
	}
	return Parse(raw)
}
