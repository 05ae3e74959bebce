package bpf

import (
	"errors"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

func TestRuleKey(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   string // normalized prefix; "" means ErrInvalidRule
		exact  bool
		family int
	}{
		{"198.18.0.1/32", "198.18.0.1/32", true, 4},
		{"198.18.0.77/24", "198.18.0.0/24", false, 4},
		{"::ffff:198.18.0.1/128", "198.18.0.1/32", true, 4},
		{"::ffff:198.18.0.0/112", "198.18.0.0/16", false, 4},
		{"2001:db8::1/128", "2001:db8::1/128", true, 6},
		{"2001:db8:1:2::/48", "2001:db8:1::/48", false, 6},
		{"198.18.0.0/0", "", false, 0},
		{"::/0", "", false, 0},
		{"::ffff:0.0.0.0/95", "", false, 0},
	} {
		k, err := newRuleKey(netip.MustParsePrefix(tc.in))
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidRule) {
				t.Errorf("%s: err %v, want ErrInvalidRule", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if k.prefix.String() != tc.want || k.exact != tc.exact || (tc.family == 4) != k.v4 {
			t.Errorf("%s: got %v exact=%v v4=%v, want %s exact=%v family %d", tc.in, k.prefix, k.exact, k.v4, tc.want, tc.exact, tc.family)
		}
	}
	if _, err := newRuleKey(netip.Prefix{}); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("zero prefix: %v", err)
	}
}

func udp6Frame(src string) []byte {
	return frameOf(eth(layers.EthernetTypeIPv6), ip6(src, layers.IPProtocolUDP), udp(53))
}

func udp4Frame(src string) []byte {
	return frameOf(eth(layers.EthernetTypeIPv4), ip4(src, layers.IPProtocolUDP), udp(53))
}

// expectAction runs frame and checks the action.
func expectAction(t *testing.T, x *XDP, what string, frame []byte, want uint32) {
	t.Helper()
	if got := run(t, x, frame); got != want {
		t.Errorf("%s: action %d, want %d", what, got, want)
	}
}

func findRule(t *testing.T, x *XDP, p string) Rule {
	t.Helper()
	rules, err := x.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Prefix == netip.MustParsePrefix(p) {
			return r
		}
	}
	t.Fatalf("rule %s not listed in %v", p, rules)
	return Rule{}
}

func TestRulesDrop(t *testing.T) {
	x := loadTest(t, Options{})
	banned4, banned6 := "198.18.0.1", "2001:db8::1"
	inPrefix4, inPrefix6 := "198.18.7.9", "2001:db8:7::9"
	other4, other6 := "198.18.8.1", "2001:db8:8::1"
	frames := map[string][]byte{
		banned4: udp4Frame(banned4), inPrefix4: udp4Frame(inPrefix4), other4: udp4Frame(other4),
		banned6: udp6Frame(banned6), inPrefix6: udp6Frame(inPrefix6), other6: udp6Frame(other6),
	}

	// Every source is known (and its rule cache filled) before the rules
	// exist, so the generation bump must make the program re-read them.
	for src, f := range frames {
		expectAction(t, x, "before rules "+src, f, xdpPass)
	}
	gen := x.RulesGeneration()
	for _, p := range []string{banned4 + "/32", banned6 + "/128", "198.18.7.0/24", "2001:db8:7::/48"} {
		if err := x.AddRule(netip.MustParsePrefix(p), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if x.RulesGeneration() == gen {
		t.Errorf("generation %d did not move", gen)
	}

	for src, f := range frames {
		want := uint32(xdpDrop)
		if src == other4 || src == other6 {
			want = xdpPass
		}
		expectAction(t, x, "with rules "+src, f, want)
		expectAction(t, x, "with rules again "+src, f, want)
	}

	// Dropped traffic is still counted per source, and as dropped.
	for src, f := range frames {
		s, ok := lookupSource(t, x, addr(src))
		if !ok {
			t.Fatalf("source %s not tracked", src)
		}
		n := uint64(len(f))
		wantDropped := uint64(2)
		if src == other4 || src == other6 {
			wantDropped = 0
		}
		if s.Packets[detector.ClassUDP] != 3 || s.Bytes[detector.ClassUDP] != 3*n ||
			s.DroppedPackets != wantDropped || s.DroppedBytes != wantDropped*n {
			t.Errorf("source %s: %+v, want 3 udp packets, %d dropped", src, s.Counters, wantDropped)
		}
	}
	st := readStats(t, x)
	if st.Packets[detector.ClassUDP] != 18 || st.DroppedPackets != 8 {
		t.Errorf("stats %+v, want 18 udp packets, 8 dropped", st)
	}
	// Drops by class: all of them UDP, and they add up to the totals.
	var classDropB uint64
	for c := range NumClasses {
		want := uint64(0)
		if c == int(detector.ClassUDP) {
			want = 8
		}
		if st.DroppedClassPackets[c] != want {
			t.Errorf("class %v: %d dropped, want %d", detector.Class(c), st.DroppedClassPackets[c], want)
		}
		classDropB += st.DroppedClassBytes[c]
	}
	if classDropB != st.DroppedBytes {
		t.Errorf("dropped bytes by class sum to %d, total %d", classDropB, st.DroppedBytes)
	}

	// Hit counters: prefix rules count their own drops, exact rules report
	// the source's dropped counters.
	for p, src := range map[string]string{
		"198.18.7.0/24": inPrefix4, "2001:db8:7::/48": inPrefix6,
		banned4 + "/32": banned4, banned6 + "/128": banned6,
	} {
		r := findRule(t, x, p)
		n := uint64(len(frames[src]))
		if r.Packets != 2 || r.Bytes != 2*n {
			t.Errorf("rule %s: hits %d packets %d bytes, want 2, %d", p, r.Packets, r.Bytes, 2*n)
		}
		if r.TimeLeft <= 59*time.Minute || r.TimeLeft > time.Hour {
			t.Errorf("rule %s: time left %v", p, r.TimeLeft)
		}
		if r.Exact() != (p == banned4+"/32" || p == banned6+"/128") {
			t.Errorf("rule %s: Exact() = %v", p, r.Exact())
		}
	}

	// Removing a rule takes effect at once for cached sources.
	if err := x.RemoveRule(netip.MustParsePrefix(banned4 + "/32")); err != nil {
		t.Fatal(err)
	}
	if err := x.RemoveRule(netip.MustParsePrefix("198.18.7.0/24")); err != nil {
		t.Fatal(err)
	}
	expectAction(t, x, "after remove "+banned4, frames[banned4], xdpPass)
	expectAction(t, x, "after remove "+inPrefix4, frames[inPrefix4], xdpPass)
	expectAction(t, x, "other rules still there "+banned6, frames[banned6], xdpDrop)
	if err := x.RemoveRule(netip.MustParsePrefix(banned4 + "/32")); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("remove twice: %v, want ErrRuleNotFound", err)
	}
	if err := x.RemoveRule(netip.MustParsePrefix("198.18.7.0/25")); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("remove absent prefix: %v, want ErrRuleNotFound", err)
	}
}

