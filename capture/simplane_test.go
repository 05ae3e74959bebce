package capture

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// Packets for the signature rule tests: a reflected NTP reply, a SYN, a
// later fragment of the NTP reply, an IPv6 DNS reply.
var (
	sigNTP = detector.PacketMeta{Src: addr("192.0.2.1"), Dst: addr("198.51.100.7"), Proto: protoUDP, L4: true,
		SrcPort: 123, DstPort: 4444, Length: 468, Fragment: detector.FragFirst}
	sigSYN = detector.PacketMeta{Src: addr("192.0.2.99"), Dst: addr("198.51.100.7"), Proto: protoTCP, L4: true,
		SrcPort: 40000, DstPort: 443, TCPFlags: 0x02, Length: 60, Fragment: detector.FragNone}
	sigLater = detector.PacketMeta{Src: addr("192.0.2.1"), Dst: addr("198.51.100.7"), Proto: protoUDP,
		Length: 1500, Fragment: detector.FragLater}
	sigDNS6 = detector.PacketMeta{Src: addr("2001:db8::53"), Dst: addr("2001:db8:1::7"), Proto: protoUDP, L4: true,
		SrcPort: 53, DstPort: 5000, Length: 1240, Fragment: detector.FragNone}
)

var sigPackets = []struct {
	name string
	p    detector.PacketMeta
}{{"ntp", sigNTP}, {"syn", sigSYN}, {"later", sigLater}, {"dns6", sigDNS6}}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// sigMatches has every match component, alone and combined, on each side
// of its edge for some packet above. want lists the packets it matches.
var sigMatches = []struct {
	m    detector.Match
	want string
}{
	{detector.Match{Proto: protoUDP}, "ntp later dns6"},
	{detector.Match{Proto: protoTCP}, "syn"},
	{detector.Match{Proto: 1}, ""},
	{detector.Match{Src: pfx("192.0.2.0/24")}, "ntp syn later"},
	{detector.Match{Src: pfx("192.0.2.1/32")}, "ntp later"},
	{detector.Match{Src: pfx("192.0.2.64/26")}, "syn"},
	{detector.Match{Src: pfx("2001:db8::/32")}, "dns6"},
	{detector.Match{Src: pfx("192.0.2.7/24")}, "ntp syn later"}, // unmasked
	{detector.Match{Dst: pfx("198.51.100.7/32")}, "ntp syn later"},
	{detector.Match{Dst: pfx("198.51.100.8/29")}, ""},
	{detector.Match{Dst: pfx("2001:db8:1::/48")}, "dns6"},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 123, Hi: 123}}, "ntp"},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 124, Hi: 124}}, ""},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 1, Hi: 123}}, "ntp dns6"},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 0, Hi: 122}}, "dns6"},
	{detector.Match{Proto: protoTCP, SrcPort: detector.Range{Lo: 123, Hi: 123}}, ""},
	{detector.Match{Proto: protoUDP, DstPort: detector.Range{Lo: 4444, Hi: 4444}}, "ntp"},
	{detector.Match{Proto: protoUDP, DstPort: detector.Range{Lo: 4445, Hi: 65535}}, "dns6"},
	{detector.Match{Proto: protoTCP, DstPort: detector.Range{Lo: 443, Hi: 443}}, "syn"},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 123, Hi: 123}, DstPort: detector.Range{Lo: 4444, Hi: 4444}}, "ntp"},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 123, Hi: 123}, DstPort: detector.Range{Lo: 80, Hi: 80}}, ""},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 53, Hi: 53}, DstPort: detector.Range{Lo: 1024, Hi: 65535}}, "dns6"},
	{detector.Match{Proto: protoTCP, TCPFlags: 0x02, TCPFlagsMask: 0x12}, "syn"},
	{detector.Match{Proto: protoTCP, TCPFlags: 0x12, TCPFlagsMask: 0x12}, ""},
	{detector.Match{Proto: protoTCP, TCPFlags: 0, TCPFlagsMask: 0x10}, "syn"},
	{detector.Match{Length: detector.Range{Lo: 468, Hi: 468}}, "ntp"},
	{detector.Match{Length: detector.Range{Lo: 469, Hi: 1500}}, "later dns6"},
	{detector.Match{Length: detector.Range{Lo: 0, Hi: 60}}, "syn"},
	{detector.Match{Fragment: detector.FragNone}, "syn dns6"},
	{detector.Match{Fragment: detector.FragFirst}, "ntp"},
	{detector.Match{Fragment: detector.FragLater}, "later"},
	{detector.Match{Proto: protoUDP, Fragment: detector.FragLater, Src: pfx("192.0.2.0/24")}, "later"},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 123, Hi: 123}, Length: detector.Range{Lo: 400, Hi: 500},
		Fragment: detector.FragFirst, Src: pfx("192.0.2.0/24"), Dst: pfx("198.51.100.0/24")}, "ntp"},
	{detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 123, Hi: 123}, Length: detector.Range{Lo: 400, Hi: 500},
		Fragment: detector.FragFirst, Src: pfx("192.0.2.0/24"), Dst: pfx("198.51.101.0/24")}, ""},
}

