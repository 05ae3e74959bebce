package daemon

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/capture"
	"github.com/floodguard/floodguard/detector"
)

// Prometheus metrics (`daemon.metrics_listen`, `floodguard run
// --metrics-listen`). The tick loop publishes a snapshot of what only it may
// read (the detector engine is not safe for concurrent use) once per tick,
// under a mutex held for a pointer swap; a scrape reads that snapshot and
// the kernel's global counters (a per-CPU array lookup) and never waits for
// the tick loop. Histograms and event counters are updated by the tick loop
// itself (they are safe for concurrent use). Labels take bounded values
// only: never an address or a prefix.
//
// This file is the collector: its series, the snapshot and how a tick
// updates them. metrics_http.go serves it.

// metricsNamespace prefixes every floodguard series.
const metricsNamespace = "floodguard"

// SinkCounters are one paging sink's delivery counters, for metrics.
type SinkCounters struct {
	Sink, Type                 string
	Delivered, Failed, Dropped uint64
	Queued                     int
}

// Label values.
var (
	ruleKinds   = [...]string{"exact", "prefix", "signature"}
	ruleOrigins = [...]string{"detector", "manual"}
	scopes      = [...]string{"source", "prefix", "aggregate"}
	// rateBands are the lower bounds (pps) of floodguard_tick_sources_over_rate.
	rateBands = [...]float64{10, 100, 1000, 10000}
)

// metricsSnapshot is what the tick loop publishes each tick. It is never
// modified once published.
type metricsSnapshot struct {
	lastTick        time.Time
	warm, dryRun    bool
	baselines       []detector.Baseline
	rules           [len(ruleKinds)][len(ruleOrigins)]int
	attacks         [len(scopes)]int
	trackedSources  int
	trackedPrefixes int
	tickSources     int
	overRate        [len(rateBands)]int
	mapEntries      int
	mapCapacity     uint32
	evictions       uint64
	partialReads    uint64
	probRecords     int
	sampledTicks    uint64
	bansRefused     uint64
}

// bookEntry is what the previous tick's ban book said of a prefix.
type bookEntry struct {
	scope  string
	manual bool
}

// metrics is the daemon's Prometheus collector and its HTTP server.
type metrics struct {
	iface   string
	version string
	reg     *prometheus.Registry
	log     zerolog.Logger

	// Updated by the tick loop, read by scrapes.
	ticks        prometheus.Counter
	bans         *prometheus.CounterVec
	unbans       *prometheus.CounterVec
	attacksTotal *prometheus.CounterVec
	tickDuration prometheus.Histogram
	readDuration prometheus.Histogram

	mu          sync.Mutex
	snap        *metricsSnapshot
	pagingStats func() []SinkCounters

	// kmu serialises kernel reads with stop: once kernel is nil the maps
	// may be closed.
	kmu    sync.Mutex
	kernel func() (bpf.Stats, error)
	// passed keeps floodguard_passed_*_total monotonic: they are computed
	// from two counters read at slightly different instants per CPU.
	passedPackets, passedBytes [detector.NumClasses]uint64

	// prevBook is the ban book at the previous tick (tick loop only).
	prevBook   map[netip.Prefix]bookEntry
	bookPrimed bool

	// The HTTP server, run by metrics_http.go.
	srv *http.Server
	ln  net.Listener
}

