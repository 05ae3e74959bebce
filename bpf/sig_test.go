package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func install(t testing.TB, x *XDP, m detector.Match, rate uint64, ttl time.Duration) {
	t.Helper()
	if err := x.InstallSignature(detector.SignatureRule{Match: m, RatePPS: rate, TTL: ttl}); err != nil {
		t.Fatalf("install %s: %v", &m, err)
	}
}

// Test packets: one base packet of each kind, varied one field at a time.
var (
	udp4 = pkt{src: "198.18.0.1", dst: "198.19.0.10", proto: 17, sport: 53, dport: 4444, payload: 100}
	tcp4 = pkt{src: "198.18.0.1", dst: "198.19.0.10", proto: 6, sport: 40000, dport: 80, flags: 0x02}
	udp6 = pkt{src: "2001:db8::1", dst: "2001:db8:ffff::10", proto: 17, sport: 123, dport: 5555, payload: 40}
	tcp6 = pkt{src: "2001:db8::1", dst: "2001:db8:ffff::10", proto: 6, sport: 40000, dport: 443, flags: 0x12}
)

func with(p pkt, f func(*pkt)) pkt { f(&p); return p }

// TestSignatureMatch checks every match component, each with packets on
// both sides of it, against the program and the Go reference.
func TestSignatureMatch(t *testing.T) {
	x := loadTest(t, Options{})
	icmp4 := with(udp4, func(p *pkt) { p.proto = 1 })
	gre6 := with(udp6, func(p *pkt) { p.proto = 47 })
	for _, tc := range []struct {
		name      string
		m         detector.Match
		match, no []pkt
	}{
		{"src v4 prefix", detector.Match{Src: pfx("198.18.0.0/24")},
			[]pkt{udp4, tcp4, icmp4}, []pkt{with(udp4, func(p *pkt) { p.src = "198.18.1.1" }), udp6}},
		{"src v6 prefix", detector.Match{Src: pfx("2001:db8::/64")},
			[]pkt{udp6, tcp6, gre6}, []pkt{with(udp6, func(p *pkt) { p.src = "2001:db8:1::1" }), udp4}},
		{"dst v4 single", detector.Match{Dst: pfx("198.19.0.10/32")},
			[]pkt{udp4, tcp4}, []pkt{with(udp4, func(p *pkt) { p.dst = "198.19.0.11" }), udp6}},
		{"dst v6 prefix", detector.Match{Dst: pfx("2001:db8:ffff::/48")},
			[]pkt{udp6, tcp6}, []pkt{with(udp6, func(p *pkt) { p.dst = "2001:db8:fffe::10" }), udp4}},
		{"v6 prefix holds no IPv4-mapped address", detector.Match{Dst: pfx("::/0")},
			[]pkt{udp6}, []pkt{udp4}},
		{"v4 /0", detector.Match{Src: pfx("0.0.0.0/0")},
			[]pkt{udp4, tcp4}, []pkt{udp6}},
		{"proto", detector.Match{Proto: 47},
			[]pkt{gre6, with(gre6, func(p *pkt) { p.frag = detector.FragLater })}, []pkt{udp6, icmp4}},
		{"sport single", detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}},
			[]pkt{udp4, with(udp4, func(p *pkt) { p.vlan = true })},
			[]pkt{with(udp4, func(p *pkt) { p.sport = 54 }), with(tcp4, func(p *pkt) { p.sport = 53 }),
				with(udp4, func(p *pkt) { p.frag = detector.FragLater })}},
		{"sport range", detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 100, Hi: 200}},
			[]pkt{with(udp6, func(p *pkt) { p.sport = 100 }), with(udp6, func(p *pkt) { p.sport = 200 })},
			[]pkt{with(udp6, func(p *pkt) { p.sport = 99 }), with(udp6, func(p *pkt) { p.sport = 201 })}},
		{"dport single", detector.Match{Proto: 6, DstPort: detector.Range{Lo: 80, Hi: 80}},
			[]pkt{tcp4, with(tcp4, func(p *pkt) { p.frag = detector.FragFirst })},
			[]pkt{with(tcp4, func(p *pkt) { p.dport = 81 }), with(udp4, func(p *pkt) { p.dport = 80 }),
				with(tcp4, func(p *pkt) { p.frag = detector.FragLater })}},
		{"dport range", detector.Match{Proto: 6, DstPort: detector.Range{Lo: 1, Hi: 1023}},
			[]pkt{tcp4, tcp6, with(tcp6, func(p *pkt) { p.dport = 1 }), with(tcp6, func(p *pkt) { p.dport = 1023 })},
			[]pkt{with(tcp6, func(p *pkt) { p.dport = 0 }), with(tcp6, func(p *pkt) { p.dport = 1024 })}},
		{"sport and dport", detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}, DstPort: detector.Range{Lo: 4000, Hi: 5000}},
			[]pkt{udp4}, []pkt{with(udp4, func(p *pkt) { p.dport = 5001 }), with(udp4, func(p *pkt) { p.sport = 52 })}},
		{"tcp flags SYN without ACK", detector.Match{Proto: 6, TCPFlags: 0x02, TCPFlagsMask: 0x12},
			[]pkt{tcp4, with(tcp4, func(p *pkt) { p.flags = 0x02 | 0x08 })},
			[]pkt{tcp6, with(tcp4, func(p *pkt) { p.flags = 0x10 }), with(tcp4, func(p *pkt) { p.frag = detector.FragLater })}},
		{"tcp flags RST", detector.Match{Proto: 6, TCPFlags: 0x04, TCPFlagsMask: 0x04},
			[]pkt{with(tcp6, func(p *pkt) { p.flags = 0x14 })}, []pkt{tcp6}},
		{"length range", detector.Match{Length: detector.Range{Lo: 100, Hi: 200}},
			// udp4: 20 + 8 + 100 = 128; udp6: 40 + 8 + 40 = 88.
			[]pkt{udp4, with(udp6, func(p *pkt) { p.payload = 52 }), with(udp6, func(p *pkt) { p.payload = 152 })},
			[]pkt{udp6, with(udp6, func(p *pkt) { p.payload = 51 }), with(udp6, func(p *pkt) { p.payload = 153 })}},
		{"fragment none", detector.Match{Fragment: detector.FragNone, Proto: 17},
			[]pkt{udp4, udp6}, []pkt{with(udp4, func(p *pkt) { p.frag = detector.FragFirst }), with(udp6, func(p *pkt) { p.frag = detector.FragLater })}},
		{"fragment first", detector.Match{Fragment: detector.FragFirst, Proto: 17},
			[]pkt{with(udp4, func(p *pkt) { p.frag = detector.FragFirst }), with(udp6, func(p *pkt) { p.frag = detector.FragFirst })},
			[]pkt{udp4, with(udp6, func(p *pkt) { p.frag = detector.FragLater })}},
		{"fragment later", detector.Match{Fragment: detector.FragLater, Dst: pfx("198.19.0.0/16")},
			[]pkt{with(udp4, func(p *pkt) { p.frag = detector.FragLater }), with(tcp4, func(p *pkt) { p.frag = detector.FragLater })},
			[]pkt{udp4, with(udp4, func(p *pkt) { p.frag = detector.FragFirst })}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := refPlane{rules: map[int]*refRule{0: {r: detector.SignatureRule{Match: tc.m}}}}
			install(t, x, tc.m, 0, time.Hour)
			defer func() {
				if err := x.RemoveSignature(tc.m); err != nil {
					t.Fatal(err)
				}
			}()
			for i, p := range append(tc.match, tc.no...) {
				f := p.frame()
				meta := p.meta(f)
				wantDrop := i < len(tc.match)
				if got := ref.decide(&meta, uint64(len(f)), 0); got != wantDrop {
					t.Fatalf("packet %d %+v: reference drop %v, want %v: the test table is wrong", i, meta, got, wantDrop)
				}
				want := uint32(xdpPass)
				if wantDrop {
					want = xdpDrop
				}
				if got := run(t, x, f); got != want {
					t.Errorf("packet %d %+v: action %d, want %d", i, meta, got, want)
				}
			}
		})
	}
}

