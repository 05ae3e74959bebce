package daemon_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/daemon"
)

// TestE2ESingleInstance: a second daemon with the same config stops before
// it touches the first one's program, naming the lock and the first's PID.
func TestE2ESingleInstance(t *testing.T) {
	e := newE2E(t, cfg{})
	first := e.start()
	second, err := e.victim.Start(fgBin, "run", "--interface", "vb", "--config", e.config, "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(10 * time.Second); err == nil {
		t.Fatalf("second daemon exited 0:\n%s", second.Log)
	} else if !second.Exited() {
		second.Kill()
		t.Fatalf("second daemon still running: %v\n%s", err, second.Log)
	}
	if ev := second.Log.Events("attached"); len(ev) != 0 {
		t.Errorf("second daemon loaded and attached its program before finding the first: %s", ev[0].Line)
	}
	out := second.Log.String()
	lock := filepath.Join(e.dir, "run", daemon.LockName)
	if !strings.Contains(out, lock) || !strings.Contains(out, fmt.Sprint(first.Cmd.Process.Pid)) {
		t.Errorf("second daemon's error does not name %s and pid %d:\n%s", lock, first.Cmd.Process.Pid, out)
	}
	if first.Exited() {
		t.Fatalf("first daemon exited:\n%s", first.Log)
	}
	time.Sleep(2 * tick)
	if s := e.status(); s.Interface != "vb" || s.Ticks == 0 {
		t.Errorf("first daemon's status after the second tried: %+v", s)
	}
	// Once the first has stopped, the lock is free.
	if err := first.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	e.start()
}
