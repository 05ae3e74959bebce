package bpf

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/floodguard/floodguard/detector"
)

// The features reader: the program's cumulative feature counters
// (fg_feat_ports, fg_feat_touched, fg_feat, fg_feat_dsts; floodguard.h)
// turned into per-read counts for detector.Features. Design and costs in
// DESIGN.md, "Features".

// FeatureReader reads the features the program counts, as counts since the
// previous Read. It owns the choice of the destinations counted by address
// and takes the program's touched-block bits, so a loaded program should
// have one reader (the live source's). It is not safe for concurrent use.
type FeatureReader struct {
	x       *XDP
	sums    []PortCountValue // fg_port_sums: the CPUs' counters summed
	want    []uint64         // fg_port_want: the blocks to sum
	touched []uint64
	owners  []detector.Addr // fg_feat_dsts, written here only

	primed      bool
	prevPorts   []PortCountValue // sums over CPUs at the last read
	lastTouched [portTouchedWords]uint64
	prevLengths [NumClasses][numLenBuckets]uint64
	prevDst     [FeatureDsts]uint64
	prevOther   uint64
	vals        []FeatValue
	samples     []detector.Addr
}

// NewFeatureReader returns the reader of x's features.
func (x *XDP) NewFeatureReader() *FeatureReader {
	return &FeatureReader{
		x:         x,
		sums:      unsafe.Slice((*PortCountValue)(unsafe.Pointer(&x.sumsMem[0])), portCounters),
		want:      unsafe.Slice((*uint64)(unsafe.Pointer(&x.wantMem[0])), portTouchedWords),
		touched:   unsafe.Slice((*uint64)(unsafe.Pointer(&x.touchMem[0])), portTouchedWords),
		owners:    unsafe.Slice((*detector.Addr)(unsafe.Pointer(&x.dstsMem[0])), FeatureDsts),
		prevPorts: make([]PortCountValue, portCounters),
		vals:      make([]FeatValue, x.ncpu),
	}
}

// Read fills f with the counts since the previous Read (the first Read:
// since the program was loaded). Ports lists the (kind, port) pairs that
// carried frames, in no particular order; Dsts the counted destinations
// that received frames, busiest first, the others being in DstsOther.
// Slices in f are reused.
func (r *FeatureReader) Read(f *detector.Features) error {
	if err := r.x.feat.Lookup(uint32(0), r.vals); err != nil {
		return fmt.Errorf("read features: %w", err)
	}
	// The ports before anything is consumed: if summing them fails, the
	// next read sums every block (the touched bits are taken already).
	ports, err := r.readPorts(f.Ports[:0])
	if err != nil {
		r.primed = false
		return fmt.Errorf("read features: %w", err)
	}
	f.Ports = ports
	var (
		lengths [NumClasses][numLenBuckets]uint64
		dsts    [FeatureDsts]uint64
		other   uint64
	)
	r.samples = r.samples[:0]
	for i := range r.vals {
		v := &r.vals[i]
		for c := range v.Lengths {
			for b, n := range v.Lengths[c] {
				lengths[c][b] += n
			}
		}
		for s, n := range v.DstPackets {
			dsts[s] += n
		}
		other += v.DstsOther
		if v.DstSample != (detector.Addr{}) {
			r.samples = append(r.samples, v.DstSample)
		}
	}
	for c := range lengths {
		for b := range lengths[c] {
			f.Lengths[c][b] = lengths[c][b] - r.prevLengths[c][b]
		}
	}
	r.prevLengths = lengths

	var delta [FeatureDsts]uint64
	f.Dsts = f.Dsts[:0]
	for s := range dsts {
		delta[s] = dsts[s] - r.prevDst[s]
		if owner := r.owners[s]; delta[s] > 0 && owner != (detector.Addr{}) {
			f.Dsts = append(f.Dsts, detector.DstCount{Addr: owner, Packets: delta[s]})
		}
	}
	r.prevDst = dsts
	slices.SortFunc(f.Dsts, func(a, b detector.DstCount) int {
		if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
			return c
		}
		return slices.Compare(a.Addr[:], b.Addr[:])
	})
	f.DstsOther = other - r.prevOther
	r.prevOther = other
	r.assignDsts(&delta, f.DstsOther)

	r.primed = true
	return nil
}

