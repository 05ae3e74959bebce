package detector

import "slices"

// The sources a signature rule must spare: those that talked to the server
// on the rule's port before its attack (the exempt set also holds the
// allowlist and the host, see syncExempt).

// exemptFor finds the sources that were talking to the server before the
// attack and would match the rule: established sources (past probation,
// not anomalous or banned) that the rule would hit. For a UDP source-port
// rule, those remembered sending from that port (the server's own
// resolvers and NTP servers, learnt while UDP was calm) or doing so in this
// tick; for a destination-port rule, every established source of the
// family seen within the idle timeout (its visitors). It returns the rate
// they send in this tick, the part of the rule's baseline their exemption
// spares, and their addresses. It runs only when an attack is analysed for
// a signature: never per tick.
func (e *Engine) exemptFor(t *Tick, m *Match) (float64, []Addr) {
	k, port, _ := kindOf(m)
	room := e.cfg.Signatures.MaxExempt - len(e.sig.learnt)
	idle := uint32(e.cfg.Tracking.IdleTimeout.D() / e.cfg.Tick.D())
	var out []Addr
	ok := func(a Addr) bool {
		if m.Dst.IsValid() && m.Dst.Addr().Is4() != a.Is4() {
			return false
		}
		s := e.sources.get(a)
		return s != nil && s.samples >= 3 && s.flags&(flagAnomalous|flagBanned) == 0 && e.tick-s.lastTick <= idle
	}
	add := func(a Addr) bool {
		if len(out) >= room {
			e.sig.exemptTruncated = true
			return false
		}
		out = append(out, a)
		return true
	}
	switch k {
	case UDPSrcPort:
		for a, sv := range e.sig.services {
			if sv.port == port && e.tick-sv.tick <= idle && ok(a) && !add(a) {
				break
			}
		}
	default:
		e.sources.all(func(a Addr, s *keyState) {
			if ok(a) {
				add(a)
			}
		})
	}
	slices.SortFunc(out, compareAddr)
	var rate float64
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
		if n == 0 || !ok(src.Addr) {
			continue
		}
		if i, found := slices.BinarySearchFunc(out, src.Addr, compareAddr); !found {
			if !add(src.Addr) {
				break
			}
			// Keep out sorted: move the new address to its place (a
			// sort per addition made a carpet's tick quadratic).
			copy(out[i+1:], out[i:len(out)-1])
			out[i] = src.Addr
		}
		rate += float64(n) / e.scratch.secs
	}
	return rate, out
}

// serviceSeen is a source that answered from a service port.
type serviceSeen struct {
	port uint16
	tick uint32
}

// isServicePort says whether a UDP source port is a service's (below 1024,
// or a known reflection port such as memcached's 11211): the server's own
// resolvers and NTP servers answer from one.
func isServicePort(p uint16) bool {
	if p < 1024 {
		return true
	}
	_, ok := reflectionPorts[p]
	return ok
}

// learnServices remembers, while UDP is calm, the sources answering from a
// service port: they are exempt from a rule on that port. One cheap test
// per source per tick; the memory holds at most signatures.max_exempt.
func (e *Engine) learnServices(t *Tick) {
	if e.classAttacked(ClassUDP) {
		return
	}
	for i := range t.Sources {
		src := &t.Sources[i]
		if src.UDPSrcPort == 0 || !isServicePort(src.UDPSrcPort) {
			continue
		}
		if _, known := e.sig.services[src.Addr]; !known && len(e.sig.services) >= e.cfg.Signatures.MaxExempt {
			continue
		}
		e.sig.services[src.Addr] = serviceSeen{port: src.UDPSrcPort, tick: e.tick}
	}
	if e.tick%600 == 0 { // forget services silent for the idle timeout
		idle := uint32(e.cfg.Tracking.IdleTimeout.D() / e.cfg.Tick.D())
		for a, sv := range e.sig.services {
			if e.tick-sv.tick > idle {
				delete(e.sig.services, a)
			}
		}
	}
}
