package detector

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A signature rule drops (or rate-limits) the packets that match it,
// whatever their source: the floods no list of sources can name
// (reflection from thousands of reflectors, a botnet on one port). Its
// match components are those of a BGP FlowSpec rule (RFC 8955, RFC 8956 for
// IPv6), one to one, so the same rule can be announced upstream.

// Fragment is the FlowSpec fragment component.
type Fragment uint8

const (
	// FragAny matches fragments and whole packets alike.
	FragAny Fragment = iota
	// FragNone matches packets that are not fragments.
	FragNone
	// FragFirst matches first fragments (offset 0, more fragments set).
	FragFirst
	// FragLater matches non-first fragments (offset > 0).
	FragLater
)

var fragNames = [...]string{"any", "none", "first", "later"}

func (f Fragment) String() string {
	if int(f) < len(fragNames) {
		return fragNames[f]
	}
	return "invalid"
}

// Range is an inclusive range of ports or lengths; the zero Range matches
// anything.
type Range struct{ Lo, Hi uint16 }

// Any reports whether r matches anything.
func (r Range) Any() bool { return r.Lo == 0 && r.Hi == 0 }

// Contains reports whether r matches v.
func (r Range) Contains(v uint16) bool { return r.Any() || (v >= r.Lo && v <= r.Hi) }

func (r Range) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// MarshalJSON writes only the components that are set, as rules are
// written on the command line: {"proto":"udp","sport":"123",
// "dst":"198.18.0.10/32"}.
func (m Match) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	add := func(k, v string) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k) + ":" + strconv.Quote(v))
	}
	if m.Src.IsValid() {
		add("src", m.Src.String())
	}
	if m.Dst.IsValid() {
		add("dst", m.Dst.String())
	}
	if m.Proto != 0 {
		add("proto", ProtoName(m.Proto))
	}
	if !m.SrcPort.Any() {
		add("sport", m.SrcPort.String())
	}
	if !m.DstPort.Any() {
		add("dport", m.DstPort.String())
	}
	if m.TCPFlagsMask != 0 {
		add("tcp_flags", fmt.Sprintf("0x%02x/0x%02x", m.TCPFlags, m.TCPFlagsMask))
	}
	if !m.Length.Any() {
		add("len", m.Length.String())
	}
	if m.Fragment != FragAny {
		add("fragment", m.Fragment.String())
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// UnmarshalJSON reads the form MarshalJSON writes; an unknown key or a
// bad value is an error naming it.
func (m *Match) UnmarshalJSON(b []byte) error {
	var raw map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("match: %w", err)
	}
	var out Match
	for k, v := range raw {
		var err error
		switch k {
		case "src", "dst":
			var c CIDR
			if c, err = ParseCIDR(v); err == nil {
				if k == "src" {
					out.Src = c.Prefix
				} else {
					out.Dst = c.Prefix
				}
			}
		case "proto":
			out.Proto, err = ParseProto(v)
		case "sport":
			out.SrcPort, err = ParseRange(v)
		case "dport":
			out.DstPort, err = ParseRange(v)
		case "len":
			out.Length, err = ParseRange(v)
		case "tcp_flags":
			out.TCPFlags, out.TCPFlagsMask, err = ParseTCPFlags(v)
		case "fragment":
			out.Fragment, err = ParseFragment(v)
		default:
			err = fmt.Errorf("unknown component")
		}
		if err != nil {
			return fmt.Errorf("match %s: %w", k, err)
		}
	}
	*m = out
	return nil
}

// ParseTCPFlags reads "0x02/0x12" (value/mask) or "syn" (SYN set, ACK
// clear: 0x02/0x12).
func ParseTCPFlags(s string) (value, mask uint8, err error) {
	if strings.EqualFold(s, "syn") {
		return 0x02, 0x12, nil
	}
	v, mk, ok := strings.Cut(s, "/")
	a, err1 := strconv.ParseUint(v, 0, 8)
	b, err2 := strconv.ParseUint(mk, 0, 8)
	if !ok || err1 != nil || err2 != nil || b == 0 || a&^b != 0 {
		return 0, 0, fmt.Errorf("%q: want VALUE/MASK like 0x02/0x12, or syn", s)
	}
	return uint8(a), uint8(b), nil
}

// ParseFragment reads any, none, first or later.
func ParseFragment(s string) (Fragment, error) {
	for i, n := range fragNames {
		if s == n {
			return Fragment(i), nil
		}
	}
	return 0, fmt.Errorf("%q: want any, none, first or later", s)
}

// Match selects packets: every component that is set must match, and an
// unset (zero) component matches anything. Ports and TCP flags require the
// transport header, so a rule with any of them never matches a non-first
// fragment.
type Match struct {
	Src netip.Prefix
	Dst netip.Prefix
	// Proto is the IP protocol (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6; 0 any).
	Proto   uint8
	SrcPort Range
	DstPort Range
	// TCPFlags matches when flags & TCPFlagsMask == TCPFlags (mask 0: any).
	TCPFlags     uint8
	TCPFlagsMask uint8
	// Length is the IP packet's total length (IPv6: payload length plus
	// the 40-byte header), as FlowSpec counts it.
	Length   Range
	Fragment Fragment
}

// PacketMeta is what a signature rule can see of a packet: the fields both
// parsers (XDP and replay) extract.
type PacketMeta struct {
	Src, Dst Addr
	Proto    uint8
	// L4 says the transport header was read: ports (TCP, UDP) and TCP
	// flags are valid. False for non-first fragments and short headers.
	L4               bool
	SrcPort, DstPort uint16
	TCPFlags         uint8
	Length           uint16
	Fragment         Fragment // FragNone, FragFirst or FragLater
}