// TestSignatureDropCounts checks that a signature drop counts like a
// source-rule drop (per source, globally, by class) and on the rule.
func TestSignatureDropCounts(t *testing.T) {
	x := loadTest(t, Options{})
	m := detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}}
	install(t, x, m, 0, time.Hour)
	f, other := udp4.frame(), with(udp4, func(p *pkt) { p.sport = 5353 }).frame()
	for range 3 {
		expectAction(t, x, "matching", f, xdpDrop)
		expectAction(t, x, "other", other, xdpPass)
	}
	n := uint64(len(f))
	st := readStats(t, x)
	if st.DroppedPackets != 3 || st.DroppedBytes != 3*n || st.DroppedClassPackets[detector.ClassUDP] != 3 ||
		st.Packets[detector.ClassUDP] != 6 {
		t.Errorf("stats %+v, want 3 of 6 udp packets dropped", st)
	}
	s, _ := lookupSource(t, x, addr(udp4.src))
	if s.DroppedPackets != 3 || s.DroppedBytes != 3*n || s.Packets[detector.ClassUDP] != 6 {
		t.Errorf("source %+v, want 3 of 6 dropped", s.Counters)
	}
	sig := statusBySlot(t, x)[SigPortlessSlots] // the first slot for rules with ports
	if sig.HitPackets != 3 || sig.HitBytes != 3*n || sig.DroppedPackets != 3 || sig.DroppedBytes != 3*n ||
		sig.Action() != "drop" || sig.Match != m || sig.TimeLeft <= 0 || sig.TimeLeft > time.Hour {
		t.Errorf("rule %+v, want 3 hits and drops of %d bytes", sig, n)
	}

	// A frame a source rule drops never reaches the signature rules.
	if err := x.AddRule(pfx(udp4.src+"/32"), time.Hour); err != nil {
		t.Fatal(err)
	}
	expectAction(t, x, "source-banned", f, xdpDrop)
	if sig := statusBySlot(t, x)[SigPortlessSlots]; sig.HitPackets != 3 {
		t.Errorf("rule counted a frame a source rule dropped: %+v", sig)
	}
}

