package detector

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"testing"
	"time"
)

// TestStateRoundTrip checks that a restored engine decides exactly like the
// one that was snapshotted.
func TestStateRoundTrip(t *testing.T) {
	a := newWorld(t, nil)
	a.warmUp()
	flood := traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64}
	a.step(with(flood)...)
	a.step(with(flood)...)
	snap := a.eng.MarshalState()

	b := newWorld(t, nil)
	if err := b.eng.RestoreState(snap); err != nil {
		t.Fatal(err)
	}
	b.ticks = a.ticks
	maps.Copy(b.enf.rules, a.enf.rules) // the kernel kept its rules
	if fmt.Sprint(a.eng.Bans()) != fmt.Sprint(b.eng.Bans()) {
		t.Fatalf("bans differ:\n%v\n%v", a.eng.Bans(), b.eng.Bans())
	}
	as, bs := a.eng.Stats(), b.eng.Stats()
	if as.Ticks != bs.Ticks || as.TrackedKeys != bs.TrackedKeys || as.PriorPPS != bs.PriorPPS {
		t.Fatalf("stats differ: %+v vs %+v", as, bs)
	}
	// Same traffic from here on: same decisions, including the ban's
	// expiry and a new flood.
	for i := range 200 {
		g := background()
		if i < 20 || (i > 150 && i < 155) {
			g = with(flood, traffic{addrs: []string{"198.19.2.2"}, class: ClassSYN, pps: 30000, size: 60})
		}
		ea, eb := a.step(g...), b.step(g...)
		if fmt.Sprint(ea) != fmt.Sprint(eb) {
			t.Fatalf("tick %d: events differ after restore:\n%v\n%v", i, ea, eb)
		}
	}
}

func TestStateRejectsBadSnapshots(t *testing.T) {
	w := newWorld(t, nil)
	w.warmUp()
	good := w.eng.MarshalState()
	flip := append([]byte(nil), good...)
	flip[len(flip)/2] ^= 0x40
	other := newWorld(t, func(c *Config) { c.Prefixes.IPv4 = []int{16} })
	for _, tc := range []struct {
		name string
		data []byte
		eng  *Engine
	}{
		{"empty", nil, w.eng},
		{"not a snapshot", []byte("hello world, this is not it"), w.eng},
		{"truncated", good[:len(good)/3], w.eng},
		{"bit flip", flip, w.eng},
		{"other prefix lengths", good, other.eng},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.eng.Stats()
			err := tc.eng.RestoreState(tc.data)
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("RestoreState = %v, want ErrBadState", err)
			}
			if tc.eng.Stats() != before {
				t.Fatal("a failed restore changed the engine")
			}
		})
	}
}

func TestAdoptBanAndExtraAllowlist(t *testing.T) {
	w := newWorld(t, nil)
	w.warmUp()
	p := netip.MustParsePrefix("198.19.9.9/32")
	now := w.start.Add(time.Duration(w.ticks) * time.Second)
	w.eng.AdoptBan(Rule{Prefix: p, TTL: 3 * time.Second, Expires: now.Add(3 * time.Second)}, ScopeSource)
	var unbanned bool
	for range 5 {
		for _, e := range w.step(background()...) {
			unbanned = unbanned || (e.Kind == Unban && e.Prefix == p)
		}
	}
	if !unbanned {
		t.Fatal("adopted ban never lifted")
	}
	w.eng.SetExtraAllowlist([]netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")})
	evs := w.step(with(traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64})...)
	if len(find(evs, Ban, ScopeSource)) != 0 {
		t.Fatalf("host address banned: %v", evs)
	}
	cfg := w.eng.Config()
	cfg.Source.FloorPPS = 2000
	if err := w.eng.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	evs = w.step(with(traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64})...)
	if len(find(evs, Ban, ScopeSource)) != 0 {
		t.Fatal("reload dropped the host allowlist")
	}
	cfg.Tick = Duration(2 * time.Second)
	if err := w.eng.Reload(cfg); err == nil {
		t.Fatal("reload accepted a new tick")
	}
}
