package detector

import (
	"math"
	"net/netip"
	"testing"
)

func TestKeyBaselineAndTickPrefixes(t *testing.T) {
	w := newWorld(t, nil)
	a, b := "198.18.5.1", "198.18.5.2"
	v6 := "2001:db8:1:2::7"
	for range 10 {
		w.step(traffic{addrs: []string{a, b}, class: ClassUDP, pps: 100, size: 100},
			traffic{addrs: []string{v6}, class: ClassTCP, pps: 40, size: 100})
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6*max(1, want) }
	if m, ok := w.eng.KeyBaseline(netip.MustParsePrefix(a + "/32")); !ok || !near(m, 100) {
		t.Errorf("source %s: baseline %v tracked %v, want 100 true", a, m, ok)
	}
	if m, ok := w.eng.KeyBaseline(netip.MustParsePrefix("198.18.5.0/24")); !ok || !near(m, 200) {
		t.Errorf("prefix 198.18.5.0/24: baseline %v tracked %v, want 200 true", m, ok)
	}
	// Unmasked prefixes are masked.
	if m, ok := w.eng.KeyBaseline(netip.MustParsePrefix("198.18.5.77/24")); !ok || !near(m, 200) {
		t.Errorf("prefix 198.18.5.77/24: baseline %v tracked %v, want 200 true", m, ok)
	}
	if m, ok := w.eng.KeyBaseline(netip.MustParsePrefix(v6 + "/128")); !ok || !near(m, 40) {
		t.Errorf("source %s: baseline %v tracked %v, want 40 true", v6, m, ok)
	}
	for _, p := range []string{"198.18.9.9/32", "198.18.6.0/24", "198.18.5.0/23", "2001:db8:9::/64"} {
		if m, ok := w.eng.KeyBaseline(netip.MustParsePrefix(p)); ok || m != 0 {
			t.Errorf("%s: baseline %v tracked %v, want untracked", p, m, ok)
		}
	}
	if _, ok := w.eng.KeyBaseline(netip.Prefix{}); ok {
		t.Error("invalid prefix tracked")
	}

	got := map[netip.Prefix]TickPrefix{}
	w.eng.TickPrefixes(func(p TickPrefix) {
		c := *p.Counters
		p.Counters = &c
		got[p.Prefix] = p
	})
	if len(got) != 2 {
		t.Fatalf("tick prefixes %v, want the /24 and the /64 only", got)
	}
	p4 := got[netip.MustParsePrefix("198.18.5.0/24")]
	if p4.Sources != 2 || p4.Counters.Packets[ClassUDP] != 200 {
		t.Errorf("198.18.5.0/24: %d sources, %d udp packets; want 2, 200", p4.Sources, p4.Counters.Packets[ClassUDP])
	}
	p6 := got[netip.MustParsePrefix("2001:db8:1:2::/64")]
	if p6.Sources != 1 || p6.Counters.TotalPackets() != 40 {
		t.Errorf("2001:db8:1:2::/64: %d sources, %d packets; want 1, 40", p6.Sources, p6.Counters.TotalPackets())
	}

	// A source gone quiet decays as the detector would decay it.
	w.step(traffic{addrs: []string{a}, class: ClassUDP, pps: 100, size: 100})
	w.step(traffic{addrs: []string{a}, class: ClassUDP, pps: 100, size: 100})
	m, ok := w.eng.KeyBaseline(netip.MustParsePrefix(b + "/32"))
	if want := 100 * w.eng.decay.pow(2); !ok || !near(m, want) {
		t.Errorf("idle source %s: baseline %v tracked %v, want %v true", b, m, ok, want)
	}
}
