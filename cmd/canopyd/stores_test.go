package main

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/server/certtest"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
)

// TestEtcdTLSAndAuth: with --etcd-ca, --etcd-cert, --etcd-key,
// --etcd-user and --etcd-password-file, canopyd reaches an etcd that
// requires client certificates and authentication, and writes; without
// the password it is refused, saying why.
func TestEtcdTLSAndAuth(t *testing.T) {
	ca := certtest.New(t)
	srvCert, srvKey := ca.Issue(t, "etcd", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.Issue(t, "canopyd", x509.ExtKeyUsageClientAuth)
	cluster := etcdtest.Start(t, 1, etcdtest.WithTLS(srvCert, srvKey, ca.CAFile))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Turn etcd's authentication on, as its operator would.
	tc, err := (&transport.TLSInfo{CertFile: cliCert, KeyFile: cliKey, TrustedCAFile: ca.CAFile}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientv3.New(clientv3.Config{Endpoints: cluster.Endpoints(), TLS: tc, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-secret"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	password := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(password, []byte("root-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := storeConfig{kind: "etcd", endpoints: strings.Join(cluster.Endpoints(), ","), prefix: "/tls/", dialTimeout: 10 * time.Second,
		ca: ca.CAFile, cert: cliCert, key: cliKey, user: "root", passwordFile: password}
	st, err := openEtcd(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), st.journal)
	if _, err := ix.Write(ctx, "t", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "over-tls"}}}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}

	sc.passwordFile = ""
	if st, err := openEtcd(ctx, sc); err == nil {
		st.close()
		t.Fatal("etcd with authentication on was opened without a password")
	} else if !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("the refusal does not say what refused: %v", err)
	}
}
