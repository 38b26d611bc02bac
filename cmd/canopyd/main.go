// Command canopyd is the Canopy policy decision service: the canopy.v1
// gRPC services over an in-memory index kept in a bbolt file.
//
// Every flag has an environment variable (CANOPY_ and the flag's name in
// capitals, dashes as underscores) and may be set in a YAML config file
// (--config, keys are the flag names). The command line wins over the
// environment, which wins over the file.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"sigs.k8s.io/yaml"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/scenario"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/server/console"
	"github.com/canopy-authz/canopy/server/gateway"
	"github.com/canopy-authz/canopy/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp): // --help printed the usage
	case err != nil:
		fmt.Fprintln(os.Stderr, "canopyd:", err)
		os.Exit(1)
	}
}

// config is canopyd's configuration.
type config struct {
	listen          string
	data            string
	example         string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	tokens          string
	insecureNoAuth  bool
	metricsListen   string
	httpListen      string
	consoleListen   string
	pprof           bool
	config          string
	rateLimit       float64
	rateBurst       int
	tlsCert         string
	tlsKey          string
	tlsClientCA     string
	keepRevisions   uint64
	keepAge         time.Duration
	auditAge        time.Duration
	version         bool
	maxWait         time.Duration
	allowance       uint64
	ids             string
	maxStreams      int
	maxDepth        int
	maxMessage      int
	maxBatchCheck   int
	maxPage         int
	maxResponse     int
	maxLookup       int
	requestTimeout  time.Duration
	maxMutations    int
	maxIDBytes      int
	restore         string
	checkStore      string
	store           storeConfig
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("canopyd", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7070", "gRPC listen address")
	fs.StringVar(&c.data, "data", "data", "data folder holding the bbolt file")
	c.store.flags(fs)
	fs.StringVar(&c.example, "example", "", "load a seed example (atlas or aptem) into an empty store")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long running calls may finish after SIGTERM")
	fs.StringVar(&c.tokens, "tokens", "", "tokens file (YAML: name, sha256 of the token, scopes); none: no authentication")
	fs.BoolVar(&c.insecureNoAuth, "insecure-no-auth", false, "allow listening beyond loopback with no tokens file")
	fs.StringVar(&c.httpListen, "http-listen", "", "serve the API as HTTP/JSON (and its OpenAPI document at /openapi.json) on this address too; off when empty")
	fs.StringVar(&c.consoleListen, "console-listen", "", "serve the web console (and the HTTP/JSON API it calls) on this address; off when empty")
	fs.Float64Var(&c.rateLimit, "rate-limit", 0, "calls per second each caller may make on average (0: no limit)")
	fs.IntVar(&c.rateBurst, "rate-burst", 1000, "calls each caller may make at once, with --rate-limit")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate to serve TLS with (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "PEM CA bundle client certificates must chain to (mutual TLS)")
	fs.StringVar(&c.metricsListen, "metrics-listen", "127.0.0.1:7071", "HTTP address for /metrics, /healthz and /readyz (empty: none)")
	fs.BoolVar(&c.pprof, "pprof", false, "also serve Go's profiles (/debug/pprof/) on --metrics-listen")
	fs.StringVar(&c.config, "config", "", "YAML file of settings, keyed by flag name")
	fs.BoolVar(&c.version, "version", false, "print the version and commit, and exit")
	fs.StringVar(&c.ids, "ids", "text", "the grammar of new ids: text (no invisible characters, no surrounding spaces, normal form C) or ascii (printable ASCII without spaces)")
	fs.StringVar(&c.checkStore, "check-store", "", "check this store or backup file (bbolt's consistency check and a store's buckets), say what is wrong, and exit")
	fs.StringVar(&c.restore, "restore", "", "before serving, check this backup file (canopy backup) and make it the store, keeping the current file beside it")
	fs.IntVar(&c.maxMessage, "max-message-bytes", 4<<20, "the largest request message taken, in bytes")
	fs.IntVar(&c.maxBatchCheck, "max-batch-check", 10_000, "the most checks one BatchCheck may carry")
	fs.IntVar(&c.maxPage, "max-page-size", 10_000, "the largest page_size a list may ask for")
	fs.IntVar(&c.maxResponse, "max-response-bytes", 1<<20, "the most bytes a Watch message, list page or export chunk carries (at least 65536; larger commits go in parts, pages are cut); keep it under what clients accept")
	fs.IntVar(&c.maxLookup, "max-lookup-results", 100_000, "the most ids one lookup call returns; a lookup of all that finds more ends with a page token")
	fs.DurationVar(&c.requestTimeout, "request-timeout", time.Minute, "the longest a unary call or a lookup may run, whatever its deadline (Watch, Export, Import and Backup are not bound)")
	fs.IntVar(&c.maxMutations, "max-mutations-per-write", graph.MaxBatchSize, fmt.Sprintf("the most mutations one Write may carry (at most %d); Import commits in chunks within it", graph.MaxBatchSize))
	fs.IntVar(&c.maxIDBytes, "max-id-bytes", graph.MaxIDLen, fmt.Sprintf("the longest id, in bytes, a write may create (at most %d)", graph.MaxIDLen))
	fs.IntVar(&c.maxDepth, "max-depth", graph.DefaultMaxDepth, "the most levels a folder tree may have, its root being level 1 (negative: no limit)")
	fs.IntVar(&c.maxStreams, "max-streams-per-caller", 1000, "streams one caller (token, certificate or host) may have open at once")
	fs.DurationVar(&c.maxWait, "max-wait", 30*time.Second, "the longest a read waits for the revision it asks for, whatever its deadline")
	fs.Uint64Var(&c.allowance, "revision-allowance", 1000, "how far past the newest committed revision a read or Watch may ask for; further is refused at once")
	fs.Uint64Var(&c.keepRevisions, "log-keep-revisions", 100_000, "change-log entries kept at least, by count (0: no count floor)")
	fs.DurationVar(&c.keepAge, "log-keep-age", 7*24*time.Hour, "change-log entries kept at least, by age (0: no age floor); an entry goes when outside both")
	fs.DurationVar(&c.auditAge, "audit-keep-age", 365*24*time.Hour, "how long the audit trail (History) keeps a committed mutation, apart from the change log (0: for ever)")
	// The config file first, then the environment, then the command line.
	if err := applyConfigFile(fs, args); err != nil {
		return c, err
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "CANOPY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(key); ok {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", key, v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	return c, fs.Parse(args)
}

// applyConfigFile sets flags from the YAML file named by --config in args
// or by CANOPY_CONFIG. Unknown keys are refused, so a typo is not ignored.
func applyConfigFile(fs *flag.FlagSet, args []string) error {
	path := os.Getenv("CANOPY_CONFIG")
	for i, a := range args {
		switch {
		case a == "--config" || a == "-config":
			if i+1 < len(args) {
				path = args[i+1]
			}
		case strings.HasPrefix(a, "--config="), strings.HasPrefix(a, "-config="):
			_, path, _ = strings.Cut(a, "=")
		}
	}
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var settings map[string]any
	if err := yaml.Unmarshal(raw, &settings); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for key, v := range settings {
		if key == "config" || fs.Lookup(key) == nil {
			return fmt.Errorf("config %s: unknown setting %q", path, key)
		}
		if err := fs.Set(key, fmt.Sprint(v)); err != nil {
			return fmt.Errorf("config %s: %s: %w", path, key, err)
		}
	}
	return nil
}

func newLogger(c config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.logLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.logFormat)
}

// run serves until ctx ends, then shuts down gracefully. SIGHUP reloads
// the tokens file and the TLS files.
func run(ctx context.Context, args []string, logOut io.Writer) error {
	// Caught from the start: SIGHUP's default is to end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	c, err := parseFlags(args)
	if err != nil {
		return err
	}
	if c.version {
		fmt.Fprintln(os.Stdout, "canopyd", server.Build())
		return nil
	}
	if c.checkStore != "" {
		if err := store.CheckFile(c.checkStore); err != nil {
			return fmt.Errorf("%s: %w", c.checkStore, err)
		}
		fmt.Fprintln(os.Stdout, c.checkStore+": consistent")
		return nil
	}
	logger, err := newLogger(c, logOut)
	if err != nil {
		return err
	}
	ids, err := graph.ParseIDGrammar(c.ids)
	if err != nil {
		return err
	}
	if c.maxMutations < 1 || c.maxMutations > graph.MaxBatchSize {
		return fmt.Errorf("--max-mutations-per-write %d: want 1 to %d", c.maxMutations, graph.MaxBatchSize)
	}
	if c.maxIDBytes < 1 || c.maxIDBytes > graph.MaxIDLen {
		return fmt.Errorf("--max-id-bytes %d: want 1 to %d", c.maxIDBytes, graph.MaxIDLen)
	}
	var tokens *server.Tokens
	if c.tokens != "" {
		if tokens, err = server.LoadTokens(c.tokens); err != nil {
			return err
		}
	} else if !c.insecureNoAuth {
		for _, addr := range []string{c.listen, c.httpListen, c.consoleListen} {
			if addr != "" && !isLoopback(addr) {
				return fmt.Errorf("refusing to serve %s beyond loopback with no tokens file: give --tokens, or --insecure-no-auth to mean it", addr)
			}
		}
	}
	if c.restore != "" {
		rev, err := store.Restore(c.data, c.restore, func(db *store.DB) (uint64, error) {
			ix, err := graph.Open(ctx, graph.Options{Clock: graph.ClockFunc(time.Now), Journal: db, MaxDepth: -1})
			if err != nil {
				return 0, err
			}
			defer ix.Close()
			return ix.Revision(), nil
		}, store.RestoreOptions{Check: checkInChild})
		if err != nil {
			return err
		}
		logger.Info("restored the store from a backup", "file", c.restore, "revision", rev)
	}
	if c.store.kind != "bbolt" && c.restore != "" {
		return fmt.Errorf("--restore works on a bbolt store; move an organisation onto --store %s with canopy export and import", c.store.kind)
	}
	db, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer db.close()
	hub := server.NewHub(0)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := server.NewMetrics(reg)
	db.registerMetrics(reg)

	// Serve first, NOT_SERVING, so probes see the process while the index loads.
	tp, err := startTracing(ctx)
	if err != nil {
		return err
	}
	var tracer trace.TracerProvider // nil: nothing is traced
	if tp != nil {
		tracer = tp
		defer func() {
			flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(flush); err != nil {
				logger.Error("send the last traces", "err", err)
			}
		}()
		logger.Info("tracing to OTLP")
	}
	srv, err := server.New(server.Options{Log: db.log, Audit: db.audit, Hub: hub, TracerProvider: tracer, Logger: logger, Tokens: tokens, Metrics: metrics,
		RateLimit: server.RateLimit{PerSecond: c.rateLimit, Burst: c.rateBurst}, MaxWait: c.maxWait, RevisionAllowance: c.allowance, MaxStreams: c.maxStreams,
		MaxMessageBytes: c.maxMessage, MaxBatchCheck: c.maxBatchCheck,
		MaxPageSize: c.maxPage, MaxLookupResults: c.maxLookup, RequestTimeout: c.requestTimeout, MaxResponseBytes: c.maxResponse})
	if err != nil {
		return err
	}
	if c.metricsListen != "" {
		stop, err := serveMetrics(c.metricsListen, reg, srv, logger, c.pprof)
		if err != nil {
			return err
		}
		defer stop()
	}
	gopts := srv.ServerOptions()
	var tlsFiles *server.TLSFiles
	if c.tlsCert != "" || c.tlsKey != "" || c.tlsClientCA != "" {
		if tlsFiles, err = server.LoadTLS(c.tlsCert, c.tlsKey, c.tlsClientCA); err != nil {
			return err
		}
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tlsFiles.Config())))
	}
	go reloadOnHangUp(ctx, hup, c.tokens, tokens, tlsFiles, logger)
	g := grpc.NewServer(gopts...)
	srv.Register(g)
	lis, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.listen, err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(lis) }()
	defer g.Stop()
	if c.httpListen != "" || c.consoleListen != "" {
		gw, err := gateway.New(ctx, srv, gateway.Options{})
		if err != nil {
			return err
		}
		defer gw.Close()
		for _, l := range []struct {
			addr, what string
			h          http.Handler
		}{{c.httpListen, "HTTP/JSON", gw.Handler}, {c.consoleListen, "the console", console.Handler(gw.Handler)}} {
			if l.addr == "" {
				continue
			}
			stop, err := serveHTTP(l.addr, l.what, l.h, tlsFiles, logger)
			if err != nil {
				return err
			}
			defer stop()
		}
	}
	logger.Info("listening, not serving until the index is loaded", "addr", lis.Addr().String())

	start := time.Now()
	ix, err := graph.Open(ctx, graph.Options{Clock: graph.ClockFunc(time.Now), Journal: metrics.Journal(db.journal, tracer), OnCommit: hub.Publish, OnAccess: hub.PublishAccess, IDs: ids, MaxDepth: c.maxDepth,
		MaxBatch: c.maxMutations, MaxIDBytes: c.maxIDBytes,
		OnFeedError: func(err error) { logger.Error("follow the store's change log; trying again", "err", err) },
		OnReload: func(rev uint64) {
			logger.Warn("the store's log no longer held this node's revision: loaded its snapshot afresh; streams start again", "revision", rev)
			hub.Reset(rev)
		}})
	if err != nil {
		return err
	}
	defer ix.Close()
	metrics.Observe(ix, hub)
	st := ix.Stats()
	logger.Info("index loaded", "store", db.where, "revision", st.Revision, "folders", st.Folders, "users", st.Users,
		"grants", st.Grants, "locks", st.Locks, "took", time.Since(start).Round(time.Millisecond))
	if c.example != "" && st.Folders == 0 {
		if err := loadExample(ctx, ix, c.example); err != nil {
			return err
		}
		logger.Info("example loaded", "example", c.example, "revision", ix.Revision())
	}
	srv.Ready(ix)
	go srv.ProbeStore(ctx, 2*time.Second)
	if db.indexAudit != nil {
		go auditLoop(ctx, db, logger)
	}
	go maintainLoop(ctx, db, ix, store.Retention{Revisions: c.keepRevisions, Age: c.keepAge}, c.auditAge, logger)
	go ix.RunExpiry(ctx, func(err error) { logger.Error("record grant expiries", "err", err) })
	logger.Info("serving gRPC", "addr", lis.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "timeout", c.shutdownTimeout)
	srv.Shutdown()
	hub.Close()
	stopped := make(chan struct{})
	go func() {
		g.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(c.shutdownTimeout):
		logger.Warn("calls still running at the deadline; stopping them")
		g.Stop()
		<-stopped
	}
	logger.Info("stopped", "revision", ix.Revision())
	return nil
}

