package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/server/servertest"
)

func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }

// freeBlock returns a port p such that p to p+span are free on loopback
// at the moment.
func freeBlock(t *testing.T, span int) int {
	t.Helper()
	for base := 20000 + os.Getpid()%2000*10; base < 60000; base += 997 {
		ok := true
		for p := base; p <= base+span && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no block of free ports")
	return 0
}

// TestCluster starts the cluster and asks each node, at the loaded
// example's revision, the same question.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs binaries")
	}
	canopyd := servertest.Build(t, "github.com/canopy-authz/canopy/cmd/canopyd")
	bin := servertest.Build(t, "github.com/canopy-authz/canopy/cmd/canopycluster")
	base := freeBlock(t, 32)
	cmd := exec.Command(bin, "--canopyd", canopyd, "--data", t.TempDir(), "--etcd-port", fmt.Sprint(base), "--port", fmt.Sprint(base+10))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for ready := false; !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("canopycluster exited")
			}
			ready = strings.HasPrefix(l, "Ctrl-C")
		case <-time.After(time.Minute):
			t.Fatal("the cluster did not start within a minute")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 {
		conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", base+10+10*i), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		health, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatal(err)
		}
		for {
			h, err := health.Recv()
			if err != nil {
				t.Fatalf("node %d health: %v", i, err)
			}
			if h.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				break
			}
		}
		// Node 0 loads the example (revision 2) as it starts; the others
		// wait for it.
		r, err := pb.NewAccessServiceClient(conn).Check(ctx, &pb.CheckRequest{User: "tom", Right: "edit", Resource: server.RefToPB(graph.UserRef("carl")),
			Consistency: &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: 2}}})
		if err != nil || !r.GetAllowed() {
			t.Fatalf("node %d: %v, %v", i, r, err)
		}
	}
}
