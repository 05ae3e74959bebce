package bpf

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

// Slots (DESIGN.md, "Slots"): the per-source entries live in an mmapable
// array, fg_source_slots, and fg_sources maps an address to its slot, so
// that a tick's read is a scan of mapped memory rather than batch lookups
// of a hash (which cost about half a microsecond per entry). The program
// takes a slot at admission, from fg_free_slots or else the next never
// used one (AdmissionValue.SlotsNext); user space frees it when it deletes
// the address, and pushes it back on fg_free_slots a tick later, once no
// program can still be counting into it.

// slotChunk is how many slots are mapped at a time: 65536 slots of 200
// bytes are 3200 pages, so every chunk starts on a page boundary of the map.
const slotChunk = 1 << 16

// mapSlots reserves address space for every slot, mapped chunk by chunk
// as slots come into use (mapSlotsUpTo): the kernel maps every page of a
// mapping of a BPF array at once, so mapping the whole table would put all
// of it (200 MiB at the default size) in the daemon's resident memory.
func (x *XDP) mapSlots() error {
	if err := checkMmapable(x.slots, mapSlots); err != nil {
		return err
	}
	if x.slots.ValueSize() != uint32(unsafe.Sizeof(SlotValue{})) || slotChunk*unsafe.Sizeof(SlotValue{})%uintptr(os.Getpagesize()) != 0 {
		return fmt.Errorf("map %s: %w: %d-byte slots", mapSlots, ErrABIMismatch, x.slots.ValueSize())
	}
	n := int(x.slots.MaxEntries())
	size := mappingSize(x.slots.ValueSize(), x.slots.MaxEntries())
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("reserve %d bytes for %s: %w", size, mapSlots, err)
	}
	x.slotMem = mem
	x.slotVals = unsafe.Slice((*SlotValue)(unsafe.Pointer(&mem[0])), n)
	return nil
}

// mapSlotsUpTo maps the slots below n (at least), in whole chunks, over
// the reserved address space. Mapped chunks stay until Close, so a reader
// never sees one go.
func (x *XDP) mapSlotsUpTo(n uint32) error {
	if n <= x.slotsMapped.Load() {
		return nil
	}
	x.mapMu.Lock()
	defer x.mapMu.Unlock()
	have := x.slotsMapped.Load()
	if n <= have {
		return nil
	}
	total := uint32(len(x.slotVals))
	want := min((n+slotChunk-1)/slotChunk*slotChunk, total)
	size := unsafe.Sizeof(SlotValue{})
	off := uintptr(have) * size
	_, err := unix.MmapPtr(x.slots.FD(), int64(off), unsafe.Pointer(&x.slotMem[off]), uintptr(want-have)*size,
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		return classify(fmt.Sprintf("mmap slots %d-%d of %s", have, want, mapSlots), err)
	}
	x.slotsMapped.Store(want)
	return nil
}

// slotsUsed returns the bound of the slots ever taken: every live slot is
// below it.
func (x *XDP) slotsUsed() uint32 {
	return min(atomic.LoadUint32(&x.admit.SlotsNext), uint32(len(x.slotVals)))
}

// slot returns slot i (from fg_sources), mapping it if need be.
func (x *XDP) slot(i uint32) (*SlotValue, error) {
	if i >= uint32(len(x.slotVals)) {
		return nil, fmt.Errorf("slot %d out of range (%d slots)", i, len(x.slotVals))
	}
	if err := x.mapSlotsUpTo(i + 1); err != nil {
		return nil, err
	}
	return &x.slotVals[i], nil
}

// keepSourceMapsTogether makes the maps of the per-source entries all
// pinned ones or all new ones: when one of them is missing or replaced,
// the pinned others are replaced too (their slots would not match).
func (x *XDP) keepSourceMapsTogether(pinned map[string]*ebpf.Map, replace map[string]bool) {
	have := 0
	for _, name := range sourceMaps {
		if pinned[name] != nil {
			have++
		}
	}
	if have == 0 || have == len(sourceMaps) {
		return
	}
	for _, name := range sourceMaps {
		if m := pinned[name]; m != nil {
			m.Close()
			delete(pinned, name)
			replace[name] = true
			x.replaced = append(x.replaced, fmt.Errorf("pinned map %s: replaced with the other per-source maps, %s", name, sourcesRestart))
		}
	}
}

