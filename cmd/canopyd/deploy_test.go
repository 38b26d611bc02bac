package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server/servertest"
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

// TestContainerfile does what the container file says without a
// container engine (none runs here): it builds canopyd with the file's own
// build command, holds the result to the static base it is copied onto
// (no dynamic loader), and runs the file's ENTRYPOINT with its volume and
// tokens file in temporary folders and its ports on free loopback ones,
// then asks it for a decision over gRPC and over HTTP/JSON with a token.
// It also holds the build image's Go to go.mod's and the EXPOSE lines to
// the ports the entrypoint serves.
func TestContainerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	raw, err := os.ReadFile(containerFile)
	if err != nil {
		t.Fatal(err)
	}
	var build, entry, expose, image string
	for _, line := range strings.Split(string(raw), "\n") {
		switch word, rest, _ := strings.Cut(line, " "); word {
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		case "ENTRYPOINT":
			entry = rest
		case "EXPOSE":
			expose = rest
		case "FROM":
			if image == "" {
				image = rest
			}
		}
	}

	// The build image's Go is the one go.mod asks for.
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goLine == nil || !strings.Contains(image, "golang:"+string(goLine[1])+"-") {
		t.Errorf("the build image %q is not go.mod's Go %s", image, goLine[1])
	}

	// Its build command, run from the repository's root: VAR=value words,
	// then go build's arguments, with the output redirected here.
	words := strings.Fields(build)
	var env []string
	for len(words) > 0 && strings.Contains(words[0], "=") {
		env = append(env, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("the container file's build command: %q", build)
	}
	bin := filepath.Join(t.TempDir(), "canopyd")
	args := words[2:]
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = bin
		}
	}
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir, cmd.Env = "../..", append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", args, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the container's canopyd needs a dynamic loader, which distroless/static lacks")
		}
	}
	f.Close()

	// Its entrypoint, over temporary folders and free ports.
	var argv []string
	if err := json.Unmarshal([]byte(entry), &argv); err != nil || len(argv) == 0 || argv[0] != "/canopyd" {
		t.Fatalf("the entrypoint %q: %v", entry, err)
	}
	tokens := writeTokens(t, tokenEntry("ops", "ops-token", "admin"))
	var ports []string
	for i, a := range argv[1:] {
		switch {
		case a == "/data":
			argv[i+1] = t.TempDir()
		case a == "/etc/canopy/tokens.yaml":
			argv[i+1] = tokens
		case strings.HasPrefix(a, "0.0.0.0:"):
			ports = append(ports, strings.TrimPrefix(a, "0.0.0.0:"))
			argv[i+1] = "127.0.0.1:0"
		}
	}
	if got := strings.Fields(expose); !slices.Equal(got, ports) {
		t.Errorf("EXPOSE %v, but the entrypoint serves %v", got, ports)
	}
	launched, err := servertest.Launch(bin, true, append(argv[1:], "--metrics-listen", "127.0.0.1:0", "--example", "atlas")...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(launched.Kill)
	d := connect(t, launched)
	if d.HTTP == "" {
		t.Fatal("the entrypoint serves no HTTP/JSON")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	check := &pb.CheckRequest{User: "tom", Right: "edit", Resource: &pb.ObjectRef{Kind: pb.ObjectKind_OBJECT_KIND_USER, Id: "carl"}}
	if _, err := pb.NewAccessServiceClient(d.conn).Check(ctx, check); status.Code(err) != codes.Unauthenticated {
		t.Errorf("a check without a token: %v", err)
	}
	r, err := pb.NewAccessServiceClient(d.conn).Check(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer ops-token"), check)
	if err != nil || !r.GetAllowed() {
		t.Errorf("a check with the token: %v, %v", r, err)
	}
	code, body := callHTTP(t, d.HTTP, "POST", "/v1/check", "ops-token", `{"user":"tom","right":"edit","resource":{"kind":"OBJECT_KIND_USER","id":"carl"}}`)
	if code != 200 || !strings.Contains(body, `"allowed":true`) {
		t.Errorf("a check over HTTP/JSON: %d %s", code, body)
	}
}
