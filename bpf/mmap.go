package bpf

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Memory-mapped maps: the control word, the signature rules and their
// index, the feature counters, the admission settings and probation table
// (probation.go) and the slots (slots.go), which user space reads and
// writes in place.

// bpfFMmapable is BPF_F_MMAPABLE, which golang.org/x/sys/unix does not
// export.
const bpfFMmapable = 0x400

// mapControl memory-maps the .bss map so that fg_control can be updated
// with atomic instructions, visible to the program at once, and the maps
// user space reads or writes in place: the signature rules and their index
// (sig.go) and the port counters (features.go).
func (x *XDP) mapControl() error {
	var err error
	if x.ctlMem, err = mmapMap(x.bss, mapBSS, true); err != nil {
		return err
	}
	x.ctl = (*uint64)(unsafe.Pointer(&x.ctlMem[0]))
	if x.sigMem, err = mmapMap(x.sigRules, mapSigRules, true); err != nil {
		return err
	}
	if x.indexMem, err = mmapMap(x.sigIndex, mapSigIndex, true); err != nil {
		return err
	}
	if x.portsMem, err = mmapMap(x.featPorts, mapFeatPorts, false); err != nil {
		return err
	}
	if x.touchMem, err = mmapMap(x.featTouched, mapFeatTouched, true); err != nil {
		return err
	}
	if x.dstsMem, err = mmapMap(x.featDsts, mapFeatDsts, true); err != nil {
		return err
	}
	if x.admitMem, err = mmapMap(x.admission, mapAdmission, true); err != nil {
		return err
	}
	if x.probeMem, err = mmapMap(x.probe, mapProbe, false); err != nil {
		return err
	}
	x.admit = (*AdmissionValue)(unsafe.Pointer(&x.admitMem[0]))
	return x.mapSlots()
}

// checkMmapable says why m cannot be memory-mapped, if it cannot.
func checkMmapable(m *ebpf.Map, name string) error {
	if m.Flags()&bpfFMmapable == 0 {
		return fmt.Errorf("map %s: %w: not mmapable (needs Linux 5.5)", name, ErrKernelTooOld)
	}
	return nil
}

// mmapMap maps the whole of an mmapable array map (values are laid out
// every round_up(value_size, 8) bytes from the start of the mapping).
func mmapMap(m *ebpf.Map, name string, write bool) ([]byte, error) {
	if err := checkMmapable(m, name); err != nil {
		return nil, err
	}
	size := (int(m.ValueSize()+7) &^ 7) * int(m.MaxEntries())
	page := os.Getpagesize()
	size = (size + page - 1) &^ (page - 1)
	prot := unix.PROT_READ
	if write {
		prot |= unix.PROT_WRITE
	}
	mem, err := unix.Mmap(m.FD(), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, classify("mmap "+name, err)
	}
	return mem, nil
}
