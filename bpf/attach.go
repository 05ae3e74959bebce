package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Attaching the program to the interface (native, generic or native with
// fallback), replacing other XDP programs, and detaching. The netlink
// operations the link package lacks are in netlink.go.

// queryMode sets x.mode from what the kernel reports for the interface.
func (x *XDP) queryMode() error {
	st, err := queryXDP(x.ifindex)
	if err != nil {
		return err
	}
	x.mode = st.mode()
	return nil
}

// attach attaches x.prog to x.ifindex in the requested mode, replacing other
// programs if asked to.
func (x *XDP) attach() error {
	err := x.attachMode()
	if isBusy(err) && x.opts.Replace {
		if err := detachOthers(x.ifindex); err != nil {
			return err
		}
		err = x.attachMode()
	}
	if isBusy(err) {
		return fmt.Errorf("attach to %s: %w: %w", x.opts.Interface, ErrXDPBusy, err)
	}
	return err
}

func (x *XDP) attachMode() error {
	try := func(flags link.XDPAttachFlags) error {
		l, err := link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: x.ifindex, Flags: flags})
		if err != nil {
			return err
		}
		x.lnk = l
		return nil
	}
	switch x.opts.Mode {
	case ModeNative:
		if err := try(link.XDPDriverMode); err != nil {
			return classify("attach native to "+x.opts.Interface, err)
		}
		x.mode = ModeNative
	case ModeGeneric:
		if err := try(link.XDPGenericMode); err != nil {
			return classify("attach generic to "+x.opts.Interface, err)
		}
		x.mode = ModeGeneric
	default:
		nerr := try(link.XDPDriverMode)
		if nerr == nil {
			x.mode = ModeNative
			return nil
		}
		if isBusy(nerr) {
			return nerr
		}
		if gerr := try(link.XDPGenericMode); gerr != nil {
			return classify("attach to "+x.opts.Interface, fmt.Errorf("native: %w; generic: %w", nerr, gerr))
		}
		x.mode = ModeGeneric
		x.fallback = fmt.Errorf("native xdp on %s: %w", x.opts.Interface, nerr)
	}
	return nil
}

// isBusy reports whether an attach failed because another program holds the
// hook: EBUSY (a program or link in the same mode) or EEXIST (one in the
// other mode).
func isBusy(err error) bool {
	return errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST)
}

// detachOthers removes every XDP program from ifindex: bpf_links by
// BPF_LINK_DETACH, netlink-attached programs by netlink.
func detachOthers(ifindex int) error {
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.XDPType {
			continue
		}
		if xi := info.XDP(); xi == nil || int(xi.Ifindex) != ifindex {
			continue
		}
		if err := it.Link.Detach(); err != nil {
			return classify(fmt.Sprintf("replace: detach xdp link %d", it.ID), err)
		}
	}
	if err := it.Err(); err != nil {
		return classify("replace: list links", err)
	}
	st, err := queryXDP(ifindex)
	if err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	if st.attached == xdpAttachedSKB || st.skbProgID != 0 {
		if err := setXDPFD(ifindex, -1, unix.XDP_FLAGS_SKB_MODE); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
	}
	if st.attached == xdpAttachedDrv || st.drvProgID != 0 {
		if err := setXDPFD(ifindex, -1, unix.XDP_FLAGS_DRV_MODE); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
	}
	return nil
}

// Detach detaches the program from its interface, removes every pin and the
// pin directory if it is left empty, and closes x. Rules are discarded.
func (x *XDP) Detach() error {
	var errs []error
	if x.lnk != nil {
		if err := x.lnk.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
			errs = append(errs, fmt.Errorf("detach link: %w", err))
		}
	}
	if x.pinned {
		for _, pin := range append([]string{pinLink}, sortedPins()...) {
			err := os.Remove(filepath.Join(x.opts.PinDir, pin))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("unpin: %w", err))
			}
		}
		if err := os.Remove(x.opts.PinDir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("remove pin directory: %w", err))
		}
	}
	x.close()
	return errors.Join(errs...)
}

func sortedPins() []string {
	var pins []string
	for _, p := range pinNames {
		pins = append(pins, p)
	}
	slices.Sort(pins)
	return pins
}
