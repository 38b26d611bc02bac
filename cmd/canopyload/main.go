// Command canopyload measures Canopy over gRPC on loopback: it imports a
// generated organisation (DESIGN.md section 4's shape, scaled), then times
// Check from one caller (median and p99) and BatchCheck throughput from
// several callers. With no --addr it starts a server in-process on a
// loopback port over a temporary store, so one command gives the figures.
// Every loop is bounded by a count and a duration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/orggen"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/store"
)

func main() {
	if os.Getenv(emptyRole) != "" {
		if err := serveEmpty(); err != nil {
			fmt.Fprintln(os.Stderr, "canopyload (empty server):", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "canopyload:", err)
		os.Exit(1)
	}
}

type config struct {
	addr       string
	scale      float64
	checks     int
	duration   time.Duration
	callers    int
	batch      int
	cpuProfile string
	trace      string
	memProfile string

	watch          bool
	watchers       int
	accessWatchers int
	writeRate      int
	conns          int
	light          bool
	frames         bool

	bulk int

	cost        string
	costCallers int
}

func run(args []string, out io.Writer) error {
	var c config
	fs := flag.NewFlagSet("canopyload", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "", "server to load (empty: start one in-process on loopback)")
	fs.Float64Var(&c.scale, "scale", 0.1, "size of the organisation, as a fraction of DESIGN.md section 4's")
	fs.IntVar(&c.checks, "checks", 20000, "single-caller Check calls to time")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long the BatchCheck phase runs")
	fs.IntVar(&c.callers, "callers", 4, "concurrent BatchCheck callers")
	fs.IntVar(&c.batch, "batch", 1000, "checks per BatchCheck call")
	fs.StringVar(&c.trace, "trace", "", "with -watch or -bulk, write an execution trace of the paced or bulk writes to this file (go tool trace)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the BatchCheck phase (with -watch: the paced writes) to this file")
	fs.StringVar(&c.memProfile, "memprofile", "", "with -watch, write heap profiles before (FILE.before) and after (FILE) the paced writes; go tool pprof -base FILE.before FILE shows what they allocated")
	fs.BoolVar(&c.watch, "watch", false, "measure change streams instead of checks")
	fs.IntVar(&c.bulk, "bulk", 0, "time Checks during Writes of this many mutations, committed and refused, instead of the usual phases (100000 is issue 12's figure)")
	fs.StringVar(&c.cost, "cost", "", "measure the processor time a unary Check costs this canopyd binary, against grpc-go's empty health handler, instead of the usual phases (-duration in all)")
	fs.IntVar(&c.costCallers, "cost-callers", 32, "concurrent callers, with -cost")
	fs.IntVar(&c.watchers, "watchers", 1000, "Watch subscribers, with -watch")
	fs.IntVar(&c.accessWatchers, "access-watchers", 100, "WatchAccess subscribers, with -watch")
	fs.IntVar(&c.writeRate, "write-rate", 200, "write batches per second, with -watch")
	fs.IntVar(&c.conns, "conns", 8, "client connections the streams share, with -watch (the callers share, with -cost)")
	fs.BoolVar(&c.light, "light", false, "with -watch, readers decode only each response's revision and commit time")
	fs.BoolVar(&c.frames, "frames", false, "with -watch, read the streams straight off HTTP/2 frames, one goroutine per connection, decoding only revision and commit time: for subscribers that run elsewhere")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	if c.cost != "" {
		return costLoad(ctx, out, c)
	}
	addr := c.addr
	var pub *publishTimes // nil: time from each response's commit time
	if addr == "" {
		pub = &publishTimes{}
		p, err := startInProcess(ctx, pub.record)
		if err != nil {
			return err
		}
		defer p.stop()
		addr = p.addr
	}
	conn, org, err := loadOrg(ctx, out, addr, c.scale)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The rest needs only the ids. In-process, the batches would stay
	// live on the server's heap, for its collector to trace every cycle.
	org.Batches = nil
	if c.watch {
		return watchLoad(ctx, out, addr, org, pub, c)
	}

	acc := pb.NewAccessServiceClient(conn)
	checks := org.Checks(max(c.checks, c.batch*16), 11)
	if c.bulk > 0 {
		return bulkLoad(ctx, out, conn, "t0", checks, c.bulk, c.trace)
	}
	reqs := checkRequests(checks[:c.checks])
	lat, err := oneByOne(len(reqs), func(i int) error {
		_, err := acc.Check(ctx, reqs[i])
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Check, one caller, %d calls: %s\n", len(lat), spread(lat))
	stop, err := recording(c.cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile)
	if err != nil {
		return err
	}
	defer stop()
	n, took, err := batchLoad(ctx, acc, checks, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "BatchCheck, %d callers x %d checks: %d checks in %s = %.0f checks/s\n",
		c.callers, c.batch, n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	return nil
}

// recording starts a recording (a CPU profile, an execution trace) into
// path with start, and returns the function that ends it with stop.
// Nothing is recorded when path is empty.
func recording(path string, start func(io.Writer) error, stop func()) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := start(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { stop(); f.Close() }, nil
}

// writeHeapProfile writes the heap profile to path (nothing when path is
// empty). The profile counts up to the last collection, so it collects
// first: two profiles then bracket exactly what ran between them.
func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// inProcess is a server run by the load generator itself.
type inProcess struct {
	addr string
	stop func()
}

// startInProcess serves canopyd's stack on a loopback port over a
// temporary store. published, if set, is called with each group of
// commits just before the watchers get it.
func startInProcess(ctx context.Context, published func([]graph.Commit)) (*inProcess, error) {
	dir, err := os.MkdirTemp("", "canopyload-")
	if err != nil {
		return nil, err
	}
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		return nil, err
	}
	hub := server.NewHub(0)
	onCommit := hub.Publish
	if published != nil {
		onCommit = func(cs []graph.Commit) { published(cs); hub.Publish(cs) }
	}
	ix, err := graph.Open(ctx, graph.Options{Clock: graph.ClockFunc(time.Now), Journal: db, OnCommit: onCommit, OnAccess: hub.PublishAccess})
	if err != nil {
		return nil, err
	}
	// Every subscriber comes from this one host: lift the per-caller
	// stream limit a real deployment keeps.
	srv, err := server.New(server.Options{Index: ix, Log: db, Hub: hub, Logger: slog.New(slog.DiscardHandler), MaxStreams: 1 << 20})
	if err != nil {
		return nil, err
	}
	g := grpc.NewServer(srv.ServerOptions()...)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go g.Serve(lis)
	return &inProcess{addr: lis.Addr().String(), stop: func() {
		hub.Close()
		g.Stop()
		ix.Close()
		db.Close()
		os.RemoveAll(dir)
	}}, nil
}

// loadOrg dials the server at addr, generates the organisation at scale,
// says what it holds, and imports it, saying how long that took. It
// returns the connection, for the caller to close.
func loadOrg(ctx context.Context, out io.Writer, addr string, scale float64) (*grpc.ClientConn, *orggen.Org, error) {
	conn, err := dial(addr)
	if err != nil {
		return nil, nil, err
	}
	shape := orggen.Design().Scale(scale)
	org := orggen.Generate(shape, 0)
	fmt.Fprintf(out, "organisation: %d folders, %d users, %d grants, %d locks\n", shape.Folders, shape.Users, shape.Grants, shape.Locks)
	start := time.Now()
	if err := importOrg(ctx, pb.NewDirectoryServiceClient(conn), org); err != nil {
		conn.Close()
		return nil, nil, err
	}
	fmt.Fprintf(out, "import over gRPC: %s\n", time.Since(start).Round(time.Millisecond))
	return conn, org, nil
}

// importOrg sends the organisation through Import.
func importOrg(ctx context.Context, dir pb.DirectoryServiceClient, org *orggen.Org) error {
	s, err := dir.Import(ctx)
	if err != nil {
		return err
	}
	for _, batch := range org.Batches {
		for len(batch) > 0 {
			n := min(5000, len(batch))
			msg := &pb.ImportRequest{}
			for _, m := range batch[:n] {
				msg.Mutations = append(msg.Mutations, server.MutationToPB(m))
			}
			if err := s.Send(msg); err != nil {
				return fmt.Errorf("import: %w", err)
			}
			batch = batch[n:]
		}
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		_, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
	}
}

// dial returns a connection to addr, without TLS.
func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// checkRequests returns the wire form of checks.
func checkRequests(checks []graph.CheckRequest) []*pb.CheckRequest {
	reqs := make([]*pb.CheckRequest, len(checks))
	for i, c := range checks {
		reqs[i] = &pb.CheckRequest{User: c.User, Right: c.Right, Resource: server.RefToPB(c.Resource)}
	}
	return reqs
}

// batchRequests cuts checks into BatchCheck requests of size checks each
// (a last, shorter one is left out).
func batchRequests(checks []graph.CheckRequest, size int) []*pb.BatchCheckRequest {
	var out []*pb.BatchCheckRequest
	for off := 0; off+size <= len(checks); off += size {
		b := &pb.BatchCheckRequest{}
		for _, c := range checks[off : off+size] {
			b.Items = append(b.Items, &pb.CheckItem{User: c.User, Right: c.Right, Resource: server.RefToPB(c.Resource)})
		}
		out = append(out, b)
	}
	return out
}

// oneByOne makes n calls from one caller, one after another, after up to
// a thousand to warm the connection and caches, and returns how long
// each took, sorted.
func oneByOne(n int, call func(i int) error) ([]time.Duration, error) {
	for i := range min(1000, n) {
		if err := call(i); err != nil {
			return nil, err
		}
	}
	lat := make([]time.Duration, n)
	for i := range lat {
		t0 := time.Now()
		if err := call(i); err != nil {
			return nil, err
		}
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	return lat, nil
}

// spread says the median, p99 and p99.9 of sorted latencies.
func spread(lat []time.Duration) string {
	return fmt.Sprintf("median %s, p99 %s, p99.9 %s", lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)*999/1000])
}

// concurrently runs call from callers goroutines until d has passed, the
// w-th of them with i = w, w+callers, w+2*callers..., and returns how
// many calls succeeded and the first error, which ends its caller.
func concurrently(callers int, d time.Duration, call func(w, i int) error) (int64, error) {
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i += callers {
				if err := call(w, i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return done.Load(), firstErr
}

// batchLoad runs BatchCheck from several callers for the configured time,
// and returns the checks answered and how long that took.
func batchLoad(ctx context.Context, acc pb.AccessServiceClient, checks []graph.CheckRequest, c config) (int64, time.Duration, error) {
	batches := batchRequests(checks, c.batch)
	start := time.Now()
	n, err := concurrently(c.callers, c.duration, func(_, i int) error {
		_, err := acc.BatchCheck(ctx, batches[i%len(batches)])
		return err
	})
	return n * int64(c.batch), time.Since(start), err
}
