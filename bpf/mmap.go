package bpf

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Memory-mapped maps: the control word, the signature rules and their
// index, the features' touched bits, destinations and port sums (the
// per-CPU port counters are summed in the kernel: portsums.go), the
// admission settings and probation table (probation.go) and the slots
// (slots.go), which user space reads and writes in place.

// bpfFMmapable is BPF_F_MMAPABLE, which golang.org/x/sys/unix does not
// export.
const bpfFMmapable = 0x400

// mapping is a map user space keeps memory-mapped, and where.
type mapping struct {
	mem   *[]byte
	m     *ebpf.Map
	name  string
	write bool
}

// mappings lists the maps mapControl maps whole, for it and for close (the
// slots, mapped chunk by chunk, are apart: slots.go).
func (x *XDP) mappings() []mapping {
	var sums, want *ebpf.Map
	if x.summer != nil {
		sums, want = x.summer.sums, x.summer.want
	}
	return []mapping{
		{&x.ctlMem, x.bss, mapBSS, true},
		{&x.sigMem, x.sigRules, mapSigRules, true},
		{&x.indexMem, x.sigIndex, mapSigIndex, true},
		{&x.sumsMem, sums, sumportsMapFgPortSums, false},
		{&x.wantMem, want, sumportsMapFgPortWant, true},
		{&x.touchMem, x.featTouched, mapFeatTouched, true},
		{&x.dstsMem, x.featDsts, mapFeatDsts, true},
		{&x.admitMem, x.admission, mapAdmission, true},
		{&x.probeMem, x.probe, mapProbe, false},
	}
}

// mapControl memory-maps the .bss map so that fg_control can be updated
// with atomic instructions, visible to the program at once, and the maps
// user space reads or writes in place: the signature rules and their index
// (sig.go), the feature maps (features.go), the admission settings and
// the probation table (probation.go); then the slots. It first loads the
// port summer, whose maps are among them: each process that opens the
// program has its own.
func (x *XDP) mapControl() error {
	summer, err := loadPortSummer(x.featPorts)
	if err != nil {
		return err
	}
	x.summer = summer
	for _, mp := range x.mappings() {
		mem, err := mmapMap(mp.m, mp.name, mp.write)
		if err != nil {
			return err
		}
		*mp.mem = mem
	}
	x.ctl = (*uint64)(unsafe.Pointer(&x.ctlMem[0]))
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

// mappingSize is the size of a whole mapping of an array map: values are
// laid out every round_up(value_size, 8) bytes from its start, and it
// takes whole pages.
func mappingSize(valueSize, maxEntries uint32) int {
	size := (int(valueSize+7) &^ 7) * int(maxEntries)
	page := os.Getpagesize()
	return (size + page - 1) &^ (page - 1)
}

// mmapMap maps the whole of an mmapable array map.
func mmapMap(m *ebpf.Map, name string, write bool) ([]byte, error) {
	if err := checkMmapable(m, name); err != nil {
		return nil, err
	}
	size := mappingSize(m.ValueSize(), m.MaxEntries())
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
