package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/orggen"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
)

// publishTimes records when the server published each revision to its
// watchers: the commit instant that delivery latency counts from when the
// server runs in-process. Against a server elsewhere (-addr), latency
// counts from each response's commit time instead: the moment the server's
// writer took the batch, before its fsync, read on the server's clock.
type publishTimes struct{ m sync.Map } // revision -> time.Time

func (p *publishTimes) record(commits []graph.Commit) {
	now := time.Now()
	for _, c := range commits {
		p.m.Store(c.Revision, now)
	}
}

func (p *publishTimes) at(rev uint64) (time.Time, bool) {
	v, ok := p.m.Load(rev)
	if !ok {
		return time.Time{}, false
	}
	return v.(time.Time), true
}

// latencies collects delivery latencies from many streams.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.all) == 0 {
		return "no deliveries"
	}
	slices.Sort(l.all)
	q := func(f float64) time.Duration { return l.all[min(len(l.all)-1, int(f*float64(len(l.all))))] }
	return fmt.Sprintf("%d deliveries: p50 %s, p99 %s, p99.9 %s, max %s",
		len(l.all), q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), q(0.999).Round(time.Microsecond), l.all[len(l.all)-1].Round(time.Microsecond))
}

// watchLoad opens c.watchers Watch streams and c.accessWatchers
// WatchAccess streams, writes at c.writeRate batches per second for
// c.duration, and reports commit-to-delivery latency. Then it measures
// writer throughput with no subscriber and with one that never reads.
func watchLoad(ctx context.Context, out io.Writer, addr string, org *orggen.Org, pub *publishTimes, c config) error {
	conns := c.conns // streams share a few connections, as real clients would
	var cs []*grpc.ClientConn
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if c.light {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.ForceCodecV2(revisionCodec{encoding.GetCodecV2("proto")})))
	}
	for range conns {
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			return err
		}
		defer conn.Close()
		cs = append(cs, conn)
	}
	open := grpcOpener{conns: cs, light: c.light}.open
	if c.frames {
		var fcs []*frameConn
		for range conns {
			fc, err := dialFrames(addr)
			if err != nil {
				return err
			}
			defer fc.close()
			fcs = append(fcs, fc)
		}
		open = func(ctx context.Context, i int, method string, req proto.Message, each func(rev uint64, commit, recv time.Time), end func(error)) error {
			return fcs[i%len(fcs)].open(ctx, method, req, each, end)
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var watchLat, accessLat latencies
	var accessEvents atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, c.watchers+c.accessWatchers)
	ready := make(chan struct{}, c.accessWatchers) // each WatchAccess stream's starting access
	caughtUp := make(chan struct{}, c.watchers)
	var final atomic.Uint64 // the marker's revision, once written
	latency := func(rev uint64, commit, recv time.Time) (time.Duration, bool) {
		if pub == nil {
			return recv.Sub(commit), !commit.IsZero()
		}
		t, ok := pub.at(rev)
		return recv.Sub(t), ok
	}
	// A stream's functions run one at a time, so each stream's own
	// variables need no lock.
	for i := range c.watchers {
		var lat []time.Duration
		signalled := false
		each := func(rev uint64, commit, recv time.Time) {
			if f := final.Load(); !signalled && f != 0 && rev >= f {
				signalled = true
				caughtUp <- struct{}{}
				return // the marker is not timed
			}
			if d, ok := latency(rev, commit, recv); ok {
				lat = append(lat, d)
			}
		}
		end := func(err error) {
			defer wg.Done()
			watchLat.add(lat)
			if status.Code(err) != codes.Canceled {
				errs <- fmt.Errorf("watch: %w", orServerEnd(err))
			}
		}
		wg.Add(1)
		if err := open(sctx, i, pb.WatchService_Watch_FullMethodName, &pb.WatchRequest{}, each, end); err != nil {
			wg.Done()
			return err
		}
	}
	r := rand.New(rand.NewPCG(7, 7))
	watched := make([]string, c.accessWatchers)
	for i := range watched {
		watched[i] = org.Users[r.IntN(len(org.Users))]
	}
	for i, user := range watched {
		var lat []time.Duration
		started := false
		each := func(rev uint64, commit, recv time.Time) {
			if !started { // the starting access
				started = true
				ready <- struct{}{}
				return
			}
			accessEvents.Add(1)
			if d, ok := latency(rev, commit, recv); ok {
				lat = append(lat, d)
			}
		}
		end := func(err error) {
			defer wg.Done()
			accessLat.add(lat)
			if !started || status.Code(err) != codes.Canceled {
				errs <- fmt.Errorf("watch access %s: %w", user, orServerEnd(err))
			}
		}
		wg.Add(1)
		if err := open(sctx, i, pb.WatchService_WatchAccess_FullMethodName, &pb.WatchAccessRequest{User: user}, each, end); err != nil {
			wg.Done()
			return err
		}
	}
	for range c.accessWatchers {
		select {
		case <-ready:
		case err := <-errs:
			return err
		}
	}
	dir := pb.NewDirectoryServiceClient(cs[0])
	w := newChurn(org, watched)
	if c.memProfile != "" {
		if err := writeHeapProfile(c.memProfile + ".before"); err != nil {
			return err
		}
	}
	stopProfile, err := recording(c.cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile)
	if err != nil {
		return err
	}
	stopTrace, err := recording(c.trace, trace.Start, trace.Stop)
	if err != nil {
		stopProfile()
		return err
	}
	start := time.Now()
	n, err := w.paced(ctx, dir, c.writeRate, c.duration)
	stopTrace()
	stopProfile()
	if err := writeHeapProfile(c.memProfile); err != nil {
		return err
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	// One last write, known to come after everything timed: once every
	// Watch stream has it, the hub has published all the rest. The hub
	// publishes before the writer hears back, so the mark is set first.
	final.Store(w.maxRev.Load() + 1)
	if _, err := w.write(ctx, dir); err != nil {
		return err
	}
	for range c.watchers {
		select {
		case <-caughtUp:
		case err := <-errs:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("watch streams did not catch up within 10s of the last write")
		}
	}
	cancel()
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Fprintf(out, "writes: %d batches in %s (%.0f/s), each a few mutations\n", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	fmt.Fprintf(out, "Watch, %d subscribers, commit to delivery: %s\n", c.watchers, watchLat.summary())
	fmt.Fprintf(out, "WatchAccess, %d subscribers, %d changes, commit to delivery: %s\n", c.accessWatchers, accessEvents.Load(), accessLat.summary())

	// Writer throughput, without and with one stalled subscriber, in
	// alternating rounds, so that neither gains from going first or last.
	// Throughput falls as the file and the heap grow, so the conditions
	// run in one order and then in the reverse one (ABC CBA), and each
	// is reported as the mean of its two rounds. A reading subscriber is
	// the fair measure of what a stalled one may cost: until it is cut
	// off, the server serves it like any other.
	d := c.duration / 4
	cutOff := true
	conditions := []func() (float64, error){
		func() (float64, error) { return w.flat(ctx, dir, d) },
		func() (float64, error) { return w.reading(ctx, cs[1], dir, d) },
		func() (float64, error) {
			rate, cut, err := w.stalled(ctx, cs[1], dir, d)
			cutOff = cutOff && cut
			return rate, err
		},
	}
	var mean [3]float64
	for _, k := range []int{0, 1, 2, 2, 1, 0} {
		rate, err := conditions[k]()
		if err != nil {
			return err
		}
		mean[k] += rate / 2
	}
	fmt.Fprintf(out, "writer throughput, 32 writers, rounds ABC CBA (writes/s): %.0f with no subscriber, %.0f with one reading subscriber, %.0f with one stalled subscriber (cut off: %v)\n",
		mean[0], mean[1], mean[2], cutOff)
	return nil
}

// reading writes as flat does while one Watch stream on conn is read.
func (w *churn) reading(ctx context.Context, conn *grpc.ClientConn, dir pb.DirectoryServiceClient, d time.Duration) (float64, error) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	err := grpcOpener{conns: []*grpc.ClientConn{conn}}.open(rctx, 0, pb.WatchService_Watch_FullMethodName, &pb.WatchRequest{},
		func(uint64, time.Time, time.Time) {}, func(error) { close(done) })
	if err != nil {
		cancel()
		return 0, err
	}
	rate, err := w.flat(ctx, dir, d)
	cancel()
	<-done
	return rate, err
}

// stalled writes as flat does while one Watch stream on conn is never
// read, and reports whether the server cut that stream off.
func (w *churn) stalled(ctx context.Context, conn *grpc.ClientConn, dir pb.DirectoryServiceClient, d time.Duration) (float64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	stall, err := pb.NewWatchServiceClient(conn).Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		return 0, false, err
	}
	rate, err := w.flat(ctx, dir, d)
	if err != nil {
		return 0, false, err
	}
	// Read what the transport holds: the stream ends cut off, or (if it
	// never fell a whole buffer behind) reaches the last write.
	last := w.maxRev.Load()
	var end error
	for end == nil {
		var m *pb.WatchResponse
		if m, end = stall.Recv(); end == nil && m.GetRevision() >= last {
			break
		}
	}
	return rate, status.Code(end) == codes.ResourceExhausted, nil
}