var (
	sigT0  = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) // a window boundary
	sigEnd = sigT0.Add(time.Hour)
)

func mustInstall(t *testing.T, p *SimulatedPlane, r detector.SignatureRule) {
	t.Helper()
	if err := p.InstallSignature(r); err != nil {
		t.Fatal(err)
	}
}

// TestSignatureMatch installs each match as the only drop rule: it drops
// exactly the packets it should, which are those Match.Matches (the
// reference) accepts; the index loses no rule.
func TestSignatureMatch(t *testing.T) {
	for _, c := range sigMatches {
		t.Run(c.m.String(), func(t *testing.T) {
			p := NewSimulatedPlane()
			mustInstall(t, p, detector.SignatureRule{Match: c.m, Expires: sigEnd})
			var got []string
			for _, sp := range sigPackets {
				pkt := sp.p
				dropped := p.Dropped(&pkt, sigT0)
				if dropped != c.m.Matches(&pkt) {
					t.Errorf("%s: dropped %t, Match.Matches says %t", sp.name, dropped, !dropped)
				}
				if dropped {
					got = append(got, sp.name)
				}
			}
			if g := strings.Join(got, " "); g != c.want {
				t.Errorf("dropped %q, want %q", g, c.want)
			}
		})
	}
}

// TestSignatureMatchAll installs every match at once: a packet is dropped
// when any matches, and every matching rule (only those) counts a hit.
func TestSignatureMatchAll(t *testing.T) {
	p := NewSimulatedPlane()
	for _, c := range sigMatches {
		mustInstall(t, p, detector.SignatureRule{Match: c.m, Expires: sigEnd})
	}
	if p.Signatures() != len(sigMatches)-1 { // the unmasked prefix names the masked one's rule
		t.Errorf("%d rules, want %d", p.Signatures(), len(sigMatches)-1)
	}
	for _, sp := range sigPackets {
		pkt := sp.p
		if !p.Dropped(&pkt, sigT0) {
			t.Errorf("%s passed", sp.name)
		}
	}
	for _, c := range sigMatches {
		want := uint64(len(strings.Fields(c.want)))
		if c.m.Src == pfx("192.0.2.7/24") || c.m.Src == pfx("192.0.2.0/24") && c.m.Proto == 0 {
			continue // one rule under two names: counted below
		}
		if hits, ok := p.SignatureHits(c.m); !ok || hits != want {
			t.Errorf("%s: %d hits (%t), want %d", &c.m, hits, ok, want)
		}
	}
	if hits, _ := p.SignatureHits(detector.Match{Src: pfx("192.0.2.7/24")}); hits != 3 {
		t.Errorf("192.0.2.0/24: %d hits, want 3", hits)
	}
}

