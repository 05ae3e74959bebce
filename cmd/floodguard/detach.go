package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/internal/config"
	"golang.org/x/sys/unix"
)

// runDetach removes what a stopped daemon left behind: the XDP program on
// its interface, the pinned link and the pinned maps (and their rules).
// It refuses while a daemon runs with the same runtime directory, and holds
// that directory's lock while it works, so none can start meanwhile.
func runDetach(e env, args []string) error {
	var cfg string
	fs := newFlagSet(e, "detach", "[--config FILE]",
		"Removes the XDP program, its link and the pinned maps a stopped daemon",
		"left behind (a stopped daemon keeps dropping by its rules until then).",
		"Refuses while a daemon runs: stop it first (systemctl stop floodguard).")
	fs.StringVar(&cfg, "config", "", "YAML config `file` (to find the runtime and pin directories; default: "+config.DefaultPath+" when it exists)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected arguments %v", pos)
	}
	paths, err := config.LoadPaths(operatorConfig(cfg))
	if err != nil {
		return err
	}
	unlock, err := lockStopped(paths.RuntimeDir)
	if err != nil {
		return err
	}
	defer unlock()

	if !hasPins(paths.PinDir) {
		fmt.Fprintf(e.stdout, "nothing pinned under %s: nothing to detach\n", paths.PinDir)
		return nil
	}
	var ifindex int
	x, err := bpf.OpenPinned(paths.PinDir)
	switch {
	case err == nil:
		ifindex = x.Ifindex()
		err = x.Detach()
	case errors.Is(err, bpf.ErrABIMismatch) || errors.Is(err, os.ErrNotExist):
		// Another build's maps, or some missing: remove what is there.
		fmt.Fprintf(e.stderr, "floodguard detach: %v; removing the pins by name\n", err)
		ifindex, err = bpf.RemovePinned(paths.PinDir)
	}
	if err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	where := "no interface (no attached link was pinned)"
	if ifindex != 0 {
		where = fmt.Sprintf("ifindex %d", ifindex)
		if iface, err := net.InterfaceByIndex(ifindex); err == nil {
			where = fmt.Sprintf("%s (ifindex %d)", iface.Name, ifindex)
		}
	}
	fmt.Fprintf(e.stdout, "detached floodguard from %s and removed its pins under %s\n", where, paths.PinDir)
	return nil
}

// hasPins reports whether dir exists and holds anything.
func hasPins(dir string) bool {
	ents, err := os.ReadDir(dir)
	return err == nil && len(ents) > 0
}

// lockStopped fails if a daemon runs with the runtime directory dir: its
// control socket answers, or it holds the lock file (daemon.LockName).
// Otherwise it takes the lock, when the file exists, until unlock.
func lockStopped(dir string) (unlock func(), err error) {
	sock := filepath.Join(dir, daemon.SocketName)
	if c, err := net.DialTimeout("unix", sock, 2*time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("a floodguard daemon answers on %s: stop it first (systemctl stop floodguard)", sock)
	} else if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("%s: %w (detach needs root)", sock, err)
	}
	path := filepath.Join(dir, daemon.LockName)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil // no daemon ever ran with this runtime directory
	}
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("a floodguard daemon holds the lock %s: stop it first (systemctl stop floodguard)", path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
