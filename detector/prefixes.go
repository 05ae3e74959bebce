package detector

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// maskAddr keeps the first bits of a within its family.
func maskAddr(a Addr, v4 bool, bits uint8) Addr {
	start := 0
	if v4 {
		start = 12
	}
	n := int(bits)
	for i := start; i < 16; i++ {
		switch {
		case n >= 8:
			n -= 8
		case n > 0:
			a[i] &= byte(0xff << (8 - n))
			n = 0
		default:
			a[i] = 0
		}
	}
	return a
}

func (e *Engine) prefixKeyOf(p netip.Prefix) prefixKey {
	return prefixKey{addr: AddrFrom(p.Addr()), bits: uint8(p.Bits())}
}

// tickPrefixes gathers one tracked prefix length's prefixes over a tick:
// their accumulators in order of first appearance, and an index from masked
// address to accumulator. It is looked up for every source, so the index is
// open-addressed with the key in the entry, and it is emptied in O(1) each
// tick: an entry stamped with an older tick counts as empty.
type tickPrefixes struct {
	slot  uint8
	bits  uint8
	mask  [2]uint64 // maskAddr as an AND mask, little-endian words
	accs  []prefixAcc
	index []prefixEnt // length a power of two
	shift uint        // 64 - log2(len(index))
	gen   uint32      // this tick's stamp
	key   AddrHash
}

type prefixEnt struct {
	addr Addr
	acc  uint32 // index in accs
	gen  uint32
}

func newTickPrefixes(slot int, sl prefixSlot) tickPrefixes {
	var ones Addr
	for i := range ones {
		ones[i] = 0xff
	}
	m := maskAddr(ones, sl.v4, sl.bits)
	t := tickPrefixes{
		slot: uint8(slot), bits: sl.bits,
		mask: [2]uint64{binary.LittleEndian.Uint64(m[:8]), binary.LittleEndian.Uint64(m[8:])},
		key:  NewAddrHash(),
	}
	t.grow(64)
	return t
}

// reset empties the set for a new tick.
func (t *tickPrefixes) reset() {
	t.accs = t.accs[:0]
	t.gen++
	if t.gen == 0 {
		// The stamp wrapped: entries of 2³² ticks ago would look current.
		clear(t.index)
		t.gen = 1
	}
}

func (t *tickPrefixes) hash(lo, hi uint64) uint64 { return t.key.Words(lo, hi) }

// find returns the accumulator of the prefix holding the address with
// little-endian words lo and hi, or nil if it has none this tick.
func (t *tickPrefixes) find(lo, hi uint64) *prefixAcc {
	lo, hi = lo&t.mask[0], hi&t.mask[1]
	idx := t.index
	mask := len(idx) - 1
	for i := int(t.hash(lo, hi)>>t.shift) & mask; ; i = (i + 1) & mask {
		e := &idx[i]
		if e.gen != t.gen {
			return nil
		}
		if binary.LittleEndian.Uint64(e.addr[:8]) == lo && binary.LittleEndian.Uint64(e.addr[8:]) == hi {
			return &t.accs[e.acc]
		}
	}
}

// get is find, adding the prefix if it has no accumulator yet.
func (t *tickPrefixes) get(lo, hi uint64) *prefixAcc {
	lo, hi = lo&t.mask[0], hi&t.mask[1]
	idx := t.index
	mask := len(idx) - 1
	i := int(t.hash(lo, hi)>>t.shift) & mask
	for ; idx[i].gen == t.gen; i = (i + 1) & mask {
		e := &idx[i]
		if binary.LittleEndian.Uint64(e.addr[:8]) == lo && binary.LittleEndian.Uint64(e.addr[8:]) == hi {
			return &t.accs[e.acc]
		}
	}
	k := prefixKey{bits: t.bits}
	binary.LittleEndian.PutUint64(k.addr[:8], lo)
	binary.LittleEndian.PutUint64(k.addr[8:], hi)
	t.accs = append(t.accs, prefixAcc{key: k, slot: t.slot})
	idx[i] = prefixEnt{addr: k.addr, acc: uint32(len(t.accs) - 1), gen: t.gen}
	// Keep the index at most half full; growing moves the entries, not
	// the accumulators.
	if 2*len(t.accs) > len(idx) {
		t.grow(2 * len(idx))
	}
	return &t.accs[len(t.accs)-1]
}