// TestSignatureRateLimit: a rate-limit rule passes max(1, ceil(rate/10))
// matching packets per 100 ms window of packet time and drops the rest;
// the next window passes again. Hits count every matching packet.
func TestSignatureRateLimit(t *testing.T) {
	for _, tc := range []struct {
		rate, allow uint64
	}{{1, 1}, {9, 1}, {10, 1}, {11, 2}, {15, 2}, {50, 5}, {1000, 100}, {1<<64 - 1, (1<<64-1)/10 + 1}} {
		if a := allowance(tc.rate); a != tc.allow {
			t.Errorf("allowance(%d) = %d, want %d", tc.rate, a, tc.allow)
		}
	}
	p := NewSimulatedPlane()
	m := detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 123, Hi: 123}}
	mustInstall(t, p, detector.SignatureRule{Match: m, RatePPS: 50, Expires: sigEnd})
	var got strings.Builder
	send := func(at time.Time, n int) {
		for range n {
			pkt := sigNTP
			if p.Dropped(&pkt, at) {
				got.WriteByte('D')
			} else {
				got.WriteByte('P')
			}
		}
		got.WriteByte(' ')
	}
	send(sigT0, 4)
	send(sigT0.Add(99*time.Millisecond), 3)  // same window: 5 in all
	send(sigT0.Add(100*time.Millisecond), 6) // the next one
	send(sigT0.Add(350*time.Millisecond), 1) // windows may be skipped
	send(sigT0.Add(50*time.Millisecond), 2)  // back to an earlier window: a new one all the same
	if want := "PPPP PDD PPPPPD P PP "; got.String() != want {
		t.Errorf("verdicts %q, want %q", got.String(), want)
	}
	if hits, _ := p.SignatureHits(m); hits != 16 {
		t.Errorf("%d hits, want 16", hits)
	}
	// Packets the rule does not match are not counted.
	pkt := sigSYN
	if p.Dropped(&pkt, sigT0.Add(50*time.Millisecond)) {
		t.Error("a packet no rule matches was dropped")
	}
}

// verdicts sends the packets at the times and returns D and P.
func verdicts(p *SimulatedPlane, at time.Time, pkts ...detector.PacketMeta) string {
	var b strings.Builder
	for _, pkt := range pkts {
		if p.Dropped(&pkt, at) {
			b.WriteByte('D')
		} else {
			b.WriteByte('P')
		}
	}
	return b.String()
}

// TestSignatureActions: a drop rule wins over a rate limit and leaves it
// uncharged; every matching rate limit is charged, and the packet is
// dropped if any is over.
func TestSignatureActions(t *testing.T) {
	udp := detector.Match{Proto: protoUDP}
	ntp := detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 123, Hi: 123}}
	dns := detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 53, Hi: 53}}
	t.Run("drop-charges-no-bucket", func(t *testing.T) {
		p := NewSimulatedPlane()
		mustInstall(t, p, detector.SignatureRule{Match: udp, RatePPS: 10, Expires: sigEnd}) // 1 per window
		mustInstall(t, p, detector.SignatureRule{Match: ntp, Expires: sigEnd})
		// NTP is dropped (and not charged to udp), so DNS still gets the
		// window's one packet.
		if got := verdicts(p, sigT0, sigNTP, sigNTP, sigDNS6, sigDNS6); got != "DDPD" {
			t.Errorf("verdicts %s, want DDPD", got)
		}
		if h, _ := p.SignatureHits(udp); h != 4 {
			t.Errorf("udp: %d hits, want 4", h)
		}
	})
	t.Run("every-rate-limit-charged", func(t *testing.T) {
		p := NewSimulatedPlane()
		mustInstall(t, p, detector.SignatureRule{Match: udp, RatePPS: 30, Expires: sigEnd}) // 3
		mustInstall(t, p, detector.SignatureRule{Match: ntp, RatePPS: 1, Expires: sigEnd})  // 1
		// NTP: udp 1 ntp 1 pass; udp 2 ntp 2 drop; udp 3 ntp 3 drop.
		// DNS: udp 4, over.
		if got := verdicts(p, sigT0, sigNTP, sigNTP, sigNTP, sigDNS6); got != "PDDD" {
			t.Errorf("verdicts %s, want PDDD", got)
		}
		if got := verdicts(p, sigT0.Add(RateWindow), sigDNS6, sigNTP, sigDNS6, sigDNS6); got != "PPPD" {
			t.Errorf("next window: verdicts %s, want PPPD", got)
		}
	})
	t.Run("order-independent", func(t *testing.T) {
		rules := []detector.SignatureRule{
			{Match: udp, RatePPS: 20, Expires: sigEnd},
			{Match: ntp, RatePPS: 10, Expires: sigEnd},
			{Match: dns, Expires: sigT0.Add(RateWindow)},
			{Match: detector.Match{Length: detector.Range{Lo: 1000, Hi: 1500}}, RatePPS: 30, Expires: sigEnd},
		}
		var want string
		for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {2, 0, 3, 1}} {
			p := NewSimulatedPlane()
			for _, i := range order {
				mustInstall(t, p, rules[i])
			}
			var got string
			for w := range 3 {
				got += verdicts(p, sigT0.Add(time.Duration(w)*RateWindow), sigNTP, sigDNS6, sigLater, sigNTP, sigLater, sigSYN, sigDNS6, sigLater) + " "
			}
			if want == "" {
				want = got
			} else if got != want {
				t.Errorf("order %v: verdicts %q, order 0123 gave %q", order, got, want)
			}
		}
	})
}

