package detector

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// recEnforcer records rules like a data plane would hold them.
type recEnforcer struct {
	rules  map[netip.Prefix]Rule
	bans   int
	unbans int
	fail   error
}

func (r *recEnforcer) Ban(rule Rule) error {
	if r.fail != nil {
		return r.fail
	}
	r.rules[rule.Prefix] = rule
	r.bans++
	return nil
}

func (r *recEnforcer) Unban(p netip.Prefix) error {
	delete(r.rules, p)
	r.unbans++
	return nil
}

// world drives an engine tick by tick, dropping like the kernel would what
// the enforcer holds.
type world struct {
	t      *testing.T
	eng    *Engine
	enf    *recEnforcer
	start  time.Time
	ticks  int
	events []Event
}

func newWorld(t *testing.T, mod func(*Config)) *world {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	enf := &recEnforcer{rules: map[netip.Prefix]Rule{}}
	eng, err := New(cfg, enf)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, eng: eng, enf: enf, start: time.Date(2024, 11, 5, 18, 0, 0, 0, time.UTC)}
}

// traffic is a group of sources sending one class at a rate in one tick.
type traffic struct {
	addrs []string
	class Class
	pps   uint64
	size  uint64
	port  uint16
	// probation: the sources have no entry (admission), so the tick
	// carries their frames as probation records, not as sources.
	probation bool
}

func (w *world) step(groups ...traffic) []Event {
	w.t.Helper()
	tk := &Tick{Start: w.start.Add(time.Duration(w.ticks) * time.Second), Length: time.Second}
	at := tk.End()
	for _, g := range groups {
		for _, a := range g.addrs {
			s := Source{Addr: AddrFrom(netip.MustParseAddr(a)), UDPSrcPort: g.port}
			s.Packets[g.class] = g.pps
			s.Bytes[g.class] = g.pps * g.size
			for p, r := range w.enf.rules {
				if p.Contains(s.Addr.Netip()) && r.Expires.After(at) {
					s.DroppedPackets, s.DroppedBytes = g.pps, g.pps*g.size
				}
			}
			if g.probation {
				tk.Probation = append(tk.Probation, s)
				tk.ProbationPackets += g.pps
			} else {
				tk.Sources = append(tk.Sources, s)
			}
			tk.Total.Add(&s.Counters)
		}
	}
	w.ticks++
	evs := append([]Event(nil), w.eng.Step(tk)...)
	w.events = append(w.events, evs...)
	return evs
}

// hosts returns n addresses counting up from base.
func hosts(base string, n int) []string {
	a := netip.MustParseAddr(base)
	out := make([]string, n)
	for i := range out {
		out[i] = a.String()
		a = a.Next()
	}
	return out
}

// background is the benign population: 300 clients at 3 pps and a
// carrier-grade NAT at 400 pps.
func background() []traffic {
	return []traffic{
		{addrs: hosts("198.18.16.1", 300), class: ClassTCP, pps: 3, size: 200},
		{addrs: []string{"198.18.250.1"}, class: ClassTCP, pps: 400, size: 600},
	}
}

func (w *world) warmUp() {
	for range 70 {
		if evs := w.step(background()...); len(evs) != 0 {
			w.t.Fatalf("benign warm-up raised events: %v", evs)
		}
	}
}

func with(extra ...traffic) []traffic { return append(background(), extra...) }

func find(evs []Event, kind EventKind, scope Scope) []Event {
	var out []Event
	for _, e := range evs {
		if e.Kind == kind && e.Scope == scope {
			out = append(out, e)
		}
	}
	return out
}

func TestNewSourceJudgedAgainstPrior(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pps     uint64
		wantBan bool
	}{
		{"flood at 20000 pps caught in its first tick", 20000, true},
		{"visitor at 20 pps left alone", 20, false},
		{"new heavy client at 400 pps left alone", 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil)
			w.warmUp()
			evs := w.step(with(traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: tc.pps, size: 64})...)
			bans := find(evs, Ban, ScopeSource)
			if got := len(bans) == 1 && bans[0].Target == "198.19.1.1/32"; got != tc.wantBan {
				t.Fatalf("ban = %v, want %v; events %v", got, tc.wantBan, evs)
			}
			if tc.wantBan {
				if s := find(evs, AttackStart, ScopeSource); len(s) != 1 || s[0].Target != "198.19.1.1" {
					t.Fatalf("attack_start = %v", s)
				}
			}
		})
	}
}

