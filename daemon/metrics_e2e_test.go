package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/floodguard/floodguard/internal/privtest"
)

// metricsAddr is where the daemon serves metrics inside the victim
// namespace (a fresh namespace: the port is free).
const metricsAddr = "127.0.0.1:9797"

// metricsScraper scrapes the daemon's /metrics from inside the victim
// namespace.
type metricsScraper struct {
	t    *testing.T
	http *http.Client
}

func (e *e2e) metricsScraper() *metricsScraper {
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := e.victim.Do(func() error {
				var err error
				c, err = dialer.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
	return &metricsScraper{t: e.t, http: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// get scrapes once and returns the text and the parsed families.
func (s *metricsScraper) get() (string, map[string]*dto.MetricFamily, error) {
	resp, err := s.http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, fmt.Errorf("read the scrape: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("scrape: %s: %s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return "", nil, fmt.Errorf("parse the scrape: %w", err)
	}
	return string(body), fams, nil
}

// waitTicks scrapes until floodguard_ticks_total reaches n (at most 10 s)
// and returns that scrape.
func (s *metricsScraper) waitTicks(n float64) (string, map[string]*dto.MetricFamily) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		text, fams, err := s.get()
		if err == nil && series(fams, "floodguard_ticks_total") >= n {
			return text, fams
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("floodguard_ticks_total did not reach %v: %v\n%s", n, err, text)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// series is the value of the series of name with exactly labels
// (name=value pairs), or -1 if there is none; a histogram's is its count.
func series(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range fams[name].GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestE2EMetrics: `floodguard run --metrics-listen` serves Prometheus
// metrics while it runs: kernel counters that count the frames sent, tick
// and map-read histograms, baselines, an operator's rule by kind and
// origin and the frames it drops, build info; the text passes `promtool
// check metrics`, and the server is gone once the daemon stopped.
func TestE2EMetrics(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.spawn(fgBin, "run", "--interface", "vb", "--config", e.config, "--log-format", "json", "--metrics-listen", metricsAddr)
	if _, _, err := d.Log.WaitEvent(0, 10*time.Second, "metrics_listening", nil); err != nil {
		t.Fatalf("daemon does not serve metrics: %v", err)
	}
	s := e.metricsScraper()
	const iface = "vb"
	_, before := s.waitTicks(1)
	udpBefore := series(before, "floodguard_packets_total", "interface", iface, "class", "udp")
	if udpBefore < 0 {
		t.Fatalf("no floodguard_packets_total{class=udp}")
	}

	got := e.probe(client4)
	text, fams := s.waitTicks(series(before, "floodguard_ticks_total") + 2)
	if d := series(fams, "floodguard_packets_total", "interface", iface, "class", "udp") - udpBefore; d < probeFrames {
		t.Errorf("floodguard_packets_total{class=udp} grew by %v, %d frames were sent (%d received)", d, probeFrames, got)
	}
	if b := series(fams, "floodguard_bytes_total", "interface", iface, "class", "udp"); b < probeFrames*frameSize {
		t.Errorf("floodguard_bytes_total{class=udp} = %v, under the %d bytes sent", b, probeFrames*frameSize)
	}
	if p := series(fams, "floodguard_passed_packets_total", "interface", iface, "class", "udp"); p < probeFrames {
		t.Errorf("floodguard_passed_packets_total{class=udp} = %v, want at least %d", p, probeFrames)
	}
	if bi := fams["floodguard_build_info"].GetMetric(); len(bi) != 1 || bi[0].GetGauge().GetValue() != 1 || !hasLabel(bi[0], "version", "dev") {
		t.Errorf("floodguard_build_info: %v, want one series with version=dev", bi)
	}
	for _, h := range []string{"floodguard_tick_duration_seconds", "floodguard_map_read_duration_seconds"} {
		if n := series(fams, h); n < 2 {
			t.Errorf("%s has %v observations after more than two ticks", h, n)
		}
	}
	if c := series(fams, "floodguard_source_map_capacity"); c != 131072 {
		t.Errorf("floodguard_source_map_capacity = %v, want the config's 131072", c)
	}
	if n := series(fams, "floodguard_source_map_entries"); n < 1 {
		t.Errorf("floodguard_source_map_entries = %v after a probe", n)
	}
	if v := series(fams, "floodguard_baseline_packets_per_second", "interface", iface, "class", "all"); v < 0 {
		t.Error("no floodguard_baseline_packets_per_second{class=all}")
	}
	if v := series(fams, "floodguard_threshold_packets_per_second", "interface", iface, "class", "udp"); v <= 0 {
		t.Errorf("floodguard_threshold_packets_per_second{class=udp} = %v", v)
	}
	if at := series(fams, "floodguard_last_tick_timestamp_seconds"); time.Since(time.Unix(int64(at), 0)).Abs() > 5*time.Second {
		t.Errorf("floodguard_last_tick_timestamp_seconds = %v, not recent", at)
	}
	for _, kind := range []string{"exact", "prefix"} {
		for _, origin := range []string{"detector", "manual"} {
			if v := series(fams, "floodguard_rules_active", "kind", kind, "origin", origin); v != 0 {
				t.Errorf("floodguard_rules_active{kind=%s,origin=%s} = %v before any ban", kind, origin, v)
			}
		}
	}
	promtoolCheck(t, text)

	// An operator's block shows as a manual prefix rule, and what it drops
	// in the kernel's dropped counter, under the class of what it dropped.
	const cidr = "198.19.7.0/24"
	if out, stderr, err := e.fg("block", cidr, "--ttl", "5m"); err != nil {
		t.Fatalf("floodguard block: %v: %q %q", err, out, stderr)
	}
	dropBefore := series(fams, "floodguard_dropped_packets_total", "interface", iface, "class", "udp")
	synDropBefore := series(fams, "floodguard_dropped_packets_total", "interface", iface, "class", "syn")
	// Ticks counted from after the block: the scrape above is older by
	// promtool's run, which on a loaded machine can outlast two ticks and
	// let the wait below return before any tick saw the block.
	_, afterBlock := s.waitTicks(0)
	if got := e.probe(netip.MustParseAddr("198.19.7.5")); got != 0 {
		t.Errorf("%d frames from the blocked prefix got through", got)
	}
	text, fams = s.waitTicks(series(afterBlock, "floodguard_ticks_total") + 2)
	if d := series(fams, "floodguard_dropped_packets_total", "interface", iface, "class", "udp") - dropBefore; d != probeFrames {
		t.Errorf("floodguard_dropped_packets_total{class=udp} grew by %v, want the %d frames blocked", d, probeFrames)
	}
	if d := series(fams, "floodguard_dropped_packets_total", "interface", iface, "class", "syn") - synDropBefore; synDropBefore < 0 || d != 0 {
		t.Errorf("floodguard_dropped_packets_total{class=syn} went from %v by %v, want 0 and no growth", synDropBefore, d)
	}
	if v := series(fams, "floodguard_rules_active", "kind", "prefix", "origin", "manual"); v != 1 {
		t.Errorf("floodguard_rules_active{kind=prefix,origin=manual} = %v after a block", v)
	}
	if v := series(fams, "floodguard_bans_total", "scope", "prefix", "origin", "manual"); v != 1 {
		t.Errorf("floodguard_bans_total{scope=prefix,origin=manual} = %v after a block", v)
	}
	promtoolCheck(t, text)

	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(5 * time.Second); err != nil {
		t.Fatalf("daemon did not stop cleanly: %v", err)
	}
	if _, _, err := s.get(); err == nil {
		t.Error("metrics still served after the daemon stopped")
	}
	if ev := d.Log.Events("metrics_error", "metrics_failed"); len(ev) != 0 {
		t.Errorf("metrics: %s", ev[0].Line)
	}
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// promtoolCheck lints a scrape with `promtool check metrics`.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		privtest.SkipOrFail(t, "promtool not installed (apt-get install prometheus): %v", err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestE2EMetricsReload: daemon.metrics_listen set by a reload starts the
// server, and emptied by the next one stops it; the daemon keeps ticking.
func TestE2EMetricsReload(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.start()
	s := e.metricsScraper()
	if _, _, err := s.get(); err == nil {
		t.Fatalf("metrics served before they were configured")
	}
	reload := func(extra, event string) {
		t.Helper()
		text := e.text(cfg{})
		if extra != "" {
			text = strings.Replace(text, "daemon:\n", "daemon:\n"+extra, 1)
		}
		e.writeConfig(text)
		mark := d.Log.Len()
		if err := d.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Log.WaitEvent(mark, 5*time.Second, event, nil); err != nil {
			t.Fatalf("no %s after the reload: %v\n%s", event, err, d.Log)
		}
	}
	reload("  metrics_listen: "+metricsAddr+"\n", "metrics_listening")
	if _, fams, err := s.get(); err != nil || series(fams, "floodguard_ticks_total") < 0 {
		t.Fatalf("scrape after enabling metrics by a reload: %v", err)
	}
	reload("", "metrics_stopped")
	if _, _, err := s.get(); err == nil {
		t.Errorf("metrics still served after a reload emptied metrics_listen")
	}
	if st := e.status(); st.Ticks == 0 || d.Exited() {
		t.Errorf("daemon not ticking after the reloads")
	}
}