// churn writes an orggen.Churn load over gRPC.
type churn struct {
	c      *orggen.Churn
	maxRev atomic.Uint64 // the newest revision written
}

func newChurn(org *orggen.Org, watched []string) *churn {
	return &churn{c: orggen.NewChurn(org, watched, 11)}
}

// write writes the next batch and returns its revision.
func (w *churn) write(ctx context.Context, dir pb.DirectoryServiceClient) (uint64, error) {
	batch, undo := w.c.Next()
	req := &pb.WriteRequest{}
	for _, m := range batch {
		req.Mutations = append(req.Mutations, server.MutationToPB(m))
	}
	r, err := dir.Write(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("write %v: %w", batch[0], err)
	}
	w.c.Committed(undo)
	for {
		cur := w.maxRev.Load()
		if r.GetRevision() <= cur || w.maxRev.CompareAndSwap(cur, r.GetRevision()) {
			return r.GetRevision(), nil
		}
	}
}

// paced writes rate batches per second for d, from as many writers as it
// takes to keep the pace, and returns how many it wrote.
func (w *churn) paced(ctx context.Context, dir pb.DirectoryServiceClient, rate int, d time.Duration) (int64, error) {
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	deadline := time.After(d)
	var n atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	slots := make(chan struct{}, 64) // at most 64 writes in flight
	for {
		select {
		case <-deadline:
			wg.Wait()
			select {
			case err := <-errc:
				return n.Load(), err
			default:
				return n.Load(), nil
			}
		case <-tick.C:
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				if _, err := w.write(ctx, dir); err != nil {
					select {
					case errc <- err:
					default:
					}
					return
				}
				n.Add(1)
			}()
		}
	}
}

