package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/canopy-authz/canopy/client"
	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/scenario"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/server/servertest"
)

// daemon is a running canopyd with a connection to it.
type daemon struct {
	*servertest.Daemon
	conn *grpc.ClientConn
}

// TestMain builds each binary the tests run once (servertest.Main).
func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }

// buildCanopyd builds the binary for one test.
func buildCanopyd(t *testing.T) string {
	return servertest.Build(t, "github.com/canopy-authz/canopy/cmd/canopyd")
}

// startDaemon starts canopyd on free loopback ports, with extra flags,
// and connects to it.
func startDaemon(t *testing.T, bin, data string, extra ...string) *daemon {
	t.Helper()
	return connect(t, servertest.StartDaemon(t, bin, data, extra...))
}

// connect opens a gRPC connection to a running canopyd, closed when the
// test ends.
func connect(t *testing.T, d *servertest.Daemon) *daemon {
	t.Helper()
	conn, err := grpc.NewClient(d.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &daemon{Daemon: d, conn: conn}
}

// tokenEntry is one line of a tokens file: name, the SHA-256 of token,
// and its scopes.
func tokenEntry(name, token string, scopes ...string) string {
	sum := sha256.Sum256([]byte(token))
	return fmt.Sprintf("  - {name: %s, sha256: %s, scopes: [%s]}\n", name, hex.EncodeToString(sum[:]), strings.Join(scopes, ", "))
}

// writeTokens writes a tokens file of the entries (tokenEntry) and
// returns its path.
func writeTokens(t *testing.T, entries ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte("tokens:\n"+strings.Join(entries, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// callHTTP sends an HTTP request to addr (host:port) with a bearer token
// ("" for none) and returns the status and the body.
func callHTTP(t *testing.T, addr, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *daemon) stop(t *testing.T) { d.Stop(t) }

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// answers checks every decision the ATLAS example's first step lists and
// returns them with their revision.
func answers(t *testing.T, ctx context.Context, acc pb.AccessServiceClient, f *scenario.File) []string {
	t.Helper()
	var out []string
	for _, line := range f.Steps[0].Checks {
		c, _ := scenario.ParseCheck(line)
		r, err := acc.Check(ctx, &pb.CheckRequest{User: c.User, Right: c.Right, Resource: server.RefToPB(c.Resource),
			Consistency: &pb.Consistency{Requirement: &pb.Consistency_FullyConsistent{FullyConsistent: true}}})
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if r.GetAllowed() != (c.Want == graph.ReasonAllowed) {
			t.Errorf("%s: got %v", line, r)
		}
		out = append(out, fmt.Sprintf("%s => %v at %d", line, r.GetReason(), r.GetRevision()))
	}
	return out
}

// TestEndToEnd runs the real binary: load the ATLAS example through the
// API, check the seed's decisions, SIGTERM, restart, same answers at the
// same revision.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCanopyd(t)
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := scenario.Example("atlas")
	if err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t, bin, data)
	h, err := healthpb.NewHealthClient(d.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", h, err)
	}
	var muts []*pb.Mutation
	for _, m := range f.Steps[0].Write {
		muts = append(muts, server.MutationToPB(m))
	}
	w, err := pb.NewDirectoryServiceClient(d.conn).Write(ctx, &pb.WriteRequest{Mutations: muts})
	if err != nil {
		t.Fatal(err)
	}
	before := answers(t, ctx, pb.NewAccessServiceClient(d.conn), f)
	body := scrape(t, "http://"+d.Metrics+"/metrics")
	for _, want := range []string{
		`canopy_decisions_total{reason="allowed",right="edit"}`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="Check",grpc_service="canopy.v1.AccessService",grpc_type="unary"}`,
		"canopy_revision 2", "canopy_users 5", "canopy_bbolt_file_bytes", "canopy_commit_duration_seconds_count",
		"canopy_access_watched_users 0", "canopy_access_apply_seconds_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if got := scrape(t, "http://"+d.Metrics+"/readyz"); got != "ready\n" {
		t.Errorf("/readyz: %q", got)
	}
	d.stop(t)

	d2 := startDaemon(t, bin, data)
	after := answers(t, ctx, pb.NewAccessServiceClient(d2.conn), f)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("after restart:\n%v\nbefore:\n%v", after, before)
	}
	if len(before) == 0 || w.GetRevision() != 2 {
		t.Fatalf("write at revision %d, %d answers", w.GetRevision(), len(before))
	}
	d2.stop(t)
	if _, err := os.Stat(filepath.Join(data, "canopy.db")); err != nil {
		t.Fatal(err)
	}
}

// TestHelpAndVersion: --help prints the flags and exits 0; --version
// prints the version and exits 0, starting nothing.
func TestHelpAndVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCanopyd(t)
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-listen") {
		t.Fatalf("canopyd --help: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "--version", "--data", filepath.Join(t.TempDir(), "never")).Output()
	if err != nil || !strings.HasPrefix(string(out), "canopyd ") || !strings.Contains(string(out), "commit") {
		t.Fatalf("canopyd --version: %v\n%s", err, out)
	}
}

// TestHangUpReloadsTokens: SIGHUP reloads the tokens file without a
// restart: a removed token stops working at once, a new one works, and a
// broken file keeps the old set and says why in the log.
func TestHangUpReloadsTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCanopyd(t)
	tokensFile := filepath.Join(t.TempDir(), "tokens.yaml")
	rewriteTokens := func(text string) {
		t.Helper()
		if err := os.WriteFile(tokensFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewriteTokens("tokens:\n" + tokenEntry("old", "old-token", "check"))
	d := servertest.StartDaemon(t, bin, t.TempDir(), "--tokens", tokensFile)
	check := func(token string) error {
		c, err := client.Dial(d.Addr, client.WithToken(token), client.WithRetry(client.Retry{Attempts: 1}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = c.Check(ctx, "nobody", "read", nil)
		return err
	}
	hangUp := func(wantLog string) {
		t.Helper()
		if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		d.WaitLog(t, wantLog)
	}
	if err := check("old-token"); err != nil {
		t.Fatalf("old token before the reload: %v", err)
	}
	if err := check("new-token"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("new token before the reload: %v", err)
	}
	rewriteTokens("tokens:\n" + tokenEntry("new", "new-token", "check"))
	hangUp("reloaded tokens")
	if err := check("old-token"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("removed token after the reload: %v", err)
	}
	if err := check("new-token"); err != nil {
		t.Fatalf("new token after the reload: %v", err)
	}
	rewriteTokens("tokens: [{name: broken, sha256: nothex}]\n")
	hangUp("tokens not reloaded; the ones loaded before stay")
	if err := check("new-token"); err != nil {
		t.Fatalf("after a broken file: %v", err)
	}
	d.Stop(t)
}

// TestFullDisk: on a disk with no room left, a write fails with
// ResourceExhausted saying so, commits nothing and moves no revision;
// reads go on; the failure is counted; and once there is room again the
// next write goes through, with no restart. The disk is a small tmpfs,
// which needs root to mount (as CI and this project's machines are).
func TestFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	disk := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", disk).Run() })
	bin := buildCanopyd(t)
	d := startDaemon(t, bin, filepath.Join(disk, "data"))
	dir, acc := pb.NewDirectoryServiceClient(d.conn), pb.NewAccessServiceClient(d.conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	folders := func(prefix string, n int) *pb.WriteRequest {
		req := &pb.WriteRequest{}
		for i := range n {
			req.Mutations = append(req.Mutations, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprintf("%s%d", prefix, i), Name: strings.Repeat("n", 1000)}}})
		}
		return req
	}
	if _, err := dir.Write(ctx, folders("ok", 1)); err != nil {
		t.Fatal(err)
	}
	// Fill what is left of the disk.
	filler := filepath.Join(disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	before, err := acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "read"})
	if err != nil {
		t.Fatal(err)
	}
	var refused error
	committed := uint64(0) // writes that still found room
	for i := range 20 {
		if _, refused = dir.Write(ctx, folders(fmt.Sprintf("full%d-", i), 200)); refused != nil {
			break
		}
		committed++
	}
	if status.Code(refused) != codes.ResourceExhausted || !strings.Contains(refused.Error(), "no space left on device") {
		t.Fatalf("a write on a full disk: %v", refused)
	}
	after, err := acc.Check(ctx, &pb.CheckRequest{User: "nobody", Right: "read"})
	if err != nil {
		t.Fatalf("a read on a full disk: %v", err)
	}
	if after.GetRevision() != before.GetRevision()+committed {
		t.Errorf("the refused write moved the revision: %d, then %d after %d writes", before.GetRevision(), after.GetRevision(), committed)
	}
	if body := scrape(t, "http://"+d.Metrics+"/metrics"); !strings.Contains(body, "canopy_storage_errors_total") || strings.Contains(body, "canopy_storage_errors_total 0") {
		t.Errorf("the failure is not counted:\n%s", grepLines(body, "canopy_storage"))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	w, err := dir.Write(ctx, folders("again", 1))
	if err != nil {
		t.Fatalf("a write once there is room: %v", err)
	}
	if w.GetRevision() != after.GetRevision()+1 {
		t.Errorf("revision %d after the failures, the index at %d before them (%d at the start)", w.GetRevision(), after.GetRevision(), before.GetRevision())
	}
	d.stop(t)
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