func TestHeavyClientNeverBannedForItsUsualRate(t *testing.T) {
	w := newWorld(t, nil)
	w.warmUp()
	for i := range 300 {
		// Its usual rate, with ordinary wobble.
		g := background()
		g[1].pps = uint64(350 + (i*37)%120)
		if evs := w.step(g...); len(evs) != 0 {
			t.Fatalf("tick %d: %v", i, evs)
		}
	}
}

func TestWarmUpActsOnlyAboveCeiling(t *testing.T) {
	w := newWorld(t, nil)
	for range 5 {
		w.step(background()...)
	}
	if evs := w.step(with(traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64})...); len(evs) != 0 {
		t.Fatalf("20k pps during warm-up acted on: %v", evs)
	}
	evs := w.step(with(traffic{addrs: []string{"198.19.1.2"}, class: ClassUDP, pps: 60000, size: 64})...)
	if len(find(evs, Ban, ScopeSource)) != 1 {
		t.Fatalf("60k pps over the ceiling not banned: %v", evs)
	}
}

func TestHysteresis(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Source.EnterTicks = 2; c.Source.ExitTicks = 3 })
	w.warmUp()
	flood := traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 5000, size: 64}
	if evs := w.step(with(flood)...); len(find(evs, AttackStart, ScopeSource)) != 0 {
		t.Fatalf("one tick over threshold started an attack: %v", evs)
	}
	w.step(background()...) // an isolated spike resets the count
	w.step(with(flood)...)
	if evs := w.step(with(flood)...); len(find(evs, AttackStart, ScopeSource)) != 1 {
		t.Fatalf("two ticks over threshold: %v", evs)
	}
	// Banned now; it stops: attack_end after exactly 3 calm ticks.
	for i := 1; i <= 3; i++ {
		evs := w.step(background()...)
		ended := len(find(evs, AttackEnd, ScopeSource)) == 1
		if ended != (i == 3) {
			t.Fatalf("calm tick %d: ended=%v events %v", i, ended, evs)
		}
	}
}

func TestAnomalousSamplesDoNotMoveBaseline(t *testing.T) {
	w := newWorld(t, nil)
	w.warmUp()
	before := w.eng.agg[aggAll].pps.mean
	flood := traffic{addrs: hosts("198.19.0.1", 400), class: ClassUDP, pps: 50, size: 1200, port: 53}
	for range 10 {
		w.step(with(flood)...)
	}
	after := w.eng.agg[aggAll].pps.mean
	if after > before*1.05 {
		t.Fatalf("aggregate baseline moved from %v to %v during a flood", before, after)
	}
}

func TestBanRenewalExpiryAndDoubling(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Bans.TTL = Duration(10 * time.Second); c.Bans.MaxTTL = Duration(25 * time.Second) })
	w.warmUp()
	flood := traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64}
	var renewed, unbanned bool
	var ttls []time.Duration
	for i := range 60 {
		g := background()
		if i < 15 || (i >= 40 && i < 42) {
			g = with(flood)
		}
		for _, e := range w.step(g...) {
			switch {
			case e.Kind == Ban:
				ttls = append(ttls, e.TTL)
				renewed = renewed || strings.Contains(e.Reason, "renewed")
			case e.Kind == Unban:
				unbanned = true
				if e.Target != "198.19.1.1/32" {
					t.Fatalf("unban %v", e)
				}
			}
		}
	}
	if !renewed || !unbanned {
		t.Fatalf("renewed=%v unbanned=%v", renewed, unbanned)
	}
	// First ban 10s, renewed while still sending 20s, after the unban the
	// repeat offence gets 20s again (second offence) capped at 25s.
	want := []time.Duration{10 * time.Second, 20 * time.Second, 20 * time.Second}
	if fmt.Sprint(ttls) != fmt.Sprint(want) {
		t.Fatalf("ttls %v, want %v", ttls, want)
	}
	if len(w.enf.rules) != 0 || w.enf.unbans != 2 {
		t.Fatalf("enforcer holds %v after %d unbans, want none after 2", w.enf.rules, w.enf.unbans)
	}
}

