package bpf

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
)

// Signature rules from user space: the writer side of fg_sig_rules,
// fg_sig_index, fg_sig_stats and fg_exempt (layouts in floodguard.h, design
// in DESIGN.md, "Signature rules").
//
// Write protocol. fg_sig_rules and fg_sig_index are memory-mapped. A rule
// is written into a free slot (expires_ns 0, which the program skips) field
// by field, its counters zeroed, then expires_ns is stored with one atomic
// 8-byte store; only then is it published: its slot is added to the
// fg_sig_index entries of its port range (each entry rewritten with one
// atomic store), or, for a portless rule, the portless bound in fg_control
// is raised. Removal stores expires_ns 0 first, then unpublishes. Renewal
// rewrites the rate and the expiry in place, keeping the counters. Rule
// changes do not bump the rules generation (the per-source caches hold
// source rules only): the flags half of fg_control is republished with the
// same generation. The XDP handle serializes its writers; two processes
// writing signature rules at once are not supported (the daemon is the
// writer).

var (
	// ErrSignaturesFull is returned when a signature rule cannot be
	// installed: every slot of its kind is taken (SigPortlessSlots rules
	// without ports, SigSlots-SigPortlessSlots with), or its ports are
	// each shared by too many rules and the portless slots are taken too.
	ErrSignaturesFull = errors.New("signature rule table full")
	// ErrTooManyExempt is returned by SetExempt for more than MaxExempt
	// addresses.
	ErrTooManyExempt = errors.New("too many exempt sources")
)

var sigRuleSize = int(unsafe.Sizeof(SigRuleValue{}))

// SignatureStatus is a signature rule as installed in the kernel.
type SignatureStatus struct {
	// Slot is the rule's slot in fg_sig_rules.
	Slot int
	// Match is the rule's match, normalized: prefixes masked, a range
	// covering every value as the zero (any) Range.
	Match detector.Match
	// RatePPS is the rate limit; 0 means the rule drops.
	RatePPS uint64
	// ExpiresNs is the expiry on CLOCK_MONOTONIC (MonotonicNow); TimeLeft
	// the time until it when listed (zero or negative: expired, no longer
	// applied, still installed until removed).
	ExpiresNs uint64
	TimeLeft  time.Duration
	// HitPackets and HitBytes count the frames the rule matched while in
	// force (not from exempt sources, not dropped by a source rule first);
	// DroppedPackets and DroppedBytes the part of them it dropped.
	HitPackets, HitBytes         uint64
	DroppedPackets, DroppedBytes uint64
}

// Action is "drop" or "rate_limit", as detector.SignatureRule.Action.
func (s SignatureStatus) Action() string {
	if s.RatePPS > 0 {
		return "rate_limit"
	}
	return "drop"
}

func (x *XDP) sigSlot(i int) *SigRuleValue {
	return (*SigRuleValue)(unsafe.Pointer(&x.sigMem[i*sigRuleSize]))
}

func (x *XDP) indexEntry(kind detector.PortKind, port uint16) *uint64 {
	return (*uint64)(unsafe.Pointer(&x.indexMem[8*(int(kind)*numPorts+int(port))]))
}

// normalizeMatch returns m with masked prefixes and full ranges as any: the
// form a rule is stored, listed and named in.
func normalizeMatch(m detector.Match) detector.Match {
	m.Src, m.Dst = m.Src.Masked(), m.Dst.Masked()
	full := detector.Range{Lo: 0, Hi: math.MaxUint16}
	for _, r := range []*detector.Range{&m.SrcPort, &m.DstPort, &m.Length} {
		if *r == full {
			*r = detector.Range{}
		}
	}
	return m
}

// encodePrefix returns the 16-byte prefix and mask of p (zero: any) and
// whether it is an IPv6 prefix.
func encodePrefix(p netip.Prefix) (addr, mask detector.Addr, v6 bool) {
	if !p.IsValid() {
		return addr, mask, false
	}
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	} else {
		v6 = true
	}
	addr = detector.AddrFrom(p.Addr())
	for i := range bits {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return addr, mask, v6
}

func decodePrefix(addr, mask detector.Addr, v6 bool) netip.Prefix {
	bits := 0
	for _, b := range mask {
		for ; b&0x80 != 0; b <<= 1 {
			bits++
		}
	}
	if !v6 {
		if bits == 0 {
			return netip.Prefix{}
		}
		return netip.PrefixFrom(addr.Netip(), bits-96)
	}
	return netip.PrefixFrom(netip.AddrFrom16(addr), bits)
}

