package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-authz/canopy/server/servertest"
)

// TestSmallRun runs the whole load generator on a tiny organisation.
func TestSmallRun(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-scale", "0.002", "-checks", "200", "-duration", "200ms", "-callers", "2", "-batch", "50"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"organisation: 200 folders, 2000 users", "Check, one caller, 200 calls: median", "BatchCheck, 2 callers x 50 checks"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestSmallWatchRun runs the change-stream load on a tiny organisation.
func TestSmallWatchRun(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-watch", "-scale", "0.002", "-duration", "400ms", "-watchers", "20", "-access-watchers", "5", "-write-rate", "50"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Watch, 20 subscribers, commit to delivery:", "WatchAccess, 5 subscribers,", "writer throughput, 32 writers, rounds ABC CBA (writes/s):", "with one reading subscriber", "with one stalled subscriber"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestWatchRunElsewhere runs the change-stream load against a server it
// did not start (-addr), with readers that decode only revision and commit
// time (-light): latency then counts from each response's commit time.
func TestWatchRunElsewhere(t *testing.T) {
	p, err := startInProcess(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	var out bytes.Buffer
	err = run([]string{"-watch", "-addr", p.addr, "-light", "-scale", "0.002", "-duration", "400ms", "-watchers", "20", "-access-watchers", "5", "-write-rate", "50"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "Watch, 20 subscribers, commit to delivery: ") || strings.Contains(s, "no deliveries") {
		t.Errorf("no timed deliveries:\n%s", s)
	}
}

// TestWatchRunFrames runs the change-stream load with readers that read
// the streams straight off HTTP/2 frames (-frames), recording a trace and
// a CPU profile of the paced writes.
func TestWatchRunFrames(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	tr, prof := filepath.Join(dir, "trace.out"), filepath.Join(dir, "cpu.prof")
	err := run([]string{"-watch", "-frames", "-trace", tr, "-cpuprofile", prof, "-scale", "0.002", "-duration", "400ms", "-watchers", "20", "-access-watchers", "5", "-write-rate", "50"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{tr, prof} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s: not written (%v)", f, err)
		}
	}
	s := out.String()
	for _, want := range []string{"Watch, 20 subscribers, commit to delivery: ", "WatchAccess, 5 subscribers,"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Watch, 20 subscribers, commit to delivery: no deliveries") {
		t.Errorf("no timed deliveries:\n%s", s)
	}
}

// TestMain serves the empty handler when -cost starts this test binary
// as its second server.
func TestMain(m *testing.M) {
	if os.Getenv(emptyRole) != "" {
		if err := serveEmpty(); err != nil {
			panic(err)
		}
		return
	}
	os.Exit(servertest.Main(m))
}

// TestCostRun measures a real canopyd binary against the empty handler
// on a tiny organisation, and profiles it.
func TestCostRun(t *testing.T) {
	bin := servertest.Build(t, "github.com/canopy-authz/canopy/cmd/canopyd")
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	var out bytes.Buffer
	if err := run([]string{"-cost", bin, "-scale", "0.002", "-duration", "600ms", "-cost-callers", "4", "-conns", "2", "-cpuprofile", prof}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"empty handler, 4 callers on 2 connections: ", "canopyd, 4 callers on 2 connections: ", "canopyd's processor time a Check, against the empty handler's: ", "canopyd's CPU profile of a further"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("no profile: %v", err)
	}
}
