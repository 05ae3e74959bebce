package daemon_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EAllowlistedFlood: an allowlisted source that floods is seen but
// never banned, and its traffic keeps flowing.
func TestE2EAllowlistedFlood(t *testing.T) {
	e := newE2E(t, cfg{Allow: []string{attacker4.String()}})
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	e.flood(e.udp(attacker4), floodRate, 3*time.Second)
	attack, _, err := d.Log.WaitEvent(mark, time.Second, "attack_start", isEvent(attacker4.String()))
	if err != nil {
		t.Errorf("the allowlisted flood is not even reported: %v", err)
	} else if !strings.Contains(attack.Str("message"), "allowlisted") {
		t.Errorf("attack_start does not say why it was not banned: %s", attack.Line)
	}
	if bans := d.Log.Events("ban"); len(bans) != 0 {
		t.Errorf("allowlisted source banned: %s", bans[0].Line)
	}
	if bans := e.bans(); len(bans) != 0 {
		t.Errorf("floodguard bans lists %+v, want none", bans)
	}
	if got := e.probe(attacker4); got != probeFrames {
		t.Errorf("%d of %d frames from the allowlisted %v got through", got, probeFrames, attacker4)
	}
}

// TestE2EReloadBrokenConfig: SIGHUP with a config that does not parse
// leaves the daemon running on the old one, saying which key on which line
// is wrong; a valid edit then reloads.
func TestE2EReloadBrokenConfig(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.start()
	e.waitWarm(d)

	good := e.text(cfg{})
	broken := strings.Replace(good, "ttl: 30s", "ttl: soon", 1)
	line := 1 + strings.Count(broken[:strings.Index(broken, "ttl: soon")], "\n")
	e.writeConfig(broken)
	mark := d.Log.Len()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fail, _, err := d.Log.WaitEvent(mark, 3*time.Second, "reload_failed", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("line %d: bans.ttl", line)
	if msg := fail.Str("error"); !strings.Contains(msg, want) {
		t.Errorf("reload_failed says %q, want it to name %q", msg, want)
	}
	s1 := e.status()
	time.Sleep(1500 * time.Millisecond)
	if s2 := e.status(); s2.Ticks <= s1.Ticks || d.Exited() {
		t.Errorf("daemon not ticking after a rejected reload: ticks %d then %d", s1.Ticks, s2.Ticks)
	}

	e.writeConfig(strings.Replace(good, "ttl: 30s", "ttl: 45s", 1))
	mark = d.Log.Len()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Log.WaitEvent(mark, 3*time.Second, "reloaded", nil); err != nil {
		t.Fatal(err)
	}
	// The new TTL is the one bans get.
	st := e.flood(e.udp(attacker4), floodRate, 1500*time.Millisecond)
	if ban := waitBan(t, d, mark, attacker4, st.Start); ban.Str("ttl") != "45s" {
		t.Errorf("ban after the reload has ttl %q, want 45s", ban.Str("ttl"))
	}
}