func TestAllowlistCapDryRunAndFailures(t *testing.T) {
	flood := traffic{addrs: []string{"198.19.1.1", "198.19.2.1"}, class: ClassUDP, pps: 20000, size: 64}
	for _, tc := range []struct {
		name      string
		mod       func(*Config)
		fail      error
		wantRules int
		wantBans  int
		reason    string
	}{
		{"allowlist", func(c *Config) {
			c.Bans.Allowlist = []CIDR{{Prefix: netip.MustParsePrefix("198.19.0.0/16")}}
		}, nil, 0, 0, "not banned: allowlisted"},
		{"cap", func(c *Config) { c.Bans.MaxActive = 1 }, nil, 1, 1, "cap 1 reached"},
		{"dry run", func(c *Config) { c.Bans.DryRun = true }, nil, 0, 2, ""},
		{"install failure", nil, errors.New("map full"), 0, 0, "rule install failed: map full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.mod)
			w.warmUp()
			w.enf.fail = tc.fail
			evs := w.step(with(flood)...)
			if got := len(w.enf.rules); got != tc.wantRules {
				t.Errorf("rules installed %d, want %d", got, tc.wantRules)
			}
			bans := find(evs, Ban, ScopeSource)
			if len(bans) != tc.wantBans {
				t.Errorf("ban events %d, want %d: %v", len(bans), tc.wantBans, evs)
			}
			if tc.name == "dry run" && (len(bans) == 0 || !bans[0].DryRun) {
				t.Errorf("dry-run bans not marked: %v", bans)
			}
			if tc.reason != "" {
				found := false
				for _, e := range find(evs, AttackStart, ScopeSource) {
					found = found || strings.Contains(e.Reason, tc.reason)
				}
				if !found {
					t.Errorf("no attack_start says %q: %v", tc.reason, evs)
				}
			}
			// Refusals are not retried every tick.
			if evs := w.step(with(flood)...); len(find(evs, Ban, ScopeSource)) != 0 {
				t.Errorf("ban retried: %v", evs)
			}
		})
	}
}

func TestDistributedFloods(t *testing.T) {
	// Eight reflectors per /24, as in the wild: no prefix stands out.
	var reflectors []string
	for i := range 50 {
		reflectors = append(reflectors, hosts(fmt.Sprintf("198.19.%d.10", i), 8)...)
	}
	for _, tc := range []struct {
		name        string
		flood       func(tick int) []traffic
		wantClass   string
		wantBans    int // minimum source bans; -1 means exactly none
		wantReason  string
		wantPrefix  []string
		noAggregate bool
	}{
		{
			name: "reflection from port 53",
			flood: func(int) []traffic {
				return []traffic{{addrs: reflectors, class: ClassUDP, pps: 50, size: 1200, port: 53}}
			},
			wantClass: "udp", wantBans: 300, wantReason: "udp source port 53 (dns)",
		},
		{
			name: "spoofed syn flood",
			flood: func(tick int) []traffic {
				return []traffic{{addrs: hosts(fmt.Sprintf("198.19.%d.0", (tick*60)%200), 15000), class: ClassSYN, pps: 1, size: 60}}
			},
			wantClass: "syn", wantBans: -1, wantReason: "nothing banned",
		},
		{
			name: "flash crowd",
			flood: func(int) []traffic {
				return []traffic{{addrs: hosts("198.18.100.1", 4000), class: ClassTCP, pps: 5, size: 400}}
			},
			wantClass: "tcp", wantBans: -1, wantReason: "nothing banned",
		},
		{
			name: "carpet from three /24s",
			flood: func(int) []traffic {
				var g []traffic
				for _, b := range []string{"198.19.7.1", "198.19.8.1", "198.19.9.1"} {
					g = append(g, traffic{addrs: hosts(b, 200), class: ClassUDP, pps: 100, size: 200})
				}
				return g
			},
			wantBans: -1, wantPrefix: []string{"198.19.7.0/24", "198.19.8.0/24", "198.19.9.0/24"}, noAggregate: true,
		},
		{
			name: "ipv6 rotating in one /64",
			flood: func(tick int) []traffic {
				return []traffic{{addrs: hosts(fmt.Sprintf("2001:db8:bad:1::%x:0", tick+1), 400), class: ClassUDP, pps: 50, size: 100}}
			},
			wantBans: -1, wantPrefix: []string{"2001:db8:bad:1::/64"}, noAggregate: true,
		},
		{
			// Spoofed within one /64, two frames per source: none is
			// admitted, the prefix still sees them all.
			name: "ipv6 carpet on probation in one /64",
			flood: func(tick int) []traffic {
				return []traffic{{addrs: hosts(fmt.Sprintf("2001:db8:bad:2::%x:0", tick+1), 10000), class: ClassUDP, pps: 2, size: 100, probation: true}}
			},
			wantBans: -1, wantPrefix: []string{"2001:db8:bad:2::/64"}, noAggregate: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil)
			w.warmUp()
			w.events = nil
			for i := range 10 {
				w.step(with(tc.flood(i)...)...)
			}
			var srcBans, pfxBans []string
			for _, e := range find(w.events, Ban, ScopeSource) {
				srcBans = append(srcBans, e.Target)
				if strings.HasPrefix(e.Target, "198.18.") {
					t.Fatalf("benign source banned: %v", e)
				}
			}
			for _, e := range find(w.events, Ban, ScopePrefix) {
				pfxBans = append(pfxBans, e.Target)
			}
			if tc.wantBans < 0 && len(srcBans) > 0 {
				t.Fatalf("source bans %v, want none", srcBans)
			}
			if len(srcBans) < tc.wantBans {
				t.Fatalf("%d source bans, want at least %d", len(srcBans), tc.wantBans)
			}
			if fmt.Sprint(pfxBans) != fmt.Sprint(tc.wantPrefix) && !(len(pfxBans) == 0 && tc.wantPrefix == nil) {
				t.Fatalf("prefix bans %v, want %v", pfxBans, tc.wantPrefix)
			}
			if len(find(w.events, AttackStart, ScopeSource)) > 0 {
				t.Fatalf("source alarms: %v", find(w.events, AttackStart, ScopeSource))
			}
			agg := find(w.events, AttackStart, ScopeAggregate)
			if tc.noAggregate {
				if len(agg) > 0 {
					t.Fatalf("aggregate alarm although prefixes explain the flood: %v", agg)
				}
				return
			}
			if tc.name != "flash crowd" && len(find(w.events, AttackStart, ScopePrefix)) > 0 {
				t.Fatalf("prefix alarms: %v", find(w.events, AttackStart, ScopePrefix))
			}
			var classes []string
			found := false
			for _, e := range agg {
				classes = append(classes, e.Class)
				found = found || (e.Class == tc.wantClass && strings.Contains(e.Reason, tc.wantReason))
			}
			if !found {
				t.Fatalf("no %s aggregate attack saying %q; got %v", tc.wantClass, tc.wantReason, agg)
			}
		})
	}
}

