package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// OpenPinned opens the maps a running (or crashed) floodguard pinned under
// pinDir, without loading or attaching a program: operator commands use it
// to list and remove rules while the daemon is down. Rule changes bump the
// rules generation as usual, so the running program sees them at once.
// Close releases the maps; the pins stay.
//
// The returned XDP also holds the pinned link, when there is one, and
// counts as pinned: Detach on it detaches the program from its interface
// and removes every pin, as it would for the daemon that made them
// (floodguard detach, after the daemon stopped).
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
	if err := x.openPinnedLink(); err != nil {
		return nil, err
	}
	x.pinned = true
	if err := x.mapControl(); err != nil {
		return nil, err
	}
	return x, nil
}

// openPinnedLink loads the link pinned under x.opts.PinDir, if any, into
// x.lnk, and takes its interface from it. A defunct link (its interface
// went away) is kept too: Detach then only removes its pin.
func (x *XDP) openPinnedLink() error {
	p := filepath.Join(x.opts.PinDir, pinLink)
	lnk, err := link.LoadPinnedLink(p, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return classify("load pinned link "+p, err)
	}
	info, err := lnk.Info()
	if err != nil {
		lnk.Close()
		return classify("pinned link info", err)
	}
	xi := info.XDP()
	if info.Type != link.XDPType || xi == nil {
		lnk.Close()
		return fmt.Errorf("%w: %s is a link of type %d, not xdp", ErrPinConflict, p, info.Type)
	}
	x.lnk = lnk
	x.ifindex = int(xi.Ifindex)
	return nil
}

// Ifindex returns the interface the program is attached to: the one Load
// was given, or for OpenPinned the pinned link's (0 if there is none or it
// is defunct).
func (x *XDP) Ifindex() int { return x.ifindex }

// RemovePinned is the fallback of OpenPinned and Detach for a pin
// directory OpenPinned refuses (maps of another build's layout, or some
// missing): it detaches the pinned xdp link, if any, and removes the link
// pin, every map pin of floodguard's names and the directory if that
// leaves it empty. It returns the link's interface (0 if none). Files of
// other names are left alone.
func RemovePinned(pinDir string) (ifindex int, err error) {
	if !filepath.IsAbs(pinDir) {
		return 0, fmt.Errorf("%w: pin directory %q must be absolute", ErrInvalidOptions, pinDir)
	}
	x := &XDP{opts: Options{PinDir: pinDir}}
	if err := x.openPinnedLink(); err != nil {
		return 0, err
	}
	ifindex = x.ifindex
	x.pinned = true
	return ifindex, x.Detach()
}
