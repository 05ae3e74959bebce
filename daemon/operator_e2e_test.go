package daemon_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EOperatorCommands: block, bans (origin and hit counters) and
// unblock against a running daemon; clear failures for a caller who is
// not root and when the daemon is not running.
func TestE2EOperatorCommands(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.start()
	const cidr = "198.19.7.0/24"
	src := netip.MustParseAddr("198.19.7.5")

	out, stderr, err := e.fg("block", cidr, "--ttl", "5m")
	if err != nil || !strings.Contains(out, "blocked "+cidr) {
		t.Fatalf("floodguard block: %v: %q %q", err, out, stderr)
	}
	b, ok := findBan(e.bans(), cidr)
	if !ok || b.Origin != "manual" || b.Scope != "prefix" || b.TimeLeft <= 4*time.Minute || b.TimeLeft > 5*time.Minute {
		t.Fatalf("after block, floodguard bans lists %+v", e.bans())
	}
	if got := e.probe(src); got != 0 {
		t.Errorf("%d of %d frames from blocked %v got through", got, probeFrames, src)
	}
	b, _ = findBan(e.bans(), cidr)
	if b.Packets != probeFrames || b.Bytes != probeFrames*frameSize {
		t.Errorf("rule counted %d packets, %d bytes; want %d, %d", b.Packets, b.Bytes, probeFrames, probeFrames*frameSize)
	}
	table, _, err := e.fg("bans")
	if err != nil || !strings.Contains(table, cidr) || !strings.Contains(table, "manual") || !strings.Contains(table, fmt.Sprint(probeFrames)) {
		t.Errorf("floodguard bans: %v\n%s", err, table)
	}
	if ev, _, err := d.Log.WaitEvent(0, time.Second, "manual_block", isEvent(cidr)); err != nil || !strings.Contains(ev.Str("by"), "uid=0") {
		t.Errorf("block not logged with who asked: %v %s", err, ev.Line)
	}

	// The host itself is never blocked.
	if _, stderr, err := e.fg("block", victim4.String()); err == nil || !strings.Contains(stderr, "allowlist") {
		t.Errorf("blocking the host's own address: %v: %q", err, stderr)
	}

	out, stderr, err = e.fg("unblock", cidr)
	if err != nil || !strings.Contains(out, "unblocked "+cidr) {
		t.Fatalf("floodguard unblock: %v: %q %q", err, out, stderr)
	}
	if b, ok := findBan(e.bans(), cidr); ok {
		t.Errorf("after unblock, floodguard bans still lists %+v", b)
	}
	if got := e.probe(src); got != probeFrames {
		t.Errorf("after unblock %d of %d frames from %v got through", got, probeFrames, src)
	}

	// Not root: refused, saying why.
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed to run as nobody: %v", err)
	}
	nobody := []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
	for _, args := range [][]string{{"status"}, {"block", cidr}} {
		_, stderr, err := e.fgAs(nobody, args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "need root") {
			t.Errorf("floodguard %s as nobody: %v: %q, want exit 1 saying root is needed", args[0], err, stderr)
		}
	}

	// Daemon not running: block says so.
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = e.fg("block", cidr)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "not running") {
		t.Errorf("floodguard block with no daemon: %v: %q, want exit 1 saying it is not running", err, stderr)
	}
}