func TestEventJSONShape(t *testing.T) {
	e := Event{Time: time.Date(2024, 11, 5, 18, 1, 30, 500, time.UTC), Kind: Ban, Scope: ScopeSource,
		Target: "198.19.1.1/32", PPS: 20000.123456, BPS: 1e7, BaselinePPS: 3, Reason: "x", TTL: time.Minute}
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ts":"2024-11-05T18:01:30.0000005Z","event":"ban","scope":"source","target":"198.19.1.1/32","pps":20000.123,"bps":10000000,"baseline_pps":3,"reason":"x","ttl_seconds":60}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestPrefixBanCappedByLegitimateShare(t *testing.T) {
	// With /16 prefixes every benign client shares 198.18.0.0/16 with a
	// carpet flood from new addresses: banning the /16 would drop them all.
	w := newWorld(t, func(c *Config) { c.Prefixes.IPv4 = []int{16} })
	w.warmUp()
	carpet := traffic{addrs: hosts("198.18.100.1", 100), class: ClassUDP, pps: 100, size: 200}
	evs := w.step(with(carpet)...)
	starts := find(evs, AttackStart, ScopePrefix)
	if len(starts) != 1 || !strings.Contains(starts[0].Reason, "legitimate-looking traffic") {
		t.Fatalf("want a prefix attack refused for legitimate traffic, got %v", evs)
	}
	if len(find(evs, Ban, ScopePrefix)) != 0 || len(w.enf.rules) != 0 {
		t.Fatalf("the /16 was banned: %v", w.enf.rules)
	}
	// A carpet from its own /16 is banned as before.
	w2 := newWorld(t, func(c *Config) { c.Prefixes.IPv4 = []int{16} })
	w2.warmUp()
	evs = w2.step(with(traffic{addrs: hosts("198.19.100.1", 100), class: ClassUDP, pps: 100, size: 200})...)
	if b := find(evs, Ban, ScopePrefix); len(b) != 1 || b[0].Target != "198.19.0.0/16" {
		t.Fatalf("carpet /16 not banned: %v", evs)
	}
}

func TestAttackString(t *testing.T) {
	for _, tc := range []struct {
		a    Attack
		want string
	}{
		{Attack{Scope: ScopeAggregate, Class: "udp"}, "aggregate udp"},
		{Attack{Scope: ScopeSource, Prefix: netip.MustParsePrefix("198.18.0.7/32")}, "source 198.18.0.7"},
		{Attack{Scope: ScopeSource, Prefix: netip.MustParsePrefix("2001:db8::1/128")}, "source 2001:db8::1"},
		{Attack{Scope: ScopePrefix, Prefix: netip.MustParsePrefix("198.18.5.0/24")}, "prefix 198.18.5.0/24"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.a, got, tc.want)
		}
		if b, _ := tc.a.MarshalText(); string(b) != tc.want {
			t.Errorf("%+v: MarshalText %q, want %q", tc.a, b, tc.want)
		}
	}
}
