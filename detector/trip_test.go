package detector

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// The CGNAT of background() sends 400 pps of 600 bytes: its threshold,
// max(floor 1000, 3 × 400, 400 + 4σ), is about 1200 pps, over 110 % of the
// global 1000, so it has a level of its own; its bytes stay under the
// 20 Mbps floor, which gives the byte level of everyone: 2.5 MB + 1.
const (
	floorLevelPackets = 1001
	floorLevelBytes   = 20e6/8 + 1
	cgnat             = "198.18.250.1"
)

func addr(s string) Addr { return AddrFrom(netip.MustParseAddr(s)) }

func TestGlobalTripLevel(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		prep func(w *world)
		// want is the level, or wantOf computes it from the engine.
		want   TripLevel
		wantOf func(e *Engine) TripLevel
	}{
		{name: "floor after warm-up", prep: (*world).warmUp,
			want: TripLevel{floorLevelPackets, floorLevelBytes}},
		{name: "warm-up ceilings", prep: func(w *world) { w.step(background()...) },
			want: TripLevel{50001, 500e6/8 + 1}},
		{name: "half-second tick", mod: func(c *Config) { c.Tick = Duration(500 * time.Millisecond); c.WarmUp = 0 },
			want: TripLevel{501, 20e6/16 + 1}},
		{name: "enter_ticks 2: off", mod: func(c *Config) { c.Source.EnterTicks = 2 }, prep: (*world).warmUp},
		{name: "prior over the floor", prep: func(w *world) {
			// 200 sources at 600 pps: the prior's quantile is ~600,
			// so an unknown source's threshold is 600 + 4·600.
			for range 70 {
				w.step(traffic{addrs: hosts("198.18.16.1", 200), class: ClassTCP, pps: 600, size: 100})
			}
		}, wantOf: func(e *Engine) TripLevel {
			v := e.srcPrior.value
			if v*(1+e.cfg.Source.K) <= e.cfg.Source.FloorPPS {
				return TripLevel{} // fails the test: the prior must matter here
			}
			return TripLevel{countLevel(v*(1+e.cfg.Source.K), 1, 1), floorLevelBytes}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.mod)
			if tc.prep != nil {
				tc.prep(w)
			}
			want := tc.want
			if tc.wantOf != nil {
				want = tc.wantOf(w.eng)
			}
			if got := w.eng.GlobalTripLevel(); got != want {
				t.Fatalf("GlobalTripLevel = %+v, want %+v", got, want)
			}
			// An unknown source has it.
			if got := w.eng.TripLevel(addr("203.0.113.9")); got != want {
				t.Fatalf("TripLevel(unknown) = %+v, want %+v", got, want)
			}
		})
	}
}

func TestCountLevelAgreesWithJudgement(t *testing.T) {
	for _, tc := range []struct{ thr, secs, unit float64 }{
		{1000, 1, 1}, {1000.5, 1, 1}, {1000, 0.3, 1}, {1000, 0.7, 1}, {20e6, 1, 8}, {20e6, 0.3, 8}, {3, 0.1, 1},
	} {
		n := countLevel(tc.thr, tc.secs, tc.unit)
		if !(float64(n)*tc.unit/tc.secs > tc.thr) || float64(n-1)*tc.unit/tc.secs > tc.thr {
			t.Errorf("countLevel(%v, %v, %v) = %d: not the least count over", tc.thr, tc.secs, tc.unit, n)
		}
	}
	if n := countLevel(1e30, 1, 1); n != 0 {
		t.Errorf("countLevel(1e30) = %d, want 0 (never)", n)
	}
}