func encodeRange(r detector.Range) (lo, hi uint16) {
	if r.Any() {
		return 0, math.MaxUint16
	}
	return r.Lo, r.Hi
}

func decodeRange(lo, hi uint16) detector.Range {
	if lo == 0 && hi == math.MaxUint16 {
		return detector.Range{}
	}
	return detector.Range{Lo: lo, Hi: hi}
}

// encodeMatch fills the match fields of v from a normalized m.
func encodeMatch(v *SigRuleValue, m *detector.Match) {
	var v6 bool
	v.Flags = 0
	v.Src, v.SrcMask, v6 = encodePrefix(m.Src)
	if v6 {
		v.Flags |= sigSrcV6
	}
	v.Dst, v.DstMask, v6 = encodePrefix(m.Dst)
	if v6 {
		v.Flags |= sigDstV6
	}
	if !m.SrcPort.Any() || !m.DstPort.Any() || m.TCPFlagsMask != 0 {
		v.Flags |= sigL4
	}
	v.SportLo, v.SportHi = encodeRange(m.SrcPort)
	v.DportLo, v.DportHi = encodeRange(m.DstPort)
	v.LenLo, v.LenHi = encodeRange(m.Length)
	v.Proto, v.TCPFlags, v.TCPMask, v.Frag = m.Proto, m.TCPFlags, m.TCPFlagsMask, uint8(m.Fragment)
}

// decodeMatch is the inverse of encodeMatch.
func decodeMatch(v *SigRuleValue) detector.Match {
	return detector.Match{
		Src:          decodePrefix(v.Src, v.SrcMask, v.Flags&sigSrcV6 != 0),
		Dst:          decodePrefix(v.Dst, v.DstMask, v.Flags&sigDstV6 != 0),
		Proto:        v.Proto,
		SrcPort:      decodeRange(v.SportLo, v.SportHi),
		DstPort:      decodeRange(v.DportLo, v.DportHi),
		TCPFlags:     v.TCPFlags,
		TCPFlagsMask: v.TCPMask,
		Length:       decodeRange(v.LenLo, v.LenHi),
		Fragment:     detector.Fragment(v.Frag),
	}
}

// allowance is max(1, ceil(rate/10)): packets per 100 ms window.
func allowance(rate uint64) uint64 {
	a := rate / 10
	if rate%10 != 0 {
		a++
	}
	return max(a, 1)
}

// findSignature returns the slot holding a rule for the normalized m, or
// -1.
func (x *XDP) findSignature(m *detector.Match) int {
	for i := range SigSlots {
		v := x.sigSlot(i)
		if atomic.LoadUint64(&v.ExpiresNs) != 0 && decodeMatch(v) == *m {
			return i
		}
	}
	return -1
}

// freeSlot returns the lowest free slot in [lo, hi), or -1.
func (x *XDP) freeSlot(lo, hi int) int {
	for i := lo; i < hi; i++ {
		if atomic.LoadUint64(&x.sigSlot(i).ExpiresNs) == 0 {
			return i
		}
	}
	return -1
}

// portIndex is where a rule with ports can be indexed: one port kind and
// the range of that port.
type portIndex struct {
	kind detector.PortKind
	r    detector.Range
}

// indexChoices returns the ways m (with ports) can be indexed, the
// narrower range first.
func indexChoices(m *detector.Match) []portIndex {
	src, dst := detector.UDPSrcPort, detector.UDPDstPort
	if m.Proto == 6 {
		src, dst = detector.TCPSrcPort, detector.TCPDstPort
	}
	var c []portIndex
	if !m.SrcPort.Any() {
		c = append(c, portIndex{src, m.SrcPort})
	}
	if !m.DstPort.Any() {
		c = append(c, portIndex{dst, m.DstPort})
	}
	if len(c) == 2 && int(c[1].r.Hi)-int(c[1].r.Lo) < int(c[0].r.Hi)-int(c[0].r.Lo) {
		c[0], c[1] = c[1], c[0]
	}
	return c
}

// indexRoom reports whether every entry of the range has room for one more
// slot.
func (x *XDP) indexRoom(p portIndex) bool {
	for port := int(p.r.Lo); port <= int(p.r.Hi); port++ {
		if atomic.LoadUint64(x.indexEntry(p.kind, uint16(port)))&0xff >= sigIndexSlots {
			return false
		}
	}
	return true
}

