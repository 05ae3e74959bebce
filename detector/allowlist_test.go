package detector

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAllowlistChangeLiftsBans: a ban in force whose target a reload or
// the host's addresses now allowlist is lifted at the next tick, saying
// why, and never renewed while its target goes on sending; an operator's
// block too.
func TestAllowlistChangeLiftsBans(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Bans.TTL = Duration(5 * time.Second) })
	w.warmUp()
	now := func() time.Time { return w.start.Add(time.Duration(w.ticks) * time.Second) }
	flood := traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64}
	src := netip.MustParsePrefix("198.19.1.1/32")
	if bans := find(w.step(with(flood)...), Ban, ScopeSource); len(bans) != 1 {
		t.Fatalf("flood not banned: %v", bans)
	}
	manual := netip.MustParsePrefix("198.19.60.0/24")
	if err := w.eng.ManualBan(manual, time.Hour, now()); err != nil {
		t.Fatal(err)
	}

	cfg := w.eng.Config()
	cfg.Bans.Allowlist = []CIDR{{Prefix: netip.MustParsePrefix("198.19.1.0/24")}}
	if err := w.eng.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	evs := w.step(with(flood)...)
	lifted := find(evs, Unban, ScopeSource)
	if len(lifted) != 1 || lifted[0].Prefix != src || !strings.Contains(lifted[0].Reason, "allowlist") {
		t.Fatalf("tick after the reload: unbans %v, want %v lifted as allowlisted", lifted, src)
	}
	if _, ok := w.enf.rules[src]; ok {
		t.Fatalf("data plane still holds %v after the reload allowlisted it", src)
	}
	// The source floods on: never banned or renewed again.
	for range 30 {
		for _, e := range w.step(with(flood)...) {
			if e.Kind == Ban {
				t.Fatalf("allowlisted source banned again: %v", e)
			}
		}
	}
	if _, ok := w.enf.rules[manual]; !ok {
		t.Fatalf("operator's block of %v lifted though it is not allowlisted", manual)
	}

	// The host's addresses arrive later (discovered or changed): the
	// operator's block over one of them goes too.
	w.eng.SetExtraAllowlist([]netip.Prefix{netip.MustParsePrefix("198.19.60.7/32")})
	evs = w.step(background()...)
	lifted = find(evs, Unban, ScopePrefix)
	if len(lifted) != 1 || lifted[0].Prefix != manual || !strings.Contains(lifted[0].Reason, "198.19.60.7/32") {
		t.Fatalf("tick after the host allowlist: unbans %v, want %v lifted naming 198.19.60.7/32", lifted, manual)
	}
	if _, ok := w.enf.rules[manual]; ok || len(w.eng.Bans()) != 0 {
		t.Fatalf("after the host allowlist: data plane %v, book %v; want both empty", w.enf.rules, w.eng.Bans())
	}
}

// TestAllowlistedBanNotRenewed: renewal checks the allowlist itself, should
// a ban in force be allowlisted without the change being seen.
func TestAllowlistedBanNotRenewed(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.Bans.TTL = Duration(5 * time.Second) })
	w.warmUp()
	flood := traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64}
	w.step(with(flood)...)
	w.eng.SetExtraAllowlist([]netip.Prefix{netip.MustParsePrefix("198.19.1.1/32")})
	w.eng.allowChanged = false // as if the change had been missed
	for i := range 10 {
		for _, e := range w.step(with(flood)...) {
			if e.Kind == Ban {
				t.Fatalf("tick %d: allowlisted ban renewed: %v", i, e)
			}
			if e.Kind == Unban && !strings.Contains(e.Reason, "allowlist") {
				t.Fatalf("tick %d: unban does not say allowlisted: %v", i, e)
			}
		}
	}
	if len(w.eng.Bans()) != 0 || len(w.enf.rules) != 0 {
		t.Fatalf("book %v, data plane %v; want the allowlisted ban gone", w.eng.Bans(), w.enf.rules)
	}
}

// TestRestoreLiftsAllowlistedBans: a snapshot taken before the allowlist
// covered a ban does not bring the ban back for good: the first tick after
// the restore lifts it.
func TestRestoreLiftsAllowlistedBans(t *testing.T) {
	a := newWorld(t, nil)
	a.warmUp()
	flood := traffic{addrs: []string{"198.19.1.1"}, class: ClassUDP, pps: 20000, size: 64}
	a.step(with(flood)...)
	snap := a.eng.MarshalState()

	b := newWorld(t, func(c *Config) { c.Bans.Allowlist = []CIDR{{Prefix: netip.MustParsePrefix("198.19.0.0/16")}} })
	for p, r := range a.enf.rules {
		b.enf.rules[p] = r // the kernel kept its rule
	}
	if err := b.eng.RestoreState(snap); err != nil {
		t.Fatal(err)
	}
	b.ticks = a.ticks
	evs := b.step(with(flood)...)
	if lifted := find(evs, Unban, ScopeSource); len(lifted) != 1 || !strings.Contains(lifted[0].Reason, "allowlist") {
		t.Fatalf("first tick after the restore: %v, want the allowlisted ban lifted", evs)
	}
	if len(b.eng.Bans()) != 0 || len(b.enf.rules) != 0 {
		t.Fatalf("book %v, data plane %v; want both empty", b.eng.Bans(), b.enf.rules)
	}
}

func TestAdoptBanRefusesAllowlisted(t *testing.T) {
	w := newWorld(t, nil)
	w.eng.SetExtraAllowlist([]netip.Prefix{netip.MustParsePrefix("198.18.0.1/32")})
	now := w.start
	err := w.eng.AdoptBan(Rule{Prefix: netip.MustParsePrefix("198.18.0.0/24"), TTL: time.Minute, Expires: now.Add(time.Minute)}, ScopePrefix)
	if !errors.Is(err, ErrAllowlisted) {
		t.Fatalf("adopting a rule over the host's address: %v, want ErrAllowlisted", err)
	}
	if len(w.eng.Bans()) != 0 {
		t.Fatalf("book holds %v", w.eng.Bans())
	}
	if err := w.eng.AdoptBan(Rule{Prefix: netip.MustParsePrefix("198.19.0.0/24"), TTL: time.Minute, Expires: now.Add(time.Minute)}, ScopePrefix); err != nil {
		t.Fatal(err)
	}
}

// TestAllowlistChangeResendsExempt: with a signature rule in force, a new
// allowlisted address is exempt from it at the next tick.
func TestAllowlistChangeResendsExempt(t *testing.T) {
	w := newSigWorld(t)
	now := w.start
	m := Match{Proto: 17, DstPort: Range{Lo: 9999, Hi: 9999}}
	if err := w.eng.ManualSignature(m, 0, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	host := netip.MustParseAddr("198.18.0.77")
	w.eng.SetExtraAllowlist([]netip.Prefix{netip.PrefixFrom(host, 32)})
	w.step()
	if !slices.Contains(w.enf.exempt, AddrFrom(host)) {
		t.Fatalf("exempt set %v after the allowlist change, want %v in it", w.enf.exempt, host)
	}
}
