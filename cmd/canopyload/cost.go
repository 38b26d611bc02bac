package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server/servertest"
)

// emptyRole is the environment variable that makes canopyload serve
// grpc-go's own health service and nothing else (no interceptors, no
// codec of ours): the empty handler a Canopy call's cost is set against.
const emptyRole = "CANOPYLOAD_SERVE_EMPTY"

// serveEmpty serves the bare health service on a loopback port, writes
// the port's address on stdout, and returns when stdin closes (when the
// load generator that started it ends).
func serveEmpty() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(lis)
	fmt.Println(lis.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	g.Stop()
	return nil
}

// child is a server process whose CPU time is measured.
type child struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	metrics string    // canopyd's metrics and profiles, with -cpuprofile
	stdin   io.Closer // the empty server's: it ends when this closes
	call    func(ctx context.Context, conn *grpc.ClientConn, i int) error
}

// cpu returns the processor time the process has used so far, all its
// threads, user and system (from /proc, in clock ticks of 10 ms).
func (c *child) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("%s's processor time: %w", c.name, err)
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s's processor time: short /proc stat line", c.name)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s's processor time: %w", c.name, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// stop ends the process and waits for it.
func (c *child) stop() {
	if c.stdin != nil {
		c.stdin.Close()
	}
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// startCanopyd starts the canopyd binary bin over a new store in dir, on
// a free loopback port, at its default log level, and returns when it
// says where it serves. Its log goes on being read (and dropped), so that
// logging costs canopyd what it costs in a deployment. With profiles, it
// serves them (--pprof) on a metrics port of its own.
func startCanopyd(bin, dir string, profiles bool) (*child, error) {
	args := []string{"--listen", "127.0.0.1:0", "--metrics-listen", "", "--data", dir, "--log-format", "json"}
	if profiles {
		args = append(args, "--metrics-listen", "127.0.0.1:0", "--pprof")
	}
	d, err := servertest.Launch(bin, profiles, args...)
	if err != nil {
		return nil, err
	}
	return &child{name: "canopyd", cmd: d.Cmd, addr: d.Addr, metrics: d.Metrics}, nil
}

// startEmpty starts canopyload itself again as the empty server.
func startEmpty() (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), emptyRole+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the empty server: %w", err)
	}
	c := &child{name: "empty handler", cmd: cmd, stdin: stdin}
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("the empty server did not say where it serves: %w", err)
	}
	c.addr = strings.TrimSpace(addr)
	return c, nil
}