// indexUpdate adds slot to (add) or removes it from every entry of the
// range, one atomic store per entry.
func (x *XDP) indexUpdate(p portIndex, slot int, add bool) {
	for port := int(p.r.Lo); port <= int(p.r.Hi); port++ {
		e := x.indexEntry(p.kind, uint16(port))
		old := atomic.LoadUint64(e)
		n := int(old & 0xff)
		var slots []uint8
		for j := range n {
			if s := uint8(old >> (8 * (j + 1))); add || int(s) != slot {
				slots = append(slots, s)
			}
		}
		if add {
			slots = append(slots, uint8(slot))
		}
		v := uint64(len(slots))
		for j, s := range slots {
			v |= uint64(s) << (8 * (j + 1))
		}
		atomic.StoreUint64(e, v)
	}
}

// InstallSignature installs r, or renews it in place if a rule with the
// same (normalized) match is installed: its rate and expiry are set to r's
// (expiry now+TTL, shortening it if need be) and its counters are kept. A
// new rule takes the lowest free slot of its kind. Errors wrap
// ErrInvalidRule (a match that fails detector.Match.Validate, a
// non-positive TTL) or ErrSignaturesFull.
func (x *XDP) InstallSignature(r detector.SignatureRule) error {
	m := normalizeMatch(r.Match)
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: signature %s: %w", ErrInvalidRule, &m, err)
	}
	exp, err := expiryFromNow(r.TTL)
	if err != nil {
		return fmt.Errorf("signature %s: %w", &m, err)
	}
	x.sigMu.Lock()
	defer x.sigMu.Unlock()

	if slot := x.findSignature(&m); slot >= 0 {
		v := x.sigSlot(slot)
		atomic.StoreUint64(&v.Allowance, allowance(r.RatePPS))
		atomic.StoreUint64(&v.RatePPS, r.RatePPS)
		atomic.StoreUint64(&v.ExpiresNs, exp)
		return nil
	}

	slot, indexed := -1, false
	var choice portIndex
	if !m.SrcPort.Any() || !m.DstPort.Any() {
		if free := x.freeSlot(SigPortlessSlots, SigSlots); free >= 0 {
			for _, c := range indexChoices(&m) {
				if x.indexRoom(c) {
					slot, choice, indexed = free, c, true
					break
				}
			}
		}
	}
	if slot < 0 {
		// No ports, or every port it could be indexed by is crowded (or
		// the indexed slots are taken): a portless slot, checked on
		// every packet.
		slot = x.freeSlot(0, SigPortlessSlots)
	}
	if slot < 0 {
		return fmt.Errorf("install signature %s: %w", &m, ErrSignaturesFull)
	}
	var where uint8
	if indexed {
		where = 1 + uint8(choice.kind)
	}
	if err := x.writeSignature(slot, &m, r.RatePPS, exp, where); err != nil {
		return fmt.Errorf("install signature %s: %w", &m, err)
	}
	if indexed {
		x.indexUpdate(choice, slot, true)
	}
	return x.publishFlags(false)
}

// writeSignature writes a rule into a free slot, which nothing references
// yet; expires_ns last.
func (x *XDP) writeSignature(slot int, m *detector.Match, rate, exp uint64, indexed uint8) error {
	if err := x.sigStats.Put(uint32(slot), make([]SigStatsValue, x.ncpu)); err != nil {
		return fmt.Errorf("reset counters of slot %d: %w", slot, err)
	}
	v := x.sigSlot(slot)
	encodeMatch(v, m)
	v.Indexed = indexed
	atomic.StoreUint64(&v.Window, 0)
	atomic.StoreUint64(&v.Count, 0)
	atomic.StoreUint64(&v.Allowance, allowance(rate))
	atomic.StoreUint64(&v.RatePPS, rate)
	atomic.StoreUint64(&v.ExpiresNs, exp)
	return nil
}

// RemoveSignature removes the rule with match m (normalized as
// InstallSignature does), or returns ErrRuleNotFound.
func (x *XDP) RemoveSignature(m detector.Match) error {
	m = normalizeMatch(m)
	x.sigMu.Lock()
	defer x.sigMu.Unlock()
	slot := x.findSignature(&m)
	if slot < 0 {
		return fmt.Errorf("remove signature %s: %w", &m, ErrRuleNotFound)
	}
	x.removeSlot(slot)
	return x.publishFlags(false)
}

func (x *XDP) removeSlot(slot int) {
	v := x.sigSlot(slot)
	atomic.StoreUint64(&v.ExpiresNs, 0)
	if v.Indexed != 0 {
		m := decodeMatch(v)
		kind := detector.PortKind(v.Indexed - 1)
		r := m.SrcPort
		if !kind.IsSrc() {
			r = m.DstPort
		}
		x.indexUpdate(portIndex{kind, r}, slot, false)
	}
}