// TestSignatureExpiry: a rule drops while the packet's time is before its
// Expires, on the packet clock, and stops by itself.
func TestSignatureExpiry(t *testing.T) {
	p := NewSimulatedPlane()
	m := detector.Match{Proto: protoUDP}
	mustInstall(t, p, detector.SignatureRule{Match: m, TTL: time.Second, Expires: sigT0.Add(time.Second)})
	for _, tc := range []struct {
		at   time.Duration
		want string
	}{{0, "D"}, {time.Second - 1, "D"}, {time.Second, "P"}, {time.Hour, "P"}, {-time.Hour, "D"}} {
		if got := verdicts(p, sigT0.Add(tc.at), sigNTP); got != tc.want {
			t.Errorf("at %v: %s, want %s", tc.at, got, tc.want)
		}
	}
	if h, _ := p.SignatureHits(m); h != 3 {
		t.Errorf("%d hits, want 3 (expired rules count none)", h)
	}
	if !p.HasSignatures() || p.Signatures() != 1 {
		t.Error("an expired rule is held until removed")
	}
}

// TestSignatureExempt: an exempt source passes any rule, which counts no
// hit; other sources are dropped; SetExempt replaces the set.
func TestSignatureExempt(t *testing.T) {
	p := NewSimulatedPlane()
	m := detector.Match{Dst: pfx("198.51.100.0/24")}
	mustInstall(t, p, detector.SignatureRule{Match: m, Expires: sigEnd})
	if err := p.SetExempt([]detector.Addr{sigNTP.Src, sigDNS6.Src}); err != nil {
		t.Fatal(err)
	}
	if got := verdicts(p, sigT0, sigNTP, sigSYN, sigLater); got != "PDP" {
		t.Errorf("verdicts %s, want PDP", got)
	}
	if h, _ := p.SignatureHits(m); h != 1 {
		t.Errorf("%d hits, want 1", h)
	}
	if err := p.SetExempt([]detector.Addr{sigSYN.Src}); err != nil {
		t.Fatal(err)
	}
	if got := verdicts(p, sigT0, sigNTP, sigSYN, sigLater); got != "DPD" {
		t.Errorf("after SetExempt: verdicts %s, want DPD", got)
	}
	if err := p.SetExempt(nil); err != nil {
		t.Fatal(err)
	}
	if got := verdicts(p, sigT0, sigNTP, sigSYN); got != "DD" {
		t.Errorf("with none exempt: verdicts %s, want DD", got)
	}
}