// costLoad sets canopyd's processor time per unary Check against that
// of grpc-go's empty health handler, each a process of its own loaded by
// the same callers in turn (empty, canopyd, canopyd, empty, ...), and
// reports both and their ratio; then both one caller's latency, and
// canopyd's processor time a check in BatchCheck.
func costLoad(ctx context.Context, out io.Writer, c config) error {
	dir, err := os.MkdirTemp("", "canopyload-cost-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	canopyd, err := startCanopyd(c.cost, dir, c.cpuProfile != "")
	if err != nil {
		return err
	}
	defer canopyd.stop()
	empty, err := startEmpty()
	if err != nil {
		return err
	}
	defer empty.stop()

	conn, org, err := loadOrg(ctx, out, canopyd.addr, c.scale)
	if err != nil {
		return err
	}
	defer conn.Close()
	checks := org.Checks(10000, 11)
	reqs := checkRequests(checks)
	canopyd.call = func(ctx context.Context, conn *grpc.ClientConn, i int) error {
		_, err := pb.NewAccessServiceClient(conn).Check(ctx, reqs[i%len(reqs)])
		return err
	}
	probe := &healthpb.HealthCheckRequest{}
	empty.call = func(ctx context.Context, conn *grpc.ClientConn, _ int) error {
		_, err := healthpb.NewHealthClient(conn).Check(ctx, probe)
		return err
	}

	type total struct {
		calls int64
		cpu   time.Duration
	}
	totals := map[*child]*total{canopyd: {}, empty: {}}
	phase := c.duration / 6
	for _, ch := range []*child{empty, canopyd, canopyd, empty, empty, canopyd} {
		n, cpu, err := loadPhase(ctx, ch, c.costCallers, c.conns, phase)
		if err != nil {
			return err
		}
		totals[ch].calls += n
		totals[ch].cpu += cpu
	}
	per := func(ch *child) time.Duration {
		t := totals[ch]
		return t.cpu / time.Duration(max(t.calls, 1))
	}
	for _, ch := range []*child{empty, canopyd} {
		t := totals[ch]
		fmt.Fprintf(out, "%s, %d callers on %d connections: %d calls in %s, %.0f calls/s, server processor time %s a call\n",
			ch.name, c.costCallers, c.conns, t.calls, 3*phase, float64(t.calls)/(3*phase).Seconds(), per(ch))
	}
	fmt.Fprintf(out, "canopyd's processor time a Check, against the empty handler's: %.2fx\n", float64(per(canopyd))/float64(max(per(empty), 1)))

	// One caller, one call after another: the latency a service sees.
	for _, ch := range []*child{empty, canopyd} {
		lat, err := oneCaller(ctx, ch, c.checks)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s, one caller, %d calls: %s\n", ch.name, len(lat), spread(lat))
	}

	// BatchCheck: the server's processor time a check, and what the
	// server's cores would answer at that cost with no load generator
	// beside them.
	batches := batchRequests(checks, c.batch)
	batch := &child{name: "canopyd BatchCheck", cmd: canopyd.cmd, addr: canopyd.addr, call: func(ctx context.Context, conn *grpc.ClientConn, i int) error {
		_, err := pb.NewAccessServiceClient(conn).BatchCheck(ctx, batches[i%len(batches)])
		return err
	}}
	n, cpu, err := loadPhase(ctx, batch, c.callers, min(c.callers, c.conns), 2*phase)
	if err != nil {
		return err
	}
	perCheck := cpu / time.Duration(max(n*int64(c.batch), 1))
	fmt.Fprintf(out, "BatchCheck, %d callers x %d checks: %.0f checks/s beside the load generator; server processor time %s a check, so %d cores would answer %.0f checks/s\n",
		c.callers, c.batch, float64(n*int64(c.batch))/(2*phase).Seconds(), perCheck, runtime.NumCPU(), float64(runtime.NumCPU())/perCheck.Seconds())
	if c.cpuProfile == "" {
		return nil
	}
	// One more phase, not counted (profiling costs canopyd a little).
	profiled := make(chan error, 1)
	go func() { profiled <- fetchProfile(ctx, canopyd.metrics, phase, c.cpuProfile) }()
	if _, _, err := loadPhase(ctx, canopyd, c.costCallers, c.conns, phase); err != nil {
		return err
	}
	if err := <-profiled; err != nil {
		return err
	}
	fmt.Fprintf(out, "canopyd's CPU profile of a further %s: %s\n", phase, c.cpuProfile)
	return nil
}

// oneCaller times n calls to ch from one caller (oneByOne).
func oneCaller(ctx context.Context, ch *child, n int) ([]time.Duration, error) {
	conn, err := dial(ch.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	lat, err := oneByOne(n, func(i int) error { return ch.call(ctx, conn, i) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ch.name, err)
	}
	return lat, nil
}

// fetchProfile writes the CPU profile of d that the server whose
// profiles are at addr records, to path.
func fetchProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("canopyd's profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("canopyd's profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("canopyd's profile: %w", err)
	}
	return f.Close()
}

// loadPhase runs callers unary calls to ch, over conns connections, for
// d, and returns how many calls were answered and the processor time ch
// used meanwhile.
func loadPhase(ctx context.Context, ch *child, callers, conns int, d time.Duration) (int64, time.Duration, error) {
	cs := make([]*grpc.ClientConn, conns)
	for i := range cs {
		conn, err := dial(ch.addr)
		if err != nil {
			return 0, 0, err
		}
		defer conn.Close()
		if err := ch.call(ctx, conn, 0); err != nil { // connect before the clock starts
			return 0, 0, fmt.Errorf("%s: %w", ch.name, err)
		}
		cs[i] = conn
	}
	before, err := ch.cpu()
	if err != nil {
		return 0, 0, err
	}
	n, callErr := concurrently(callers, d, func(w, i int) error { return ch.call(ctx, cs[w%len(cs)], i) })
	if callErr != nil {
		callErr = fmt.Errorf("%s: %w", ch.name, callErr)
	}
	after, err := ch.cpu()
	if err != nil {
		return 0, 0, err
	}
	return n, after - before, callErr
}
