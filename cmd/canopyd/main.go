// Command canopyd is the Canopy policy decision service.
//
// Until the gRPC server lands it opens the store in the data folder (a
// bbolt file, created on first start), loads the ATLAS example of the seed
// documents into an empty store, and prints the example's decisions with
// the path that explains each, then exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/canopy-authz/canopy/examples"
	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/scenario"
	"github.com/canopy-authz/canopy/store"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "canopyd:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("canopyd", flag.ContinueOnError)
	data := fs.String("data", envOr("CANOPY_DATA", "data"), "data folder holding the bbolt file (env CANOPY_DATA)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := store.Open(*data, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	ix, err := graph.Open(context.Background(), graph.Options{Clock: graph.ClockFunc(time.Now), Journal: db})
	if err != nil {
		return err
	}
	defer ix.Close()
	st := ix.Stats()
	fmt.Fprintf(out, "canopyd: %s at revision %d: %d folders, %d users, %d grants, %d locks (loaded in %s)\n",
		db.Path(), st.Revision, st.Folders, st.Users, st.Grants, st.Locks, time.Since(start).Round(time.Microsecond))

	raw, err := examples.Files.ReadFile("atlas.yaml")
	if err != nil {
		return err
	}
	f, err := scenario.Parse(raw)
	if err != nil {
		return err
	}
	if st.Folders == 0 {
		if err := load(ix, f); err != nil {
			return err
		}
		fmt.Fprintf(out, "canopyd: loaded the ATLAS example, now at revision %d\n", ix.Revision())
	}
	fmt.Fprintln(out, "\nThe ATLAS example's first decisions:")
	for _, line := range f.Steps[0].Checks {
		c, err := scenario.ParseCheck(line)
		if err != nil {
			return err
		}
		ex, err := ix.Explain(c.User, c.Right, c.Resource)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-40s %s\n", strings.TrimSuffix(c.String(), " -> "+c.Want.String()), describe(ex))
	}
	fmt.Fprintln(out, "\n(The gRPC server arrives with the next issue; this run only demonstrates the engine and the store.)")
	return nil
}

// load writes the scenario's batches that it expects to be accepted. It
// leaves out what later steps change, so the decisions printed are those
// of the first step.
func load(ix *graph.Index, f *scenario.File) error {
	step := f.Steps[0]
	if _, err := ix.Write(context.Background(), "canopyd-demo", step.Write, graph.Preconditions{}); err != nil {
		return fmt.Errorf("load the ATLAS example: %w", err)
	}
	return nil
}

// describe renders an explanation for a person.
func describe(ex graph.Explanation) string {
	switch {
	case ex.Self:
		return "allowed: a self right on one's own record"
	case ex.Lock != nil:
		return fmt.Sprintf("denied: locked by %s on %v", ex.Lock.ID, ex.Lock.Target)
	case ex.Grant != nil:
		via := "held directly"
		if len(ex.HolderPath) > 0 {
			via = "as a member of " + strings.Join(ex.HolderPath, " < ")
		}
		target := "as a capability"
		if len(ex.TargetPath) > 0 {
			target = "over " + strings.Join(ex.TargetPath, " > ")
		} else if !ex.Grant.Target.IsZero() {
			target = "over " + ex.Grant.Target.String()
		}
		return fmt.Sprintf("%s: grant %s, %s, %s", ex.Reason, ex.Grant.ID, via, target)
	}
	return "denied: " + ex.Reason.String()
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
