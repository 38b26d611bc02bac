package server

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/canopy-authz/canopy/graph"
)

// Metrics are Canopy's Prometheus metrics, registered on the registry the
// caller gives (never the global one).
type Metrics struct {
	grpc          *callMetrics
	decisions     *prometheus.CounterVec
	byRight       children[*[8]prometheus.Counter] // decisions' counters, by right and reason
	checkSeconds  prometheus.Histogram
	writeBatch    prometheus.Histogram
	commitSeconds prometheus.Histogram
	commitGroup   prometheus.Histogram
	storageErrors prometheus.Counter
	conflicts     prometheus.Counter
	storeUp       prometheus.Gauge
	storeHead     prometheus.Gauge
	reg           prometheus.Registerer
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg:  reg,
		grpc: newCallMetrics([]float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_decisions_total", Help: "Access decisions by right and outcome.",
		}, []string{"right", "reason"}),
		checkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canopy_check_duration_seconds", Help: "Time to decide one Check in the index, without the network.",
			Buckets: []float64{250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 100e-6, 1e-3},
		}),
		writeBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canopy_write_batch_mutations", Help: "Mutations per committed batch, cascades expanded.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canopy_commit_duration_seconds", Help: "Time to make one group of batches durable (one fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		commitGroup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "canopy_commit_group_batches", Help: "Batches committed together by one fsync.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		storageErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canopy_storage_errors_total", Help: "Commit groups the store failed to make durable (a full disk, a failed sync); none of their writes was committed.",
		}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canopy_commit_conflicts_total", Help: "Commit groups a shared store refused because another node committed first; each is validated again and retried.",
		}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_store_up", Help: "1 when the store's committed revision could be read at the last probe, 0 when not (writes fail; checks answer at the index's revision).",
		}),
		storeHead: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_store_revision", Help: "The newest revision committed to the store, by any node, at the last probe that could read it.",
		}),
	}
	reg.MustRegister(m.grpc.collectors()...)
	reg.MustRegister(m.decisions, m.checkSeconds, m.writeBatch, m.commitSeconds, m.commitGroup, m.storageErrors, m.conflicts, m.storeUp, m.storeHead)
	return m
}

// Observe registers gauges read at scrape time from the index and the
// watch hub. (The store registers its own.)
func (m *Metrics) Observe(ix *graph.Index, hub *Hub) {
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	stat := func(f func(graph.Stats) int) func() float64 {
		return func() float64 { return float64(f(ix.Stats())) }
	}
	gauge("canopy_revision", "The revision the index is at.", func() float64 { return float64(ix.Revision()) })
	gauge("canopy_folders", "Folders in the index.", stat(func(s graph.Stats) int { return s.Folders }))
	gauge("canopy_users", "Users in the index.", stat(func(s graph.Stats) int { return s.Users }))
	gauge("canopy_grants", "Grants in the index.", stat(func(s graph.Stats) int { return s.Grants }))
	gauge("canopy_locks", "Locks in the index.", stat(func(s graph.Stats) int { return s.Locks }))
	gauge("canopy_watch_subscribers", "Watch and WatchAccess streams following live changes.", func() float64 { return float64(hub.Subscribers()) })
	gauge("canopy_watch_buffer_max_depth", "Commits waiting in the fullest Watch or WatchAccess stream's buffer.", func() float64 { return float64(hub.MaxDepth()) })
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "canopy_watch_dropped_total", Help: "Watch and WatchAccess streams ended for falling behind.",
	}, func() float64 { return float64(hub.Dropped()) }))
	gauge("canopy_access_watched_users", "Users whose effective access is streamed (WatchAccess).", stat(func(s graph.Stats) int { return s.Watched }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "canopy_access_apply_seconds_total",
		Help: "Time the index's shadow copy spent applying commits while access was streamed, working out the changes included (off the write lock).",
	}, func() float64 { return ix.Stats().AccessTime.Seconds() }))
	gauge("canopy_access_backlog_commits", "Commits the shadow copy has still to apply before WatchAccess streams hear of them.", stat(func(s graph.Stats) int { return s.AccessBacklog }))
}

