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
	// services remembers the sources that answered from a service port
	// (UDP source port below 1024 or a known reflection port) while UDP
	// was calm: the server's own resolvers, NTP servers.
	services map[Addr]serviceSeen
	// cands is the derivation's scratch list.
	cands []sigCandidate
	// portRate is this tick's rate per port, by kind and port (dense: a
	// flood from random ports touches tens of thousands a tick, which a
	// map made the replay's slowest part), and touched lists the ports
	// set this tick, to reset and to walk.
	portRate [NumPortKinds][]float64
	portBPS  [NumPortKinds][]float64
	touched  [NumPortKinds][]uint16
}

type portBase struct {
	mean float64
	last uint32
}

func newSigState() sigState {
	s := sigState{services: map[Addr]serviceSeen{}}
	for k := range s.ports {
		s.ports[k] = make([]portBase, 1<<16)
		s.portRate[k] = make([]float64, 1<<16)
		s.portBPS[k] = make([]float64, 1<<16)
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
		for _, p := range s.touched[k] {
			s.portRate[k][p], s.portBPS[k][p] = 0, 0
		}
		s.touched[k] = s.touched[k][:0]
	}
	for i := range t.Features.Ports {
		pc := &t.Features.Ports[i]
		if pc.Kind >= NumPortKinds || pc.Packets == 0 {
			continue
		}
		r := &s.portRate[pc.Kind][pc.Port]
		if *r == 0 {
			s.touched[pc.Kind] = append(s.touched[pc.Kind], pc.Port)
		}
		*r += float64(pc.Packets) / e.scratch.secs
		s.portBPS[pc.Kind][pc.Port] += float64(pc.Bytes) * 8 / e.scratch.secs
	}
}

