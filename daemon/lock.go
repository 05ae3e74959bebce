package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockName is the lock file in the runtime directory. A running daemon
// holds an exclusive flock on it, for its whole life, before it touches
// anything else (the pinned program, its maps, the snapshot, the control
// socket), so a second daemon with the same config stops before it could
// adopt and change the first one's program. The file holds the PID of the
// daemon that locked it, for the second one's error; it is never removed
// (removing a lock file others may have open would let two daemons each
// lock a different file). The kernel drops the lock when the process
// ends, however it ends.
const LockName = "floodguard.lock"

// lockInstance takes the runtime directory's lock (creating the directory
// if need be) and returns the open lock file, to keep open until exit.
func lockInstance(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockName)
	// os.OpenFile sets O_CLOEXEC: exec hooks do not inherit the lock.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := "another floodguard"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					who = fmt.Sprintf("another floodguard (pid %d)", pid)
				}
			}
			return nil, fmt.Errorf("%s holds the lock %s: one daemon per runtime directory (stop it first, or give this one another daemon.runtime_dir and pin_dir)", who, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	// The PID is only for the error message of a second daemon: a failure
	// to write it does not matter.
	return f, nil
}