// TestSignatureRenewRemove: installing a rule with the same Match (its
// prefixes masked) replaces it, keeping its hits and its window; removing
// it stops it.
func TestSignatureRenewRemove(t *testing.T) {
	p := NewSimulatedPlane()
	m := detector.Match{Proto: protoUDP, Src: pfx("192.0.2.0/24")}
	mustInstall(t, p, detector.SignatureRule{Match: m, RatePPS: 10, Expires: sigEnd})
	if got := verdicts(p, sigT0, sigNTP); got != "P" {
		t.Fatalf("verdicts %s, want P", got)
	}
	// Same rate, renewed within the window: no fresh allowance.
	mustInstall(t, p, detector.SignatureRule{Match: detector.Match{Proto: protoUDP, Src: pfx("192.0.2.77/24")}, RatePPS: 10, Expires: sigEnd})
	if got := verdicts(p, sigT0.Add(time.Millisecond), sigNTP); got != "D" {
		t.Errorf("renewed: verdicts %s, want D", got)
	}
	// A higher rate applies at once.
	mustInstall(t, p, detector.SignatureRule{Match: m, RatePPS: 30, Expires: sigEnd})
	if got := verdicts(p, sigT0.Add(2*time.Millisecond), sigNTP, sigNTP); got != "PD" {
		t.Errorf("rate 30: verdicts %s, want PD", got)
	}
	// The action and the expiry are replaced too.
	mustInstall(t, p, detector.SignatureRule{Match: m, Expires: sigT0.Add(time.Second), Origin: detector.OriginOperator})
	if got := verdicts(p, sigT0.Add(500*time.Millisecond), sigNTP, sigNTP); got != "DD" {
		t.Errorf("drop: verdicts %s, want DD", got)
	}
	if got := verdicts(p, sigT0.Add(time.Second), sigNTP); got != "P" {
		t.Errorf("after the new expiry: verdicts %s, want P", got)
	}
	if h, _ := p.SignatureHits(m); h != 6 || p.Signatures() != 1 {
		t.Errorf("%d hits in %d rules, want 6 in 1", h, p.Signatures())
	}

	mustInstall(t, p, detector.SignatureRule{Match: detector.Match{Proto: protoTCP}, Expires: sigEnd})
	if err := p.RemoveSignature(detector.Match{Proto: protoUDP, Src: pfx("192.0.2.1/24")}); err != nil {
		t.Fatal(err)
	}
	if got := verdicts(p, sigT0, sigNTP, sigSYN); got != "PD" {
		t.Errorf("after removing: verdicts %s, want PD", got)
	}
	if _, ok := p.SignatureHits(m); ok || p.Signatures() != 1 {
		t.Errorf("the removed rule is still held (%d rules)", p.Signatures())
	}
	if err := p.RemoveSignature(m); err != nil {
		t.Errorf("removing a rule not held: %v", err)
	}
	if err := p.RemoveSignature(detector.Match{Proto: protoTCP}); err != nil || p.HasSignatures() {
		t.Errorf("after removing the last: %v, HasSignatures %t", err, p.HasSignatures())
	}
	if got := verdicts(p, sigT0, sigNTP, sigSYN); got != "PP" {
		t.Errorf("with no rules: verdicts %s, want PP", got)
	}
}

func TestSignatureInstallInvalid(t *testing.T) {
	p := NewSimulatedPlane()
	for _, m := range []detector.Match{
		{},
		{SrcPort: detector.Range{Lo: 1, Hi: 1}},
		{Proto: protoUDP, TCPFlags: 2, TCPFlagsMask: 2},
		{Proto: protoUDP, DstPort: detector.Range{Lo: 1, Hi: 1}, Fragment: detector.FragLater},
	} {
		if err := p.InstallSignature(detector.SignatureRule{Match: m, Expires: sigEnd}); err == nil {
			t.Errorf("%s installed", &m)
		}
	}
	if p.HasSignatures() {
		t.Error("an invalid rule is held")
	}
}