var (
	descPackets = newDesc("packets_total", "Frames with a readable IP source seen by the XDP program, dropped or not, by protocol class.", "interface", "class")
	descBytes   = newDesc("bytes_total", "Wire bytes of the frames counted by floodguard_packets_total, by protocol class.", "interface", "class")
	descDropP   = newDesc("dropped_packets_total", "Frames dropped by a rule in the XDP program, by protocol class.", "interface", "class")
	descDropB   = newDesc("dropped_bytes_total", "Wire bytes of the frames dropped by a rule in the XDP program, by protocol class.", "interface", "class")
	descPassP   = newDesc("passed_packets_total", "Frames with a readable IP source the XDP program passed to the network stack, by protocol class (unparsed frames, also passed, are in floodguard_unparsed_packets_total).", "interface", "class")
	descPassB   = newDesc("passed_bytes_total", "Wire bytes of the frames counted by floodguard_passed_packets_total, by protocol class.", "interface", "class")
	descUnparsP = newDesc("unparsed_packets_total", "Frames passed without a readable IP source address (never dropped).", "interface")
	descUnparsB = newDesc("unparsed_bytes_total", "Wire bytes of the frames passed without a readable IP source address.", "interface")
	descInsFail = newDesc("source_insert_failures_total", "Frames whose source could not be tracked because the per-source map was full.", "interface")
	descProbP   = newDesc("probation_packets_total", "Frames of new sources on probation (not yet given a per-source entry: past the admission budget, fewer frames than daemon.admit_after), counted in the totals and, through floodguard_probation_records, in their prefixes.", "interface")
	descAdmit   = newDesc("sources_admitted_total", "Sources given a per-source entry by the XDP program.", "interface")
	descTrips   = newDesc("trips_total", "Sources the XDP program reported mid-tick as having reached their trip level (the count at which the tick's end would find them over threshold).", "interface")
	descTripCap = newDesc("trips_capped_total", "Trips not reported: over the per-CPU cap per tick, or the ring buffer full (the tick's end judges those sources).", "interface")

	descBaseP    = newDesc("baseline_packets_per_second", "Learnt mean rate of the aggregate traffic (EWMA), by class (all: every class).", "interface", "class")
	descSigmaP   = newDesc("baseline_stddev_packets_per_second", "Standard deviation of the aggregate rate around its baseline, by class.", "interface", "class")
	descThreshP  = newDesc("threshold_packets_per_second", "Aggregate rate above which a class is anomalous now (the ceiling during the warm-up).", "interface", "class")
	descBaseB    = newDesc("baseline_bytes_per_second", "Learnt mean byte rate of the aggregate traffic (EWMA), by class.", "interface", "class")
	descSigmaB   = newDesc("baseline_stddev_bytes_per_second", "Standard deviation of the aggregate byte rate around its baseline, by class.", "interface", "class")
	descThreshB  = newDesc("threshold_bytes_per_second", "Aggregate byte rate above which a class is anomalous now.", "interface", "class")
	descAnomal   = newDesc("aggregate_anomalous", "1 while the aggregate traffic of the class is judged anomalous.", "interface", "class")
	descWarm     = newDesc("warmed_up", "1 once the warm-up is over and traffic is judged against learnt baselines.")
	descDryRun   = newDesc("dry_run", "1 when bans are decided and reported but no rule is installed.")
	descLastTick = newDesc("last_tick_timestamp_seconds", "Unix time at which the last processed tick ended.")

	descRules    = newDesc("rules_active", "Drop rules in force (not expired, dry-run bans excluded), by kind (exact, prefix, signature) and origin.", "kind", "origin")
	descAttacks  = newDesc("attacks_in_progress", "Attacks in progress, by scope.", "scope")
	descTracked  = newDesc("tracked_sources", "Source addresses the detector keeps a baseline for.")
	descTrackedP = newDesc("tracked_prefixes", "Source prefixes the detector keeps a baseline for.")
	descTickSrc  = newDesc("tick_sources", "Sources that sent anything in the last tick.")
	descOverRate = newDesc("tick_sources_over_rate", "Sources whose rate in the last tick was at least min_pps packets per second.", "min_pps")
	descMapEnt   = newDesc("source_map_entries", "Entries in the kernel's per-source map at the last read.")
	descMapCap   = newDesc("source_map_capacity", "Capacity of the kernel's per-source map.")
	descEvict    = newDesc("source_map_evictions_total", "Idle sources removed from the kernel's per-source map.")
	descPartial  = newDesc("source_reads_partial_total", "Ticks whose read of the per-source map stopped at half a tick, leaving the rest to the next (per-source view spread over ticks; totals and rules unaffected).")
	descProbRec  = newDesc("probation_records", "Records of sources on probation (frames by address, counted in their prefixes) read in the last tick.")
	descSampled  = newDesc("probation_records_sampled_total", "Ticks with more probation records than the detector takes one by one, of which a scaled sample was counted in the prefixes (prefix rates estimated; totals and rules unaffected).")
	descRefused  = newDesc("bans_refused_total", "Bans the detector decided but did not install (allowlist, limits, rule write errors).")

	descPageOK    = newDesc("paging_deliveries_total", "Pages delivered, by sink.", "sink", "type")
	descPageFail  = newDesc("paging_failures_total", "Failed page delivery attempts, by sink.", "sink", "type")
	descPageDrop  = newDesc("paging_dropped_total", "Pages given up on (permanent error or queue overflow), by sink.", "sink", "type")
	descPageQueue = newDesc("paging_queue_length", "Pages waiting for delivery, by sink.", "sink", "type")

	descBuild = newDesc("build_info", "A metric with a constant 1 value labelled with floodguard's version, revision and Go version.", "version", "revision", "goversion")
)

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, "", name), help, labels, nil)
}