// TestRulesNewSource checks that a source first seen after the rule is
// dropped from its first frame, including when the rule maps hold only other
// families' rules.
func TestRulesNewSource(t *testing.T) {
	x := loadTest(t, Options{})
	if err := x.AddRule(netip.MustParsePrefix("2001:db8:1::/64"), time.Hour); err != nil {
		t.Fatal(err)
	}
	expectAction(t, x, "v4 source, only v6 prefix rules", udp4Frame("198.18.1.1"), xdpPass)
	expectAction(t, x, "v6 source in prefix", udp6Frame("2001:db8:1::5"), xdpDrop)
	if err := x.AddRule(netip.MustParsePrefix("198.18.2.2/32"), time.Hour); err != nil {
		t.Fatal(err)
	}
	expectAction(t, x, "new v4 source with exact rule", udp4Frame("198.18.2.2"), xdpDrop)
	expectAction(t, x, "new v4 source without rule", udp4Frame("198.18.2.3"), xdpPass)
}

// TestRulesMappedSource checks that an IPv4-mapped IPv6 source
// (::ffff:a.b.c.d) obeys the IPv4 prefix rules, as in replay: it shares its
// per-source entry and rule cache with the IPv4 source a.b.c.d, so a
// mapped frame that filled the cache from the IPv6 trie would let the IPv4
// source past its prefix rule on that CPU until the next rule change.
func TestRulesMappedSource(t *testing.T) {
	const v4, mapped = "198.18.0.77", "::ffff:198.18.0.77"
	f4, f6 := udp4Frame(v4), udp6Frame(mapped)

	t.Run("no rules", func(t *testing.T) {
		x := loadTest(t, Options{})
		onCPU(t, 0, func() {
			expectAction(t, x, "mapped", f6, xdpPass)
			expectAction(t, x, "v4 after mapped", f4, xdpPass)
		})
		// Rules that do not cover the source (an IPv6 prefix covering
		// the mapped range in IPv6 terms is refused by AddRule).
		for _, p := range []string{"198.18.1.0/24", "2001:db8::/32"} {
			if err := x.AddRule(netip.MustParsePrefix(p), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		onCPU(t, 0, func() {
			expectAction(t, x, "mapped, other rules", f6, xdpPass)
			expectAction(t, x, "v4 after mapped, other rules", f4, xdpPass)
		})
	})

	t.Run("prefix ban", func(t *testing.T) {
		x := loadTest(t, Options{})
		// Both known with a filled cache before the rule: the generation
		// bump makes the mapped frame reload the rules first.
		onCPU(t, 0, func() {
			expectAction(t, x, "mapped before ban", f6, xdpPass)
			expectAction(t, x, "v4 before ban", f4, xdpPass)
		})
		const ban = "198.18.0.0/24"
		if err := x.AddRule(netip.MustParsePrefix(ban), time.Hour); err != nil {
			t.Fatal(err)
		}
		onCPU(t, 0, func() {
			expectAction(t, x, "mapped", f6, xdpDrop)
			expectAction(t, x, "v4 after mapped", f4, xdpDrop)
			expectAction(t, x, "mapped after v4", f6, xdpDrop)
		})
		if r := findRule(t, x, ban); r.Packets != 3 || r.Bytes != uint64(2*len(f6)+len(f4)) {
			t.Errorf("rule %s: %d packets %d bytes, want 3, %d", ban, r.Packets, r.Bytes, 2*len(f6)+len(f4))
		}
		s, ok := lookupSource(t, x, addr(v4))
		if !ok || s.Packets[detector.ClassUDP] != 5 || s.DroppedPackets != 3 {
			t.Errorf("source %+v (tracked %v), want 5 udp packets, 3 dropped", s, ok)
		}
	})

	t.Run("prefix ban, new source", func(t *testing.T) {
		x := loadTest(t, Options{})
		if err := x.AddRule(netip.MustParsePrefix("198.18.0.0/24"), time.Hour); err != nil {
			t.Fatal(err)
		}
		onCPU(t, 0, func() {
			expectAction(t, x, "new mapped source", f6, xdpDrop)
			expectAction(t, x, "v4 after mapped", f4, xdpDrop)
		})
	})
}

func TestRulesExpire(t *testing.T) {
	x := loadTest(t, Options{})
	const ttl = 300 * time.Millisecond
	exact, prefix := "198.18.0.1", "198.18.9.9"
	if err := x.AddRule(netip.MustParsePrefix(exact+"/32"), ttl); err != nil {
		t.Fatal(err)
	}
	if err := x.AddRule(netip.MustParsePrefix("198.18.9.0/24"), ttl); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	expectAction(t, x, "exact before expiry", udp4Frame(exact), xdpDrop)
	expectAction(t, x, "prefix before expiry", udp4Frame(prefix), xdpDrop)
	if d := time.Since(start); d > ttl/2 {
		skipOrFail(t, "too slow to check expiry timing: %v before the expiry checks, budget %v", d, ttl/2)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	// No generation change: the program must honour expiry on its own,
	// from its cache.
	expectAction(t, x, "exact after expiry", udp4Frame(exact), xdpPass)
	expectAction(t, x, "prefix after expiry", udp4Frame(prefix), xdpPass)
	if r := findRule(t, x, exact+"/32"); r.TimeLeft > 0 {
		t.Errorf("expired rule has %v left", r.TimeLeft)
	}

	// Extending revives them; pruning removes only expired rules.
	if err := x.ExtendRule(netip.MustParsePrefix(exact+"/32"), time.Hour); err != nil {
		t.Fatal(err)
	}
	expectAction(t, x, "exact after extend", udp4Frame(exact), xdpDrop)
	n, err := x.PruneExpiredRules()
	if err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want 1 (the /24)", n, err)
	}
	rules, err := x.Rules()
	if err != nil || len(rules) != 1 || rules[0].Prefix.String() != exact+"/32" {
		t.Errorf("rules after prune: %v, %v", rules, err)
	}
	if err := x.ExtendRule(netip.MustParsePrefix("198.18.9.0/24"), time.Hour); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("extend pruned rule: %v, want ErrRuleNotFound", err)
	}
}

func TestRulesExtendAndShadow(t *testing.T) {
	x := loadTest(t, Options{})
	wide, narrow := netip.MustParsePrefix("198.18.0.0/16"), netip.MustParsePrefix("198.18.5.0/24")
	frame := udp4Frame("198.18.5.5")
	if err := x.AddRule(wide, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := x.AddRule(narrow, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	expectAction(t, x, "narrow active", frame, xdpDrop)
	if r := findRule(t, x, "198.18.5.0/24"); r.Packets != 1 {
		t.Errorf("narrow rule hits %d, want 1 (longest match counts)", r.Packets)
	}
	// Extending to a shorter expiry leaves the expiry alone.
	before := findRule(t, x, "198.18.0.0/16").ExpiresNs
	if err := x.ExtendRule(wide, time.Minute); err != nil {
		t.Fatal(err)
	}
	if after := findRule(t, x, "198.18.0.0/16"); after.ExpiresNs != before {
		t.Errorf("extend to an earlier time moved expiry %d -> %d", before, after.ExpiresNs)
	}
	// Extending a prefix that is only covered by another one fails.
	if err := x.ExtendRule(netip.MustParsePrefix("198.18.6.0/24"), time.Hour); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("extend uncovered prefix: %v, want ErrRuleNotFound", err)
	}
	// AddRule on an existing prefix keeps its counters and sets the expiry.
	if err := x.AddRule(narrow, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r := findRule(t, x, "198.18.5.0/24"); r.Packets != 1 || r.TimeLeft > time.Millisecond {
		t.Errorf("re-added rule: %+v, want 1 hit and under 1ms left", r)
	}
	time.Sleep(30 * time.Millisecond) // the program's clock lags by up to a tick
	// The expired /24 is the longest match and shadows the /16 until it is
	// removed (documented in Rule.TimeLeft).
	expectAction(t, x, "expired narrow shadows wide", frame, xdpPass)
	if _, err := x.PruneExpiredRules(); err != nil {
		t.Fatal(err)
	}
	expectAction(t, x, "wide after prune", frame, xdpDrop)
}

func TestRulesInvalid(t *testing.T) {
	x := loadTest(t, Options{})
	if err := x.AddRule(netip.MustParsePrefix("198.18.0.1/32"), 0); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("zero duration: %v", err)
	}
	if err := x.AddRule(netip.MustParsePrefix("0.0.0.0/0"), time.Hour); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("/0: %v", err)
	}
	if err := x.ExtendRule(netip.MustParsePrefix("198.18.0.1/32"), time.Hour); !errors.Is(err, ErrRuleNotFound) {
		t.Errorf("extend absent: %v", err)
	}
}

// TestFullSourceMap fills a tiny per-source map: totals stay exact, the
// failures are counted, and rules still drop untracked sources.
func TestFullSourceMap(t *testing.T) {
	const capacity = 4
	x := loadTest(t, Options{MaxSources: capacity})
	if x.MaxSources() != capacity {
		t.Fatalf("max sources %d", x.MaxSources())
	}
	var srcs []string
	for i := range 10 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}).String())
	}
	banned := srcs[9]
	if err := x.AddRule(netip.MustParsePrefix(banned+"/32"), time.Hour); err != nil {
		t.Fatal(err)
	}
	frameLen := uint64(len(udp4Frame(srcs[0])))
	for range 2 {
		for _, s := range srcs {
			want := uint32(xdpPass)
			if s == banned {
				want = xdpDrop
			}
			expectAction(t, x, s, udp4Frame(s), want)
		}
	}
	st := readStats(t, x)
	if st.Packets[detector.ClassUDP] != 20 || st.Bytes[detector.ClassUDP] != 20*frameLen {
		t.Errorf("totals %+v, want 20 udp frames", st)
	}
	if st.SourceInsertFailures != 12 {
		t.Errorf("insert failures %d, want 12 (6 untracked sources x 2)", st.SourceInsertFailures)
	}
	if st.DroppedPackets != 2 {
		t.Errorf("dropped %d, want 2 (the banned, untracked source)", st.DroppedPackets)
	}
	got := readSources(t, x)
	if len(got) != capacity {
		t.Errorf("%d sources tracked, want %d", len(got), capacity)
	}
}