func TestTripLevel(t *testing.T) {
	w := newWorld(t, func(c *Config) {
		c.Bans.Allowlist = []CIDR{{Prefix: netip.MustParsePrefix("198.18.16.0/30")}}
	})
	w.warmUp()
	e := w.eng
	if err := e.ManualBan(netip.MustParsePrefix("198.18.16.9/32"), time.Hour, w.start); err != nil {
		t.Fatal(err)
	}
	own, ok := e.trip.own[addr(cgnat)]
	if !ok || own.Packets < 1150 || own.Packets > 1300 || own.Bytes != floorLevelBytes {
		t.Fatalf("CGNAT's own level = %+v (%v), want about 1201 packets and the floor's bytes", own, ok)
	}
	global := e.GlobalTripLevel()
	for _, tc := range []struct {
		name, addr string
		want       TripLevel
	}{
		{"established heavy source: its own", cgnat, own},
		{"ordinary client: global", "198.18.16.20", global},
		{"unknown: global", "203.0.113.9", global},
		{"allowlisted: never", "198.18.16.2", TripLevel{}},
		{"banned: never", "198.18.16.9", TripLevel{}},
	} {
		if got := e.TripLevel(addr(tc.addr)); got != tc.want {
			t.Errorf("%s: TripLevel(%s) = %+v, want %+v", tc.name, tc.addr, got, tc.want)
		}
	}
}

// changes runs TripLevelChanges and formats what it reports.
func changes(e *Engine) []string {
	var out []string
	e.TripLevelChanges(func(a Addr, l TripLevel, remove bool) {
		if remove {
			out = append(out, "remove "+a.String())
			return
		}
		out = append(out, fmt.Sprintf("set %s %d/%d", a, l.Packets, l.Bytes))
	})
	return out
}

func TestTripLevelChanges(t *testing.T) {
	run := func() [][]string {
		w := newWorld(t, func(c *Config) {
			c.Bans.Allowlist = []CIDR{{Prefix: netip.MustParsePrefix("198.19.9.9/32")}}
		})
		w.warmUp()
		var log [][]string
		log = append(log, changes(w.eng)) // the CGNAT's level set
		log = append(log, changes(w.eng)) // nothing since
		// Heavier traffic moves the CGNAT's baseline, and so its level.
		g := background()
		g[1].pps = 700
		w.step(g...)
		log = append(log, changes(w.eng))
		// A flood from an allowlisted source: over its floor, judged,
		// given level zero. A banned flood: zero too.
		w.step(with(traffic{addrs: []string{"198.19.9.9", "198.19.1.1"}, class: ClassUDP, pps: 5000, size: 64})...)
		log = append(log, changes(w.eng))
		// A higher floor leaves the CGNAT under the global level: its
		// own is removed at its next judgement.
		cfg := w.eng.Config()
		cfg.Source.FloorPPS = 5000
		if err := w.eng.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		w.step(background()...)
		log = append(log, changes(w.eng))
		return log
	}
	got := run()
	if len(got[0]) != 1 || got[0][0][:len("set "+cgnat)] != "set "+cgnat {
		t.Fatalf("first changes = %v, want the CGNAT's level set", got[0])
	}
	if len(got[1]) != 0 {
		t.Fatalf("second call reported %v, want nothing", got[1])
	}
	if len(got[2]) != 1 || got[2][0] == got[0][0] {
		t.Fatalf("after a heavier tick: %v, want the CGNAT's level changed from %v", got[2], got[0])
	}
	if want := []string{"set 198.19.9.9 0/0", "set 198.19.1.1 0/0"}; !reflect.DeepEqual(got[3], want) {
		t.Fatalf("after floods: %v, want %v", got[3], want)
	}
	if want := []string{"remove " + cgnat}; !reflect.DeepEqual(got[4], want) {
		t.Fatalf("after a higher floor: %v, want %v", got[4], want)
	}
	if again := run(); !reflect.DeepEqual(again, got) {
		t.Fatalf("not deterministic:\n%v\n%v", got, again)
	}
}

