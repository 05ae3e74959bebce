package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
)

// OpenPinned opens the maps a running (or crashed) floodguard pinned under
// pinDir, without loading or attaching a program: operator commands use it
// to list and remove rules while the daemon is down. Rule changes bump the
// rules generation as usual, so the running program sees them at once.
// Close releases the maps; the pins stay.
func OpenPinned(pinDir string) (_ *XDP, err error) {
	if pinDir == "" {
		pinDir = DefaultPinDir
	}
	if !filepath.IsAbs(pinDir) {
		return nil, fmt.Errorf("%w: pin directory %q must be absolute", ErrInvalidOptions, pinDir)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("open pinned maps: %w", err)
	}
	x := &XDP{opts: Options{PinDir: pinDir}, ncpu: ncpu}
	defer func() {
		if err != nil {
			x.close()
		}
	}()
	dst := x.mapsByName()
	for name, pin := range pinNames {
		path := filepath.Join(pinDir, pin)
		m, err := ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open pinned map %s: %w (is floodguard attached? nothing is pinned there)", path, err)
		}
		if err != nil {
			return nil, classify("open pinned map "+path, err)
		}
		*dst[name] = m
		if err := checkABI(name, m); err != nil {
			return nil, fmt.Errorf("pinned %w", err)
		}
	}
	if err := x.mapControl(); err != nil {
		return nil, err
	}
	return x, nil
}
