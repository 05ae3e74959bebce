package bpf

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"

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

// mapSlots memory-maps the slots, read and write (user space clears Live).
func (x *XDP) mapSlots() error {
	var err error
	if x.slotMem, err = mmapMap(x.slots, mapSlots, true); err != nil {
		return err
	}
	n := int(x.slots.MaxEntries())
	if uintptr(len(x.slotMem)) < uintptr(n)*unsafe.Sizeof(SlotValue{}) {
		return fmt.Errorf("map %s: %w: mapping of %d bytes for %d slots", mapSlots, ErrABIMismatch, len(x.slotMem), n)
	}
	x.slotVals = unsafe.Slice((*SlotValue)(unsafe.Pointer(&x.slotMem[0])), n)
	return nil
}

// slotsUsed returns the bound of the slots ever taken: every live slot is
// below it.
func (x *XDP) slotsUsed() uint32 {
	return min(atomic.LoadUint32(&x.admit.SlotsNext), uint32(len(x.slotVals)))
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
	var v uint32
	for {
		err := x.free.LookupAndDelete(nil, &v)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("take stock of slots: drain %s: %w", mapFree, err)
		}
	}
	used := make([]bool, n)
	var high uint32
	var key detector.Addr
	var stale []detector.Addr
	it := x.sources.Iterate()
	for it.Next(&key, &v) {
		if v >= n || used[v] {
			stale = append(stale, key) // cannot happen but for a corrupt map
			continue
		}
		used[v] = true
		high = max(high, v+1)
		s := &x.slotVals[v]
		s.Addr = key
		atomic.StoreUint32(&s.Live, 1)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("take stock of slots: read %s: %w", mapSources, err)
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
