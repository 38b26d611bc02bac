package graph_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/scenario"
)

// updateGolden regenerates testdata/*.golden instead of comparing with it.
var updateGolden = os.Getenv("CANOPY_UPDATE_GOLDEN") != ""

// formatExplanation renders an explanation on one line, for golden files.
func formatExplanation(ex graph.Explanation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", ex.Reason)
	if ex.Self {
		b.WriteString(" self")
	}
	if ex.Grant != nil {
		fmt.Fprintf(&b, " grant=%s holder=%v via=%v target=%v path=%v", ex.Grant.ID, ex.Grant.Holder, ex.HolderPath, ex.Grant.Target, ex.TargetPath)
	}
	if ex.Lock != nil {
		fmt.Fprintf(&b, " lock=%s on=%v path=%v", ex.Lock.ID, ex.Lock.Target, ex.LockPath)
	}
	return b.String()
}

// runScenario replays a scenario file against ix, failing t on any
// unexpected decision or refusal, and returns the explanation of every
// check, one per line.
func runScenario(t *testing.T, f *scenario.File, ix *graph.Index, clock *graphtest.Clock) []string {
	t.Helper()
	var out []string
	for i, step := range f.Steps {
		if step.Advance != "" {
			d, _ := time.ParseDuration(step.Advance)
			clock.Advance(d)
		}
		if len(step.Write) > 0 {
			before, rev, err := ix.Records()
			if err != nil {
				t.Fatal(err)
			}
			_, err = ix.Write(context.Background(), "scenario", step.Write, graph.Preconditions{})
			if got := scenario.ErrorName(err); got != step.Error || (err != nil && step.Error == "") {
				t.Fatalf("%s step %d: write error %v, want %q", f.Name, i, err, step.Error)
			}
			if err != nil {
				after, rev2, _ := ix.Records()
				if rev2 != rev || !reflect.DeepEqual(before, after) {
					t.Fatalf("%s step %d: refused write changed the index", f.Name, i)
				}
				out = append(out, fmt.Sprintf("step %d refused: %v", i, err))
			}
		}
		for _, line := range step.Checks {
			c, err := scenario.ParseCheck(line)
			if err != nil {
				t.Fatal(err)
			}
			d, err := ix.Check(c.User, c.Right, c.Resource)
			if err != nil {
				t.Fatalf("%s step %d: %s: %v", f.Name, i, line, err)
			}
			if d.Reason != c.Want || d.Allowed != (c.Want == graph.ReasonAllowed) {
				t.Errorf("%s step %d: %s: got %s", f.Name, i, line, d.Reason)
			}
			ex, err := ix.Explain(c.User, c.Right, c.Resource)
			if err != nil || ex.Decision != d {
				t.Errorf("%s step %d: %s: explain %+v, %v disagrees with check %+v", f.Name, i, line, ex.Decision, err, d)
			}
			out = append(out, fmt.Sprintf("step %d %s: %s", i, c, formatExplanation(ex)))
		}
	}
	return out
}

func TestScenarios(t *testing.T) {
	names := scenario.Examples()
	if len(names) == 0 {
		t.Fatal("no scenario files")
	}
	for _, name := range names {
		t.Run(name+".yaml", func(t *testing.T) {
			f, err := scenario.Example(name)
			if err != nil {
				t.Fatal(err)
			}
			clock := graphtest.NewClock(f.Start)
			ix := graphtest.Open(t, clock, nil)
			got := strings.Join(runScenario(t, f, ix, clock), "\n") + "\n"
			golden := filepath.Join("testdata", name+".golden")
			if updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (regenerate with CANOPY_UPDATE_GOLDEN=1)", err)
			}
			if got != string(want) {
				t.Errorf("explanations differ from %s (regenerate with CANOPY_UPDATE_GOLDEN=1 and review the diff):\n%s", golden, got)
			}
		})
	}
}