// onCPU runs fn on the calling goroutine's thread pinned to cpu.
func onCPU(t testing.TB, cpu int, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		skipOrFail(t, "cannot run on cpu %d: %v", cpu, err)
	}
	defer unix.SchedSetaffinity(0, &old)
	fn()
}

// TestPerCPU sends one source's frames from two CPUs: the reader sums the
// per-CPU copies, and each CPU's rule cache follows rule changes.
func TestPerCPU(t *testing.T) {
	x := loadTest(t, Options{})
	if x.ncpu < 2 || runtime.NumCPU() < 2 {
		skipOrFail(t, "needs 2 CPUs: %d possible, %d usable", x.ncpu, runtime.NumCPU())
	}
	src := "2001:db8::42"
	f := udp6Frame(src)
	onCPU(t, 0, func() { expectAction(t, x, "cpu0", f, xdpPass) })
	onCPU(t, 1, func() { expectAction(t, x, "cpu1", f, xdpPass) })
	if err := x.AddRule(netip.MustParsePrefix(src+"/128"), time.Hour); err != nil {
		t.Fatal(err)
	}
	onCPU(t, 0, func() { expectAction(t, x, "cpu0 banned", f, xdpDrop) })
	onCPU(t, 1, func() { expectAction(t, x, "cpu1 banned", f, xdpDrop) })
	s, ok := lookupSource(t, x, addr(src))
	if !ok || s.Packets[detector.ClassUDP] != 4 || s.DroppedPackets != 2 || s.UDPSrcPort != 53 {
		t.Errorf("source %+v, want 4 udp packets, 2 dropped, port 53", s)
	}
}