// TestSignatureSemantics checks how matching rules combine: every matching
// rule counts a hit; a drop rule wins and leaves the rate limiters
// untouched; exempt sources pass matching rules and count nothing.
func TestSignatureSemantics(t *testing.T) {
	x := loadTest(t, Options{})
	drop := detector.Match{Dst: pfx("198.19.0.10/32")}
	limit := detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}}
	install(t, x, limit, 1_000_000, time.Hour)
	f := udp4.frame()
	expectAction(t, x, "rate limit only", f, xdpPass)
	install(t, x, drop, 0, time.Hour)
	expectAction(t, x, "drop and rate limit", f, xdpDrop)
	sigs := statusBySlot(t, x)
	dropSlot, limitSlot := 0, SigPortlessSlots
	if d, l := sigs[dropSlot], sigs[limitSlot]; d.Match != drop || l.Match != limit ||
		d.HitPackets != 1 || d.DroppedPackets != 1 || l.HitPackets != 2 || l.DroppedPackets != 0 {
		t.Errorf("drop rule %+v, rate limit %+v; want 1/1 and 2/0 hits/drops", d, l)
	}
	if c := x.sigSlot(limitSlot).Count; c != 1 {
		t.Errorf("rate limiter charged %d times, want once (not while a drop rule matched)", c)
	}

	// Exempt: passes, counts nothing; a packet that matches nothing is
	// unaffected; other sources still dropped.
	if err := x.SetExempt([]detector.Addr{addr(udp4.src), addr("2001:db8::99")}); err != nil {
		t.Fatal(err)
	}
	if ex, err := x.Exempt(); err != nil || len(ex) != 2 {
		t.Errorf("exempt %v, %v", ex, err)
	}
	expectAction(t, x, "exempt source", f, xdpPass)
	expectAction(t, x, "exempt source, no match", with(udp4, func(p *pkt) { p.dst = "198.19.0.99"; p.sport = 99 }).frame(), xdpPass)
	expectAction(t, x, "other source", with(udp4, func(p *pkt) { p.src = "198.18.0.2" }).frame(), xdpDrop)
	sigs = statusBySlot(t, x)
	if d := sigs[dropSlot]; d.HitPackets != 2 || d.DroppedPackets != 2 {
		t.Errorf("drop rule %+v after the exempt source, want 2 hits (the exempt one not counted)", d)
	}
	if err := x.SetExempt(nil); err != nil {
		t.Fatal(err)
	}
	expectAction(t, x, "no longer exempt", f, xdpDrop)
	if x.control()>>32&haveExempt != 0 {
		t.Error("exempt flag still set with no exempt source")
	}
	if err := x.SetExempt(make([]detector.Addr, MaxExempt+1)); err != nil {
		t.Errorf("%d copies of one address: %v", MaxExempt+1, err)
	}
	many := make([]detector.Addr, MaxExempt+1)
	for i := range many {
		many[i] = detector.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	if err := x.SetExempt(many); !errors.Is(err, ErrTooManyExempt) {
		t.Errorf("%d exempt: %v, want ErrTooManyExempt", len(many), err)
	}
}

