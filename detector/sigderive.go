package detector

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
)

// sigState is what the detector keeps for signature rules: the rules in
// force, the learnt per-port and per-length baselines, and the exempt
// sources. Its per-tick cost follows the features (ports that carried
// traffic, length buckets), never the number of sources.
type sigState struct {
	book sigBook
	// ports[k][p] is the baseline (pps) of port p of kind k and the tick
	// it was last updated (an idle port decays on its next read).
	ports [NumPortKinds][]portBase
	// lengths[c][b] is the baseline (pps) of class c in length bucket b.
	lengths [NumClasses][NumLengthBuckets]float64
	// learnt are sources exempt because they talked to the server on a
	// rule's port before its attack; exemptSent is what the data plane
	// holds; exemptTruncated says the allowlist could not all be exempted.
	learnt          []Addr
	exemptSent      []Addr
	exemptTruncated bool
	// cands is the derivation's scratch list.
	cands []sigCandidate
	// portRate is this tick's rate per port, found by kind and port.
	portRate [NumPortKinds]map[uint16]float64
}

type portBase struct {
	mean float64
	last uint32
}

func newSigState() sigState {
	var s sigState
	for k := range s.ports {
		s.ports[k] = make([]portBase, 1<<16)
		s.portRate[k] = map[uint16]float64{}
	}
	return s
}

// classesOf are the aggregate classes whose attack a port kind's traffic
// belongs to.
func classesOf(k PortKind) []Class {
	if k.Proto() == 6 {
		return []Class{ClassSYN, ClassTCP}
	}
	return []Class{ClassUDP}
}

// tickFeatures indexes the tick's port rates for derivation and renewal.
func (e *Engine) tickFeatures(t *Tick) {
	s := &e.sig
	for k := range s.portRate {
		clear(s.portRate[k])
	}
	for i := range t.Features.Ports {
		pc := &t.Features.Ports[i]
		if pc.Kind < NumPortKinds {
			s.portRate[pc.Kind][pc.Port] += float64(pc.Packets) / e.scratch.secs
		}
	}
}

// learnFeatures folds the tick's features into the port and length
// baselines, for the classes not under attack (an attack is not learnt).
func (e *Engine) learnFeatures(t *Tick) {
	s := &e.sig
	f := &t.Features
	for k := range NumPortKinds {
		if e.classAttacked(classesOf(k)...) {
			continue
		}
		for port, r := range s.portRate[k] {
			pb := &s.ports[k][port]
			e.catchUpPort(pb)
			pb.mean += e.alpha * (r - pb.mean)
			pb.last = e.tick + 1
		}
	}
	for c := range NumClasses {
		if e.classAttacked(c) {
			continue
		}
		for b := range NumLengthBuckets {
			r := float64(f.Lengths[c][b]) / e.scratch.secs
			s.lengths[c][b] += e.alpha * (r - s.lengths[c][b])
		}
	}
}

// catchUpPort decays a port's baseline over the ticks it carried nothing.
func (e *Engine) catchUpPort(pb *portBase) {
	if gap := e.tick + 1 - pb.last; pb.last != 0 && gap > 1 {
		pb.mean *= math.Pow(1-e.alpha, float64(gap-1))
		pb.last = e.tick
	}
}

func (e *Engine) portBaseline(k PortKind, port uint16) float64 {
	pb := &e.sig.ports[k][port]
	if pb.last == 0 {
		return 0
	}
	if gap := e.tick - pb.last; gap > 0 {
		return pb.mean * math.Pow(1-e.alpha, float64(gap))
	}
	return pb.mean
}

func (e *Engine) classAttacked(cs ...Class) bool {
	for _, c := range cs {
		if e.agg[c].anomalous {
			return true
		}
	}
	return e.agg[aggAll].anomalous
}

