package daemon

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/config"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/capture"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/privtest"
)

// fakeKernel is the program's global counters as a test sets them.
func fakeKernel() bpf.Stats {
	var st bpf.Stats
	st.Packets = [bpf.NumClasses]uint64{100, 2000, 30000, 40, 5}
	st.Bytes = [bpf.NumClasses]uint64{6000, 1_000_000, 6_000_000, 4000, 500}
	st.DroppedPackets, st.DroppedBytes = 25000, 5_000_000
	st.DroppedClassPackets = [bpf.NumClasses]uint64{60, 0, 24940, 0, 0}
	st.DroppedClassBytes = [bpf.NumClasses]uint64{3600, 0, 4_996_400, 0, 0}
	st.UnparsedPackets, st.UnparsedBytes = 7, 700
	st.SourceInsertFailures = 3
	return st
}

var (
	exactBan  = netip.MustParsePrefix("198.18.0.2/32")
	prefixBan = netip.MustParsePrefix("198.19.7.0/24")
	manualBan = netip.MustParsePrefix("2001:db8::/48")
)

// fakeMetrics returns metrics fed two ticks: the first primes the ban book
// (one detector ban, history), the second adds a prefix ban and a manual
// block, with an attack starting, and has traffic from sources at several
// rates.
func fakeMetrics(t *testing.T) *metrics {
	t.Helper()
	m := newMetrics("eth0", "1.2.3", func() (bpf.Stats, error) { return fakeKernel(), nil }, zerolog.Nop())
	m.SetPagingStats(func() []SinkCounters {
		return []SinkCounters{
			{Sink: "oncall", Type: "pagerduty", Delivered: 4, Failed: 1, Dropped: 0, Queued: 2},
			{Sink: "chat", Type: "slack", Delivered: 9},
		}
	})
	now := time.Now()
	end := now.Add(-5 * time.Millisecond)
	tick := &detector.Tick{Start: end.Add(-time.Second), Length: time.Second}
	src := func(pps uint64) detector.Source {
		var s detector.Source
		s.Packets[detector.ClassUDP] = pps
		return s
	}
	tick.Sources = []detector.Source{src(5), src(50), src(500), src(5000), src(50000)}
	ban := func(p netip.Prefix, scope detector.Scope, manual bool) detector.ActiveBan {
		return detector.ActiveBan{Rule: detector.Rule{Prefix: p, TTL: time.Minute, Expires: now.Add(time.Minute)}, Scope: scope, Manual: manual}
	}
	book := []detector.ActiveBan{ban(exactBan, detector.ScopeSource, false)}
	live := capture.LiveStats{Reads: 2, Sources: 1234, Evicted: 56, LastReadTime: 3 * time.Millisecond}
	m.observe(&tickInput{tick: tick, book: book, live: live, capacity: 131072, now: now})

	book = append(book, ban(prefixBan, detector.ScopePrefix, false), ban(manualBan, detector.ScopePrefix, true))
	dry := ban(netip.MustParsePrefix("198.18.9.9/32"), detector.ScopeSource, false)
	dry.DryRun = true
	book = append(book, dry)
	m.observe(&tickInput{
		tick: tick, book: book, live: live, capacity: 131072, now: now, warm: true,
		events:    []detector.Event{{Kind: detector.AttackStart, Scope: detector.ScopeAggregate}, {Kind: detector.Ban, Scope: detector.ScopePrefix}},
		stats:     detector.Stats{Ticks: 2, TrackedSources: 40, TrackedKeys: 52, ActiveBans: 4, BansRefused: 1},
		baselines: []detector.Baseline{{Class: "all", MeanPPS: 100, SigmaPPS: 10, ThresholdPPS: 10000, MeanBPS: 1e5, ThresholdBPS: 1e8, Anomalous: true, Learnt: true}, {Class: "udp", MeanPPS: 50}},
		attacks: []detector.Attack{{Scope: detector.ScopeAggregate, Class: "all"},
			{Scope: detector.ScopeSource, Prefix: netip.MustParsePrefix("198.18.0.2/32")},
			{Scope: detector.ScopeSource, Prefix: netip.MustParsePrefix("198.18.0.3/32")},
			{Scope: detector.ScopePrefix, Prefix: netip.MustParsePrefix("198.19.7.0/24")}},
		sigs: []detector.ActiveSignature{{SignatureRule: detector.SignatureRule{Match: detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}}, Expires: now.Add(time.Minute)}},
			{SignatureRule: detector.SignatureRule{Match: detector.Match{Proto: 17}, Expires: now.Add(-time.Second)}, Manual: true}},
	})
	return m
}

// scrape GETs /metrics from h and returns the text and its parsed families.
func scrape(t *testing.T, h http.Handler) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	return scrapeURL(t, http.DefaultClient, srv.URL+"/metrics")
}