func (t *tickPrefixes) grow(n int) {
	t.index = make([]prefixEnt, n)
	t.shift = uint(64 - bits.TrailingZeros(uint(n)))
	if t.gen == 0 {
		t.gen = 1
	}
	mask := n - 1
	for j := range t.accs {
		a := t.accs[j].key.addr
		lo, hi := binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:])
		i := int(t.hash(lo, hi)>>t.shift) & mask
		for t.index[i].gen == t.gen {
			i = (i + 1) & mask
		}
		t.index[i] = prefixEnt{addr: a, acc: uint32(j), gen: t.gen}
	}
}

// accumulatePrefixes adds a source's tick (pkts and bytes are its totals)
// to each tracked prefix holding it. flagged says the source's passed
// traffic is already attack traffic (so it does not count again towards
// its prefixes' own judgement).
func (e *Engine) accumulatePrefixes(src *Source, pkts, bytes uint64, flagged, legit bool) {
	lo, hi, slots := e.prefixSlotsOf(&src.Addr)
	for _, sl := range slots {
		a := e.scratch.tickPfx[sl].get(lo, hi)
		a.total.Add(&src.Counters)
		a.sources++
		if legit {
			a.legit += pkts
		}
		if flagged {
			for c := range NumClasses {
				p, b := src.Packets[c], src.Bytes[c]
				if src.DroppedPackets > 0 {
					p = scaleDown(p, pkts-min(src.DroppedPackets, pkts), pkts)
					b = scaleDown(b, bytes-min(src.DroppedBytes, bytes), bytes)
				}
				a.flagged[c] += p
				a.flagB[c] += b
			}
		}
	}
}

// prefixSlotsOf returns a's words, as the prefix index hashes them, and
// the tracked prefix lengths of its family.
func (e *Engine) prefixSlotsOf(a *Addr) (lo, hi uint64, slots []uint8) {
	lo = binary.LittleEndian.Uint64(a[:8])
	hi = binary.LittleEndian.Uint64(a[8:])
	if lo == 0 && uint32(hi) == 0xffff_0000 { // a.Is4()
		return lo, hi, e.slots4
	}
	return lo, hi, e.slots6
}

// accumulateProbation adds a probation record (Tick.Probation: frames of a
// source without an entry) to each tracked prefix holding its address.
func (e *Engine) accumulateProbation(rec *Source) {
	lo, hi, slots := e.prefixSlotsOf(&rec.Addr)
	for _, sl := range slots {
		a := e.scratch.tickPfx[sl].get(lo, hi)
		a.total.Add(&rec.Counters)
		a.sources++
		a.probation++
	}
}

// scaleDown returns v·num/den without overflow for counter-sized values.
func scaleDown(v, num, den uint64) uint64 {
	if den == 0 {
		return 0
	}
	return uint64(float64(v) * float64(num) / float64(den))
}

// judgePrefixes judges every prefix seen this tick, longest first within a
// family, on the traffic its flagged sources and sub-prefixes do not already
// explain.
func (e *Engine) judgePrefixes() {
	thr := &e.cfg.Prefix
	for sl := range e.scratch.tickPfx {
		for i := range e.scratch.tickPfx[sl].accs {
			e.judgePrefix(thr, &e.scratch.tickPfx[sl].accs[i])
		}
	}
}

