package capture

import (
	"fmt"
	"math"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// Signature rules in the simulated data plane. The semantics are the
// kernel's (bpf/floodguard.c implements the same), and do not depend on
// the order the rules were installed in:
//
//   - only unexpired rules count: a rule drops while the packet's time is
//     before its Expires;
//   - of those, the ones whose Match matches the packet: if there is none
//     the packet passes;
//   - if its source is exempt (SetExempt) it passes, and no rule counts a
//     hit;
//   - otherwise every matching rule counts a hit; if any is a drop rule
//     (RatePPS 0) the packet is dropped; else every matching rate-limit
//     rule is charged, and the packet is dropped if any of them is over
//     its allowance.
//
// A rate limit counts packets over fixed windows of 100 ms of packet time
// (window = UnixNano / 100,000,000): a packet in a window other than the
// one stored stores it and resets the count to 0; then the count goes up
// by one, and the packet is within the limit while the count is at most
// the allowance, max(1, ceil(RatePPS / 10)).

// RateWindow is the window of a signature rule's rate limit.
const RateWindow = 100 * time.Millisecond

// sigRule is one signature rule and its state.
type sigRule struct {
	rule      detector.SignatureRule
	m         sigMatch // rule.Match compiled
	exp       int64    // unixNano(rule.Expires)
	allowance uint64   // packets per window; 0 for a drop rule
	hits      uint64
	window    int64  // the rate limit's current window
	count     uint64 // packets charged in it
}

// set takes r's parameters (its Match is the rule's already).
func (s *sigRule) set(r *detector.SignatureRule) {
	s.rule, s.exp, s.allowance = *r, unixNano(r.Expires), 0
	if r.RatePPS > 0 {
		s.allowance = allowance(r.RatePPS)
	}
}

// allowance returns the packets per RateWindow a rate of pps allows.
func allowance(pps uint64) uint64 {
	a := pps / 10
	if pps%10 != 0 {
		a++
	}
	return max(a, 1)
}

// sigTable holds the signature rules, indexed as the kernel indexes them:
// a rule naming one TCP or UDP destination port (else one source port)
// is found by that port; other rules by protocol, or, with none, among
// the rules for any protocol. A packet is checked against the rules of its
// protocol, of its two ports (when its transport header was read) and of
// any protocol, not against every rule.
type sigTable struct {
	rules  map[detector.Match]*sigRule
	exempt map[detector.Addr]struct{}

	// The index, rebuilt when a rule comes or goes (a renewal changes
	// nothing in it).
	anyProto []*sigRule
	byProto  [256][]*sigRule
	// byPort[kind][port] is 1 + the index in portLists of the rules for
	// that port, or 0; allocated with the first such rule. portKeys
	// lists the entries set, to clear them at the next rebuild.
	byPort    *[detector.NumPortKinds][1 << 16]uint32
	portLists [][]*sigRule
	portKeys  []portKey

	matched []*sigRule // scratch for Dropped
}

type portKey struct {
	kind detector.PortKind
	port uint16
}

func newSigTable() sigTable {
	return sigTable{rules: make(map[detector.Match]*sigRule), exempt: make(map[detector.Addr]struct{})}
}

// canonical returns m with its prefixes masked: the rule's name.
func canonical(m detector.Match) detector.Match {
	if m.Src.IsValid() {
		m.Src = m.Src.Masked()
	}
	if m.Dst.IsValid() {
		m.Dst = m.Dst.Masked()
	}
	return m
}

// InstallSignature adds a signature rule, or renews the one with the same
// Match: its action, rate, TTL, expiry and origin are replaced, its hit
// count and its rate limit's current window are kept (a renewal does not
// grant a fresh allowance within a window).
func (p *SimulatedPlane) InstallSignature(r detector.SignatureRule) error {
	if err := r.Match.Validate(); err != nil {
		return fmt.Errorf("install signature rule %s: %w", &r.Match, err)
	}
	t := &p.sig
	r.Match = canonical(r.Match)
	if old, ok := t.rules[r.Match]; ok {
		old.set(&r)
		return nil
	}
	s := &sigRule{m: compileMatch(&r.Match)}
	s.set(&r)
	t.rules[r.Match] = s
	t.reindex()
	return nil
}

// RemoveSignature removes the signature rule with Match m, if there is one.
func (p *SimulatedPlane) RemoveSignature(m detector.Match) error {
	t := &p.sig
	m = canonical(m)
	if _, ok := t.rules[m]; ok {
		delete(t.rules, m)
		t.reindex()
	}
	return nil
}

// SetExempt replaces the sources no signature rule drops.
func (p *SimulatedPlane) SetExempt(addrs []detector.Addr) error {
	clear(p.sig.exempt)
	for _, a := range addrs {
		p.sig.exempt[a] = struct{}{}
	}
	return nil
}

// Signatures returns the number of signature rules held, expired or not.
func (p *SimulatedPlane) Signatures() int { return len(p.sig.rules) }

// SignatureHits returns the packets the rule with Match m counted as
// hits, and whether there is such a rule.
func (p *SimulatedPlane) SignatureHits(m detector.Match) (uint64, bool) {
	s, ok := p.sig.rules[canonical(m)]
	if !ok {
		return 0, false
	}
	return s.hits, true
}

// HasSignatures reports whether any signature rule is held.
func (p *SimulatedPlane) HasSignatures() bool { return len(p.sig.rules) > 0 }

// Dropped applies the signature rules to packet pkt seen at at (see the
// semantics above).
func (p *SimulatedPlane) Dropped(pkt *detector.PacketMeta, at time.Time) bool {
	t := &p.sig
	if len(t.rules) == 0 {
		return false
	}
	t.matched = t.matched[:0]
	now := sigClock{ns: unixNano(at), t: &at}
	now.exact = now.ns != math.MinInt64 && now.ns != math.MaxInt64
	t.match(t.anyProto, pkt, &now)
	t.match(t.byProto[pkt.Proto], pkt, &now)
	if pkt.L4 && t.byPort != nil {
		k := detector.UDPSrcPort
		if pkt.Proto == protoTCP {
			k = detector.TCPSrcPort
		}
		if i := t.byPort[k][pkt.SrcPort]; i != 0 {
			t.match(t.portLists[i-1], pkt, &now)
		}
		if i := t.byPort[k+1][pkt.DstPort]; i != 0 {
			t.match(t.portLists[i-1], pkt, &now)
		}
	}
	if len(t.matched) == 0 {
		return false
	}
	if _, ok := t.exempt[pkt.Src]; ok {
		return false
	}
	drop := false
	for _, s := range t.matched {
		s.hits++
		drop = drop || s.allowance == 0
	}
	if drop {
		return true
	}
	w := now.ns / int64(RateWindow)
	for _, s := range t.matched {
		if s.window != w {
			s.window, s.count = w, 0
		}
		s.count++
		drop = drop || s.count > s.allowance
	}
	return drop
}

// sigClock is a packet's time: in nanoseconds, and exact when it is
// strictly inside the range they can count (else the rules' expiries are
// compared with t itself).
type sigClock struct {
	ns    int64
	exact bool
	t     *time.Time
}

// match adds the live rules of rs that match pkt to t.matched.
func (t *sigTable) match(rs []*sigRule, pkt *detector.PacketMeta, now *sigClock) {
	for _, s := range rs {
		live := now.ns < s.exp
		if !now.exact {
			live = now.t.Before(s.rule.Expires)
		}
		if live && s.m.matches(pkt) {
			t.matched = append(t.matched, s)
		}
	}
}

// reindex rebuilds the index from the rules.
func (t *sigTable) reindex() {
	t.anyProto = t.anyProto[:0]
	for i := range t.byProto {
		t.byProto[i] = t.byProto[i][:0]
	}
	for _, k := range t.portKeys {
		t.byPort[k.kind][k.port] = 0
	}
	t.portKeys, t.portLists = t.portKeys[:0], t.portLists[:0]
	for _, s := range t.rules {
		m := &s.rule.Match
		k, port, ok := indexPort(m)
		switch {
		case ok:
			if t.byPort == nil {
				t.byPort = new([detector.NumPortKinds][1 << 16]uint32)
			}
			i := t.byPort[k][port]
			if i == 0 {
				t.portLists = append(t.portLists, nil)
				t.portKeys = append(t.portKeys, portKey{k, port})
				i = uint32(len(t.portLists))
				t.byPort[k][port] = i
			}
			t.portLists[i-1] = append(t.portLists[i-1], s)
		case m.Proto != 0:
			t.byProto[m.Proto] = append(t.byProto[m.Proto], s)
		default:
			t.anyProto = append(t.anyProto, s)
		}
	}
}

// indexPort returns the port a rule is indexed by: its destination port
// if it names one (a range of one), else its source port if it names
// one; ok is false for rules with neither (or not TCP or UDP).
func indexPort(m *detector.Match) (k detector.PortKind, port uint16, ok bool) {
	var src, dst detector.PortKind
	switch m.Proto {
	case protoUDP:
		src, dst = detector.UDPSrcPort, detector.UDPDstPort
	case protoTCP:
		src, dst = detector.TCPSrcPort, detector.TCPDstPort
	default:
		return 0, 0, false
	}
	switch {
	case !m.DstPort.Any() && m.DstPort.Lo == m.DstPort.Hi:
		return dst, m.DstPort.Lo, true
	case !m.SrcPort.Any() && m.SrcPort.Lo == m.SrcPort.Hi:
		return src, m.SrcPort.Lo, true
	}
	return 0, 0, false
}