func scrapeURL(t *testing.T, c *http.Client, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s: %s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse the scrape: %v\n%s", err, body)
	}
	return string(body), fams
}

// value returns the value of the series of name with exactly labels
// (name=value pairs), failing t if there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := lookup(fams, name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

func lookup(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsCollector(t *testing.T) {
	m := fakeMetrics(t)
	text, fams := scrape(t, m.handler())
	type check struct {
		name   string
		labels []string
		want   float64
	}
	st := fakeKernel()
	checks := []check{
		{"floodguard_packets_total", []string{"interface", "eth0", "class", "syn"}, 100},
		{"floodguard_packets_total", []string{"interface", "eth0", "class", "udp"}, 30000},
		{"floodguard_bytes_total", []string{"interface", "eth0", "class", "tcp"}, 1_000_000},
		{"floodguard_dropped_packets_total", []string{"interface", "eth0", "class", "udp"}, 24940},
		{"floodguard_dropped_packets_total", []string{"interface", "eth0", "class", "syn"}, 60},
		{"floodguard_dropped_packets_total", []string{"interface", "eth0", "class", "tcp"}, 0},
		{"floodguard_dropped_bytes_total", []string{"interface", "eth0", "class", "udp"}, 4_996_400},
		{"floodguard_passed_packets_total", []string{"interface", "eth0", "class", "udp"}, 30000 - 24940},
		{"floodguard_passed_packets_total", []string{"interface", "eth0", "class", "syn"}, 40},
		{"floodguard_passed_packets_total", []string{"interface", "eth0", "class", "tcp"}, 2000},
		{"floodguard_passed_bytes_total", []string{"interface", "eth0", "class", "udp"}, 6_000_000 - 4_996_400},
		{"floodguard_passed_bytes_total", []string{"interface", "eth0", "class", "other"}, 500},
		{"floodguard_unparsed_packets_total", []string{"interface", "eth0"}, 7},
		{"floodguard_source_insert_failures_total", []string{"interface", "eth0"}, float64(st.SourceInsertFailures)},
		{"floodguard_baseline_packets_per_second", []string{"interface", "eth0", "class", "all"}, 100},
		{"floodguard_baseline_stddev_packets_per_second", []string{"interface", "eth0", "class", "all"}, 10},
		{"floodguard_threshold_packets_per_second", []string{"interface", "eth0", "class", "all"}, 10000},
		{"floodguard_baseline_bytes_per_second", []string{"interface", "eth0", "class", "all"}, 1e5},
		{"floodguard_aggregate_anomalous", []string{"interface", "eth0", "class", "all"}, 1},
		{"floodguard_aggregate_anomalous", []string{"interface", "eth0", "class", "udp"}, 0},
		{"floodguard_warmed_up", nil, 1},
		{"floodguard_dry_run", nil, 0},
		// The dry-run ban is no rule.
		{"floodguard_rules_active", []string{"kind", "exact", "origin", "detector"}, 1},
		{"floodguard_rules_active", []string{"kind", "prefix", "origin", "detector"}, 1},
		{"floodguard_rules_active", []string{"kind", "prefix", "origin", "manual"}, 1},
		{"floodguard_rules_active", []string{"kind", "exact", "origin", "manual"}, 0},
		{"floodguard_rules_active", []string{"kind", "signature", "origin", "detector"}, 1},
		{"floodguard_rules_active", []string{"kind", "signature", "origin", "manual"}, 0},
		// The first tick's ban is history; the second tick's three count.
		{"floodguard_bans_total", []string{"scope", "source", "origin", "detector"}, 1},
		{"floodguard_bans_total", []string{"scope", "prefix", "origin", "detector"}, 1},
		{"floodguard_bans_total", []string{"scope", "prefix", "origin", "manual"}, 1},
		{"floodguard_unbans_total", []string{"scope", "source", "origin", "detector"}, 0},
		{"floodguard_bans_refused_total", nil, 1},
		{"floodguard_attacks_in_progress", []string{"scope", "aggregate"}, 1},
		{"floodguard_attacks_in_progress", []string{"scope", "source"}, 2},
		{"floodguard_attacks_in_progress", []string{"scope", "prefix"}, 1},
		{"floodguard_attacks_total", []string{"scope", "aggregate"}, 1},
		{"floodguard_attacks_total", []string{"scope", "source"}, 0},
		{"floodguard_tracked_sources", nil, 40},
		{"floodguard_tracked_prefixes", nil, 12},
		{"floodguard_tick_sources", nil, 5},
		{"floodguard_tick_sources_over_rate", []string{"min_pps", "10"}, 4},
		{"floodguard_tick_sources_over_rate", []string{"min_pps", "100"}, 3},
		{"floodguard_tick_sources_over_rate", []string{"min_pps", "1000"}, 2},
		{"floodguard_tick_sources_over_rate", []string{"min_pps", "10000"}, 1},
		{"floodguard_source_map_entries", nil, 1234},
		{"floodguard_source_map_capacity", nil, 131072},
		{"floodguard_source_map_evictions_total", nil, 56},
		{"floodguard_ticks_total", nil, 2},
		{"floodguard_tick_duration_seconds", nil, 2}, // observations
		{"floodguard_map_read_duration_seconds", nil, 2},
		{"floodguard_paging_deliveries_total", []string{"sink", "oncall", "type", "pagerduty"}, 4},
		{"floodguard_paging_failures_total", []string{"sink", "oncall", "type", "pagerduty"}, 1},
		{"floodguard_paging_dropped_total", []string{"sink", "chat", "type", "slack"}, 0},
		{"floodguard_paging_queue_length", []string{"sink", "oncall", "type", "pagerduty"}, 2},
		{"floodguard_build_info", []string{"version", "1.2.3", "revision", buildRevision(), "goversion", runtime.Version()}, 1},
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v := value(t, fams, "floodguard_last_tick_timestamp_seconds"); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("floodguard_last_tick_timestamp_seconds = %v, not recent", v)
	}
	if h := fams["floodguard_tick_duration_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleSum() <= 0 || h.GetSampleSum() > 1 {
		t.Errorf("tick duration sum %v s for two ticks that took about 5 ms", h.GetSampleSum())
	}
	// Types follow the suffixes.
	for name, f := range fams {
		if !strings.HasPrefix(name, "floodguard_") {
			continue
		}
		isCounter := f.GetType() == dto.MetricType_COUNTER
		if strings.HasSuffix(name, "_total") != isCounter {
			t.Errorf("%s is a %v", name, f.GetType())
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "source" || l.GetName() == "target" || l.GetName() == "prefix" {
					t.Errorf("%s has an unbounded label %s", name, l.GetName())
				}
			}
		}
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	promtoolCheckMetrics(t, text)
}

// TestMetricsBeforeFirstTick: a scrape before any tick has the kernel
// counters and build info, and no snapshot series; the paging series are
// absent without a dispatcher.
func TestMetricsBeforeFirstTick(t *testing.T) {
	m := newMetrics("eth0", "", func() (bpf.Stats, error) { return fakeKernel(), nil }, zerolog.Nop())
	text, fams := scrape(t, m.handler())
	value(t, fams, "floodguard_packets_total", "interface", "eth0", "class", "icmp")
	value(t, fams, "floodguard_build_info", "version", "dev", "revision", buildRevision(), "goversion", runtime.Version())
	for _, name := range []string{"floodguard_rules_active", "floodguard_paging_deliveries_total"} {
		if fams[name] != nil {
			t.Errorf("%s before the first tick or without paging", name)
		}
	}
	promtoolCheckMetrics(t, text)
}

// TestMetricsKernelError: a failed kernel read fails only its series; the
// rest is still served.
func TestMetricsKernelError(t *testing.T) {
	m := newMetrics("eth0", "", func() (bpf.Stats, error) { return bpf.Stats{}, errors.New("map gone") }, zerolog.Nop())
	_, fams := scrape(t, m.handler())
	if fams["floodguard_packets_total"] != nil {
		t.Error("kernel series despite the failed read")
	}
	value(t, fams, "floodguard_build_info", "version", "dev", "revision", buildRevision(), "goversion", runtime.Version())
	// After stop the kernel is not read at all.
	m.stop()
	_, fams = scrape(t, m.handler())
	if fams["floodguard_packets_total"] != nil {
		t.Error("kernel series after stop")
	}
}

// TestMetricsPassedMonotonic: passed counts never go backwards even if a
// read sees a drop before the frame it dropped.
func TestMetricsPassedMonotonic(t *testing.T) {
	st := fakeKernel()
	m := newMetrics("eth0", "", func() (bpf.Stats, error) { return st, nil }, zerolog.Nop())
	_, fams := scrape(t, m.handler())
	first := value(t, fams, "floodguard_passed_packets_total", "interface", "eth0", "class", "udp")
	st.DroppedPackets += 10 // dropped counted, seen not yet
	st.DroppedClassPackets[detector.ClassUDP] += 10
	_, fams = scrape(t, m.handler())
	if got := value(t, fams, "floodguard_passed_packets_total", "interface", "eth0", "class", "udp"); got != first {
		t.Errorf("passed went from %v to %v", first, got)
	}
}

func TestMetricsUnbans(t *testing.T) {
	m := newMetrics("eth0", "", nil, zerolog.Nop())
	now := time.Now()
	ab := func(p netip.Prefix, manual bool) detector.ActiveBan {
		return detector.ActiveBan{Rule: detector.Rule{Prefix: p, Expires: now.Add(time.Minute)}, Scope: scopeOf(p), Manual: manual}
	}
	m.diffBook(nil)
	m.diffBook([]detector.ActiveBan{ab(exactBan, false), ab(prefixBan, false)})
	m.diffBook([]detector.ActiveBan{ab(exactBan, true)}) // blocked by hand; prefix lifted
	m.diffBook(nil)
	_, fams := scrape(t, m.handler())
	for _, c := range []struct {
		name, scope, origin string
		want                float64
	}{
		{"floodguard_bans_total", "source", "detector", 1},
		{"floodguard_bans_total", "source", "manual", 1},
		{"floodguard_bans_total", "prefix", "detector", 1},
		{"floodguard_unbans_total", "prefix", "detector", 1},
		{"floodguard_unbans_total", "source", "manual", 1},
		{"floodguard_unbans_total", "source", "detector", 0},
	} {
		if got := value(t, fams, c.name, "scope", c.scope, "origin", c.origin); got != c.want {
			t.Errorf("%s{scope=%s,origin=%s} = %v, want %v", c.name, c.scope, c.origin, got, c.want)
		}
	}
}

func scopeOf(p netip.Prefix) detector.Scope {
	if p.IsSingleIP() {
		return detector.ScopeSource
	}
	return detector.ScopePrefix
}

func TestMetricsIndexAndServer(t *testing.T) {
	m := newMetrics("eth0", "", nil, zerolog.Nop())
	if err := m.listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer m.stop()
	base := "http://" + m.ln.Addr().String()
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `href="/metrics"`) {
		t.Errorf("GET /: %s %q", resp.Status, body)
	}
	resp, err = http.Get(base + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %s", resp.Status)
	}
	scrapeURL(t, http.DefaultClient, base+"/metrics")
	m.stop()
	if _, err := http.Get(base + "/metrics"); err == nil {
		t.Error("still serving after stop")
	}
}