func TestTrip(t *testing.T) {
	flood := func(pkts uint64) *Source {
		s := &Source{Addr: addr("198.19.1.1")}
		s.Packets[ClassUDP], s.Bytes[ClassUDP] = pkts, pkts*64
		return s
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		warm bool // trip in the warm-up rather than after it
		src  *Source
		want bool
	}{
		{name: "over the floor", src: flood(floorLevelPackets), want: true},
		{name: "at the floor: not over", src: flood(floorLevelPackets - 1)},
		{name: "allowlisted", src: flood(5000), mod: func(c *Config) {
			c.Bans.Allowlist = []CIDR{{Prefix: netip.MustParsePrefix("198.19.1.0/24")}}
		}},
		{name: "enter_ticks 2", src: flood(5000), mod: func(c *Config) { c.Source.EnterTicks = 2 }},
		{name: "dropped by a covering rule", src: func() *Source { s := flood(5000); s.DroppedPackets = 10; return s }()},
		{name: "warm-up: under the ceiling", warm: true, src: flood(20000)},
		{name: "warm-up: over the ceiling", warm: true, src: flood(60000), want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.mod)
			if tc.warm {
				w.step(background()...)
			} else {
				w.warmUp()
			}
			tickStart := w.start.Add(time.Duration(w.ticks) * time.Second)
			at := tickStart.Add(300 * time.Millisecond)
			if got := w.eng.Trip(tc.src, at); got != tc.want {
				t.Fatalf("Trip = %v, want %v", got, tc.want)
			}
			// The tick's end: the source sent 60k packets in the whole
			// tick, dropped (world.step) if the trip banned it.
			evs := w.step(with(traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 60000, size: 64})...)
			bans := find(evs, Ban, ScopeSource)
			starts := find(evs, AttackStart, ScopeSource)
			if !tc.want {
				// Judged at the tick's end as before, at its end.
				for _, ev := range evs {
					if ev.Time != tickStart.Add(time.Second) {
						t.Fatalf("event at %v, want the tick's end: %+v", ev.Time, ev)
					}
				}
				return
			}
			if len(bans) != 1 || len(starts) != 1 {
				t.Fatalf("want one ban and one attack_start, got %v", evs)
			}
			if evs[0].Kind != AttackStart || evs[1].Kind != Ban || evs[0].Time != at || evs[1].Time != at {
				t.Fatalf("the trip's events should come first, at %v: %v", at, evs)
			}
			r, ok := w.enf.rules[netip.MustParsePrefix("198.19.1.1/32")]
			if !ok || !r.Expires.Equal(at.Add(r.TTL)) {
				t.Fatalf("rule %+v (%v), want one expiring TTL after %v", r, ok, at)
			}
			if got := w.eng.TripLevel(addr("198.19.1.1")); got != (TripLevel{}) {
				t.Fatalf("banned source's level = %+v, want never", got)
			}
			if w.eng.Trip(tc.src, at.Add(time.Second)) {
				t.Fatal("a banned source tripped again")
			}
			if evs := w.step(background()...); len(find(evs, Ban, ScopeSource))+len(find(evs, AttackStart, ScopeSource)) != 0 {
				t.Fatalf("banned twice: %v", evs)
			}
		})
	}
}

// A restored snapshot keeps the levels its baselines and bans give: the
// data plane is told nothing new, and Trip's pending events survive.
func TestTripLevelsSurviveRestore(t *testing.T) {
	w := newWorld(t, nil)
	w.warmUp()
	e := w.eng
	if err := e.ManualBan(netip.MustParsePrefix("198.18.16.9/32"), time.Hour, w.start); err != nil {
		t.Fatal(err)
	}
	before := changes(e)
	if len(before) != 2 {
		t.Fatalf("changes before the restore: %v, want the CGNAT's and the banned client's", before)
	}
	own := e.TripLevel(addr(cgnat))
	if err := e.RestoreState(e.MarshalState()); err != nil {
		t.Fatal(err)
	}
	if got := changes(e); len(got) != 0 {
		t.Fatalf("restore reported %v, want nothing", got)
	}
	if got := e.TripLevel(addr(cgnat)); got != own {
		t.Fatalf("CGNAT's level after restore = %+v, want %+v", got, own)
	}
	if got := e.TripLevel(addr("198.18.16.9")); got != (TripLevel{}) {
		t.Fatalf("banned client's level after restore = %+v, want never", got)
	}
}