// learnFeatures folds the tick's features into the port and length
// baselines, for the classes not under attack (an attack is not learnt).
func (e *Engine) learnFeatures(t *Tick) {
	e.learnServices(t)
	s := &e.sig
	f := &t.Features
	for k := range NumPortKinds {
		if e.classAttacked(classesOf(k)...) {
			continue
		}
		for _, port := range s.touched[k] {
			r := s.portRate[k][port]
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
		pb.mean *= e.decay.pow(gap - 1)
		pb.last = e.tick
	}
}

func (e *Engine) portBaseline(k PortKind, port uint16) float64 {
	pb := &e.sig.ports[k][port]
	if pb.last == 0 {
		return 0
	}
	if gap := e.tick - pb.last; gap > 0 {
		return pb.mean * e.decay.pow(gap)
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
// reflection from several services gets one rule per service port and
// attacked address.
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
	if excess <= 0 || len(portKindsFor(Class(c))) == 0 {
		return "", false
	}
	cands := e.sigCandidates(Class(c), 0.02*excess, -1)
	if len(cands) == 0 {
		return fmt.Sprintf("no port carries %.0f%% of the excess: no signature", 100*cfg.MinExcessShare), false
	}
	var chosen []sigCandidate
	var covered float64
	var refusal string
	for _, cd := range cands {
		if covered >= cfg.MinExcessShare*excess || len(chosen) >= maxSignaturesPerAttack {
			break
		}
		if cd.kind != cands[0].kind {
			continue // a source-port and a destination-port rule would count packets twice
		}
		q, why := e.qualify(t, Class(c), cd, st)
		if why != "" {
			if refusal == "" {
				refusal = fmt.Sprintf("%s carries %.0f%% of the excess but %s", cd.m.String(), 100*min(cd.covered/excess, 1), why)
			}
			continue
		}
		chosen = append(chosen, q)
		covered += cd.covered
	}
	if covered < cfg.MinExcessShare*excess {
		if refusal == "" {
			refusal = fmt.Sprintf("the %d narrowest port signatures cover %.0f%% of the excess", len(chosen), 100*covered/excess)
		}
		return refusal + ": no signature narrow enough, nothing dropped", false
	}
	installed, notes := e.installChosen(t, Class(c), chosen, excess, st)
	if len(installed) == 0 {
		return strings.Join(notes, "; "), false
	}
	return "dropping by signature " + strings.Join(installed, ", ") + strings.Join(append([]string{""}, notes...), "; "), true
}

// signatureWave follows an attack already answered by signature rules:
// a port that joins it (a reflection adding services half-way) and
// carries a noticeable part of the attack's peak excess gets its own
// rule, if it is narrow. Ports are of the kind the attack's rules have.
func (e *Engine) signatureWave(t *Tick, c int, st *aggState) {
	if !e.cfg.Signatures.Enabled || c >= int(NumClasses) || len(t.Features.Ports) == 0 {
		return
	}
	kind := PortKind(NumPortKinds)
	n := 0
	for i := range e.sig.book.list {
		s := &e.sig.book.list[i]
		if s.Manual || s.Class != Class(c).String() {
			continue
		}
		if k, _, ok := kindOf(&s.Match); ok {
			kind = k
			n++
		}
	}
	if kind == NumPortKinds || n >= maxSignaturesPerAttack {
		return
	}
	excess := st.peakPPS - st.pps.mean
	var chosen []sigCandidate
	for _, cd := range e.sigCandidates(Class(c), 0.05*excess, int(kind)) {
		if n+len(chosen) >= maxSignaturesPerAttack {
			break
		}
		if e.hasRuleFor(cd.m) {
			continue
		}
		if q, why := e.qualify(t, Class(c), cd, st); why == "" {
			chosen = append(chosen, q)
		}
	}
	e.installChosen(t, Class(c), chosen, excess, st)
}

// hasRuleFor says whether a detector rule on m's port is in force, for any
// destination or length.
func (e *Engine) hasRuleFor(m Match) bool {
	k, port, _ := kindOf(&m)
	for i := range e.sig.book.list {
		if k2, p2, ok := kindOf(&e.sig.book.list[i].Match); ok && k2 == k && p2 == port {
			return true
		}
	}
	return false
}

// sigCandidates lists the ports of class c's kinds (only kind, if not
// -1) carrying at least minCovered pps over their baseline, most first.
func (e *Engine) sigCandidates(c Class, minCovered float64, only int) []sigCandidate {
	cands := e.sig.cands[:0]
	for _, k := range portKindsFor(c) {
		if only >= 0 && int(k) != only {
			continue
		}
		for _, port := range e.sig.touched[k] {
			r := e.sig.portRate[k][port]
			base := e.portBaseline(k, port)
			if r-base >= minCovered && r-base > 0 {
				cands = append(cands, sigCandidate{m: portMatch(k, port, c), kind: k, rate: r, covered: r - base, base: base})
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
	return cands
}

// qualify finds a candidate's exempt sources and checks it is narrow:
// its legitimate baseline (for a source port, less what its exempt
// sources send) at most max_baseline_share of the class's, narrowing it
// by length when needed. It returns why not, or "".
func (e *Engine) qualify(t *Tick, c Class, cd sigCandidate, st *aggState) (sigCandidate, string) {
	classBase := max(st.pps.mean, 1)
	maxBase := e.cfg.Signatures.MaxBaselineShare * classBase
	cd.exemptRate, cd.exempt = e.exemptFor(t, &cd.m)
	cd.legit = cd.base
	if cd.kind.IsSrc() {
		// Only the server's own services (its resolvers answering from
		// 53) send from a service port: exempting them spares the port's
		// whole legitimate traffic. A served destination port keeps
		// getting new visitors that no exemption knows, so its baseline
		// stays whole.
		cd.legit = max(cd.base-cd.exemptRate, 0)
	}
	if cd.legit > maxBase {
		narrowed, ok := e.narrowByLength(t, c, cd, maxBase)
		if !ok {
			return cd, fmt.Sprintf("also %.0f%% of the class's baseline", 100*cd.legit/classBase)
		}
		cd = narrowed
	}
	return cd, ""
}

// installChosen installs the chosen signatures, one per attacked address
// (or one for any destination), with their exempt sources, and returns
// what it installed and what it could not.
func (e *Engine) installChosen(t *Tick, c Class, chosen []sigCandidate, excess float64, st *aggState) (installed, notes []string) {
	cfg := &e.cfg.Signatures
	classBase := max(st.pps.mean, 1)
	dsts := e.attackedDsts(t)
	for i := range chosen {
		cd := &chosen[i]
		e.sig.learnt = append(e.sig.learnt, cd.exempt...)
		var ratePPS uint64
		action := "drop"
		if cd.legit >= cfg.MinBaselinePPS {
			ratePPS = uint64(math.Ceil(cfg.RateMultiple * cd.legit))
			action = fmt.Sprintf("rate-limit to %d pps (%g× its baseline %.0f pps)", ratePPS, cfg.RateMultiple, cd.legit)
		}
		hold := max(cd.base*e.cfg.Aggregate.Ratio, e.cfg.Aggregate.FloorPPS/10/float64(len(chosen)*len(dsts)))
		for _, dst := range dsts {
			m := cd.m
			m.Dst = dst
			reason := fmt.Sprintf("signature %s covers %.0f%% of the %s excess and %.1f%% of its baseline (%d exempt sources); %s",
				m.String(), 100*min(cd.covered/excess, 1), c, 100*cd.legit/classBase, len(cd.exempt), action)
			if e.sig.exemptTruncated {
				reason += "; some allowlisted or established sources could not be exempted (prefix too wide or exempt cap)"
			}
			bps := 0.0
			if k, port, ok := kindOf(&m); ok {
				bps = e.sig.portBPS[k][port]
			}
			if ok, why := e.installSignature(m, ratePPS, c.String(), hold, cd.rate, bps, cd.base, reason); !ok {
				notes = append(notes, fmt.Sprintf("signature %s not installed: %s", m.String(), why))
				continue
			}
			installed = append(installed, m.String())
		}
	}
	return installed, notes
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

// attackedDsts are the destinations the tick's traffic converges on: the
// busiest, at most one per family, each with at least 5% of it, if
// together they carry at least 90%, as single-address prefixes (the
// protected addresses); otherwise one zero prefix (any destination).
func (e *Engine) attackedDsts(t *Tick) []netip.Prefix {
	f := &t.Features
	all := f.DstsOther
	for _, d := range f.Dsts {
		all += d.Packets
	}
	var out []netip.Prefix
	var sum uint64
	var have4, have6 bool
	for _, d := range f.Dsts {
		if all == 0 || float64(d.Packets) < 0.05*float64(all) {
			break // busiest first
		}
		if d.Addr.Is4() && !have4 || !d.Addr.Is4() && !have6 {
			have4, have6 = have4 || d.Addr.Is4(), have6 || !d.Addr.Is4()
			out = append(out, d.Addr.Prefix())
			sum += d.Packets
		}
	}
	if len(out) == 0 || float64(sum) < 0.9*float64(all) {
		return []netip.Prefix{{}}
	}
	return out
}