func TestCheckListen(t *testing.T) {
	for addr, ok := range map[string]bool{
		"": true, "127.0.0.1:9797": true, "[::1]:9797": true, ":9797": true, "localhost:9797": true,
		"127.0.0.1": false, "127.0.0.1:0": false, "127.0.0.1:http": false, "127.0.0.1:70000": false,
	} {
		if err := config.CheckListen(addr); (err == nil) != ok {
			t.Errorf("CheckListen(%q) = %v", addr, err)
		}
	}
	_, err := config.Parse([]byte("daemon:\n  metrics_listen: 9797\n"))
	if err == nil || !strings.Contains(err.Error(), "daemon.metrics_listen") {
		t.Errorf("metrics_listen: 9797 accepted or error without the key: %v", err)
	}
	f, err := config.Parse([]byte("daemon:\n  metrics_listen: 127.0.0.1:9797\n"))
	if err != nil || f.Daemon.MetricsListen != "127.0.0.1:9797" {
		t.Errorf("metrics_listen: 127.0.0.1:9797: %v, %q", err, f.Daemon.MetricsListen)
	}
}

// promtoolCheckMetrics lints a scrape with `promtool check metrics`.
func promtoolCheckMetrics(t *testing.T, text string) {
	t.Helper()
	out, err := promtool(t, text, "check", "metrics")
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// promtool runs /usr/bin/promtool (Debian package prometheus) with stdin.
func promtool(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		privtest.SkipOrFail(t, "promtool not installed (apt-get install prometheus): %v", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestMetricsConcurrentScrape: scrapes run while the tick loop observes
// (run with -race).
func TestMetricsConcurrentScrape(t *testing.T) {
	m := fakeMetrics(t)
	srv := httptest.NewServer(m.handler())
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		now := time.Now()
		tick := &detector.Tick{Start: now.Add(-time.Second), Length: time.Second, Sources: make([]detector.Source, 3)}
		for i := range 200 {
			var book []detector.ActiveBan
			if i%2 == 0 {
				book = []detector.ActiveBan{{Rule: detector.Rule{Prefix: exactBan, Expires: now.Add(time.Minute)}, Scope: detector.ScopeSource}}
			}
			m.observe(&tickInput{tick: tick, book: book, now: now})
		}
	}()
	for range 20 {
		scrapeURL(t, http.DefaultClient, srv.URL+"/metrics")
	}
	<-done
	_, fams := scrapeURL(t, http.DefaultClient, srv.URL+"/metrics")
	if got := value(t, fams, "floodguard_ticks_total"); got != 202 {
		t.Errorf("floodguard_ticks_total = %v, want 202", got)
	}
	if got := value(t, fams, "floodguard_bans_total", "scope", "source", "origin", "detector"); got != 1+99 {
		t.Errorf("bans_total{source,detector} = %v, want 100 (1 before, 99 in the loop)", got)
	}
}