// reloadOnHangUp reloads the tokens file and the TLS files at each SIGHUP
// until ctx ends. A file that cannot be used leaves what was loaded in
// place, and the log says why.
func reloadOnHangUp(ctx context.Context, hup <-chan os.Signal, tokensPath string, tokens *server.Tokens, tlsFiles *server.TLSFiles, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if tokens != nil {
			if err := tokens.Reload(tokensPath); err != nil {
				logger.Error("tokens not reloaded; the ones loaded before stay", "file", tokensPath, "err", err)
			} else {
				logger.Info("reloaded tokens", "file", tokensPath, "tokens", tokens.Len())
			}
		}
		if tlsFiles != nil {
			if err := tlsFiles.Reload(); err != nil {
				logger.Error("TLS files not reloaded; the ones loaded before stay", "err", err)
			} else {
				logger.Info("reloaded TLS files")
			}
		}
		logger.Info("reload done")
	}
}

// serveMetrics serves /metrics, /healthz (the process is up) and /readyz
// (the index is loaded and the server is not shutting down) over HTTP,
// and with profiles, Go's /debug/pprof/.
func serveMetrics(addr string, reg *prometheus.Registry, srv *server.Server, logger *slog.Logger, profiles bool) (stop func(), err error) {
	mux := http.NewServeMux()
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !srv.Serving() {
			http.Error(w, "not serving: loading or shutting down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return serveHTTP(addr, "metrics", mux, nil, logger)
}

// serveHTTP serves h on addr, with TLS when the gRPC listener has it (the
// same certificate, reloaded alike), logging "serving " and what. stop
// closes it.
func serveHTTP(addr, what string, h http.Handler, tlsFiles *server.TLSFiles, logger *slog.Logger) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for %s on %s: %w", what, addr, err)
	}
	if tlsFiles != nil {
		lis = tls.NewListener(lis, tlsFiles.Config())
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	logger.Info("serving "+what, "addr", lis.Addr().String(), "tls", tlsFiles != nil)
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve "+what, "err", err)
		}
	}()
	return func() { hs.Close() }, nil
}

// isLoopback reports whether a listen address is on loopback only.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadExample writes the first step of a seed example.
func loadExample(ctx context.Context, ix *graph.Index, name string) error {
	f, err := scenario.Example(name)
	if err != nil {
		return err
	}
	if len(f.Steps) == 0 || len(f.Steps[0].Write) == 0 {
		return errors.New("example " + name + " has nothing to write")
	}
	if _, err := ix.Write(ctx, "canopyd-example", f.Steps[0].Write, graph.Preconditions{}); err != nil {
		return fmt.Errorf("load example %s: %w", name, err)
	}
	return nil
}

// checkInChild checks the store file at path in a child canopyd
// (--check-store), so that a file damaged enough to make bbolt fault as
// it reads it is refused, not the end of this process.
func checkInChild(path string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("check the file: %w", err)
	}
	out, err := exec.Command(exe, "--check-store", path).CombinedOutput()
	if err == nil {
		return nil
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if msg, ok := strings.CutPrefix(first, "canopyd: "+path+": "); ok {
		return errors.New(msg)
	}
	return fmt.Errorf("damaged: checking it crashed the checker (%v: %s)", err, first)
}
