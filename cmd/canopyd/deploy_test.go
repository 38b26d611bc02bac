package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// The deployment files of examples/deploy.
const (
	unitFile      = "../../examples/deploy/canopyd.service"
	containerFile = "../../examples/deploy/Containerfile"
	dashboardFile = "../../examples/deploy/grafana-dashboard.json"
)

// flagWords are the flags a deployment file passes canopyd.
var flagWords = regexp.MustCompile(`--[a-z][a-z-]+`)

// TestDeploymentFlags: every flag the systemd unit and the container file
// pass canopyd is one of its flags.
func TestDeploymentFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	help, _ := exec.Command(buildCanopyd(t), "--help").CombinedOutput()
	for _, path := range []string{unitFile, containerFile} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, f := range flagWords.FindAllString(line, -1) {
				if f == "--from" || !strings.Contains(line, "canopyd") && !strings.HasPrefix(strings.TrimSpace(line), "--") {
					continue // a docker flag, not canopyd's
				}
				if !regexp.MustCompile(`(?m)^  -` + strings.TrimPrefix(f, "--") + `( |$)`).Match(help) {
					t.Errorf("%s passes %s, which canopyd does not have", filepath.Base(path), f)
				}
			}
		}
	}
}

// TestSystemdUnit: systemd-analyze verify finds nothing wrong with the
// unit (its ExecStart pointed at a freshly built canopyd). It is skipped
// where systemd-analyze is not installed.
func TestSystemdUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	raw, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "canopyd.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(raw), "/usr/local/bin/canopyd", buildCanopyd(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// metricNames finds the metrics a PromQL expression reads.
var metricNames = regexp.MustCompile(`\b(?:canopy|grpc_server|go|process)_[a-z_]+\b`)

// TestDashboardMetricsExist: every metric the Grafana dashboard queries
// is on a running canopyd's /metrics, once it has served a check, a
// write and a stream.
func TestDashboardMetricsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, buildCanopyd(t), t.TempDir(), "--example", "atlas")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := pb.NewAccessServiceClient(d.conn).Check(ctx, &pb.CheckRequest{User: "tom", Right: "edit", Resource: &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: "carl"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.NewDirectoryServiceClient(d.conn).Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "it4", Parent: "candidates"}}}}}); err != nil {
		t.Fatal(err)
	}
	s, err := pb.NewAccessServiceClient(d.conn).LookupResources(ctx, &pb.LookupResourcesRequest{User: "tom", Right: "read", Kind: pb.ObjectKind_OBJECT_KIND_USER})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := s.Recv(); err != nil {
			break
		}
	}
	metrics := scrape(t, "http://"+d.Metrics+"/metrics")
	queried := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, target := range p.Targets {
			for _, name := range metricNames.FindAllString(target.Expr, -1) {
				queried++
				if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).MatchString(metrics) {
					t.Errorf("panel %q queries %s, which /metrics lacks", p.Title, name)
				}
			}
		}
	}
	if queried < 20 {
		t.Fatalf("the dashboard queries only %d metrics", queried)
	}
}
