package scenario_test

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"

	"github.com/canopy-authz/canopy/examples"
	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/scenario"
)

func TestParseCheck(t *testing.T) {
	good := map[string]scenario.Check{
		"alice edit user:carl -> allowed":       {User: "alice", Right: "edit", Resource: graph.UserRef("carl"), Want: graph.ReasonAllowed},
		"ian read folder:it1 -> no_grant":       {User: "ian", Right: "read", Resource: graph.FolderRef("it1"), Want: graph.ReasonNoGrant},
		"carl user_administrator - -> no_grant": {User: "carl", Right: "user_administrator", Want: graph.ReasonNoGrant},
		"  tom  read  user:x:y  ->  locked ":    {User: "tom", Right: "read", Resource: graph.UserRef("x:y"), Want: graph.ReasonLocked},
		"nobody read user:carl -> unknown_user": {User: "nobody", Right: "read", Resource: graph.UserRef("carl"), Want: graph.ReasonUnknownUser},
		"inspector read user:lea -> expired":    {User: "inspector", Right: "read", Resource: graph.UserRef("lea"), Want: graph.ReasonExpired},
		"tom read user:carl -> user_not_active": {User: "tom", Right: "read", Resource: graph.UserRef("carl"), Want: graph.ReasonNotActive},
	}
	for line, want := range good {
		got, err := scenario.ParseCheck(line)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", line, got, err, want)
		}
	}
	for _, line := range []string{"", "a b c", "a b folder:x => allowed", "a b group:x -> allowed", "a b user: -> allowed", "a b - -> maybe"} {
		if _, err := scenario.ParseCheck(line); err == nil {
			t.Errorf("%q: want an error", line)
		}
	}
}

func TestExamplesParse(t *testing.T) {
	names := scenario.Examples()
	if !reflect.DeepEqual(names, []string{"aptem", "atlas"}) {
		t.Fatalf("examples: %v", names)
	}
	if _, err := scenario.Example("nope"); err == nil || !strings.Contains(err.Error(), "aptem, atlas") {
		t.Fatalf("an unknown example: %v", err)
	}
	for _, name := range names {
		f, err := scenario.Example(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if f.Start.IsZero() || len(f.Steps) == 0 {
			t.Fatalf("%s: no start time or no steps", name)
		}
	}
	if _, err := scenario.Parse([]byte("name: x\nsteps:\n  - writ: []\n")); err == nil {
		t.Fatal("an unknown field must be refused")
	}
}

// FuzzParseCheck: a line either fails to parse or parses to a check that
// formats and parses back to itself.
func FuzzParseCheck(f *testing.F) {
	for _, s := range []string{"alice edit user:carl -> allowed", "carl candidate - -> no_grant", "a b folder:x -> locked", "a b c -> d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := scenario.ParseCheck(line)
		if err != nil {
			return
		}
		again, err := scenario.ParseCheck(c.String())
		if err != nil || again != c {
			t.Fatalf("%q parsed to %+v, which formats as %q and parses to %+v, %v", line, c, c.String(), again, err)
		}
	})
}

// FuzzParse: any input either parses or fails with an error, never a panic.
func FuzzParse(f *testing.F) {
	files, _ := fs.Glob(examples.Files, "*.yaml")
	for _, name := range files {
		data, _ := examples.Files.ReadFile(name)
		f.Add(data)
	}
	f.Add([]byte("steps: [{advance: 1h, checks: ['a b - -> allowed']}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		scenario.Parse(data)
	})
}