// TestSigMatchAgrees holds the compiled matcher to Match.Matches, the
// reference, on random matches and packets drawn from values on each
// side of every component's edges: IPv4 and IPv6 prefixes of every
// length (an IPv6 prefix over IPv4-mapped space among them), ports,
// flags, lengths, fragments, and packets with and without a transport
// header.
func TestSigMatchAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	addrs := []string{"192.0.2.1", "192.0.2.200", "198.51.100.7", "0.0.0.0", "255.255.255.255",
		"2001:db8::1", "2001:db8:0:1::1", "2001:db8:8000::", "::", "::1", "ffff::1"}
	pick := func() detector.Addr { return addr(addrs[rng.IntN(len(addrs))]) }
	// prefix is unset, or over the IPv4-mapped space, or around own (the
	// packet's address) or another.
	prefix := func(own detector.Addr) netip.Prefix {
		switch rng.IntN(8) {
		case 0, 1, 2:
			return netip.Prefix{}
		case 3:
			return netip.PrefixFrom(netip.MustParseAddr("::ffff:192.0.2.0"), 96+rng.IntN(33)).Masked()
		case 4, 5:
			own = pick()
		}
		a := own.Netip()
		return netip.PrefixFrom(a, rng.IntN(a.BitLen()+1)).Masked()
	}
	ports := []uint16{0, 1, 53, 123, 443, 65535}
	rng16 := func() detector.Range {
		if rng.IntN(3) != 0 {
			return detector.Range{}
		}
		lo, hi := ports[rng.IntN(len(ports))], ports[rng.IntN(len(ports))]
		return detector.Range{Lo: min(lo, hi), Hi: max(lo, hi)}
	}
	lengths := []uint16{0, 40, 468, 1500, 65535}
	matched := 0
	const n = 200_000
	for range n {
		p := detector.PacketMeta{
			Src: pick(), Dst: pick(), Proto: []uint8{protoTCP, protoUDP, 1, 47}[rng.IntN(4)], L4: rng.IntN(4) != 0,
			SrcPort: ports[rng.IntN(len(ports))], DstPort: ports[rng.IntN(len(ports))], TCPFlags: uint8(rng.IntN(256)),
			Length: lengths[rng.IntN(len(lengths))] + uint16(rng.IntN(2)), Fragment: detector.Fragment(1 + rng.IntN(3)),
		}
		m := detector.Match{
			Src: prefix(p.Src), Dst: prefix(p.Dst), Proto: []uint8{0, 0, protoTCP, protoUDP, 1}[rng.IntN(5)],
			SrcPort: rng16(), DstPort: rng16(), Length: rng16(), Fragment: detector.Fragment(rng.IntN(4)) * detector.Fragment(rng.IntN(2)),
		}
		if rng.IntN(4) == 0 {
			m.TCPFlagsMask = uint8(rng.IntN(256))
			m.TCPFlags = uint8(rng.IntN(256)) & m.TCPFlagsMask
		}
		cm := compileMatch(&m)
		got, want := cm.matches(&p), m.Matches(&p)
		if got != want {
			t.Fatalf("%s on %s → %s %+v: compiled %t, Match.Matches %t", &m, p.Src, p.Dst, p, got, want)
		}
		if got {
			matched++
		}
	}
	t.Logf("%d of %d draws match", matched, n)
	if matched < n/100 {
		t.Errorf("%d matches in %d draws: the draws exercise too little", matched, n)
	}
}

// TestUnixNano: the saturated clock is exact inside its range.
func TestUnixNano(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 0), 0},
		{sigT0, sigT0.UnixNano()},
		{time.Unix(-1, 0), -1e9},
		{time.Unix(0, math.MaxInt64-1), math.MaxInt64 - 1},
		{time.Unix(0, math.MinInt64+1), math.MinInt64 + 1},
		{time.Unix(0, math.MaxInt64), math.MaxInt64},
		{time.Date(5000, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
		{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), math.MinInt64},
		{time.Time{}, math.MinInt64},
	} {
		if got := unixNano(tc.t); got != tc.want {
			t.Errorf("unixNano(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

// TestSignatureFarTimes: rules expiring past the range of UnixNano, and
// packets stamped there, still follow t < Expires exactly.
func TestSignatureFarTimes(t *testing.T) {
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewSimulatedPlane()
	mustInstall(t, p, detector.SignatureRule{Match: detector.Match{Proto: protoUDP}, Expires: far})
	mustInstall(t, p, detector.SignatureRule{Match: detector.Match{Proto: protoTCP}, Expires: far.Add(-time.Hour)})
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{sigT0, "DD"},
		{far.Add(-2 * time.Hour), "DD"},
		{far.Add(-time.Hour), "DP"},
		{far, "PP"},
		{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), "DD"},
	} {
		if got := verdicts(p, tc.at, sigNTP, sigSYN); got != tc.want {
			t.Errorf("at %v: %s, want %s", tc.at, got, tc.want)
		}
	}
}