// waitWindowStart sleeps until the start of a rate-limit window (plus a
// margin), so that what follows runs well inside one window.
func waitWindowStart(t *testing.T) uint64 {
	t.Helper()
	now, err := MonotonicNow()
	if err != nil {
		t.Fatal(err)
	}
	next := (now/sigWindowNs + 1) * sigWindowNs
	time.Sleep(time.Duration(next-now) + 5*time.Millisecond)
	return next / sigWindowNs
}

// runRepeat runs frame n times in one BPF_PROG_TEST_RUN call and reports
// whether it all happened inside window.
func runRepeat(t *testing.T, x *XDP, frame []byte, n int, window uint64) bool {
	t.Helper()
	if _, err := x.Program().Run(&ebpf.RunOptions{Data: frame, Repeat: uint32(n)}); err != nil {
		t.Fatal(err)
	}
	now, err := MonotonicNow()
	if err != nil {
		t.Fatal(err)
	}
	return now/sigWindowNs == window
}

// TestSignatureRateLimit checks the rate limiter: exactly the allowance
// passes within a 100 ms window, the rest is dropped, and the next window
// passes again. It aligns itself on the real clock and retries a round
// that straddled a window boundary.
func TestSignatureRateLimit(t *testing.T) {
	x := loadTest(t, Options{})
	m := detector.Match{Proto: 17, DstPort: detector.Range{Lo: 4444, Hi: 4444}}
	const rate = 95 // allowance ceil(9.5) = 10
	install(t, x, m, rate, time.Hour)
	f := udp4.frame()
	for try := 0; ; try++ {
		if try == 5 {
			t.Fatal("every round straddled a window boundary")
		}
		before := statusBySlot(t, x)[SigPortlessSlots]
		w := waitWindowStart(t)
		if !runRepeat(t, x, f, 15, w) {
			continue
		}
		// cilium/ebpf runs BPF_PROG_TEST_RUN again when the syscall is
		// interrupted (EINTR, e.g. by the Go runtime's preemption signal
		// on a loaded machine), so a round may run a few more packets than
		// asked: whatever the count, exactly the allowance passes.
		mid := statusBySlot(t, x)[SigPortlessSlots]
		if h, d := mid.HitPackets-before.HitPackets, mid.DroppedPackets-before.DroppedPackets; h < 15 || d != h-10 {
			t.Fatalf("15 packets in one window: %d hits, %d dropped; want at least 15, all but 10 dropped", h, d)
		}
		expectAction(t, x, "over the allowance", f, xdpDrop)
		w = waitWindowStart(t)
		if !runRepeat(t, x, f, 10, w) {
			continue
		}
		expectAction(t, x, "allowance used up again", f, xdpDrop)
		after := statusBySlot(t, x)[SigPortlessSlots]
		if h, d := after.HitPackets-mid.HitPackets, after.DroppedPackets-mid.DroppedPackets; h < 12 || d != h-10 {
			t.Fatalf("next window: %d hits, %d dropped; want at least 12, all but 10 dropped", h, d)
		}
		break
	}
	if a := allowance(rate); a != 10 {
		t.Errorf("allowance(%d) = %d", rate, a)
	}
	for rate, want := range map[uint64]uint64{1: 1, 9: 1, 10: 1, 11: 2, 100: 10, 1<<64 - 1: 1844674407370955162} {
		if a := allowance(rate); a != want {
			t.Errorf("allowance(%d) = %d, want %d", rate, a, want)
		}
	}
}