// durationBuckets span 250µs to about 4s: a tick's work is normally a few
// milliseconds, and half a tick is already a problem.
var durationBuckets = prometheus.ExponentialBuckets(0.00025, 2, 15)

// newMetrics returns the collector for iface with its own registry (never
// the global one), holding floodguard's series and the Go runtime's and
// process's. kernel reads the program's global counters (nil: none).
func newMetrics(iface, version string, kernel func() (bpf.Stats, error), log zerolog.Logger) *metrics {
	if version == "" {
		version = "dev"
	}
	m := &metrics{
		iface: iface, version: version, kernel: kernel, log: log,
		reg: prometheus.NewRegistry(),
		ticks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "ticks_total",
			Help: "Ticks processed: kernel counters read and judged.",
		}),
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "bans_total",
			Help: "Bans added to the detector's book (renewals excluded, dry-run bans included), by scope and origin.",
		}, []string{"scope", "origin"}),
		unbans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "unbans_total",
			Help: "Bans lifted (expired or unblocked by hand), by scope and origin.",
		}, []string{"scope", "origin"}),
		attacksTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "attacks_total",
			Help: "Attacks detected (attack_start events), by scope.",
		}, []string{"scope"}),
		tickDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "tick_duration_seconds",
			Help:    "Time from a tick's start to the end of its processing: kernel map read, detection, rule writes, logging.",
			Buckets: durationBuckets,
		}),
		readDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "map_read_duration_seconds",
			Help:    "Time to read the kernel's counters and per-source map, once per tick.",
			Buckets: durationBuckets,
		}),
	}
	// Every label combination exists from the start, so rate() and
	// absent() behave before the first event.
	for _, s := range scopes {
		m.attacksTotal.WithLabelValues(s)
		for _, o := range ruleOrigins {
			if s != "aggregate" {
				m.bans.WithLabelValues(s, o)
				m.unbans.WithLabelValues(s, o)
			}
		}
	}
	m.reg.MustRegister(m, m.ticks, m.bans, m.unbans, m.attacksTotal, m.tickDuration, m.readDuration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetPagingStats sets where the paging series come from (nil: none). f is
// called at scrape time from the HTTP server's goroutines, so it must be
// safe for concurrent use and must not touch the detector engine. It does
// nothing on a nil receiver (metrics off): call d.metrics.SetPagingStats
// after startMetrics unconditionally.
func (m *metrics) SetPagingStats(f func() []SinkCounters) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.pagingStats = f
	m.mu.Unlock()
}

// publish makes s what scrapes see.
func (m *metrics) publish(s *metricsSnapshot) {
	m.mu.Lock()
	m.snap = s
	m.mu.Unlock()
}

