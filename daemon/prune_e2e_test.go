package daemon_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/bpf"
)

// TestE2EExpiredRulesPruned: an expired rule left in the kernel (the daemon
// was down when it expired, and its snapshot is refused) is removed at
// start: expired, a longer prefix still wins the longest-match lookup and
// lets through what a shorter live rule should drop.
func TestE2EExpiredRulesPruned(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.start()
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	x, err := bpf.OpenPinned(filepath.Join(e.pins, "floodguard"))
	if err != nil {
		t.Fatal(err)
	}
	wide, narrow := netip.MustParsePrefix("198.19.7.0/24"), netip.MustParsePrefix("198.19.7.0/28")
	if err := x.AddRule(wide, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := x.AddRule(narrow, time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	x.Close()
	src := netip.MustParseAddr("198.19.7.5")
	time.Sleep(2 * tick) // the kernel's coarse clock passes the expiry
	if got := e.probe(src); got != probeFrames {
		t.Fatalf("before the restart %d of %d frames from %v got through; the expired %v should shadow %v", got, probeFrames, src, narrow, wide)
	}
	// A snapshot the daemon refuses: nothing it knows covers the rule.
	if err := os.WriteFile(filepath.Join(e.dir, "state", "detector.state"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}

	d = e.start()
	if _, _, err := d.Log.WaitEvent(0, 0, "snapshot_bad", nil); err != nil {
		t.Errorf("snapshot not refused: %v", err)
	}
	if b, ok := findBan(e.bans(), narrow.String()); ok {
		t.Errorf("expired rule still in the kernel after the start: %+v", b)
	}
	if _, _, err := d.Log.WaitEvent(0, 0, "expired_rules_pruned", nil); err != nil {
		t.Errorf("pruning not logged: %v", err)
	}
	if got := e.probe(src); got != 0 {
		t.Errorf("after the start %d of %d frames from %v got through the live %v", got, probeFrames, src, wide)
	}
}