// readPorts appends the port counts of the blocks touched since the
// previous read, or, the first time, of every block.
func (r *FeatureReader) readPorts(dst []detector.PortCount) ([]detector.PortCount, error) {
	some := false
	for w := range r.touched {
		// Blocks touched in this interval or the previous one: a count
		// stored just after the previous read took the bit is read
		// now (DESIGN.md).
		cur := atomic.SwapUint64(&r.touched[w], 0)
		blocks := cur | r.lastTouched[w]
		r.lastTouched[w] = cur
		if !r.primed {
			blocks = ^uint64(0)
		}
		r.want[w] = blocks
		some = some || blocks != 0
	}
	if !some {
		return dst, nil
	}
	if err := r.x.summer.sum(); err != nil {
		return dst, err
	}
	for w, blocks := range r.want {
		for blocks != 0 {
			b := bits.TrailingZeros64(blocks)
			blocks &^= 1 << b
			dst = r.readBlock(dst, (w*64+b)*64)
		}
	}
	return dst, nil
}

// readBlock appends the counts of the 64 counters from first.
func (r *FeatureReader) readBlock(dst []detector.PortCount, first int) []detector.PortCount {
	for i := first; i < first+64; i++ {
		sum := r.sums[i]
		prev := &r.prevPorts[i]
		if sum.Packets != prev.Packets {
			dst = append(dst, detector.PortCount{
				Kind:    detector.PortKind(i / numPorts),
				Port:    uint16(i % numPorts),
				Packets: sum.Packets - prev.Packets,
				Bytes:   sum.Bytes - prev.Bytes,
			})
		}
		*prev = sum
	}
	return dst
}

// dstSlots returns the two slots of fg_feat_dsts a destination may take
// (FG_DST_SLOT with FG_DST_HASH1 and FG_DST_HASH2).
func dstSlots(a detector.Addr) (int, int) {
	x := binary.LittleEndian.Uint32(a[0:]) ^ binary.LittleEndian.Uint32(a[4:]) ^
		binary.LittleEndian.Uint32(a[8:]) ^ binary.LittleEndian.Uint32(a[12:])
	return int((x * dstHash1) >> (32 - featDstBits)), int((x * dstHash2) >> (32 - featDstBits))
}

// assignDsts gives slots to the destinations the CPUs sampled among those
// without one: a free slot of the two it may take, else one whose
// destination received nothing in this read, else the less busy one if it
// received fewer frames than all the destinations without a slot together
// (the sample is likely the heaviest of those).
func (r *FeatureReader) assignDsts(delta *[FeatureDsts]uint64, other uint64) {
	for _, a := range r.samples {
		s1, s2 := dstSlots(a)
		if r.owners[s1] == a || r.owners[s2] == a {
			continue
		}
		slot := -1
		switch {
		case r.owners[s1] == (detector.Addr{}):
			slot = s1
		case r.owners[s2] == (detector.Addr{}):
			slot = s2
		case delta[s1] == 0:
			slot = s1
		case delta[s2] == 0:
			slot = s2
		default:
			slot = s1
			if delta[s2] < delta[s1] {
				slot = s2
			}
			if delta[slot] >= other {
				continue
			}
		}
		r.setOwner(slot, a)
		delta[slot] = ^uint64(0) // taken in this read
	}
}

// setOwner points slot at a. The program compares the destination as two
// 8-byte words: while they are being written it sees neither address and
// counts the frame among the others.
func (r *FeatureReader) setOwner(slot int, a detector.Addr) {
	w := (*[2]uint64)(unsafe.Pointer(&r.owners[slot]))
	atomic.StoreUint64(&w[0], binary.NativeEndian.Uint64(a[0:]))
	atomic.StoreUint64(&w[1], binary.NativeEndian.Uint64(a[8:]))
}