// kindOf is the port kind a rule's port component counts.
func kindOf(m *Match) (PortKind, uint16, bool) {
	switch {
	case m.Proto == 17 && !m.SrcPort.Any() && m.SrcPort.Lo == m.SrcPort.Hi:
		return UDPSrcPort, m.SrcPort.Lo, true
	case m.Proto == 17 && !m.DstPort.Any() && m.DstPort.Lo == m.DstPort.Hi:
		return UDPDstPort, m.DstPort.Lo, true
	case m.Proto == 6 && !m.SrcPort.Any() && m.SrcPort.Lo == m.SrcPort.Hi:
		return TCPSrcPort, m.SrcPort.Lo, true
	case m.Proto == 6 && !m.DstPort.Any() && m.DstPort.Lo == m.DstPort.Hi:
		return TCPDstPort, m.DstPort.Lo, true
	}
	return 0, 0, false
}

// matchedPPS estimates the rate a rule matches this tick from the
// features: its port's rate, times the share of its length range in the
// class's length histogram. Rules without one port read 0 (an operator's
// rule is never renewed from it anyway).
func (e *Engine) matchedPPS(t *Tick, m *Match) float64 {
	k, port, ok := kindOf(m)
	if !ok {
		return 0
	}
	r := e.sig.portRate[k][port]
	if m.Length.Any() {
		return r
	}
	var in, all uint64
	for _, c := range classesOf(k) {
		for b := range NumLengthBuckets {
			n := t.Features.Lengths[c][b]
			all += n
			if lr := LengthBucketRange(b); lr.Lo >= m.Length.Lo && lr.Hi <= m.Length.Hi {
				in += n
			}
		}
	}
	if all == 0 {
		return 0
	}
	return r * float64(in) / float64(all)
}

// sigCandidate is a signature the derivation considers.
type sigCandidate struct {
	m       Match
	kind    PortKind
	rate    float64 // matched pps this tick
	covered float64 // matched pps over its baseline
	base    float64 // its learnt baseline (legitimate traffic it would hit)
	// exempt are the established sources it would match (spared by the
	// exempt set), exemptRate their rate, legit the baseline left.
	exempt     []Addr
	exemptRate float64
	legit      float64
}

// portKindsFor are the port kinds that can name an attack of class c.
func portKindsFor(c Class) []PortKind {
	switch c {
	case ClassUDP:
		return []PortKind{UDPSrcPort, UDPDstPort}
	case ClassSYN:
		return []PortKind{TCPDstPort}
	case ClassTCP:
		return []PortKind{TCPSrcPort, TCPDstPort}
	}
	return nil
}

// maxSignaturesPerAttack bounds the rules one attack may get: a
// reflection from several services gets one rule per service port.
const maxSignaturesPerAttack = 8