// judgePrefix judges one prefix's tick.
func (e *Engine) judgePrefix(thr *Thresholds, a *prefixAcc) {
	pkts, bytes := a.total.TotalPackets(), a.total.TotalBytes()
	if a.probation == a.sources && a.total.DroppedPackets == 0 &&
		e.perSec(float64(pkts)) < thr.FloorPPS*thr.ExitFraction && e.perSec(float64(bytes)*8) < thr.FloorBPS*thr.ExitFraction {
		// Nothing but sources on probation, under half the floor: no
		// threshold is this low, so it is not over, and an attack on it
		// would count the tick calm; judged as a tick without traffic
		// (absentPrefixes), without looking its key up. Under a spoofed
		// flood that is nearly every prefix of the tick.
		return
	}
	pr := &e.pfxPrior[a.slot]
	s := e.prefixes.get(a.key)
	if s != nil {
		e.catchUp(s)
	}
	if s != nil && s.flags&flagBanned != 0 {
		p := a.key.prefix()
		totP, totB := float64(pkts)/e.scratch.secs, float64(bytes)*8/e.scratch.secs
		e.bans.observe(p, totP, e.tick)
		e.followAttack(s, ScopePrefix, p.String(), thr, pr, totP, totB)
		e.flagPrefix(a)
		return
	}
	var flagP, flagB uint64
	for c := range NumClasses {
		flagP += a.flagged[c]
		flagB += a.flagB[c]
	}
	passP := pkts - min(a.total.DroppedPackets, pkts)
	passB := bytes - min(a.total.DroppedBytes, bytes)
	pps := float64(passP-min(flagP, passP)) / e.scratch.secs
	bps := float64(passB-min(flagB, passB)) * 8 / e.scratch.secs
	pb, bb := baselines(s, pr)
	over := e.overThreshold(thr, &pb, &bb, pps, bps)
	if s == nil && over {
		s = e.prefixes.add(a.key, e.tick)
	}
	flagged := false
	if s != nil && (over || s.flags&flagAnomalous != 0) {
		if e.scratch.legitPPS > 0 {
			e.scratch.banLegitShare = float64(a.legit) / e.scratch.secs / e.scratch.legitPPS
		}
		flagged = e.stepAttack(s, ScopePrefix, a.key.prefix(), thr, &pb, &bb, pps, bps, over)
		e.scratch.banLegitShare = 0
	}
	if flagged {
		e.flagPrefix(a)
		return
	}
	if over || a.total.DroppedPackets > 0 {
		return // partly under a broader rule: nothing clean to learn
	}
	if s == nil {
		// A prefix holding only sources on probation (a spoofed flood
		// spread thin: every forged /64 its own) gets no key, so that
		// forged addresses cost no baselines; it is judged as a new
		// prefix again if it comes back.
		if a.probation == a.sources || e.sources.len()+e.prefixes.len() >= e.cfg.Tracking.MaxKeys {
			return
		}
		s = e.prefixes.add(a.key, e.tick)
	}
	e.learn(s, pps, bps)
	pr.add(pps)
}

// flagPrefix counts a flagged prefix's remaining passed traffic as attack
// traffic: in the aggregate, and in every shorter tracked prefix of its
// family holding it.
func (e *Engine) flagPrefix(a *prefixAcc) {
	pkts, bytes := a.total.TotalPackets(), a.total.TotalBytes()
	var rest [NumClasses]uint64
	var restB [NumClasses]uint64
	for c := range NumClasses {
		p, b := a.total.Packets[c], a.total.Bytes[c]
		if a.total.DroppedPackets > 0 {
			p = scaleDown(p, pkts-min(a.total.DroppedPackets, pkts), pkts)
			b = scaleDown(b, bytes-min(a.total.DroppedBytes, bytes), bytes)
		}
		rest[c] = p - min(a.flagged[c], p)
		restB[c] = b - min(a.flagB[c], b)
		e.scratch.flagged[c] += float64(rest[c]) / e.scratch.secs
		e.scratch.flagBPS[c] += float64(restB[c]) * 8 / e.scratch.secs
	}
	sl := e.slots[a.slot]
	lo := binary.LittleEndian.Uint64(a.key.addr[:8])
	hi := binary.LittleEndian.Uint64(a.key.addr[8:])
	for j := int(a.slot) + 1; j < len(e.slots); j++ {
		if e.slots[j].v4 != sl.v4 {
			continue
		}
		if pa := e.scratch.tickPfx[j].find(lo, hi); pa != nil {
			for c := range NumClasses {
				pa.flagged[c] += rest[c]
				pa.flagB[c] += restB[c]
			}
		}
	}
}

// absentPrefixes is absentSources for prefixes.
func (e *Engine) absentPrefixes() {
	keep := e.anomPfx[:0]
	for _, k := range e.anomPfx {
		s := e.prefixes.get(k)
		if s == nil {
			continue
		}
		if s.flags&(flagAnomalous|flagBanned) == 0 {
			s.flags &^= flagListed
			continue
		}
		keep = append(keep, k)
		if s.lastTick == e.tick {
			continue
		}
		s.lastTick = e.tick
		if s.flags&flagAnomalous != 0 {
			slot := 0
			for i, sl := range e.slots {
				if sl.bits == k.bits && sl.v4 == k.addr.Is4() {
					slot = i
				}
			}
			pb, _ := baselines(s, &e.pfxPrior[slot])
			e.countCalm(s, ScopePrefix, k.prefix().String(), 0, 0, pb.mean, &e.cfg.Prefix)
		}
	}
	e.anomPfx = keep
}
