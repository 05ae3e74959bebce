// Tests of -compare-trips' pure parts: phases, the flood's start time,
// the phase measured, the statistics and the report. No root.

package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

func TestTripPhases(t *testing.T) {
	if got, want := tripPhases(5), []float64{0.1, 0.3, 0.5, 0.7, 0.9}; !slices.EqualFunc(got, want, func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }) {
		t.Errorf("tripPhases(5) = %v, want %v", got, want)
	}
	if got := tripPhases(1); len(got) != 1 || got[0] != 0.5 {
		t.Errorf("tripPhases(1) = %v, want [0.5]", got)
	}
}

func TestNextStart(t *testing.T) {
	b := time.Unix(1000, 0)
	for _, c := range []struct {
		earliest time.Duration
		phase    float64
		want     time.Duration
	}{
		{0, 0.1, 100 * time.Millisecond},
		{150 * time.Millisecond, 0.1, 1100 * time.Millisecond},
		{100 * time.Millisecond, 0.1, 100 * time.Millisecond}, // exactly then
		{2300 * time.Millisecond, 0.9, 2900 * time.Millisecond},
		{2950 * time.Millisecond, 0.9, 3900 * time.Millisecond},
	} {
		if got := nextStart(b, b.Add(c.earliest), time.Second, c.phase).Sub(b); got != c.want {
			t.Errorf("nextStart(+%v, phase %v) = +%v, want +%v", c.earliest, c.phase, got, c.want)
		}
	}
}

func TestPhaseOf(t *testing.T) {
	b := time.Unix(1000, 0)
	reads := []time.Time{b, b.Add(time.Second), b.Add(2 * time.Second)}
	for _, c := range []struct {
		start, want time.Duration
	}{
		{-time.Millisecond, -1},
		{0, 0},
		{300 * time.Millisecond, 300 * time.Millisecond},
		{time.Second, 0},
		{2999 * time.Millisecond, 999 * time.Millisecond},
		{5 * time.Second, 3 * time.Second}, // past the last read seen
	} {
		if got := phaseOf(b.Add(c.start), reads); got != c.want {
			t.Errorf("phaseOf(+%v) = %v, want %v", c.start, got, c.want)
		}
	}
	if got := phaseOf(b, nil); got != -1 {
		t.Errorf("phaseOf without reads = %v, want -1", got)
	}
}

func TestStatOf(t *testing.T) {
	ss := []tripSample{{drop: 40 * time.Millisecond}, {drop: -1}, {drop: 100 * time.Millisecond}, {drop: 60 * time.Millisecond}}
	st := statOf(ss, func(s tripSample) time.Duration { return s.drop })
	if st.med != 60*time.Millisecond || st.worst != 100*time.Millisecond || st.missed != 1 {
		t.Errorf("statOf = %+v, want median 60 ms, worst 100 ms, 1 missed", st)
	}
	if st.meets() {
		t.Error("a missed flood meets the targets")
	}
	if got := rawMS(st.raw); got != "40, none, 100, 60" {
		t.Errorf("rawMS = %q", got)
	}
	ok := statOf(ss[2:], func(s tripSample) time.Duration { return s.drop })
	if !ok.meets() || ok.String() != "80 ms / 100 ms" {
		t.Errorf("statOf(60, 100) = %v, meets %v; want 80 ms / 100 ms, true", ok, ok.meets())
	}
	slow := statOf([]tripSample{{drop: 100 * time.Millisecond}, {drop: 260 * time.Millisecond}, {drop: 90 * time.Millisecond}}, func(s tripSample) time.Duration { return s.drop })
	if slow.meets() {
		t.Errorf("worst 260 ms meets the targets")
	}
	if got := statOf(nil, func(s tripSample) time.Duration { return s.drop }).String(); got != "none" {
		t.Errorf("statOf(nil) = %q, want none", got)
	}
}

func TestFormatTrips(t *testing.T) {
	ms := time.Millisecond
	benign := lab.ClientStats{Requests: 60, Served: 60}
	ss := []tripSample{
		{rate: 20000, phase: 0.25, trips: true, sender: "lab", at: 251 * ms, sent: 60000, pps: 20000, rule: 65 * ms, drop: 70 * ms, ban: 68 * ms, stamped: 60 * ms, benign: benign},
		{rate: 20000, phase: 0.25, trips: false, sender: "lab", at: 252 * ms, sent: 60000, pps: 19900, rule: 755 * ms, drop: 760 * ms, ban: 755 * ms, stamped: -1, benign: benign},
		{rate: 20000, phase: 0.75, trips: false, sender: "lab", at: 749 * ms, sent: 60000, pps: 20000, rule: 255 * ms, drop: 262 * ms, ban: 258 * ms, stamped: -1, benign: benign},
		{rate: 20000, phase: 0.75, trips: true, sender: "lab", at: -1, sent: 60000, pps: 20100, rule: 85 * ms, drop: 90 * ms, ban: 88 * ms, stamped: -1, benign: benign},
		{rate: 150000, phase: 0.25, trips: true, sender: "trafgen", at: 240 * ms, sent: 450000, pps: 150000, rule: 10 * ms, drop: 300 * ms, ban: -1, stamped: -1, benign: benign, others: []string{"198.18.0.10/32"}},
		{rate: 150000, phase: 0.25, trips: false, sender: "trafgen", at: 260 * ms, sent: 450000, pps: 149000, rule: 735 * ms, drop: 740 * ms, ban: 735 * ms, stamped: -1, benign: benign},
	}
	got := formatTrips("header\n", []float64{20000, 150000}, []float64{0.25, 0.75}, time.Second, ss)
	for _, want := range []string{
		"header\n",
		"| 20k | lab | 250 / 251 ms | on | 60000 (20.0k pps) | 65 ms | 70 ms | 68 ms | 60 ms | 60/60 | none |",
		"| 20k | lab | 750 / ? ms | on |",
		"| 20k (19.9k–20.1k) | rule in the kernel | 75 ms / 85 ms | 505 ms / 755 ms | 6.7x |",
		"|  | first kernel drop | 80 ms / 90 ms | 511 ms / 760 ms | 6.4x |",
		"|  | ban time in the line | 60 ms / 60 ms (1 missed) | none | n/a |",
		"| 150k (149.0k–150.0k) | rule in the kernel | 10 ms / 10 ms | 735 ms / 735 ms | 73.5x |",
		"|  | ban line written | none | 735 ms / 735 ms | n/a |",
		"in phase order 250 ms, 750 ms of the tick",
		"- 20k to first kernel drop: trips on [70, 90]; off [760, 262]",
		"- 20k to ban time in the line: trips on [60, none]; off [none, none]",
		"- 150k to ban line written: trips on [none]; off [735]",
		"- 20k: met\n- 150k: NOT met\n",
		"Benign client during the floods: 360/360 requests served.",
		"UNEXPECTED BANS: 198.18.0.10/32 (150k, trips on).",
		"Targets NOT met at every rate.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	good := formatTrips("", []float64{20000}, []float64{0.25, 0.75}, time.Second, ss[:4])
	if !strings.Contains(good, "Unexpected bans: none.") || !strings.Contains(good, "Targets met at every rate.") {
		t.Errorf("report of floods within the targets:\n%s", good)
	}
}

func TestParseRates(t *testing.T) {
	if got, err := parseRates("20000, 60000,150000"); err != nil || !slices.Equal(got, []float64{20000, 60000, 150000}) {
		t.Errorf("parseRates = %v, %v", got, err)
	}
	for _, bad := range []string{"", "20k", "500", "300000", "20000,"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q): no error", bad)
		}
	}
}