// TestSignatureExpiry checks that an expired rule stops dropping by itself
// and that renewing revives it in place.
func TestSignatureExpiry(t *testing.T) {
	x := loadTest(t, Options{})
	m := detector.Match{Dst: pfx("198.19.0.0/24")}
	install(t, x, m, 0, 30*time.Millisecond)
	f := udp4.frame()
	expectAction(t, x, "before expiry", f, xdpDrop)
	time.Sleep(60 * time.Millisecond) // the program's clock may be a tick behind
	expectAction(t, x, "expired", f, xdpPass)
	s := statusBySlot(t, x)[0]
	if s.TimeLeft > 0 || s.HitPackets != 1 {
		t.Errorf("expired rule %+v: want negative time left, 1 hit", s)
	}
	install(t, x, m, 0, time.Hour)
	expectAction(t, x, "renewed", f, xdpDrop)
	s = statusBySlot(t, x)[0]
	if s.TimeLeft < 59*time.Minute || s.HitPackets != 2 {
		t.Errorf("renewed rule %+v: want an hour left, 2 hits (counters kept)", s)
	}
	// Renewing with a rate turns it into a rate limit, in place.
	install(t, x, m, 1_000_000, time.Hour)
	expectAction(t, x, "renewed as a rate limit", f, xdpPass)
	sigs := statusBySlot(t, x)
	if len(sigs) != 1 || sigs[0].RatePPS != 1_000_000 || sigs[0].Action() != "rate_limit" || sigs[0].HitPackets != 3 {
		t.Errorf("after renewal: %+v", sigs)
	}
	install(t, x, m, 0, 10*time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if n, err := x.PruneExpiredSignatures(); n != 1 || err != nil {
		t.Errorf("prune: %d, %v", n, err)
	}
	if sigs, _ := x.Signatures(); len(sigs) != 0 {
		t.Errorf("after prune: %+v", sigs)
	}
	if err := x.RemoveSignature(m); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("remove pruned: %v", err)
	}
}

