package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server/certtest"
)

// TestMutualTLS: with a client CA, a client with a certificate it signed
// gets through; one with none is refused at the handshake.
func TestMutualTLS(t *testing.T) {
	ca := certtest.New(t)
	srvCert, srvKey := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	client := ca.Client(t, "client")
	cfg, err := TLSConfig(srvCert, srvKey, ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	call := func(certs []tls.Certificate) error {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: certs})))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := call(client.Certificates); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	if err := call(nil); err == nil {
		t.Fatal("a client without a certificate got through")
	}
	if _, err := TLSConfig(srvCert, srvKey, srvKey); err == nil {
		t.Fatal("a client CA file with no certificate must be refused")
	}
}

// TestTLSReload: Reload takes new certificate files for the next
// handshakes; files that cannot be used leave the last good ones serving.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	install := func(ca *certtest.CA) {
		t.Helper()
		c, k := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
		for from, to := range map[string]string{c: certFile, k: keyFile} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	old, next := certtest.New(t), certtest.New(t)
	install(old)
	files, err := LoadTLS(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(files.Config())))
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	trusting := func(ca *certtest.CA) error {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool()})))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := trusting(old); err != nil {
		t.Fatalf("before the reload: %v", err)
	}
	install(next)
	if err := trusting(next); err == nil {
		t.Fatal("the new certificate served before the reload")
	}
	if err := files.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := trusting(next); err != nil {
		t.Fatalf("after the reload: %v", err)
	}
	if err := trusting(old); err == nil {
		t.Fatal("the old certificate still served after the reload")
	}
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := files.Reload(); err == nil {
		t.Fatal("a broken certificate file was taken")
	}
	if err := trusting(next); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
}

// TestActorIsAnIdentity: the change log records the token's name, else
// the client certificate's subject, else anonymous@ and the peer's host,
// never a port that changes with every connection.
func TestActorIsAnIdentity(t *testing.T) {
	ca := certtest.New(t)
	srvCert, srvKey := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	cfg, err := TLSConfig(srvCert, srvKey, ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t)
	srv, err := New(Options{Index: ts.ix, Log: ts.db, Hub: ts.hub, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(opts ...grpc.ServerOption) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer(append(srv.ServerOptions(), opts...)...)
		srv.Register(g)
		go g.Serve(lis)
		t.Cleanup(g.Stop)
		return lis.Addr().String()
	}
	plain, mutual := serve(), serve(grpc.Creds(credentials.NewTLS(cfg)))
	write := func(addr string, creds credentials.TransportCredentials, id string, md ...string) string {
		t.Helper()
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rev, err := pb.NewDirectoryServiceClient(conn).Write(metadata.AppendToOutgoingContext(ctxT(t), md...), &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id}}}}})
		if err != nil {
			t.Fatal(err)
		}
		commits, err := ts.db.ReadLog(rev.GetRevision(), 1)
		if err != nil || len(commits) != 1 {
			t.Fatalf("read the log: %v, %v", commits, err)
		}
		return commits[0].Actor
	}
	if got := write(plain, insecure.NewCredentials(), "a"); got != "anonymous@127.0.0.1" {
		t.Errorf("without a token or certificate: %q", got)
	}
	if got := write(mutual, credentials.NewTLS(ca.Client(t, "billing")), "b"); got != "CN=billing" {
		t.Errorf("with a client certificate: %q", got)
	}
	// Only the HTTP gateway's in-process connection may pass a subject on.
	if got := write(plain, insecure.NewCredentials(), "c", ClientSubjectKey, "CN=root"); got != "anonymous@127.0.0.1" {
		t.Errorf("a subject sent as metadata: %q", got)
	}
}