// Describe sends nothing: the collector is unchecked, as its paging series
// depend on the configured sinks.
func (m *metrics) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descBuild, 1, m.version, buildRevision(), runtime.Version())

	m.collectKernel(ch, counter)

	m.mu.Lock()
	s, paging := m.snap, m.pagingStats
	m.mu.Unlock()
	if paging != nil {
		for _, c := range paging() {
			counter(descPageOK, c.Delivered, c.Sink, c.Type)
			counter(descPageFail, c.Failed, c.Sink, c.Type)
			counter(descPageDrop, c.Dropped, c.Sink, c.Type)
			gauge(descPageQueue, float64(c.Queued), c.Sink, c.Type)
		}
	}
	if s == nil {
		return // no tick yet
	}
	for _, b := range s.baselines {
		gauge(descBaseP, b.MeanPPS, m.iface, b.Class)
		gauge(descSigmaP, b.SigmaPPS, m.iface, b.Class)
		gauge(descThreshP, b.ThresholdPPS, m.iface, b.Class)
		gauge(descBaseB, b.MeanBPS, m.iface, b.Class)
		gauge(descSigmaB, b.SigmaBPS, m.iface, b.Class)
		gauge(descThreshB, b.ThresholdBPS, m.iface, b.Class)
		gauge(descAnomal, boolFloat(b.Anomalous), m.iface, b.Class)
	}
	gauge(descWarm, boolFloat(s.warm))
	gauge(descDryRun, boolFloat(s.dryRun))
	gauge(descLastTick, float64(s.lastTick.UnixNano())/1e9)
	for k, kind := range ruleKinds {
		for o, origin := range ruleOrigins {
			gauge(descRules, float64(s.rules[k][o]), kind, origin)
		}
	}
	for i, scope := range scopes {
		gauge(descAttacks, float64(s.attacks[i]), scope)
	}
	gauge(descTracked, float64(s.trackedSources))
	gauge(descTrackedP, float64(s.trackedPrefixes))
	gauge(descTickSrc, float64(s.tickSources))
	for i, r := range rateBands {
		gauge(descOverRate, float64(s.overRate[i]), strconv.FormatFloat(r, 'f', -1, 64))
	}
	gauge(descMapEnt, float64(s.mapEntries))
	gauge(descMapCap, float64(s.mapCapacity))
	counter(descEvict, s.evictions)
	counter(descPartial, s.partialReads)
	gauge(descProbRec, float64(s.probRecords))
	counter(descSampled, s.sampledTicks)
	counter(descRefused, s.bansRefused)
}

// collectKernel reads the program's global counters now.
func (m *metrics) collectKernel(ch chan<- prometheus.Metric, counter func(*prometheus.Desc, uint64, ...string)) {
	m.kmu.Lock()
	defer m.kmu.Unlock()
	if m.kernel == nil {
		return
	}
	st, err := m.kernel()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPackets, fmt.Errorf("read kernel counters: %w", err))
		return
	}
	for c := range detector.NumClasses {
		name := c.String()
		counter(descPackets, st.Packets[c], m.iface, name)
		counter(descBytes, st.Bytes[c], m.iface, name)
		// A frame is counted as seen, then (if dropped) as dropped;
		// per-CPU copies are read one after the other, so the difference
		// can briefly lag: never let it go backwards.
		m.passedPackets[c] = max(m.passedPackets[c], sub(st.Packets[c], st.DroppedClassPackets[c]))
		m.passedBytes[c] = max(m.passedBytes[c], sub(st.Bytes[c], st.DroppedClassBytes[c]))
		counter(descDropP, st.DroppedClassPackets[c], m.iface, name)
		counter(descDropB, st.DroppedClassBytes[c], m.iface, name)
		counter(descPassP, m.passedPackets[c], m.iface, name)
		counter(descPassB, m.passedBytes[c], m.iface, name)
	}
	counter(descUnparsP, st.UnparsedPackets, m.iface)
	counter(descUnparsB, st.UnparsedBytes, m.iface)
	counter(descInsFail, st.SourceInsertFailures, m.iface)
	counter(descProbP, st.ProbationPackets, m.iface)
	counter(descAdmit, st.Admitted, m.iface)
	counter(descTrips, st.Trips, m.iface)
	counter(descTripCap, st.TripsCapped, m.iface)
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// buildRevision is the VCS revision the binary was built from, if the
// build recorded it.
func buildRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// tickInput is what observe needs of a tick, gathered by the tick loop.
type tickInput struct {
	tick      *detector.Tick
	events    []detector.Event
	stats     detector.Stats
	baselines []detector.Baseline
	book      []detector.ActiveBan // nil when the book is empty
	sigs      []detector.ActiveSignature
	attacks   []detector.Attack // engine.Attacks()
	live      capture.LiveStats
	capacity  uint32
	dryRun    bool
	warm      bool
	now       time.Time
}