// flat writes as fast as 32 writers can for d and returns writes per second.
func (w *churn) flat(ctx context.Context, dir pb.DirectoryServiceClient, d time.Duration) (float64, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	deadline := start.Add(d)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := w.write(ctx, dir); err != nil {
					if !errors.Is(err, context.Canceled) {
						once.Do(func() { firstErr = err })
					}
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds(), firstErr
}

// errServerEnd is a stream the server ended cleanly, which a live stream
// never is.
var errServerEnd = errors.New("the server ended the stream")

// orServerEnd is err, or errServerEnd for a stream ended with no error.
func orServerEnd(err error) error {
	if err == nil {
		return errServerEnd
	}
	return err
}

// grpcOpener opens streams with grpc-go clients, a goroutine reading each.
// Unless light, every response is decoded whole, as an integrator's client
// would.
type grpcOpener struct {
	conns []*grpc.ClientConn
	light bool
}

// open starts a call of method with request req on connection i (modulo
// the number), calls each with every response's revision and commit time,
// and end once when the call ends (a Canceled status when ctx ends it).
func (g grpcOpener) open(ctx context.Context, i int, method string, req proto.Message, each func(rev uint64, commit, recv time.Time), end func(error)) error {
	s, err := g.conns[i%len(g.conns)].NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err == nil {
		err = s.SendMsg(req)
	}
	if err == nil {
		err = s.CloseSend()
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", method, err)
	}
	go func() {
		for {
			var m stamped
			var err error
			if g.light {
				err = s.RecvMsg(&m)
			} else {
				err = recvWhole(s, method, &m)
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				end(err)
				return
			}
			each(m.rev, m.commit, time.Now())
		}
	}()
	return nil
}

// stamped is what the readers keep of a stream response.
type stamped struct {
	rev    uint64
	commit time.Time // zero when the response has none
}

// recvWhole receives and decodes a whole response of method, and keeps
// its revision and commit time in m.
func recvWhole(s grpc.ClientStream, method string, m *stamped) error {
	var resp interface {
		proto.Message
		GetRevision() uint64
		GetCommitTime() *timestamppb.Timestamp
	} = &pb.WatchResponse{}
	if method == pb.WatchService_WatchAccess_FullMethodName {
		resp = &pb.WatchAccessResponse{}
	}
	if err := s.RecvMsg(resp); err != nil {
		return err
	}
	m.rev = resp.GetRevision()
	if t := resp.GetCommitTime(); t != nil {
		m.commit = t.AsTime()
	}
	return nil
}

// revisionCodec decodes stream responses (into a *stamped) down to their
// revision and commit time, fields 1 and 2 of WatchResponse and
// WatchAccessResponse, and nothing else: with -light the readers spend as
// little of the shared cores as a grpc-go client can. Everything else is
// encoded and decoded as usual.
type revisionCodec struct{ encoding.CodecV2 }

// Unmarshal decodes data into v.
func (c revisionCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*stamped)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	var err error
	m.rev, m.commit, err = stamp(data.Materialize())
	return err
}
