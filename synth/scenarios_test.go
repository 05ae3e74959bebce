package synth

import (
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// testScale is the size the scenario tests use: the shortest captures (60 s
// warm-up, 10 s event, 10 s tail) with 30% of the default sources.
const testScale = 0.3

// TestScenarios writes every scenario, reads it back with gopacket and checks
// the properties detector tests rely on, measured from the capture itself.
func TestScenarios(t *testing.T) {
	tests := []struct {
		scenario Scenario
		check    func(t *testing.T, c *capture)
	}{
		{Benign, checkBenign},
		{FlashCrowd, checkFlashCrowd},
		{SingleSource, checkSingleSource},
		{SpoofedSYN, checkSpoofed},
		{UDPReflection, checkReflection},
		{Carpet, checkCarpet},
		{IPv6Rotation, checkRotation},
		{Pulsing, checkPulsing},
	}
	if len(tests) != len(Scenarios()) {
		t.Fatalf("%d scenarios tested, %d exist", len(tests), len(Scenarios()))
	}
	for _, tt := range tests {
		t.Run(string(tt.scenario), func(t *testing.T) {
			t.Parallel()
			c := load(t, tt.scenario, Options{Seed: 1, Scale: testScale})
			checkCommon(t, c)
			tt.check(t, c)
		})
	}
}

// checkCommon checks what holds in every scenario: ordering, address plan,
// label consistency and benign behaviour.
func checkCommon(t *testing.T, c *capture) {
	l := c.labels
	if got := uint64(len(c.pkts)); got != l.Packets {
		t.Errorf("capture has %d packets, labels say %d", got, l.Packets)
	}
	if c.snap != DefaultSnapLen {
		t.Errorf("snap length %d, want %d", c.snap, DefaultSnapLen)
	}
	heavy := map[netip.Addr]bool{}
	for _, a := range l.HeavyClients {
		heavy[a] = true
	}
	type srcTick struct {
		a    netip.Addr
		tick int
	}
	perTick := map[srcTick]int{}
	perSource := map[netip.Addr]int{}
	counts := make([]uint64, len(l.Attacks))
	var benignPkts, benignSYN int
	prev := l.Start
	for i := range c.pkts {
		p := &c.pkts[i]
		ts := l.Start.Add(p.t)
		if ts.Before(prev) || !ts.Before(l.End) {
			t.Fatalf("packet %d at %v: previous %v, capture end %v", i, ts, prev, l.End)
		}
		prev = ts
		if p.wire < minFrameLen || p.wire > maxFrameLen || p.caplen != min(p.wire, c.snap) {
			t.Fatalf("packet %d: wire %d, captured %d", i, p.wire, p.caplen)
		}
		if !benchmarking4().Contains(p.src) && !documentation6().Contains(p.src) {
			t.Fatalf("packet %d: source %v outside 198.18.0.0/15 and 2001:db8::/32", i, p.src)
		}
		if want := victimAddr4(); p.src.Is6() {
			if want = victimAddr6(); p.dst != want {
				t.Fatalf("packet %d: destination %v, want %v", i, p.dst, want)
			}
		} else if p.dst != want {
			t.Fatalf("packet %d: destination %v, want %v", i, p.dst, want)
		}
		benign, attacker := l.IsBenign(p.src), l.IsAttacker(p.src)
		switch {
		case benign == attacker:
			t.Fatalf("packet %d: source %v benign %v attacker %v", i, p.src, benign, attacker)
		case attacker:
			k := attackOf(l, p)
			if k < 0 {
				t.Fatalf("packet %d from attacker %v at %v is outside its attack windows", i, p.src, p.t)
			}
			if p.class != l.Attacks[k].Protocol {
				t.Fatalf("packet %d from %v is %s, attack protocol %s", i, p.src, p.class, l.Attacks[k].Protocol)
			}
			counts[k]++
		default:
			benignPkts++
			if p.class == "syn" {
				benignSYN++
			}
			if p.class == "udp" && p.sport == 53 && !slices.Contains(l.Resolvers, p.src) {
				t.Fatalf("packet %d: client %v sends from port 53", i, p.src)
			}
			perTick[srcTick{p.src, p.tick()}]++
			perSource[p.src]++
		}
	}
	for k, a := range l.Attacks {
		if counts[k] != a.Packets {
			t.Errorf("attack %d (%s %s): %d packets in capture, labels say %d", k, a.Kind, a.Protocol, counts[k], a.Packets)
		}
	}

	// Every labelled benign source sends, and nothing else benign does.
	if len(perSource) != len(l.BenignSources) || l.BenignSourcesCount != len(l.BenignSources) {
		t.Errorf("%d benign sources seen, labels list %d (count %d)", len(perSource), len(l.BenignSources), l.BenignSourcesCount)
	}
	// Ordinary clients stay at or under 10 packets per tick; heavy clients
	// run steadily at 300-500 pps.
	for k, n := range perTick {
		if limit := 10; !heavy[k.a] && n > limit || heavy[k.a] && n > 600 {
			t.Errorf("benign source %v sent %d packets in tick %d", k.a, n, k.tick)
		}
	}
	secs := l.End.Sub(l.Start).Seconds()
	for a := range heavy {
		if pps := float64(perSource[a]) / secs; pps < 285 || pps > 525 {
			t.Errorf("heavy client %v averages %.0f pps, want 300-500", a, pps)
		}
	}
	if share := float64(benignSYN) / float64(benignPkts); share > 0.15 {
		t.Errorf("SYNs are %.1f%% of benign packets, want a small share", 100*share)
	}
}

// attackOf returns the index of the attack p belongs to, or -1. Listed
// sources decide first: the prefixes of reflectors of different services
// (reflection-mix) overlap. Prefixes decide for attacks without a list
// (spoofed, rotation).
func attackOf(l Labels, p *pkt) int {
	at := l.Start.Add(p.t)
	for k, a := range l.Attacks {
		if _, ok := slices.BinarySearchFunc(a.Sources, p.src, netip.Addr.Compare); ok && a.Contains(at) {
			return k
		}
	}
	for k, a := range l.Attacks {
		if !a.Contains(at) || len(a.Sources) > 0 {
			continue
		}
		for _, pr := range a.Prefixes {
			if pr.Contains(p.src) && !l.IsBenign(p.src) {
				return k
			}
		}
	}
	return -1
}

// fullTicks returns the ticks entirely inside w.
func fullTicks(l Labels, w Window) []int {
	var ticks []int
	for k := 0; ; k++ {
		s := l.Start.Add(time.Duration(k) * time.Second)
		if s.Add(time.Second).After(w.End) {
			return ticks
		}
		if !s.Before(w.Start) {
			ticks = append(ticks, k)
		}
	}
}

// perTick counts the packets of attack k per tick.
func attackTicks(c *capture, k int) map[int]int {
	n := map[int]int{}
	for i := range c.pkts {
		if attackOf(c.labels, &c.pkts[i]) == k {
			n[c.pkts[i].tick()]++
		}
	}
	return n
}

// checkRate checks that the attack k sends pps +-tol in each full tick of w.
func checkRate(t *testing.T, c *capture, k int, w Window, pps, tol float64) {
	t.Helper()
	ticks := attackTicks(c, k)
	full := fullTicks(c.labels, w)
	if len(full) == 0 {
		t.Fatalf("attack window %v-%v holds no full tick", w.Start, w.End)
	}
	for _, tick := range full {
		if n := float64(ticks[tick]); math.Abs(n-pps) > tol*pps {
			t.Errorf("tick %d: %.0f attack packets, want %.0f +-%.0f%%", tick, n, pps, 100*tol)
		}
	}
}

func onlyAttack(t *testing.T, l Labels, kind Kind, proto string) Attack {
	t.Helper()
	if len(l.Attacks) != 1 {
		t.Fatalf("%d attacks labelled, want 1", len(l.Attacks))
	}
	a := l.Attacks[0]
	if a.Kind != kind || a.Protocol != proto {
		t.Fatalf("attack is %s/%s, want %s/%s", a.Kind, a.Protocol, kind, proto)
	}
	if a.Packets == 0 {
		t.Fatalf("attack has no packets")
	}
	return a
}

// wantSources is the number of sources the scenarios draw at testScale.
func wantSources(base int) int { return int(math.Round(float64(base) * testScale)) }

func checkBenign(t *testing.T, c *capture) {
	l := c.labels
	if len(l.Attacks) != 0 || l.FlashCrowd != nil {
		t.Errorf("benign capture labels %d attacks, flash crowd %v", len(l.Attacks), l.FlashCrowd)
	}
	want := wantSources(benignClients4) + wantSources(benignClients6) + Options{Scale: testScale}.count(heavyClients, 2) + resolvers
	if l.BenignSourcesCount != want {
		t.Errorf("%d benign sources, want %d", l.BenignSourcesCount, want)
	}
}

func checkFlashCrowd(t *testing.T, c *capture) {
	l := c.labels
	if len(l.Attacks) != 0 || l.FlashCrowd == nil {
		t.Fatalf("flash crowd labels %d attacks, window %v", len(l.Attacks), l.FlashCrowd)
	}
	w := *l.FlashCrowd
	// Flash-crowd visitors are the benign sources first seen in the window;
	// each opens with a handshake and leaves when the window ends.
	first := map[netip.Addr]bool{}
	var before, during, beforeSecs float64
	for i := range c.pkts {
		p := &c.pkts[i]
		at := l.Start.Add(p.t)
		if at.Before(w.Start) {
			first[p.src] = false
			before++
			continue
		}
		if _, seen := first[p.src]; !seen {
			first[p.src] = true
			if p.class != "syn" {
				t.Fatalf("visitor %v starts with a %s packet", p.src, p.class)
			}
		}
		if first[p.src] && !w.Contains(at) {
			t.Fatalf("visitor %v sends at %v, after the flash crowd", p.src, p.t)
		}
		// After the arrival ramp, before the visitors leave.
		if at.Sub(w.Start) >= 4*time.Second && w.Contains(at) {
			during++
		}
	}
	beforeSecs = w.Start.Sub(l.Start).Seconds()
	visitors := 0
	for _, v := range first {
		if v {
			visitors++
		}
	}
	if want := wantSources(flashClients); visitors != want {
		t.Errorf("%d flash-crowd visitors, want %d", visitors, want)
	}
	duringSecs := w.End.Sub(w.Start).Seconds() - 4
	if ratio := (during / duringSecs) / (before / beforeSecs); ratio < 2.5 {
		t.Errorf("traffic rises %.1f-fold in the flash crowd, want several-fold", ratio)
	}
}

func checkSingleSource(t *testing.T, c *capture) {
	a := onlyAttack(t, c.labels, KindSingleSource, "udp")
	if !slices.Equal(a.Sources, []netip.Addr{singleAttacker()}) {
		t.Errorf("sources %v", a.Sources)
	}
	checkRate(t, c, 0, a.Window, singleSourcePPS, 0.05)
}

func checkSpoofed(t *testing.T, c *capture) {
	l := c.labels
	a := onlyAttack(t, l, KindSpoofed, "syn")
	if len(a.Sources) != 0 || !slices.Equal(a.Prefixes, []netip.Prefix{benchmarking4()}) {
		t.Errorf("sources %v prefixes %v", a.Sources, a.Prefixes)
	}
	checkRate(t, c, 0, a.Window, spoofedPPS, 0.05)
	// Forged sources change with every packet, so each one is as quiet as
	// an ordinary client: no per-source signal.
	type srcTick struct {
		a    netip.Addr
		tick int
	}
	n := map[srcTick]int{}
	perTick := map[int]int{}
	for i := range c.pkts {
		p := &c.pkts[i]
		if !l.IsAttacker(p.src) {
			continue
		}
		if netip.MustParsePrefix("198.18.0.0/24").Contains(p.src) {
			t.Fatalf("spoofed source %v in the victim's /24", p.src)
		}
		n[srcTick{p.src, p.tick()}]++
		perTick[p.tick()]++
	}
	distinct := map[int]int{}
	for k, v := range n {
		distinct[k.tick]++
		if v > 10 {
			t.Errorf("spoofed source %v sent %d packets in tick %d", k.a, v, k.tick)
		}
	}
	for tick, pk := range perTick {
		if d := distinct[tick]; float64(d) < 0.8*float64(pk) {
			t.Errorf("tick %d: %d distinct spoofed sources for %d packets", tick, d, pk)
		}
	}
}

func checkReflection(t *testing.T, c *capture) {
	l := c.labels
	a := onlyAttack(t, l, KindReflection, "udp")
	if want := wantSources(reflectors); len(a.Sources) != want {
		t.Errorf("%d reflectors, want %d", len(a.Sources), want)
	}
	if a.UDPSrcPort != 53 {
		t.Errorf("udp_src_port %d, want 53", a.UDPSrcPort)
	}
	per24 := map[netip.Prefix]int{}
	for _, s := range a.Sources {
		per24[netip.PrefixFrom(s, 24).Masked()]++
	}
	for p, n := range per24 {
		if n > reflectorsPer24 {
			t.Errorf("%d reflectors in %v", n, p)
		}
	}
	if len(per24) != len(a.Prefixes) {
		t.Errorf("reflectors in %d /24s, %d prefixes labelled", len(per24), len(a.Prefixes))
	}
	checkRate(t, c, 0, a.Window, a.PPS, 0.05)
	perSource := map[netip.Addr]int{}
	for i := range c.pkts {
		p := &c.pkts[i]
		if !l.IsAttacker(p.src) {
			continue
		}
		if p.sport != 53 || p.wire < 1200 || p.wire > 1400 {
			t.Fatalf("reflected packet from %v port %d, %d bytes", p.src, p.sport, p.wire)
		}
		perSource[p.src]++
	}
	secs := a.End.Sub(a.Start).Seconds()
	for s, n := range perSource {
		if pps := float64(n) / secs; pps < 30 || pps > 70 { // Poisson noise over 40-60
			t.Errorf("reflector %v averages %.1f pps, want 40-60", s, pps)
		}
	}
}

func checkCarpet(t *testing.T, c *capture) {
	l := c.labels
	if len(l.Attacks) != 2 || l.Attacks[0].Protocol != "udp" || l.Attacks[1].Protocol != "syn" {
		t.Fatalf("carpet labels %+v, want a udp and a syn attack", l.Attacks)
	}
	per := wantSources(carpetPerNet)
	perSource := map[netip.Addr]int{}
	perNet := map[netip.Prefix]int{}
	for i := range c.pkts {
		p := &c.pkts[i]
		if l.IsAttacker(p.src) {
			perSource[p.src]++
			perNet[netip.PrefixFrom(p.src, 24).Masked()]++
		}
	}
	if len(perNet) != carpetNets || len(perSource) != carpetNets*per {
		t.Fatalf("%d carpet sources in %d /24s, want %d in %d", len(perSource), len(perNet), carpetNets*per, carpetNets)
	}
	secs := l.Attacks[0].End.Sub(l.Attacks[0].Start).Seconds()
	for s, n := range perSource {
		if pps := float64(n) / secs; pps < 80 || pps > 120 {
			t.Errorf("carpet source %v averages %.1f pps, want ~100", s, pps)
		}
	}
	for p, n := range perNet {
		if pps, want := float64(n)/secs, float64(per*carpetSourcePPS); math.Abs(pps-want) > 0.05*want {
			t.Errorf("%v averages %.0f pps, want %.0f", p, pps, want)
		}
	}
	for k, a := range l.Attacks {
		checkRate(t, c, k, a.Window, a.PPS, 0.05)
	}
}

func checkRotation(t *testing.T, c *capture) {
	l := c.labels
	a := onlyAttack(t, l, KindIPv6Rotation, "udp")
	if !slices.Equal(a.Prefixes, []netip.Prefix{rotationPrefix()}) {
		t.Errorf("prefixes %v", a.Prefixes)
	}
	checkRate(t, c, 0, a.Window, rotationPPS, 0.05)
	perAddr := map[netip.Addr]int{}
	for i := range c.pkts {
		p := &c.pkts[i]
		if l.IsAttacker(p.src) {
			if !rotationPrefix().Contains(p.src) {
				t.Fatalf("rotating source %v outside %v", p.src, rotationPrefix())
			}
			perAddr[p.src]++
		}
	}
	for s, n := range perAddr {
		if n > 70 {
			t.Errorf("%v sent %d packets, want at most 70 before rotating", s, n)
		}
	}
	if mean := float64(a.Packets) / float64(len(perAddr)); mean < 45 || mean > 55 {
		t.Errorf("%.1f packets per address, want ~50", mean)
	}
}

func checkPulsing(t *testing.T, c *capture) {
	l := c.labels
	want := Options{Scale: testScale}.pulseCycles()
	if len(l.Attacks) != want {
		t.Fatalf("%d pulses labelled, want %d", len(l.Attacks), want)
	}
	for k, a := range l.Attacks {
		if a.Kind != KindPulse || a.End.Sub(a.Start) != 5*time.Second {
			t.Errorf("pulse %d: %s %v-%v", k, a.Kind, a.Start, a.End)
		}
		if k > 0 && a.Start.Sub(l.Attacks[k-1].End) != 10*time.Second {
			t.Errorf("pulse %d starts %v after the previous one", k, a.Start.Sub(l.Attacks[k-1].End))
		}
		checkRate(t, c, k, a.Window, singleSourcePPS, 0.05)
	}
}