// decided counts a decision.
func (m *Metrics) decided(right string, r graph.Reason) {
	if m != nil {
		m.counter(right, r).Inc()
	}
}

// counter returns the decisions counter of right and r. A right's
// counters are looked up by their labels once, not on every decision
// (rights are the catalogue's, few).
func (m *Metrics) counter(right string, r graph.Reason) prometheus.Counter {
	cs, ok := m.byRight.get(right)
	if !ok {
		cs = new([8]prometheus.Counter)
		for r := graph.ReasonAllowed; r <= graph.ReasonLocked; r++ {
			cs[r] = m.decisions.WithLabelValues(right, r.String())
		}
		cs = m.byRight.add(right, cs)
	}
	if int(r) < len(cs) && cs[r] != nil {
		return cs[r]
	}
	return m.decisions.WithLabelValues(right, r.String())
}

// decidedMany counts the decisions ds of reqs, adding to each counter once
// for a run of checks of one right, not once a check.
func (m *Metrics) decidedMany(reqs []graph.CheckRequest, ds []graph.Decision) {
	if m == nil {
		return
	}
	var n [8]float64
	for i, d := range ds {
		switch {
		case d.Reason == 0: // not decided: the item had an error of its own
		case int(d.Reason) >= len(n):
			m.decided(reqs[i].Right, d.Reason)
		default:
			n[d.Reason]++
		}
		if i+1 == len(ds) || reqs[i+1].Right != reqs[i].Right {
			for r, k := range n {
				if k > 0 {
					m.counter(reqs[i].Right, graph.Reason(r)).Add(k)
				}
			}
			n = [8]float64{}
		}
	}
}

// timeCheck records how long one index check took.
func (m *Metrics) timeCheck(d time.Duration) {
	if m != nil {
		m.checkSeconds.Observe(d.Seconds())
	}
}

// Journal wraps j so that every commit group is timed and sized, and
// conflicts counted, and, with tp, traced (canopy.store.append, in the
// trace of the group's first write). A graph.Feed stays one.
func (m *Metrics) Journal(j graph.Journal, tp trace.TracerProvider) graph.Journal {
	t := &timedJournal{j, m, tracer(tp)}
	if f, ok := j.(graph.Feed); ok {
		return &timedFeed{t, f}
	}
	return t
}

// timedFeed is a timed journal that is also a feed.
type timedFeed struct {
	*timedJournal
	f graph.Feed
}

func (t *timedFeed) ReadLog(from uint64, max int) ([]graph.Commit, error) {
	return t.f.ReadLog(from, max)
}

func (t *timedFeed) Follow(ctx context.Context, from uint64, fn func(graph.Commit) error) error {
	return t.f.Follow(ctx, from, fn)
}

type timedJournal struct {
	graph.Journal
	m      *Metrics
	tracer trace.Tracer
}

func (t *timedJournal) Append(ctx context.Context, base uint64, commits []graph.Commit) error {
	start := time.Now()
	ctx, sp := t.tracer.Start(ctx, "canopy.store.append", trace.WithAttributes(attribute.Int("canopy.commits", len(commits)),
		attribute.Int64("canopy.revision.first", int64(base+1)), attribute.Int64("canopy.revision.last", int64(base)+int64(len(commits)))))
	err := t.Journal.Append(ctx, base, commits)
	endSpan(sp, err)
	if errors.Is(err, graph.ErrConflict) {
		t.m.conflicts.Inc()
	} else if err != nil {
		t.m.storageErrors.Inc()
	}
	if err == nil {
		t.m.commitSeconds.Observe(time.Since(start).Seconds())
		t.m.commitGroup.Observe(float64(len(commits)))
		for _, c := range commits {
			t.m.writeBatch.Observe(float64(len(c.Mutations)))
		}
	}
	return err
}

// interceptors returns the gRPC metrics interceptors (none without metrics).
func (m *Metrics) interceptors() ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	if m == nil {
		return nil, nil
	}
	return []grpc.UnaryServerInterceptor{m.grpc.unary}, []grpc.StreamServerInterceptor{m.grpc.stream}
}
