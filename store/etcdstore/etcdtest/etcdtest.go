// Package etcdtest starts real etcd members inside a test process
// (go.etcd.io/etcd/server/v3/embed) on loopback ports of their own, in a
// temporary folder, and stops them when the test ends.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Cluster is a running etcd cluster of one or more members.
type Cluster struct {
	tb      testing.TB
	members []*embed.Etcd
	cfgs    []*embed.Config
}

// Option changes the configuration of every member.
type Option func(*embed.Config)

// WithTLS serves clients over TLS with the certificate and key, and
// requires client certificates the CA signed.
func WithTLS(certFile, keyFile, caFile string) Option {
	return func(cfg *embed.Config) {
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile, ClientCertAuth: true}
		for _, us := range [][]url.URL{cfg.ListenClientUrls, cfg.AdvertiseClientUrls} {
			for i := range us {
				us[i].Scheme = "https"
			}
		}
	}
}

// Start starts a cluster of n members and waits until it has a leader.
func Start(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb}
	var initial []string
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = tb.TempDir()
		cu, pu := freeURL(tb), freeURL(tb)
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		initial = append(initial, cfg.Name+"="+pu.String())
		for _, o := range opts {
			o(cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	for _, cfg := range c.cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
	}
	c.members = make([]*embed.Etcd, n)
	started := make(chan error, n)
	for i := range n {
		go func() {
			e, err := embed.StartEtcd(c.cfgs[i])
			c.members[i] = e
			started <- err
		}()
	}
	for range n {
		if err := <-started; err != nil {
			tb.Fatalf("start etcd: %v", err)
		}
	}
	tb.Cleanup(c.stopAll)
	for i, e := range c.members {
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(60 * time.Second):
			tb.Fatalf("etcd member %d is not ready after a minute", i)
		}
	}
	return c
}

// freeURL returns an http URL on a loopback port free at the moment.
func freeURL(tb testing.TB) url.URL {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// Endpoints returns the client addresses of the members.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, cfg := range c.cfgs {
		out = append(out, cfg.ListenClientUrls[0].Host)
	}
	return out
}

// Client returns a client of every member, closed when the test ends.
func (c *Cluster) Client(tb testing.TB) *clientv3.Client {
	tb.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		tb.Fatalf("etcd client: %v", err)
	}
	tb.Cleanup(func() { cl.Close() })
	return cl
}

func (c *Cluster) stopAll() {
	for _, e := range c.members {
		if e != nil {
			e.Close()
		}
	}
}

// Stop stops member i, keeping its data for Restart.
func (c *Cluster) Stop(i int) {
	c.members[i].Close()
	<-c.members[i].Server.StopNotify()
	c.members[i] = nil
}

// Restart starts member i again over its data and waits until it serves.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	e, err := embed.StartEtcd(c.cfgs[i])
	if err != nil {
		c.tb.Fatalf("restart etcd member %d: %v", i, err)
	}
	c.members[i] = e
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		c.tb.Fatalf("etcd member %d is not ready a minute after its restart", i)
	}
}
