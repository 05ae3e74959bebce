package detector

import "net/netip"

// Read-only views of the engine's keys and attacks for display (the
// daemon's top view, status and metrics; paging). Like every Engine method
// they must be called from the goroutine feeding it ticks, between Steps;
// they change nothing.

// KeyBaseline returns the learnt mean rate of a tracked source (p a single
// address, /32 or /128) or tracked prefix (p of a tracked prefix length) as
// of the last tick Step judged, and whether the key is tracked at all. A key
// absent from the last ticks is decayed as the detector will decay it when
// it next sees it.
func (e *Engine) KeyBaseline(p netip.Prefix) (meanPPS float64, tracked bool) {
	if !p.IsValid() {
		return 0, false
	}
	p = p.Masked()
	var s *keyState
	if p.IsSingleIP() {
		s = e.sources.get(AddrFrom(p.Addr()))
	} else {
		s = e.prefixes.get(e.prefixKeyOf(p))
	}
	if s == nil || s.flags&flagLive == 0 {
		return 0, false
	}
	mean := s.pps.mean
	// Step has counted the last tick (e.tick is one past it): a key last
	// seen in tick L has missed the ticks L+1 … e.tick-1, each a zero rate.
	if last := e.tick - 1; e.tick > 0 && s.samples > 0 && last > s.lastTick {
		mean *= e.decay.pow(last - s.lastTick)
	}
	return mean, true
}

// TickPrefix is one source prefix's traffic in the last tick.
type TickPrefix struct {
	Prefix netip.Prefix
	// Sources is how many sources of the tick it holds, those on
	// probation included (Tick.Probation: one per record).
	Sources int
	// Counters sum its sources' counters (dropped packets included).
	Counters *Counters
}

// TickPrefixes calls f for every prefix of the longest tracked length of
// each family (a /24 for IPv4, a /64 for IPv6 by default) that held a source
// in the last tick Step judged. The Counters f is given are the engine's:
// valid only during the call, not to be modified.
func (e *Engine) TickPrefixes(f func(TickPrefix)) {
	for _, slots := range [][]uint8{e.slots4, e.slots6} {
		if len(slots) == 0 {
			continue
		}
		// slots are longest first within a family.
		tp := &e.scratch.tickPfx[slots[0]]
		for i := range tp.accs {
			a := &tp.accs[i]
			f(TickPrefix{Prefix: a.key.prefix(), Sources: int(a.sources), Counters: &a.total})
		}
	}
}

// Attacks lists the attacks under way: aggregate classes, then sources,
// then prefixes.
func (e *Engine) Attacks() []Attack {
	var out []Attack
	for c := range e.agg {
		if e.agg[c].anomalous {
			out = append(out, Attack{Scope: ScopeAggregate, Class: aggName(c)})
		}
	}
	for _, a := range e.anomSrc {
		if s := e.sources.get(a); s != nil && s.flags&flagAnomalous != 0 {
			out = append(out, Attack{Scope: ScopeSource, Prefix: a.Prefix()})
		}
	}
	for _, k := range e.anomPfx {
		if s := e.prefixes.get(k); s != nil && s.flags&flagAnomalous != 0 {
			out = append(out, Attack{Scope: ScopePrefix, Prefix: k.prefix()})
		}
	}
	return out
}
