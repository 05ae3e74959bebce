package report

import (
	"bytes"
	"math"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/paging"
)

var t0 = time.Date(2024, 11, 5, 18, 0, 0, 0, time.UTC)

// tick makes a tick of length d starting at start with pps UDP packets per
// second from one source, and each extra source's counters.
func tick(start time.Time, d time.Duration, pps float64, srcs ...detector.Source) *detector.Tick {
	t := &detector.Tick{Start: start, Length: d, Sources: srcs}
	n := uint64(pps * d.Seconds())
	t.Total.Packets[detector.ClassUDP] = n
	t.Total.Bytes[detector.ClassUDP] = 100 * n
	for i := range srcs {
		t.Total.Add(&srcs[i].Counters)
	}
	return t
}

func source(addr string, packets, dropped uint64) detector.Source {
	s := detector.Source{Addr: detector.AddrFrom(netip.MustParseAddr(addr))}
	s.Packets[detector.ClassUDP] = packets
	s.Bytes[detector.ClassUDP] = 100 * packets
	s.DroppedPackets, s.DroppedBytes = dropped, 100*dropped
	return s
}

func baselines(mean, thr float64) []detector.Baseline {
	return []detector.Baseline{{Class: "all", MeanPPS: mean, ThresholdPPS: thr, Learnt: true}, {Class: "udp", MeanPPS: mean, Learnt: true}}
}