// observe updates the counters and histograms with one tick and publishes
// its snapshot. It runs on the tick loop.
func (m *metrics) observe(in *tickInput) {
	t := in.tick
	m.ticks.Inc()
	m.readDuration.Observe(in.live.LastReadTime.Seconds())
	m.tickDuration.Observe(max(in.now.Sub(t.End()), 0).Seconds())
	for i := range in.events {
		if ev := &in.events[i]; ev.Kind == detector.AttackStart {
			m.attacksTotal.WithLabelValues(ev.Scope.String()).Inc()
		}
	}
	m.diffBook(in.book)

	s := &metricsSnapshot{
		lastTick: t.End(), warm: in.warm, dryRun: in.dryRun,
		baselines:       in.baselines,
		trackedSources:  in.stats.TrackedSources,
		trackedPrefixes: in.stats.TrackedKeys - in.stats.TrackedSources,
		tickSources:     len(t.Sources),
		mapEntries:      in.live.Sources,
		mapCapacity:     in.capacity,
		evictions:       in.live.Evicted,
		partialReads:    in.live.PartialReads,
		probRecords:     in.live.ProbationRecords,
		sampledTicks:    in.live.SampledTicks,
		bansRefused:     in.stats.BansRefused,
	}
	for i := range in.book {
		b := &in.book[i]
		if b.DryRun || !b.Expires.After(in.now) {
			continue
		}
		k, o := 1, 0
		if b.Prefix.IsSingleIP() {
			k = 0
		}
		if b.Manual {
			o = 1
		}
		s.rules[k][o]++
	}
	for i := range in.sigs {
		sg := &in.sigs[i]
		if sg.DryRun || !sg.Expires.After(in.now) {
			continue
		}
		o := 0
		if sg.Manual {
			o = 1
		}
		s.rules[2][o]++
	}
	for _, a := range in.attacks {
		for i := range scopes {
			if scopes[i] == a.Scope.String() {
				s.attacks[i]++
			}
		}
	}
	if secs := t.Length.Seconds(); secs > 0 {
		for i := range t.Sources {
			pps := float64(t.Sources[i].TotalPackets()) / secs
			for j := range rateBands {
				if pps >= rateBands[j] {
					s.overRate[j]++
				}
			}
		}
	}
	m.publish(s)
}

// diffBook counts bans and unbans by comparing the ban book with the
// previous tick's: a prefix that appears was banned (by the detector or an
// operator), one that disappears was lifted, one that turns manual was
// blocked by an operator. Renewals change nothing. The first book seen
// (restored from a snapshot) is history, not counted.
func (m *metrics) diffBook(book []detector.ActiveBan) {
	cur := make(map[netip.Prefix]bookEntry, len(book))
	for i := range book {
		b := &book[i]
		cur[b.Prefix] = bookEntry{scope: b.Scope.String(), manual: b.Manual}
	}
	if m.bookPrimed {
		for p, e := range cur {
			old, ok := m.prevBook[p]
			if !ok || (e.manual && !old.manual) {
				m.bans.WithLabelValues(e.scope, originName(e.manual)).Inc()
			}
		}
		for p, e := range m.prevBook {
			if _, ok := cur[p]; !ok {
				m.unbans.WithLabelValues(e.scope, originName(e.manual)).Inc()
			}
		}
	}
	m.prevBook, m.bookPrimed = cur, true
}

func originName(manual bool) string {
	if manual {
		return "manual"
	}
	return "detector"
}

// observeTick feeds one tick to the metrics, if they are on.
func (d *daemon) observeTick(t *detector.Tick, evs []detector.Event, live *capture.Live) {
	if d.metrics == nil {
		return
	}
	st := d.eng.Stats()
	in := &tickInput{
		tick: t, events: evs, stats: st,
		baselines: d.eng.Baselines(),
		attacks:   d.eng.Attacks(),
		sigs:      d.eng.Signatures(),
		live:      live.Stats(),
		capacity:  d.x.MaxSources(),
		dryRun:    d.file.Bans.DryRun,
		warm:      d.warm,
		now:       time.Now(),
	}
	// Copying the book costs one allocation per ban: skip it when empty.
	if st.ActiveBans > 0 || len(d.metrics.prevBook) > 0 {
		in.book = d.eng.Bans()
	}
	d.metrics.observe(in)
}
