package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/internal/lab"
	"github.com/floodguard/floodguard/internal/privtest"
	"golang.org/x/sys/unix"
)

// TestDetach: the real program, attached and pinned on a lab bpffs as a
// stopped daemon leaves it, is removed by `floodguard detach`; detach
// refuses while the lock is held or the control socket answers.
func TestDetach(t *testing.T) {
	if os.Geteuid() != 0 {
		privtest.SkipOrFail(t, "needs root: attaches an XDP program")
	}
	l, victim, _, check := vethLab(t)
	bpffs, err := l.BPFFS()
	check(err)
	pins := filepath.Join(bpffs, "floodguard")
	rundir := filepath.Join(l.Dir(), "run")
	check(os.MkdirAll(rundir, 0o700))
	cfg := filepath.Join(l.Dir(), "floodguard.yaml")
	check(os.WriteFile(cfg, []byte(fmt.Sprintf("daemon:\n  pin_dir: %s\n  runtime_dir: %s\n", pins, rundir)), 0o644))

	// What a stopped daemon leaves: the program attached, link and maps
	// pinned, the lock file (unlocked).
	check(victim.Do(func() error {
		x, err := bpf.Load(bpf.Options{Interface: "vb", PinDir: pins, MaxSources: 1024, MaxRules: 64})
		if errors.Is(err, bpf.ErrPermission) || errors.Is(err, bpf.ErrKernelTooOld) {
			return fmt.Errorf("%w: %w", lab.ErrNotPermitted, err)
		}
		if err != nil {
			return err
		}
		return x.Close()
	}))
	if !xdpAttached(t, victim) || !hasPins(pins) {
		t.Fatal("the program is not attached and pinned before detach")
	}
	lockPath := filepath.Join(rundir, daemon.LockName)
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	check(err)
	defer lock.Close()

	// A daemon holding the lock: refused.
	check(unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	if code, _, errOut := runCLI("detach", "--config", cfg); code != 1 || !strings.Contains(errOut, "holds the lock") {
		t.Errorf("detach with the lock held: exit %d, stderr %q", code, errOut)
	}
	check(unix.Flock(int(lock.Fd()), unix.LOCK_UN))

	// A daemon answering on the control socket: refused.
	ln, err := net.Listen("unix", filepath.Join(rundir, daemon.SocketName))
	check(err)
	if code, _, errOut := runCLI("detach", "--config", cfg); code != 1 || !strings.Contains(errOut, "answers on") {
		t.Errorf("detach with the socket answering: exit %d, stderr %q", code, errOut)
	}
	ln.Close()
	if !xdpAttached(t, victim) || !hasPins(pins) {
		t.Fatal("a refused detach changed something")
	}

	code, out, errOut := runCLI("detach", "--config", cfg)
	if code != 0 || !strings.Contains(out, "detached floodguard") {
		t.Fatalf("detach: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		ents, _ := os.ReadDir(pins)
		t.Errorf("pin dir after detach: %v, %d entries", err, len(ents))
	}
	if xdpAttached(t, victim) {
		t.Error("an XDP program is still attached to vb after detach")
	}

	// Leftovers OpenPinned refuses (a map missing, as another build could
	// leave): detached and removed all the same.
	check(victim.Do(func() error {
		x, err := bpf.Load(bpf.Options{Interface: "vb", PinDir: pins, MaxSources: 1024, MaxRules: 64})
		if err != nil {
			return err
		}
		return x.Close()
	}))
	check(os.Remove(filepath.Join(pins, "fg_exempt")))
	if code, out, errOut := runCLI("detach", "--config", cfg); code != 0 || !strings.Contains(errOut, "removing the pins by name") {
		t.Errorf("detach of incomplete pins: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) || xdpAttached(t, victim) {
		t.Errorf("after detach of incomplete pins: pin dir %v, attached %v", err, xdpAttached(t, victim))
	}

	// Again: nothing to do, not a failure.
	if code, out, errOut := runCLI("detach", "--config", cfg); code != 0 || !strings.Contains(out, "nothing to detach") {
		t.Errorf("second detach: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// xdpAttached reports whether vb in ns has an XDP program, as ip shows it.
func xdpAttached(t *testing.T, ns *lab.Netns) bool {
	t.Helper()
	out, err := ns.Command("ip", "-d", "link", "show", "dev", "vb").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show: %v: %s", err, out)
	}
	return strings.Contains(string(out), "xdp")
}