func render(t *testing.T, r *Recorder, m Meta) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteHTML(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDownsampleKeepsPeaks records a day of 100 ms ticks with one spike:
// every series stays under MaxPoints points and the spike survives.
func TestDownsampleKeepsPeaks(t *testing.T) {
	r := NewRecorder(Options{})
	const n = 864_000
	const spikeAt = 777_777
	for i := range n {
		pps := 100.0 + float64(i%7)
		if i == spikeAt {
			pps = 1e6
		}
		r.Observe(tick(t0.Add(time.Duration(i)*100*time.Millisecond), 100*time.Millisecond, pps), nil, baselines(100, 500))
	}
	if len(r.buckets) > DefaultMaxPoints || len(r.buckets) < DefaultMaxPoints/2 {
		t.Errorf("%d buckets for %d ticks, want %d to %d", len(r.buckets), n, DefaultMaxPoints/2, DefaultMaxPoints)
	}
	var ticks int
	peak := 0.0
	for i, b := range r.buckets {
		ticks += b.ticks
		peak = max(peak, b.v[sPPS])
		if i > 0 && !r.buckets[i-1].end.Equal(b.start) {
			t.Fatalf("bucket %d starts at %v, the previous ends at %v", i, b.start, r.buckets[i-1].end)
		}
	}
	if ticks != n {
		t.Errorf("buckets hold %d ticks, want %d", ticks, n)
	}
	if peak != 1e6 {
		t.Errorf("peak after downsampling %v, want 1e6", peak)
	}
	html := render(t, r, Meta{Tick: 100 * time.Millisecond, WarmUp: time.Minute})
	if len(html) > 400_000 {
		t.Errorf("report of a day of ticks is %d bytes", len(html))
	}
	if !strings.Contains(html, "Each point covers up to") {
		t.Errorf("report does not say it is downsampled")
	}
	// The spike reaches the top of the aggregate chart: 1M is on the axis.
	if !strings.Contains(html, `>1M</text>`) {
		t.Errorf("1M axis label missing: the spike was lost")
	}
}

// TestShortReplayKeepsEveryTick: below MaxPoints ticks nothing is merged.
func TestShortReplayKeepsEveryTick(t *testing.T) {
	r := NewRecorder(Options{MaxPoints: 100})
	for i := range 100 {
		r.Observe(tick(t0.Add(time.Duration(i)*time.Second), time.Second, float64(i)), nil, nil)
	}
	if len(r.buckets) != 100 || r.width != 1 {
		t.Errorf("%d buckets of width %d, want 100 of 1", len(r.buckets), r.width)
	}
	r.Observe(tick(t0.Add(100*time.Second), time.Second, 5000), nil, nil)
	if len(r.buckets) != 51 || r.width != 2 || r.buckets[50].v[sPPS] != 5000 || r.buckets[49].v[sPPS] != 99 {
		t.Errorf("after overflow: %d buckets of width %d, last %v", len(r.buckets), r.width, r.buckets[len(r.buckets)-1].v[sPPS])
	}
}

func TestEmptyReplayRenders(t *testing.T) {
	html := render(t, NewRecorder(Options{}), Meta{Files: []string{"empty.pcap"}})
	for _, want := range []string{"<!DOCTYPE html>", `id="summary"`, "nothing to draw", "No attacks were detected", "Nothing was banned", "empty.pcap"} {
		if !strings.Contains(html, want) {
			t.Errorf("empty report lacks %q", want)
		}
	}
	if strings.Contains(html, "NaN") || strings.Contains(html, "Inf") {
		t.Errorf("empty report prints NaN or Inf")
	}
}

// scenario records a flood from one source, banned, and a prefix attack,
// with odd text in the reasons.
func scenario(t *testing.T, reason string) *Recorder {
	t.Helper()
	r := NewRecorder(Options{WarmUp: 10 * time.Second})
	var now time.Time
	step := func(i int, pps float64, evs []detector.Event, srcs ...detector.Source) {
		now = t0.Add(time.Duration(i) * time.Second)
		r.Observe(tick(now, time.Second, pps, srcs...), evs, baselines(100, 1000))
	}
	for i := range 20 {
		step(i, 100, nil)
	}
	end := func(i int) time.Time { return t0.Add(time.Duration(i+1) * time.Second) }
	step(20, 100, []detector.Event{
		{Time: end(20), Kind: detector.AttackStart, Scope: detector.ScopeSource, Target: "198.19.1.1", PPS: 20000, Reason: reason},
		{Time: end(20), Kind: detector.Ban, Scope: detector.ScopeSource, Target: "198.19.1.1/32", TTL: 2 * time.Minute, Reason: reason},
		{Time: end(20), Kind: detector.AttackStart, Scope: detector.ScopeAggregate, Target: "*", Class: "udp", PPS: 20100, Reason: reason},
	}, source("198.19.1.1", 20000, 0))
	for i := 21; i < 30; i++ {
		step(i, 100, nil, source("198.19.1.1", 25000, 25000), source("198.19.7.9", 50, 0))
	}
	step(30, 100, []detector.Event{
		{Time: end(30), Kind: detector.AttackStart, Scope: detector.ScopePrefix, Target: "198.19.7.0/24", PPS: 9000, Reason: reason},
		{Time: end(30), Kind: detector.Ban, Scope: detector.ScopePrefix, Target: "198.19.7.0/24", TTL: time.Minute, Reason: reason},
	}, source("198.19.7.9", 4000, 0), source("198.19.7.10", 5000, 0))
	step(31, 100, nil, source("198.19.7.9", 4000, 4000), source("198.19.7.10", 6000, 6000), source("198.19.1.1", 10, 10))
	step(32, 100, []detector.Event{
		{Time: end(32), Kind: detector.AttackEnd, Scope: detector.ScopeSource, Target: "198.19.1.1"},
		{Time: end(32), Kind: detector.AttackEnd, Scope: detector.ScopeAggregate, Target: "*", Class: "udp"},
		{Time: end(32), Kind: detector.Unban, Scope: detector.ScopeSource, Target: "198.19.1.1/32"},
	})
	for i := 33; i < 40; i++ {
		step(i, 100, nil)
	}
	return r
}

func TestRecorderAttacksAndBans(t *testing.T) {
	r := scenario(t, "over threshold")
	if len(r.attacks) != 3 {
		t.Fatalf("%d attacks, want 3: %+v", len(r.attacks), r.attacks)
	}
	src, agg, pfx := r.attacks[0], r.attacks[1], r.attacks[2]
	if src.Target != "198.19.1.1" || !src.Began.Equal(t0.Add(20*time.Second)) || !src.Ended.Equal(t0.Add(33*time.Second)) || src.PeakPPS != 25000 {
		t.Errorf("source attack %+v", src)
	}
	if agg.Class != "udp" || agg.PeakPPS != 25150 { // 100 background + 25000 + 50
		t.Errorf("aggregate attack %+v", agg)
	}
	if !pfx.Ended.IsZero() || pfx.PeakPPS != 10000 {
		t.Errorf("prefix attack %+v", pfx)
	}
	want := map[string]uint64{"198.19.1.1/32": 9*25000 + 10, "198.19.7.0/24": 10000}
	for _, b := range r.banned {
		if b.DroppedPackets != want[b.Target] {
			t.Errorf("%s dropped %d, want %d", b.Target, b.DroppedPackets, want[b.Target])
		}
	}
	if r.banned[0].Lifted.IsZero() || !r.banned[1].Lifted.IsZero() {
		t.Errorf("lifted times %v", r.banned)
	}
	if len(r.markers) != 3 || r.markers[2].unban != true {
		t.Errorf("markers %+v", r.markers)
	}

	html := render(t, r, Meta{Files: []string{"x.pcap"}, WarmUp: 10 * time.Second, Tick: time.Second, Packets: 1000, DroppedPackets: 235010, ActiveBans: 1})
	for _, want := range []string{
		"198.19.7.0/24", "still going", "udp traffic", "25.1k pps", "225\u202f010", "active at the end",
		`class="ban"`, `class="unban"`, `class="agg-attack"`, `class="key-attack"`, `class="warmup"`, `class="band"`,
		"1 ban: 198.19.1.1/32", "1 unban: 198.19.1.1/32",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(html, "NaN") {
		t.Errorf("report prints NaN")
	}
}

// TestEscaping feeds markup through every text the report prints.
func TestEscaping(t *testing.T) {
	const evil = `<script>alert("x")</script> & <img src=x onerror=alert(1)> ' "`
	r := scenario(t, evil)
	html := render(t, r, Meta{Title: evil, Files: []string{evil + ".pcap"}, Error: evil, Version: evil})
	for _, bad := range []string{"<script", "<img", "onerror=alert(1)>"} {
		if strings.Contains(html, bad) {
			t.Errorf("report contains unescaped %q", bad)
		}
	}
	if !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("escaped text missing")
	}
}

// TestSelfContained: the page refers to nothing outside itself.
func TestSelfContained(t *testing.T) {
	html := render(t, scenario(t, "x"), Meta{Files: []string{"a.pcap"}})
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)https?://`), regexp.MustCompile(`(?i)<(script|link|img|iframe|object|embed)\b`),
		regexp.MustCompile(`(?i)url\(`), regexp.MustCompile(`(?i)@import`), regexp.MustCompile(`(?i)\b(src|href)=`),
		regexp.MustCompile(`(?i)//[a-z0-9.-]+\.[a-z]{2,}/`),
	} {
		if m := bad.FindString(html); m != "" {
			t.Errorf("report refers to an outside resource: %q", m)
		}
	}
	if !strings.Contains(html, "Content-Security-Policy") {
		t.Errorf("no Content-Security-Policy")
	}
}

