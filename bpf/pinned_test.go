package bpf

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenPinnedDetach: what a stopped daemon left pinned can be opened
// (Close keeps it all) and detached (program off the interface, every pin
// and the pin directory gone).
func TestOpenPinnedDetach(t *testing.T) {
	testNetns(t)
	pins := testPinDir(t)
	x := loadAttached(t, Options{Interface: "fgv0", PinDir: pins})
	id := progID(t, x)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	y, err := OpenPinned(pins)
	if err != nil {
		t.Fatal(err)
	}
	if y.lnk == nil || !y.pinned || y.ifindex != ifindex(t, "fgv0") {
		t.Errorf("OpenPinned: link %v, pinned %v, ifindex %d; want the pinned link on fgv0", y.lnk, y.pinned, y.ifindex)
	}
	if err := y.Close(); err != nil {
		t.Fatal(err)
	}
	if st := xdpOn(t, "fgv0"); st.progID != id {
		t.Fatalf("after Close of OpenPinned the program is gone: %+v", st)
	}
	if len(pinFiles(t, pins)) == 0 {
		t.Fatal("after Close of OpenPinned the pins are gone")
	}

	z, err := OpenPinned(pins)
	if err != nil {
		t.Fatal(err)
	}
	if err := z.Detach(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir after Detach: %v (%v)", err, pinFiles(t, pins))
	}
	if st := xdpOn(t, "fgv0"); st.attached != xdpAttachedNone {
		t.Errorf("after Detach the kernel reports %+v", st)
	}
}

// TestRemovePinned: pins OpenPinned refuses (a map missing, as another
// build could leave) are still detached and removed.
func TestRemovePinned(t *testing.T) {
	testNetns(t)
	pins := testPinDir(t)
	x := loadAttached(t, Options{Interface: "fgv0", PinDir: pins})
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(pins, mapExempt)); err != nil {
		t.Fatal(err)
	}
	if y, err := OpenPinned(pins); err == nil {
		y.Close()
		t.Fatal("OpenPinned opened a pin directory with a map missing")
	}
	idx, err := RemovePinned(pins)
	if err != nil {
		t.Fatal(err)
	}
	if idx != ifindex(t, "fgv0") {
		t.Errorf("RemovePinned reports ifindex %d, want fgv0's", idx)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir after RemovePinned: %v (%v)", err, pinFiles(t, pins))
	}
	if st := xdpOn(t, "fgv0"); st.attached != xdpAttachedNone {
		t.Errorf("after RemovePinned the kernel reports %+v", st)
	}
}