// signature looks for the narrowest set of signatures (one port each, of
// one kind, most excess first, at most maxSignaturesPerAttack) that
// covers most of class c's excess while each covers little of its
// baseline once exempt sources are set aside, and installs them. It
// returns what it found for the attack's reason, and whether rules are in
// force.
func (e *Engine) signature(t *Tick, c int, rate float64, st *aggState) (string, bool) {
	cfg := &e.cfg.Signatures
	if !cfg.Enabled || c >= int(NumClasses) || e.scratch.warm || len(t.Features.Ports) == 0 {
		return "", false
	}
	excess := rate - st.pps.mean
	kinds := portKindsFor(Class(c))
	if excess <= 0 || len(kinds) == 0 {
		return "", false
	}
	cands := e.sig.cands[:0]
	for _, k := range kinds {
		for port, r := range e.sig.portRate[k] {
			base := e.portBaseline(k, port)
			if r-base >= 0.02*excess {
				cands = append(cands, sigCandidate{m: portMatch(k, port, Class(c)), kind: k, rate: r, covered: r - base, base: base})
			}
		}
	}
	slices.SortFunc(cands, func(a, b sigCandidate) int {
		switch {
		case a.covered != b.covered:
			return cmp.Compare(b.covered, a.covered)
		case a.kind != b.kind:
			return cmp.Compare(a.kind, b.kind)
		}
		return cmp.Compare(portOf(&a.m), portOf(&b.m))
	})
	e.sig.cands = cands
	if len(cands) == 0 {
		return fmt.Sprintf("no port carries %.0f%% of the excess: no signature", 100*cfg.MinExcessShare), false
	}
	classBase := max(st.pps.mean, 1)
	maxBase := cfg.MaxBaselineShare * classBase
	dst := e.attackedDst(t)
	var chosen []sigCandidate
	var covered float64
	var refusal string
	for _, cd := range cands {
		if covered >= cfg.MinExcessShare*excess || len(chosen) == maxSignaturesPerAttack {
			break
		}
		if cd.kind != cands[0].kind {
			continue // a source-port and a destination-port rule would count packets twice
		}
		cd.m.Dst = dst
		cd.exemptRate, cd.exempt = e.exemptFor(t, &cd.m)
		cd.legit = cd.base
		if cd.kind.IsSrc() {
			// Only the server's own services (its resolvers answering
			// from 53) send from a service port: exempting them spares
			// the port's whole legitimate traffic. A served destination
			// port keeps getting new visitors that no exemption knows,
			// so its baseline stays whole.
			cd.legit = max(cd.base-cd.exemptRate, 0)
		}
		if cd.legit > maxBase {
			narrowed, ok := e.narrowByLength(t, Class(c), cd, maxBase)
			if !ok {
				if refusal == "" {
					refusal = fmt.Sprintf("%s carries %.0f%% of the excess but also %.0f%% of the class's baseline", cd.m.String(), 100*min(cd.covered/excess, 1), 100*cd.legit/classBase)
				}
				continue
			}
			cd = narrowed
		}
		chosen = append(chosen, cd)
		covered += cd.covered
	}
	if covered < cfg.MinExcessShare*excess {
		if refusal == "" {
			refusal = fmt.Sprintf("the %d narrowest port signatures cover %.0f%% of the excess", len(chosen), 100*covered/excess)
		}
		return refusal + ": no signature narrow enough, nothing dropped", false
	}
	var installed, notes []string
	for i := range chosen {
		cd := &chosen[i]
		e.sig.learnt = append(e.sig.learnt, cd.exempt...)
		var ratePPS uint64
		action := "drop"
		if cd.legit >= cfg.MinBaselinePPS {
			ratePPS = uint64(math.Ceil(cfg.RateMultiple * cd.legit))
			action = fmt.Sprintf("rate-limit to %d pps (%g× its baseline %.0f pps)", ratePPS, cfg.RateMultiple, cd.legit)
		}
		hold := max(cd.base*e.cfg.Aggregate.Ratio, e.cfg.Aggregate.FloorPPS/10/float64(len(chosen)))
		reason := fmt.Sprintf("signature %s covers %.0f%% of the %s excess and %.1f%% of its baseline (%d exempt sources); %s",
			cd.m.String(), 100*min(cd.covered/excess, 1), Class(c), 100*cd.legit/classBase, len(cd.exempt), action)
		if e.sig.exemptTruncated {
			reason += "; some allowlisted sources could not be exempted (prefix too wide or exempt cap)"
		}
		if ok, why := e.installSignature(cd.m, ratePPS, Class(c).String(), hold, cd.rate, 0, cd.base, reason); !ok {
			notes = append(notes, fmt.Sprintf("signature %s not installed: %s", cd.m.String(), why))
			continue
		}
		installed = append(installed, cd.m.String())
	}
	if len(installed) == 0 {
		return strings.Join(notes, "; "), false
	}
	return "dropping by signature " + strings.Join(installed, ", ") + strings.Join(append([]string{""}, notes...), "; "), true
}

func portOf(m *Match) uint16 {
	if !m.SrcPort.Any() {
		return m.SrcPort.Lo
	}
	return m.DstPort.Lo
}

// portMatch is the rule naming one port of kind k for class c.
func portMatch(k PortKind, port uint16, c Class) Match {
	m := Match{Proto: k.Proto()}
	r := Range{Lo: port, Hi: port}
	if k.IsSrc() {
		m.SrcPort = r
	} else {
		m.DstPort = r
	}
	if c == ClassSYN {
		m.TCPFlags, m.TCPFlagsMask = 0x02, 0x12 // SYN set, ACK clear
	}
	return m
}

