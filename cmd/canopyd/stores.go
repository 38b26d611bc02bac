package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/store"
	"github.com/canopy-authz/canopy/store/etcdstore"
)

// storeConfig chooses and reaches the store.
type storeConfig struct {
	kind          string
	endpoints     string
	prefix        string
	dialTimeout   time.Duration
	cert, key, ca string
	user          string
	passwordFile  string
	snapshotEvery uint64
}

func (s *storeConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.kind, "store", "bbolt", "where the state is kept: bbolt (a file in --data, one node) or etcd (shared by every node given the same --etcd-endpoints and --etcd-prefix)")
	fs.StringVar(&s.endpoints, "etcd-endpoints", "127.0.0.1:2379", "with --store etcd: the etcd members' client addresses, comma-separated")
	fs.StringVar(&s.prefix, "etcd-prefix", "/canopy/", "with --store etcd: the key prefix of this store (one etcd cluster may hold several)")
	fs.DurationVar(&s.dialTimeout, "etcd-dial-timeout", 10*time.Second, "with --store etcd: how long to wait for etcd at start")
	fs.StringVar(&s.cert, "etcd-cert", "", "with --store etcd: PEM client certificate for etcd (with --etcd-key)")
	fs.StringVar(&s.key, "etcd-key", "", "with --store etcd: PEM key of --etcd-cert")
	fs.StringVar(&s.ca, "etcd-ca", "", "with --store etcd: PEM CA bundle etcd's certificates must chain to (turns TLS on)")
	fs.StringVar(&s.user, "etcd-user", "", "with --store etcd: the etcd user to authenticate as (with --etcd-password-file)")
	fs.StringVar(&s.passwordFile, "etcd-password-file", "", "with --store etcd: a file holding --etcd-user's password")
	fs.Uint64Var(&s.snapshotEvery, "etcd-snapshot-every", 10_000, "with --store etcd: write a snapshot for starting nodes when the newest is this many revisions old")
}

// openedStore is the store canopyd serves from, whichever it is.
type openedStore struct {
	journal graph.Journal
	log     server.Log
	// audit answers History; nil when the store keeps no audit trail.
	audit server.Audit
	where string // for the log: the file, or etcd's endpoints and prefix
	// registerMetrics registers the store's own metrics.
	registerMetrics func(prometheus.Registerer)
	compact         func(time.Time, store.Retention) (int, error)
	// compactAudit removes what is older than the audit trail keeps.
	compactAudit func(now time.Time, age time.Duration) (int, error)
	// indexAudit builds the audit trail from the change log, for a store
	// that builds it apart from its appends; nil when there is none.
	indexAudit func(context.Context) (int, error)
	// snapshot writes a snapshot of ix when one is due; nil when the
	// store needs none.
	snapshot func(context.Context, *graph.Index) (bool, error)
	close    func() error
}

// openStore opens the store the configuration names.
func openStore(ctx context.Context, c config) (*openedStore, error) {
	switch c.store.kind {
	case "bbolt":
		db, err := store.Open(c.data, store.Options{})
		if err != nil {
			return nil, err
		}
		return &openedStore{journal: db, log: db, audit: db, where: db.Path(), registerMetrics: db.RegisterMetrics, compact: db.Compact, compactAudit: db.CompactAudit, close: db.Close}, nil
	case "etcd":
		return openEtcd(ctx, c.store)
	}
	return nil, fmt.Errorf("--store %q: want bbolt or etcd", c.store.kind)
}

// openEtcd connects to etcd and opens the store under the prefix.
func openEtcd(ctx context.Context, s storeConfig) (*openedStore, error) {
	cfg := clientv3.Config{Endpoints: strings.Split(s.endpoints, ","), DialTimeout: s.dialTimeout, Logger: zap.NewNop(), Username: s.user}
	if s.ca != "" || s.cert != "" {
		tlsInfo := transport.TLSInfo{CertFile: s.cert, KeyFile: s.key, TrustedCAFile: s.ca}
		tc, err := tlsInfo.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
		cfg.TLS = tc
	}
	if s.passwordFile != "" {
		b, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-password-file: %w", err)
		}
		cfg.Password = strings.TrimRight(string(b), "\r\n")
	}
	if s.user == "" && cfg.Password != "" {
		return nil, errors.New("--etcd-password-file needs --etcd-user")
	}
	client, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", s.endpoints, err)
	}
	octx, cancel := context.WithTimeout(ctx, s.dialTimeout)
	defer cancel()
	es, err := etcdstore.Open(octx, client, etcdstore.Options{Prefix: s.prefix})
	if err != nil {
		client.Close()
		return nil, err
	}
	return &openedStore{
		journal:    es,
		log:        es,
		audit:      es,
		indexAudit: es.IndexAudit,
		compactAudit: func(now time.Time, age time.Duration) (int, error) {
			return es.CompactAudit(context.Background(), now, age)
		},
		where:           fmt.Sprintf("etcd %s %s", s.endpoints, s.prefix),
		registerMetrics: func(prometheus.Registerer) {},
		compact: func(now time.Time, r store.Retention) (int, error) {
			if _, err := es.Sweep(context.Background(), now); err != nil {
				return 0, err
			}
			return es.Compact(context.Background(), now, r)
		},
		snapshot: func(ctx context.Context, ix *graph.Index) (bool, error) {
			newest, err := es.NewestSnapshot(ctx)
			if err != nil || ix.Revision()-newest < s.snapshotEvery {
				return false, err
			}
			recs, rev, err := ix.Records()
			if err != nil {
				return false, err
			}
			return true, es.PutSnapshot(ctx, rev, recs)
		},
		close: client.Close,
	}, nil
}

// auditEvery is how often a node builds the audit trail of a store that
// builds it from the log: History reads what is newer from the log
// itself, so this bounds how much that is.
const auditEvery = time.Second

// auditLoop builds the audit trail every auditEvery until ctx ends.
func auditLoop(ctx context.Context, st *openedStore, logger *slog.Logger) {
	tick := time.NewTicker(auditEvery)
	defer tick.Stop()
	for {
		if _, err := st.indexAudit(ctx); err != nil && ctx.Err() == nil {
			logger.Error("build the audit trail", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// maintainLoop compacts the change log and the audit trail, and writes a
// snapshot when one is due, every minute until ctx ends. Each compaction
// transaction is short, so writers barely notice.
func maintainLoop(ctx context.Context, st *openedStore, ix *graph.Index, r store.Retention, auditAge time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		if st.snapshot != nil {
			if wrote, err := st.snapshot(ctx, ix); err != nil {
				logger.Error("write a snapshot", "err", err)
			} else if wrote {
				logger.Info("wrote a snapshot", "revision", ix.Revision())
			}
		}
		if n, err := st.compact(time.Now(), r); err != nil {
			logger.Error("compact the change log", "err", err)
		} else if n > 0 {
			logger.Info("compacted the change log", "removed", n)
		}
		if st.compactAudit != nil {
			if n, err := st.compactAudit(time.Now(), auditAge); err != nil {
				logger.Error("compact the audit trail", "err", err)
			} else if n > 0 {
				logger.Info("compacted the audit trail", "removed", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