// TestSignatureSlots checks the allocation: lowest free slot per kind,
// renewal in place, a normalized match as the rule's name, crowded ports
// falling back to portless slots, and ErrSignaturesFull.
func TestSignatureSlots(t *testing.T) {
	x := loadTest(t, Options{})
	port := func(p uint16) detector.Match {
		return detector.Match{Proto: 17, DstPort: detector.Range{Lo: p, Hi: p}}
	}
	dst := func(i int) detector.Match {
		return detector.Match{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 1, byte(i)}), 32)}
	}
	for i := range SigSlots - SigPortlessSlots {
		install(t, x, port(uint16(1000+i)), 0, time.Hour)
	}
	for i := range SigPortlessSlots {
		install(t, x, dst(i), 0, time.Hour)
	}
	sigs := statusBySlot(t, x)
	if len(sigs) != SigSlots || sigs[SigPortlessSlots].Match != port(1000) || sigs[0].Match != dst(0) {
		t.Fatalf("%d rules; slot %d %v, slot 0 %v", len(sigs), SigPortlessSlots, sigs[SigPortlessSlots].Match, sigs[0].Match)
	}
	if err := x.InstallSignature(detector.SignatureRule{Match: port(9), TTL: time.Hour}); !errors.Is(err, ErrSignaturesFull) {
		t.Errorf("one rule too many: %v, want ErrSignaturesFull", err)
	}
	// Renewal needs no slot; the name is the normalized match.
	renew := dst(3)
	renew.Dst = pfx("198.19.1.3/32")
	renew.Length = detector.Range{Lo: 0, Hi: 65535}
	install(t, x, renew, 5, time.Hour)
	if s := statusBySlot(t, x)[3]; s.RatePPS != 5 || s.Match != dst(3) {
		t.Errorf("renewed slot 3: %+v", s)
	}
	// Freed slots are reused lowest first.
	for _, m := range []detector.Match{port(1005), port(1002), dst(7)} {
		if err := x.RemoveSignature(m); err != nil {
			t.Fatal(err)
		}
	}
	install(t, x, port(7), 0, time.Hour)
	install(t, x, detector.Match{Proto: 58}, 0, time.Hour)
	sigs = statusBySlot(t, x)
	if sigs[SigPortlessSlots+2].Match != port(7) || sigs[7].Match != (detector.Match{Proto: 58}) {
		t.Errorf("reused slots: %v, %v", sigs[SigPortlessSlots+2].Match, sigs[7].Match)
	}
	expectAction(t, x, "indexed rule in a reused slot", with(udp4, func(p *pkt) { p.dport = 7 }).frame(), xdpDrop)
	expectAction(t, x, "removed rule", with(udp4, func(p *pkt) { p.dport = 1005 }).frame(), xdpPass)
	expectAction(t, x, "last indexed rule", with(udp6, func(p *pkt) { p.dport = 1000 + 239 }).frame(), xdpDrop)
	if err := x.RemoveSignature(port(4242)); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("remove unknown: %v", err)
	}

	// Invalid rules.
	for _, m := range []detector.Match{{}, {DstPort: detector.Range{Lo: 1, Hi: 1}}, {Proto: 17, TCPFlagsMask: 2}} {
		if err := x.InstallSignature(detector.SignatureRule{Match: m, TTL: time.Hour}); !errors.Is(err, ErrInvalidRule) {
			t.Errorf("%v: %v, want ErrInvalidRule", m, err)
		}
	}
	if err := x.InstallSignature(detector.SignatureRule{Match: port(1), TTL: 0}); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("no TTL: %v, want ErrInvalidRule", err)
	}
}

// TestSignatureCrowdedPort checks that more rules on one port than an index
// entry holds fall back to portless slots, and still match.
func TestSignatureCrowdedPort(t *testing.T) {
	x := loadTest(t, Options{})
	rule := func(i int) detector.Match {
		return detector.Match{Proto: 6, DstPort: detector.Range{Lo: 443, Hi: 443},
			Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 2, byte(i)}), 32)}
	}
	for i := range sigIndexSlots + 2 {
		install(t, x, rule(i), 0, time.Hour)
	}
	sigs := statusBySlot(t, x)
	for i := range sigIndexSlots + 2 {
		slot := SigPortlessSlots + i
		if i >= sigIndexSlots {
			slot = i - sigIndexSlots
		}
		if sigs[slot].Match != rule(i) {
			t.Errorf("rule %d: slot %d holds %v", i, slot, sigs[slot].Match)
		}
		expectAction(t, x, fmt.Sprintf("rule %d", i), with(tcp4, func(p *pkt) {
			p.dport, p.dst = 443, fmt.Sprintf("198.19.2.%d", i)
		}).frame(), xdpDrop)
	}
	expectAction(t, x, "no rule", with(tcp4, func(p *pkt) { p.dport, p.dst = 443, "198.19.2.200" }).frame(), xdpPass)
	// A narrower source range is indexed instead of a wide destination
	// range, and the index entries go when the rule does.
	wide := detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}, DstPort: detector.Range{Lo: 1024, Hi: 65535}}
	install(t, x, wide, 0, time.Hour)
	if s := x.sigSlot(SigPortlessSlots + sigIndexSlots); s.Indexed != 1+uint8(detector.UDPSrcPort) {
		t.Errorf("indexed by kind %d, want udp sport", int(s.Indexed)-1)
	}
	expectAction(t, x, "wide rule", udp4.frame(), xdpDrop)
	if err := x.RemoveSignature(wide); err != nil {
		t.Fatal(err)
	}
	if e := *x.indexEntry(detector.UDPSrcPort, 53); e != 0 {
		t.Errorf("index entry left behind: %#x", e)
	}
	expectAction(t, x, "wide rule removed", udp4.frame(), xdpPass)
}