// narrowByLength adds the narrowest length range holding most of the
// class's excess, if that leaves the rule's baseline under maxBase. The
// port's legitimate traffic is assumed to spread over lengths like its
// class's baseline does.
func (e *Engine) narrowByLength(t *Tick, c Class, cand sigCandidate, maxBase float64) (sigCandidate, bool) {
	var x [NumLengthBuckets]float64
	var total, baseAll float64
	for b := range NumLengthBuckets {
		x[b] = max(float64(t.Features.Lengths[c][b])/e.scratch.secs-e.sig.lengths[c][b], 0)
		total += x[b]
		baseAll += e.sig.lengths[c][b]
	}
	if total <= 0 {
		return cand, false
	}
	bestLo, bestHi := -1, -1
	for lo := range NumLengthBuckets {
		sum := 0.0
		for hi := lo; hi < NumLengthBuckets; hi++ {
			sum += x[hi]
			if sum >= e.cfg.Signatures.MinExcessShare*total {
				if bestLo < 0 || hi-lo < bestHi-bestLo {
					bestLo, bestHi = lo, hi
				}
				break
			}
		}
	}
	if bestLo < 0 {
		return cand, false
	}
	var baseIn float64
	for b := bestLo; b <= bestHi; b++ {
		baseIn += e.sig.lengths[c][b]
	}
	share := 1.0
	if baseAll > 0 {
		share = baseIn / baseAll
	}
	narrowed := cand
	narrowed.base, narrowed.legit = cand.base*share, cand.legit*share
	narrowed.m.Length = Range{Lo: LengthBucketRange(bestLo).Lo, Hi: LengthBucketRange(bestHi).Hi}
	if narrowed.legit > maxBase {
		return cand, false
	}
	return narrowed, true
}

// attackedDst is the destination the tick's traffic converges on (at
// least 90% of it), as a single-address prefix, or none.
func (e *Engine) attackedDst(t *Tick) netip.Prefix {
	f := &t.Features
	if len(f.Dsts) == 0 {
		return netip.Prefix{}
	}
	var all uint64 = f.DstsOther
	for _, d := range f.Dsts {
		all += d.Packets
	}
	top := f.Dsts[0]
	if all == 0 || float64(top.Packets) < 0.9*float64(all) {
		return netip.Prefix{}
	}
	return top.Addr.Prefix()
}

// exemptFor finds the sources that were talking to the server before the
// attack and would match the rule: established sources (past probation,
// not anomalous or banned) seen in this tick; for a UDP source-port rule
// only those sending from that port (the server's own resolvers, NTP
// servers). It returns their rate, the part of the rule's baseline their
// exemption spares, and their addresses. One pass over the tick's
// sources, only when an attack is analysed for a signature.
func (e *Engine) exemptFor(t *Tick, m *Match) (float64, []Addr) {
	var rate float64
	var out []Addr
	k, port, _ := kindOf(m)
	room := e.cfg.Signatures.MaxExempt - len(e.sig.learnt)
	for i := range t.Sources {
		src := &t.Sources[i]
		if k == UDPSrcPort && src.UDPSrcPort != port {
			continue
		}
		var n uint64
		if m.Proto == 17 {
			n = src.Packets[ClassUDP]
		} else {
			n = src.Packets[ClassTCP] + src.Packets[ClassSYN]
		}
		if n == 0 || (m.Dst.IsValid() && m.Dst.Addr().Is4() != src.Addr.Is4()) {
			continue
		}
		s := e.sources.get(src.Addr)
		if s == nil || s.samples < 3 || s.flags&(flagAnomalous|flagBanned) != 0 {
			continue
		}
		if len(out) >= room {
			e.sig.exemptTruncated = true
			break
		}
		out = append(out, src.Addr)
		rate += float64(n) / e.scratch.secs
	}
	return rate, out
}