// takeStockOfSlots makes the free slots and the live flags agree with
// fg_sources, at load: the maps may come from an earlier run that stopped
// with slots freed but not yet pushed back. Admissions wait meanwhile
// (SlotCount 0: the program counts their frames as insert failures).
func (x *XDP) takeStockOfSlots() error {
	n := uint32(len(x.slotVals))
	atomic.StoreUint32(&x.admit.SlotCount, 0)
	// Drain twice: a running program that popped a slot before the first
	// drain may push it back (losing an insert race) after it; a program
	// runs for microseconds, and nothing else can refill the stack now.
	if err := x.drainFreeSlots(); err != nil {
		return err
	}
	time.Sleep(slotGrace)
	if err := x.drainFreeSlots(); err != nil {
		return err
	}
	// One walk of fg_sources: the slots in use, then (mapped up to the
	// highest) their addresses and live flags.
	used := make([]bool, n)
	var high uint32
	var keys, stale []detector.Addr
	var slots []uint32
	var key detector.Addr
	var v uint32
	it := x.sources.Iterate()
	for it.Next(&key, &v) {
		if v >= n || used[v] {
			stale = append(stale, key) // cannot happen but for a corrupt map
			continue
		}
		used[v] = true
		high = max(high, v+1)
		keys, slots = append(keys, key), append(slots, v)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("take stock of slots: read %s: %w", mapSources, err)
	}
	if err := x.mapSlotsUpTo(high); err != nil {
		return fmt.Errorf("take stock of slots: %w", err)
	}
	for i, slot := range slots {
		s := &x.slotVals[slot]
		s.Addr = keys[i]
		atomic.StoreUint32(&s.Live, 1)
	}
	for i := range stale {
		if err := x.sources.Delete(&stale[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("take stock of slots: delete %v: %w", stale[i], err)
		}
	}
	// Free slots below high go back on the stack, the lowest on top, so
	// that the entries stay packed at the start of the array.
	for i := int64(high) - 1; i >= 0; i-- {
		if used[i] {
			continue
		}
		atomic.StoreUint32(&x.slotVals[i].Live, 0)
		slot := uint32(i)
		if err := x.free.Update(nil, &slot, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("take stock of slots: push slot %d: %w", slot, err)
		}
	}
	x.slotMu.Lock()
	x.freed = [2][]uint32{}
	x.slotMu.Unlock()
	atomic.StoreUint32(&x.admit.SlotsNext, high)
	atomic.StoreUint32(&x.admit.SlotCount, n)
	return nil
}

// slotGrace is long enough for any program run that began before it to
// have ended.
const slotGrace = 10 * time.Millisecond

// drainFreeSlots empties fg_free_slots.
func (x *XDP) drainFreeSlots() error {
	var v uint32
	for {
		err := x.free.LookupAndDelete(nil, &v)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("take stock of slots: drain %s: %w", mapFree, err)
		}
	}
}

// releaseSlot marks a slot whose fg_sources entry was just deleted as free; it
// is pushed back for reuse at the second AdvanceEpoch from now.
func (x *XDP) releaseSlot(slot uint32) {
	atomic.StoreUint32(&x.slotVals[slot].Live, 0)
	x.slotMu.Lock()
	x.freed[0] = append(x.freed[0], slot)
	x.slotMu.Unlock()
}

// recycleSlots pushes back the slots freed before the previous call: a
// program that found one in fg_sources just before its delete has long
// finished counting into it.
func (x *XDP) recycleSlots() error {
	x.slotMu.Lock()
	defer x.slotMu.Unlock()
	ready := x.freed[1]
	for i := range ready {
		if err := x.free.Update(nil, &ready[i], ebpf.UpdateAny); err != nil {
			// Keep what was not pushed for the next call.
			x.freed[1] = ready[i:]
			return fmt.Errorf("recycle slot %d: %w", ready[i], err)
		}
	}
	x.freed[1], x.freed[0] = x.freed[0], ready[:0]
	return nil
}
