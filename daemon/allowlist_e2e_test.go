package daemon_test

import (
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/bpf"
)

// TestE2EAllowlistReloadLiftsBan: a ban in force whose target a reload
// allowlists is lifted at once, not left to run (or be renewed) until its
// TTL.
func TestE2EAllowlistReloadLiftsBan(t *testing.T) {
	e := newE2E(t, cfg{TTL: "1m"})
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	st := e.flood(e.udp(attacker4), floodRate, 1500*time.Millisecond)
	target := attacker4.String() + "/32"
	waitBan(t, d, mark, attacker4, st.Start)

	e.writeConfig(e.text(cfg{TTL: "1m", Allow: []string{attacker4.String()}}))
	mark = d.Log.Len()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	unban, _, err := d.Log.WaitEvent(mark, 3*tick+time.Second, "unban", isEvent(target))
	if err != nil {
		t.Fatalf("ban of %s not lifted after a reload allowlisted it: %v", target, err)
	}
	if !strings.Contains(unban.Str("message"), "allowlist") {
		t.Errorf("unban does not say why: %s", unban.Line)
	}
	if b, ok := findBan(e.bans(), target); ok {
		t.Errorf("floodguard bans still lists %+v", b)
	}
	if got := e.probe(attacker4); got != probeFrames {
		t.Errorf("%d of %d frames from the allowlisted %v got through", got, probeFrames, attacker4)
	}
}

// TestE2EAllowlistHoldsAtStart: at start, rules over the allowlist or the
// host's own address are neither restored from the snapshot nor adopted
// from the kernel, but removed; other rules are kept.
func TestE2EAllowlistHoldsAtStart(t *testing.T) {
	e := newE2E(t, cfg{TTL: "1m"})
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	st := e.flood(e.udp(other4), floodRate, 1500*time.Millisecond)
	waitBan(t, d, mark, other4, st.Start) // in the snapshot taken at the stop
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	// While it is down, rules appear in the kernel: over the host's own
	// address, over an address the new config allowlists, and one that
	// stays.
	x, err := bpf.OpenPinned(filepath.Join(e.pins, "floodguard"))
	if err != nil {
		t.Fatal(err)
	}
	keep := netip.MustParsePrefix("198.19.7.0/24")
	for _, p := range []netip.Prefix{netip.PrefixFrom(victim4, 32), netip.PrefixFrom(attacker4, 32), keep} {
		if err := x.AddRule(p, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	x.Close()
	e.writeConfig(e.text(cfg{TTL: "1m", Allow: []string{attacker4.String(), other4.String()}}))

	d = e.start()
	time.Sleep(2 * tick)
	bans := e.bans()
	for _, a := range []netip.Addr{victim4, attacker4, other4} {
		if b, ok := findBan(bans, a.String()+"/32"); ok {
			t.Errorf("after the start, floodguard bans lists %+v (allowlisted or the host's own)", b)
		}
	}
	if b, ok := findBan(bans, keep.String()); !ok || b.Origin != "detector" {
		t.Errorf("rule %s not adopted: %+v", keep, bans)
	}
	for _, a := range []netip.Addr{victim4, attacker4} {
		if _, _, err := d.Log.WaitEvent(0, 0, "rule_not_adopted", isEvent(a.String()+"/32")); err != nil {
			t.Errorf("removal of the kernel rule over %v not logged: %v", a, err)
		}
	}
	if unban, _, err := d.Log.WaitEvent(0, 0, "unban", isEvent(other4.String()+"/32")); err != nil || !strings.Contains(unban.Str("message"), "allowlist") {
		t.Errorf("the snapshot's ban of the now allowlisted %v not lifted saying why: %v %s", other4, err, unban.Line)
	}
	for _, a := range []netip.Addr{attacker4, other4} {
		if got := e.probe(a); got != probeFrames {
			t.Errorf("%d of %d frames from the allowlisted %v got through", got, probeFrames, a)
		}
	}
}