// needsL4 reports whether m reads the transport header.
func (m *Match) needsL4() bool {
	return !m.SrcPort.Any() || !m.DstPort.Any() || m.TCPFlagsMask != 0
}

// Matches reports whether p matches every component of m. The XDP program
// implements the same test (bpf/floodguard.c); TestXDPAndReplayAgree
// holds them together.
func (m *Match) Matches(p *PacketMeta) bool {
	if m.Proto != 0 && m.Proto != p.Proto {
		return false
	}
	if m.needsL4() {
		if !p.L4 || !m.SrcPort.Contains(p.SrcPort) || !m.DstPort.Contains(p.DstPort) ||
			p.TCPFlags&m.TCPFlagsMask != m.TCPFlags {
			return false
		}
	}
	if !m.Length.Contains(p.Length) {
		return false
	}
	if m.Fragment != FragAny && m.Fragment != p.Fragment {
		return false
	}
	if m.Src.IsValid() && !m.Src.Contains(p.Src.Netip()) {
		return false
	}
	if m.Dst.IsValid() && !m.Dst.Contains(p.Dst.Netip()) {
		return false
	}
	return true
}

var protoNames = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}

// ProtoName names an IP protocol as rules are written ("udp", or the
// number).
func ProtoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

// ParseProto reads a protocol name or number.
func ParseProto(s string) (uint8, error) {
	for n, name := range protoNames {
		if strings.EqualFold(s, name) {
			return n, nil
		}
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("protocol %q: want tcp, udp, icmp, icmpv6 or a number 1-255", s)
	}
	return uint8(v), nil
}

// ParseRange reads "123" or "400-1500".
func ParseRange(s string) (Range, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || a > b || b == 0 {
		return Range{}, fmt.Errorf("%q: want N or LO-HI with 0 <= LO <= HI <= 65535, HI > 0", s)
	}
	return Range{Lo: uint16(a), Hi: uint16(b)}, nil
}

// String writes m as rules are shown: "udp sport 123 → 198.18.0.10",
// "tcp dport 443 flags 0x02/0x12 len 40-60 from 198.18.0.0/15".
func (m *Match) String() string {
	var b strings.Builder
	add := func(s string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	if m.Proto != 0 {
		add(ProtoName(m.Proto))
	} else {
		add("ip")
	}
	if !m.SrcPort.Any() {
		add("sport " + m.SrcPort.String())
	}
	if !m.DstPort.Any() {
		add("dport " + m.DstPort.String())
	}
	if m.TCPFlagsMask != 0 {
		add(fmt.Sprintf("flags 0x%02x/0x%02x", m.TCPFlags, m.TCPFlagsMask))
	}
	if !m.Length.Any() {
		add("len " + m.Length.String())
	}
	if m.Fragment != FragAny {
		add("frag " + m.Fragment.String())
	}
	if m.Src.IsValid() {
		add("from " + m.Src.String())
	}
	if m.Dst.IsValid() {
		d := m.Dst.String()
		if m.Dst.IsSingleIP() {
			d = m.Dst.Addr().String()
		}
		add("→ " + d)
	}
	return b.String()
}

// Validate checks the components against each other.
func (m *Match) Validate() error {
	if m.needsL4() && m.Proto != 6 && m.Proto != 17 {
		return fmt.Errorf("ports and TCP flags need --proto tcp or udp")
	}
	if m.TCPFlagsMask != 0 && m.Proto != 6 {
		return fmt.Errorf("TCP flags need --proto tcp")
	}
	if m.TCPFlags&^m.TCPFlagsMask != 0 {
		return fmt.Errorf("TCP flags 0x%02x set bits outside the mask 0x%02x", m.TCPFlags, m.TCPFlagsMask)
	}
	if m.Fragment > FragLater {
		return fmt.Errorf("fragment %d: want any, none, first or later", m.Fragment)
	}
	if m.needsL4() && m.Fragment == FragLater {
		return fmt.Errorf("ports and TCP flags never match later fragments")
	}
	if m.Src.IsValid() && m.Dst.IsValid() && m.Src.Addr().Is4() != m.Dst.Addr().Is4() {
		return fmt.Errorf("source and destination prefixes of different families")
	}
	if m.Proto == 0 && !m.Src.IsValid() && !m.Dst.IsValid() && m.Length.Any() && m.Fragment == FragAny {
		return fmt.Errorf("a rule must name at least one component: it would drop everything")
	}
	return nil
}

// Family is 4 or 6 when a prefix fixes the address family, 0 otherwise.
func (m *Match) Family() int {
	for _, p := range []netip.Prefix{m.Src, m.Dst} {
		if p.IsValid() {
			if p.Addr().Is4() {
				return 4
			}
			return 6
		}
	}
	return 0
}

// Origin says who made a rule.
type Origin uint8

const (
	OriginDetector Origin = iota
	OriginOperator
)

func (o Origin) String() string {
	if o == OriginOperator {
		return "operator"
	}
	return "detector"
}

// SignatureRule is a signature rule as the detector and the data planes
// hold it.
type SignatureRule struct {
	Match Match
	// RatePPS limits matching packets to this rate; 0 drops them all.
	RatePPS uint64
	// TTL and Expires as for Rule: the data plane stops by itself.
	TTL     time.Duration
	Expires time.Time
	Origin  Origin
}

// Action names the rule's action: "drop" or "rate_limit".
func (r *SignatureRule) Action() string {
	if r.RatePPS > 0 {
		return "rate_limit"
	}
	return "drop"
}
