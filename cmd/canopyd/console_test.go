package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/scenario"
	"github.com/canopy-authz/canopy/server"
)

// consoleE2E is the folder of the browser test's script and its
// playwright-core (npm ci there installs it).
const consoleE2E = "../../server/console/e2e"

// browserTools returns node and chromium, or says what is missing. With
// CANOPY_BROWSER_TESTS set (CI sets it), a missing tool fails the test
// rather than skipping it.
func browserTools(t *testing.T) (node, chromium string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CANOPY_BROWSER_TESTS") != "" {
			t.Fatalf("%s is missing, and CANOPY_BROWSER_TESTS asks for the browser tests", what)
		}
		t.Skipf("%s is missing: the browser test needs node, Debian's chromium and npm ci in %s", what, consoleE2E)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing(chromium)
	}
	if _, err := os.Stat(filepath.Join(consoleE2E, "node_modules", "playwright-core")); err != nil {
		missing("playwright-core (npm ci --prefix server/console/e2e)")
	}
	return node, chromium
}

// TestConsoleInABrowser drives the web console in headless Chromium
// against a real canopyd loaded with the ATLAS example and the Aptem
// provider before the visit: the tree renders with its counts, a click
// opens a user with the access drawn over the tree, an explanation
// appears as a chain, the inspector's grant is previewed (the sampled
// learners) and given, and a change written elsewhere arrives in the live
// feed and the audit trail. CANOPY_UPDATE_SCREENSHOTS=1 writes the
// screenshots of docs/console.md.
func TestConsoleInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary and a browser")
	}
	node, chromium := browserTools(t)
	d := startDaemon(t, buildCanopyd(t), t.TempDir(), "--example", "atlas", "--console-listen", "127.0.0.1:0")
	if d.Console == "" {
		t.Fatal("canopyd did not say where it serves the console")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := pb.NewDirectoryServiceClient(d.conn)
	write := func(muts ...graph.Mutation) {
		t.Helper()
		var ms []*pb.Mutation
		for _, m := range muts {
			ms = append(ms, server.MutationToPB(m))
		}
		if _, err := dir.Write(ctx, &pb.WriteRequest{Mutations: ms}); err != nil {
			t.Fatal(err)
		}
	}
	aptem, err := scenario.Example("aptem")
	if err != nil {
		t.Fatal(err)
	}
	write(aptem.Steps[0].Write...)
	write(graph.Mutation{CreateUser: &graph.User{ID: "inspector", Class: "external", Home: "external"}},
		graph.Mutation{AddExtraGroup: &graph.Membership{User: "lea", Folder: "ofsted"}},
		graph.Mutation{AddExtraGroup: &graph.Membership{User: "lucy", Folder: "ofsted"}},
		// Next term tom may assign tests in IT1; not yet.
		graph.Mutation{AddGrant: &graph.Grant{ID: "tom-next-term", Holder: graph.UserRef("tom"), Target: graph.FolderRef("it1"), Rights: []string{"assign"}, StartsAt: time.Now().Add(7 * 24 * time.Hour)}})
	// The page's files come from the binary, with a policy that keeps
	// everything on its origin.
	resp, err := http.Get("http://" + d.Console + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Canopy console") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("the console's page: %d %q, %s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"), page)
	}

	args := []string{"http://" + d.Console + "/"}
	if os.Getenv("CANOPY_UPDATE_SCREENSHOTS") != "" {
		shots, err := filepath.Abs("../../docs/console")
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, shots)
	}
	runBrowser(t, ctx, node, chromium, nil, args, func() {
		write(graph.Mutation{CreateFolder: &graph.Folder{ID: "live-folder", Parent: "acme"}})
	})

	// A token that may read and check, not write: the console offers no
	// write.
	tokens := writeTokens(t, tokenEntry("reader", "reader-token", "read", "check"))
	ro := startDaemon(t, buildCanopyd(t), t.TempDir(), "--example", "atlas", "--console-listen", "127.0.0.1:0", "--tokens", tokens)
	runBrowser(t, ctx, node, chromium, []string{"READ_ONLY_TOKEN=reader-token"}, []string{"http://" + ro.Console + "/"}, nil)
}

// runBrowser runs the browser script with args and the extra environment,
// calling change when it waits for one, and fails the test unless it
// ends saying ok.
func runBrowser(t *testing.T, ctx context.Context, node, chromium string, env, args []string, change func()) {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{"console.test.mjs"}, args...)...)
	cmd.Dir = consoleE2E
	cmd.Env = append(append(os.Environ(), "CHROMIUM="+chromium), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ok := false
	for sc := bufio.NewScanner(out); sc.Scan(); {
		switch sc.Text() {
		case "waiting for a change":
			if change != nil {
				change()
			}
		case "ok":
			ok = true
		}
	}
	if err := cmd.Wait(); err != nil || !ok {
		t.Fatalf("the browser test %v: %v\n%s", env, err, stderr.String())
	}
}
