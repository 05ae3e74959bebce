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

func TestManualBlockAndUnblock(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Bans.TTL = Duration(20 * time.Second) })
	w.warmUp()
	now := func() time.Time { return w.start.Add(time.Duration(w.ticks) * time.Second) }
	quiet := netip.MustParsePrefix("198.19.50.0/24")
	if err := w.eng.ManualBan(quiet, 30*time.Second, now()); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.ManualBan(netip.MustParsePrefix("198.18.250.1/32"), time.Minute, now()); err != nil {
		t.Fatal(err) // not allowlisted: allowed
	}
	w.eng.SetExtraAllowlist([]netip.Prefix{netip.MustParsePrefix("198.18.0.1/32")})
	if err := w.eng.ManualBan(netip.MustParsePrefix("198.18.0.0/24"), time.Minute, now()); !errors.Is(err, ErrAllowlisted) {
		t.Fatalf("block over the host address: %v", err)
	}
	// The manual block of a silent prefix is not lifted for silence: it
	// lasts its 30 s. The flood is banned at once, the operator unblocks it,
	// and the detector leaves it alone for the ban's 20 s TTL, across a
	// restart in the middle.
	flood := traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64}
	var manualGone bool
	bans := []int{}
	for i := range 45 {
		g := background()
		if i >= 5 {
			g = with(flood)
		}
		if i == 12 {
			if err := w.eng.RestoreState(w.eng.MarshalState()); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range w.step(g...) {
			if e.Kind == Unban && e.Prefix == quiet {
				manualGone = true
				if i < 29 {
					t.Fatalf("manual block lifted after %d s", i)
				}
			}
			if e.Kind == Ban && e.Target == "198.19.1.1/32" {
				bans = append(bans, i)
				if len(bans) == 1 {
					if err := w.eng.ManualUnban(e.Prefix, now()); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if !manualGone {
		t.Fatal("manual block never expired")
	}
	if len(bans) != 2 || bans[0] != 5 || bans[1] < 5+20 {
		t.Fatalf("flood banned at ticks %v, want 5 then not before 25", bans)
	}
}
