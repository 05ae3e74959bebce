package daemon_test

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2ERestartKeepsBans: killed with SIGKILL, the daemon leaves its rule
// dropping in the kernel; restarted, it restores its baselines and bans
// from the snapshot and adopts the program.
func TestE2ERestartKeepsBans(t *testing.T) {
	e := newE2E(t, cfg{TTL: "1m"})
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	st := e.flood(e.udp(attacker4), floodRate, 2*time.Second)
	target := attacker4.String() + "/32"
	waitBan(t, d, mark, attacker4, st.Start)
	// Snapshots are written every second (snapshot_interval): let one
	// include the ban.
	time.Sleep(2500 * time.Millisecond)
	before := e.status()
	if err := d.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.Wait(5 * time.Second)

	// Daemon gone: the rule is still in the pinned maps and drops.
	b, ok := findBan(e.bans(), target)
	if !ok || b.TimeLeft <= 0 {
		t.Fatalf("after SIGKILL floodguard bans lists %+v, want %s live", e.bans(), target)
	}
	if got := e.probe(attacker4); got != 0 {
		t.Errorf("with the daemon killed, %d of %d frames from %v got through", got, probeFrames, attacker4)
	}

	d = e.start()
	restored, _, err := d.Log.WaitEvent(0, 5*time.Second, "snapshot_restored", nil)
	if err != nil {
		t.Fatalf("restart did not restore the snapshot: %v", err)
	}
	if restored.Num("bans") < 1 || restored.Num("keys") < 1 {
		t.Errorf("restored %v keys and %v bans, want the ban and the baselines", restored.Num("keys"), restored.Num("bans"))
	}
	if att, _, _ := d.Log.WaitEvent(0, 0, "attached", nil); !att.Bool("adopted") {
		t.Errorf("restarted daemon did not adopt the pinned program: %s", att.Line)
	}
	// The restored detector is past its warm-up at its first tick, and
	// counts on from the snapshot (at most a second and a tick older
	// than the status read before the kill).
	warm := e.waitWarm(d)
	if warm.Num("ticks")+2 < float64(before.Ticks) {
		t.Errorf("warm-up over at tick %v, before the restart it was at tick %d: the baselines started over", warm.Num("ticks"), before.Ticks)
	}
	if d := warm.Read.Sub(restored.Read); d > 2*tick {
		t.Errorf("warm-up over only %v after the restart", d)
	}
	after := e.status()
	if after.BaselinePPS <= 0 {
		t.Errorf("no baseline after the restart: %+v", after)
	}
	b, ok = findBan(e.bans(), target)
	if !ok || b.Origin != "detector" || b.TimeLeft <= 0 {
		t.Errorf("after the restart floodguard bans lists %+v, want %s from the detector", e.bans(), target)
	}
	if got := e.probe(attacker4); got != 0 {
		t.Errorf("after the restart, %d of %d frames from %v got through", got, probeFrames, attacker4)
	}
	if ev := d.Log.Events("no_snapshot", "snapshot_bad", "snapshot_unreadable"); len(ev) != 0 {
		t.Errorf("restart: %s", ev[0].Line)
	}
	// No second warm-up: a new flood is banned at once.
	mark = d.Log.Len()
	st = e.flood(e.udp(other4), floodRate, 2*time.Second)
	waitBan(t, d, mark, other4, st.Start)
}

// TestE2ERuleExpiresDaemonStopped: stopped with SIGTERM (rules left in
// place), the daemon's rule keeps dropping and then expires in the kernel
// by itself.
func TestE2ERuleExpiresDaemonStopped(t *testing.T) {
	e := newE2E(t, cfg{TTL: "5s"})
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	st := e.flood(e.udp(attacker4), floodRate, 1500*time.Millisecond)
	target := attacker4.String() + "/32"
	waitBan(t, d, mark, attacker4, st.Start)
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(5 * time.Second); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
	if _, _, err := d.Log.WaitEvent(0, 0, "stopped", nil); err != nil {
		t.Errorf("no stopped event: %v", err)
	}

	b, ok := findBan(e.bans(), target)
	if !ok || b.TimeLeft < time.Second {
		t.Fatalf("after SIGTERM floodguard bans lists %+v, want %s with time left", e.bans(), target)
	}
	expiry := time.Now().Add(b.TimeLeft)
	if got := e.probe(attacker4); got != 0 {
		t.Errorf("daemon stopped, rule live: %d of %d frames from %v got through", got, probeFrames, attacker4)
	}
	time.Sleep(time.Until(expiry) + 200*time.Millisecond)
	if got := e.probe(attacker4); got != probeFrames {
		t.Errorf("rule expired: %d of %d frames from %v got through", got, probeFrames, attacker4)
	}
	b, ok = findBan(e.bans(), target)
	if ok && b.TimeLeft > 0 {
		t.Errorf("floodguard bans shows %s with %v left after its expiry", target, b.TimeLeft)
	}
	out, stderr, err := e.fg("bans")
	if err != nil {
		t.Fatalf("floodguard bans: %v: %s", err, stderr)
	}
	if ok && !strings.Contains(out, "expired") || !strings.Contains(out, "daemon not running") {
		t.Errorf("floodguard bans with the daemon stopped:\n%s", out)
	}
	t.Logf("floodguard bans:\n%s", out)
}
