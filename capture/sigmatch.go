package capture

import (
	"encoding/binary"
	"math"
	"net/netip"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// sigMatch is a detector.Match compiled for the per-packet test: the
// same answer as Match.Matches (the reference; TestSigMatchAgrees holds
// them together), without converting the packet's addresses to
// netip.Addr for every rule, which took most of a rule's cost.
type sigMatch struct {
	proto        uint8
	l4           bool // ports or flags: the transport header is needed
	sport, dport detector.Range
	flags, mask  uint8
	length       detector.Range
	frag         detector.Fragment
	src, dst     prefixMatch
}

func compileMatch(m *detector.Match) sigMatch {
	return sigMatch{
		proto: m.Proto,
		l4:    !m.SrcPort.Any() || !m.DstPort.Any() || m.TCPFlagsMask != 0,
		sport: m.SrcPort, dport: m.DstPort,
		flags: m.TCPFlags, mask: m.TCPFlagsMask,
		length: m.Length, frag: m.Fragment,
		src: compilePrefix(m.Src), dst: compilePrefix(m.Dst),
	}
}

func (m *sigMatch) matches(p *detector.PacketMeta) bool {
	if m.proto != 0 && m.proto != p.Proto {
		return false
	}
	if m.l4 && (!p.L4 || !m.sport.Contains(p.SrcPort) || !m.dport.Contains(p.DstPort) || p.TCPFlags&m.mask != m.flags) {
		return false
	}
	return m.length.Contains(p.Length) &&
		(m.frag == detector.FragAny || m.frag == p.Fragment) &&
		m.src.contains(&p.Src) && m.dst.contains(&p.Dst)
}

// prefixMatch is a netip.Prefix over detector.Addr's 16-byte form, in
// which an IPv4 prefix /n is the IPv4-mapped prefix /96+n. As in
// netip.Prefix.Contains of the unmapped address, an IPv6 prefix never
// contains an IPv4(-mapped) address.
type prefixMatch struct {
	hi, lo   uint64 // the prefix, masked: the address's big-endian halves
	mhi, mlo uint64 // the mask
	set      bool   // false: matches anything
	v6       bool
}

func compilePrefix(p netip.Prefix) prefixMatch {
	if !p.IsValid() {
		return prefixMatch{}
	}
	bits, v6 := p.Bits(), !p.Addr().Is4()
	if !v6 {
		bits += 96
	}
	a := p.Addr().As16()
	var pm prefixMatch
	pm.set, pm.v6 = true, v6
	pm.mhi, pm.mlo = math.MaxUint64, math.MaxUint64
	if bits < 64 {
		pm.mhi = ^(math.MaxUint64 >> bits) // bits 0: no bit set
		pm.mlo = 0
	} else {
		pm.mlo = ^(math.MaxUint64 >> (bits - 64))
	}
	pm.hi = binary.BigEndian.Uint64(a[:8]) & pm.mhi
	pm.lo = binary.BigEndian.Uint64(a[8:]) & pm.mlo
	return pm
}

func (pm *prefixMatch) contains(a *detector.Addr) bool {
	if !pm.set {
		return true
	}
	if binary.BigEndian.Uint64(a[:8])&pm.mhi != pm.hi || binary.BigEndian.Uint64(a[8:])&pm.mlo != pm.lo {
		return false
	}
	return !pm.v6 || !a.Is4()
}

// The packet clock in nanoseconds since the Unix epoch, as rate windows
// and compiled expiries count it.
var (
	minUnixNano = time.Unix(0, math.MinInt64)
	maxUnixNano = time.Unix(0, math.MaxInt64)
)

// unixNano returns t.UnixNano() saturated to the int64 range: exact when
// it is strictly inside (t.UnixNano() is not defined outside).
func unixNano(t time.Time) int64 {
	switch {
	case !t.After(minUnixNano):
		return math.MinInt64
	case !t.Before(maxUnixNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}
