package bpf

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/floodguard/floodguard/detector"
)

// Probation records (DESIGN.md, "Admission"): the frames a probation slot
// recorded in an epoch, by source address. Sources on probation have no
// entry, so without these their frames would be in the totals only; with
// them, the detector counts them in their prefixes. The program's table is
// read through its memory mapping (XDP.AppendProbation), the replay's model
// the same way (Probation.AppendEpoch).

// addRecords adds the frames recorded in s to c.
func (s *ProbeValue) addRecords(c *detector.Counters) {
	for i := range min(int(s.N), probeRecords) {
		k := s.Class[i] &^ probeDropped
		if k < uint8(detector.NumClasses) {
			c.Packets[k]++
			c.Bytes[k] += uint64(s.Len[i])
		}
		if s.Class[i]&probeDropped != 0 {
			c.DroppedPackets++
			c.DroppedBytes += uint64(s.Len[i])
		}
	}
}

// appendRecord appends s's records to dst as a source of its own.
func appendRecord(dst []detector.Source, s *ProbeValue) []detector.Source {
	dst = append(dst, detector.Source{Addr: s.Addr, UDPSrcPort: s.UDPSport})
	s.addRecords(&dst[len(dst)-1].Counters)
	return dst
}

// probeSlots returns the program's probation slots, every CPU's region one
// after the other, over the read-only mapping of fg_probe.
func (x *XDP) probeSlots() []ProbeValue {
	if len(x.probeMem) == 0 {
		return nil
	}
	return unsafe.Slice((*ProbeValue)(unsafe.Pointer(&x.probeMem[0])), x.probe.MaxEntries())
}

// probeRegions follows which CPUs' regions of fg_probe may hold records:
// those whose probation frame counter (fg_stats) moved since the read
// before the last. Only those are scanned, so that a read without a
// spoofed flood costs one lookup rather than a scan of every CPU's 640 KiB
// (DESIGN.md, "Admission").
type probeRegions struct {
	mu      sync.Mutex
	vals    []Stats  // fg_stats, per CPU
	seen    []uint64 // each CPU's probation_packets at the last read
	moved   []bool   // whether it had moved at the last read
	scanned uint64   // regions scanned so far (tests)
}

// AppendProbation appends to dst the frames recorded on probation in
// epoch, one Source per probation slot that holds some (a source whose
// frames ran on two CPUs has a record on each), and returns it. Call it
// once per epoch (the regions to read are judged from one call to the
// next), right after AdvanceEpoch closed epoch: a slot keeps its records
// until the next frame hashed to it on its CPU, which in the new epoch
// clears them (or, for a new address, takes the slot); frames lost that
// way, and those of addresses that took a slot from another within the
// epoch, are the error bound of probation records. A region whose CPU
// recorded nothing since the read before the last is skipped: without a
// spoofed flood a read costs one lookup of fg_stats (its per-CPU buffer,
// ~600 B on two CPUs, is all it allocates beyond dst's growth).
func (x *XDP) AppendProbation(dst []detector.Source, epoch uint32) ([]detector.Source, error) {
	r := &x.probeRegions
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.vals) != x.ncpu {
		r.vals = make([]Stats, x.ncpu)
		r.seen = make([]uint64, x.ncpu)
		r.moved = make([]bool, x.ncpu)
	}
	if err := x.stats.Lookup(uint32(0), r.vals); err != nil {
		return dst, fmt.Errorf("read probation records: %w", err)
	}
	slots := x.probeSlots()
	for cpu := range x.ncpu {
		// Records of the closed epoch were written after the previous
		// AdvanceEpoch, which came after the read before the last.
		n := r.vals[cpu].ProbationPackets
		moved := n != r.seen[cpu]
		busy := moved || r.moved[cpu]
		r.seen[cpu], r.moved[cpu] = n, moved
		if !busy || len(slots) < (cpu+1)*ProbeSlots {
			continue
		}
		r.scanned++
		dst = appendEpochRecords(dst, slots[cpu*ProbeSlots:(cpu+1)*ProbeSlots], epoch)
	}
	return dst, nil
}

// appendEpochRecords appends the records of epoch among slots, which the
// program may be writing (the model's are not, and go through the same).
func appendEpochRecords(dst []detector.Source, slots []ProbeValue, epoch uint32) []detector.Source {
	for i := range slots {
		s := &slots[i]
		// The epoch is read before and after the copy: the program
		// rewrites the epoch whenever it reuses the slot, so a copy torn
		// by such a rewrite is left out (a rewrite caught between the two
		// reads in the same epoch is within the bound above).
		if atomic.LoadUint32(&s.Epoch) != epoch || s.N == 0 {
			continue
		}
		v := *s
		if atomic.LoadUint32(&s.Epoch) != epoch || v.Epoch != epoch || v.N == 0 {
			continue
		}
		dst = appendRecord(dst, &v)
	}
	return dst
}

// AppendEpoch is AppendProbation for the model: it appends the frames
// recorded in the current epoch (the replay calls it when a tick closes,
// before AdvanceEpoch).
func (p *Probation) AppendEpoch(dst []detector.Source) []detector.Source {
	return appendEpochRecords(dst, p.slots, p.epoch)
}
