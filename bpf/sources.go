package bpf

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
)

// Source is a per-source entry. Counters are cumulative
// since the entry was created (the live source turns them into per-tick
// deltas); LastSeenNs is CLOCK_MONOTONIC (MonotonicNow).
type Source struct {
	Addr detector.Addr
	detector.Counters
	// UDPSrcPort is the last UDP source port seen; 0 if none.
	UDPSrcPort uint16
	// Slot is the entry's slot (slots.go): a source keeps it until its
	// entry is deleted, so a reader can key what it remembers of the
	// source by it; a slot taken again belongs to another address.
	Slot       uint32
	LastSeenNs uint64
}

// sourceOf returns the Source of the entry in slot.
func sourceOf(addr *detector.Addr, v *SourceValue, slot uint32) Source {
	s := Source{Addr: *addr, UDPSrcPort: v.UDPSrcPort, Slot: slot, LastSeenNs: v.LastSeenNs}
	s.Packets, s.Bytes = v.Packets, v.Bytes
	s.DroppedPackets, s.DroppedBytes = v.DroppedPackets, v.DroppedBytes
	return s
}

// SourceReader reads the per-source entries: a scan of the memory-mapped
// slots (slots.go), copying out the live ones. In steady state a full
// read allocates nothing. It is not safe for concurrent use; each reader
// belongs to one goroutine.
type SourceReader struct {
	x      *XDP
	next   uint32 // the slot a resumed read goes on from
	resume bool   // the last read stopped at its deadline
}

// NewSourceReader returns a reader of x's per-source entries.
func (x *XDP) NewSourceReader() *SourceReader { return &SourceReader{x: x} }

// AppendSources appends every per-source entry to dst and returns the
// extended slice. Pass the previous result sliced to zero length to reuse
// its storage. Entries inserted or deleted during the read may or may not
// be seen; none is seen twice.
func (r *SourceReader) AppendSources(dst []Source) ([]Source, error) {
	dst, _, err := r.AppendSourcesUntil(dst, time.Time{})
	return dst, err
}

// deadlineEvery is how many slots a read scans between looks at the clock.
const deadlineEvery = 4096

// AppendSourcesUntil is AppendSources with a deadline (none if zero): past
// it, the read stops and returns complete false; the next call goes on
// from there, and the one that reaches the end returns complete true. A
// full pass then spans several calls: each entry is seen once per pass
// (entries inserted or deleted meanwhile may or may not be). It fails only
// if the slots in use cannot be mapped.
func (r *SourceReader) AppendSourcesUntil(dst []Source, deadline time.Time) (_ []Source, complete bool, err error) {
	if !r.resume {
		r.next = 0
	}
	r.resume = false
	high := r.x.slotsUsed()
	if err := r.x.mapSlotsUpTo(high); err != nil {
		return dst, true, fmt.Errorf("read sources: %w", err)
	}
	vals := r.x.slotVals
	for i := r.next; i < high; i++ {
		v := &vals[i]
		if atomic.LoadUint32(&v.Live) != 0 {
			dst = append(dst, sourceOf(&v.Addr, &v.SourceValue, i))
		}
		if i%deadlineEvery == deadlineEvery-1 && !deadline.IsZero() && time.Now().After(deadline) {
			r.next, r.resume = i+1, true
			return dst, false, nil
		}
	}
	return dst, true, nil
}

// LookupSource returns the entry for addr, and false if the source is not
// tracked.
func (x *XDP) LookupSource(addr detector.Addr) (Source, bool, error) {
	var slot uint32
	if err := x.sources.Lookup(&addr, &slot); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return Source{}, false, nil
		}
		return Source{}, false, fmt.Errorf("lookup source %v: %w", addr, err)
	}
	v, err := x.slot(slot)
	if err != nil {
		return Source{}, false, fmt.Errorf("lookup source %v: %w", addr, err)
	}
	return sourceOf(&addr, &v.SourceValue, slot), true, nil
}

// DeleteSources deletes the entries for keys (idle sources) and returns how
// many it deleted; keys already gone are skipped.
func (x *XDP) DeleteSources(keys []detector.Addr) (int, error) {
	taken, err := x.TakeSources(keys, nil)
	return len(taken), err
}

// ReadStats returns the global counters summed over CPUs.
func (x *XDP) ReadStats() (Stats, error) {
	vals := make([]Stats, x.ncpu)
	if err := x.stats.Lookup(uint32(0), vals); err != nil {
		return Stats{}, fmt.Errorf("read stats: %w", err)
	}
	var s Stats
	for i := range vals {
		v := &vals[i]
		for c := range NumClasses {
			s.Packets[c] += v.Packets[c]
			s.Bytes[c] += v.Bytes[c]
			s.DroppedClassPackets[c] += v.DroppedClassPackets[c]
			s.DroppedClassBytes[c] += v.DroppedClassBytes[c]
		}
		s.DroppedPackets += v.DroppedPackets
		s.DroppedBytes += v.DroppedBytes
		s.UnparsedPackets += v.UnparsedPackets
		s.UnparsedBytes += v.UnparsedBytes
		s.SourceInsertFailures += v.SourceInsertFailures
		s.ProbationPackets += v.ProbationPackets
		s.ProbationBytes += v.ProbationBytes
		s.Admitted += v.Admitted
		s.ProbationCredited += v.ProbationCredited
		s.Trips += v.Trips
		s.TripsCapped += v.TripsCapped
	}
	return s, nil
}
