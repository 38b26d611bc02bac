// Command canopycluster starts, for a person to try, a local Canopy
// cluster on loopback: one etcd member (the etcd server of the pinned
// go.etcd.io/etcd/server/v3, inside this process) and three canopyd
// processes sharing it, the first loaded with the ATLAS example. It
// prints where each listens and stops them all at Ctrl-C.
//
//	make cluster
//	go run ./cmd/canopycluster --canopyd bin/canopyd --data data/cluster
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "canopycluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("canopycluster", flag.ContinueOnError)
	bin := fs.String("canopyd", "bin/canopyd", "the canopyd binary to start")
	data := fs.String("data", "data/cluster", "folder for etcd's data and the nodes' logs")
	etcdPort := fs.Int("etcd-port", 2379, "etcd's client port on 127.0.0.1 (its peer port is the next)")
	firstPort := fs.Int("port", 7070, "the first node's gRPC port; node i listens on port+10*i, its metrics on the port after")
	nodes := fs.Int("nodes", 3, "how many canopyd nodes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*data, 0o750); err != nil {
		return err
	}
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(*etcdPort)}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(*etcdPort+1)}
	cfg := embed.NewConfig()
	cfg.Name = "canopy-dev"
	cfg.Dir = filepath.Join(*data, "etcd")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.Name + "=" + peer.String()
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = "periodic", "1h"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		return errors.New("etcd is not ready after a minute")
	case <-ctx.Done():
		return nil
	}
	fmt.Printf("etcd       %s (data in %s)\n", client.Host, cfg.Dir)

	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	exited := make(chan error, *nodes)
	for i := range *nodes {
		grpcAddr := "127.0.0.1:" + strconv.Itoa(*firstPort+10*i)
		metricsAddr := "127.0.0.1:" + strconv.Itoa(*firstPort+10*i+1)
		logPath := filepath.Join(*data, fmt.Sprintf("node%d.log", i))
		logFile, err := os.Create(logPath)
		if err != nil {
			return err
		}
		defer logFile.Close()
		args := []string{"--store", "etcd", "--etcd-endpoints", client.Host, "--etcd-prefix", "/canopy/",
			"--listen", grpcAddr, "--metrics-listen", metricsAddr}
		if i == 0 {
			args = append(args, "--example", "atlas")
		}
		p := exec.Command(*bin, args...)
		p.Stdout, p.Stderr = logFile, logFile
		if err := p.Start(); err != nil {
			return fmt.Errorf("start %s: %w", *bin, err)
		}
		procs = append(procs, p)
		go func() { exited <- fmt.Errorf("node %d exited: %v (see %s)", i, p.Wait(), logPath) }()
		fmt.Printf("node %d     gRPC %s, metrics http://%s/metrics, log %s\n", i, grpcAddr, metricsAddr, logPath)
	}
	if *nodes > 1 {
		fmt.Printf("try, on another node than the one loaded: bin/canopy --addr 127.0.0.1:%d check tom edit user/carl\n", *firstPort+10)
	}
	fmt.Println("Ctrl-C stops the cluster")
	select {
	case <-ctx.Done():
		return nil
	case err := <-exited:
		return err
	}
}