// Signatures lists the installed signature rules, expired or not, by slot.
func (x *XDP) Signatures() ([]SignatureStatus, error) {
	now, err := MonotonicNow()
	if err != nil {
		return nil, err
	}
	x.sigMu.Lock()
	defer x.sigMu.Unlock()
	var out []SignatureStatus
	vals := make([]SigStatsValue, x.ncpu)
	for i := range SigSlots {
		v := x.sigSlot(i)
		exp := atomic.LoadUint64(&v.ExpiresNs)
		if exp == 0 {
			continue
		}
		s := SignatureStatus{Slot: i, Match: decodeMatch(v), RatePPS: atomic.LoadUint64(&v.RatePPS), ExpiresNs: exp, TimeLeft: timeLeft(exp, now)}
		if err := x.sigStats.Lookup(uint32(i), vals); err != nil {
			return nil, fmt.Errorf("signature %d counters: %w", i, err)
		}
		for _, c := range vals {
			s.HitPackets += c.HitPackets
			s.HitBytes += c.HitBytes
			s.DroppedPackets += c.DroppedPackets
			s.DroppedBytes += c.DroppedBytes
		}
		out = append(out, s)
	}
	return out, nil
}

// PruneExpiredSignatures removes every expired signature rule and returns
// how many it removed.
func (x *XDP) PruneExpiredSignatures() (int, error) {
	now, err := MonotonicNow()
	if err != nil {
		return 0, err
	}
	x.sigMu.Lock()
	defer x.sigMu.Unlock()
	n := 0
	for i := range SigSlots {
		if exp := atomic.LoadUint64(&x.sigSlot(i).ExpiresNs); exp != 0 && exp <= now {
			x.removeSlot(i)
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	return n, x.publishFlags(false)
}

// timeLeft is exp-now as a duration, negative once expired.
func timeLeft(exp, now uint64) time.Duration {
	if exp >= now {
		return time.Duration(min(exp-now, math.MaxInt64))
	}
	return -time.Duration(min(now-exp, math.MaxInt64))
}

// SetExempt replaces the set of sources no signature rule drops (rules still
// count nothing for them). Source rules still apply to them.
func (x *XDP) SetExempt(addrs []detector.Addr) error {
	want := make(map[detector.Addr]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	if len(want) > MaxExempt {
		return fmt.Errorf("%w: %d, at most %d", ErrTooManyExempt, len(want), MaxExempt)
	}
	x.sigMu.Lock()
	defer x.sigMu.Unlock()
	var (
		key   detector.Addr
		val   uint8
		stale []detector.Addr
	)
	it := x.exempt.Iterate()
	for it.Next(&key, &val) {
		if want[key] {
			delete(want, key)
		} else {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list exempt sources: %w", err)
	}
	// Delete first, so that the map never needs room for both sets.
	for _, a := range stale {
		if err := x.exempt.Delete(&a); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("remove exempt source %v: %w", a, err)
		}
	}
	add := make([]detector.Addr, 0, len(want))
	for a := range want {
		add = append(add, a)
	}
	slices.SortFunc(add, func(a, b detector.Addr) int { return slices.Compare(a[:], b[:]) })
	for _, a := range add {
		if err := x.exempt.Put(&a, uint8(1)); err != nil {
			return fmt.Errorf("add exempt source %v: %w", a, err)
		}
	}
	return x.publishFlags(false)
}

// Exempt returns the exempt sources.
func (x *XDP) Exempt() ([]detector.Addr, error) {
	var (
		key detector.Addr
		val uint8
		out []detector.Addr
	)
	it := x.exempt.Iterate()
	for it.Next(&key, &val) {
		out = append(out, key)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list exempt sources: %w", err)
	}
	slices.SortFunc(out, func(a, b detector.Addr) int { return slices.Compare(a[:], b[:]) })
	return out, nil
}

// sigFlags returns the FG_HAVE_SIGS flag and the portless bound for the
// rules in fg_sig_rules.
func (x *XDP) sigFlags() uint32 {
	var flags uint32
	bound := 0
	for i := range SigSlots {
		v := x.sigSlot(i)
		if atomic.LoadUint64(&v.ExpiresNs) == 0 {
			continue
		}
		if v.Indexed != 0 {
			flags |= haveSigs
		} else if i < SigPortlessSlots {
			bound = i + 1
		}
	}
	return flags | uint32(bound)<<portlessShift
}