func TestLabels(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 250: "250", 2500: "2.5k", 20000: "20k", 1.25e6: "1.25M", 3e9: "3G", 0.2: "0.2"} {
		if got := siLabel(v); got != want {
			t.Errorf("siLabel(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]float64{0.7: 1, 3: 5, 12: 20, 20000: 20000, 16400: 20000, 1e6 / 5: 2e5} {
		if got := niceStep(v); math.Abs(got-want) > 1e-9*want {
			t.Errorf("niceStep(%v) = %v, want %v", v, got, want)
		}
	}
	for d, want := range map[time.Duration]time.Duration{
		5 * time.Second: time.Second, 150 * time.Second: 30 * time.Second, time.Hour: 10 * time.Minute, 48 * time.Hour: 6 * time.Hour,
	} {
		if got, _ := timeStep(d); got != want {
			t.Errorf("timeStep(%v) = %v, want %v", d, got, want)
		}
	}
}

// TestIncidentsTable: pages recorded from the paging tracker make the
// incidents table, one row per incident with its pages; a replay that ran
// the tracker but paged nothing says so.
func TestIncidentsTable(t *testing.T) {
	at := time.Date(2026, 11, 3, 20, 0, 0, 0, time.UTC)
	inc := paging.Incident{Key: "web1/20261103T200000Z", Opened: at, Severity: paging.SeverityError,
		Kind: "single source", PeakPPS: 21000, BannedSources: 1, Summary: "single source flood <b>on</b> web1"}
	r := NewRecorder(Options{})
	r.Page(paging.Page{Action: paging.Trigger, Time: at, Incident: inc})
	inc.Resolved = at.Add(3 * time.Minute)
	r.Page(paging.Page{Action: paging.Resolve, Time: inc.Resolved, Incident: inc})
	var b strings.Builder
	if err := r.WriteHTML(&b, Meta{}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{`id="incidents"`, "20:00:00", "20:03:00", "single source", "21.0 kpps",
		"trigger 20:00:00, resolve 20:03:00", "&lt;b&gt;on&lt;/b&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	r = NewRecorder(Options{})
	r.TrackIncidents()
	b.Reset()
	if err := r.WriteHTML(&b, Meta{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No incident") {
		t.Errorf("no 'No incident' note")
	}
}
