package detector

import "net/netip"

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

// accumulatePrefixes adds a source's tick to each tracked prefix holding it.
// flagged says the source's passed traffic is already attack traffic (so it
// does not count again towards its prefixes' own judgement).
func (e *Engine) accumulatePrefixes(src *Source, flagged, legit bool) {
	v4 := src.Addr.Is4()
	for i, sl := range e.slots {
		if sl.v4 != v4 {
			continue
		}
		k := prefixKey{addr: maskAddr(src.Addr, v4, sl.bits), bits: sl.bits}
		j, ok := e.pidx[k]
		if !ok {
			j = int32(len(e.pacc))
			e.pacc = append(e.pacc, prefixAcc{key: k, slot: uint8(i)})
			e.pidx[k] = j
		}
		a := &e.pacc[j]
		a.total.Add(&src.Counters)
		a.sources++
		if legit {
			a.legit += src.TotalPackets()
		}
		if flagged {
			pkts, bytes := src.TotalPackets(), src.TotalBytes()
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
	// Counting sort by slot keeps first-appearance order within a slot.
	e.order = e.order[:0]
	for sl := range e.slots {
		for i := range e.pacc {
			if int(e.pacc[i].slot) == sl {
				e.order = append(e.order, int32(i))
			}
		}
	}
	thr := &e.cfg.Prefix
	for _, i := range e.order {
		a := &e.pacc[i]
		p := a.key.prefix()
		pr := &e.pfxPrior[a.slot]
		s := e.prefixes.get(a.key)
		if s != nil {
			e.catchUp(s)
		}
		pkts, bytes := a.total.TotalPackets(), a.total.TotalBytes()
		if s != nil && s.flags&flagBanned != 0 {
			totP, totB := float64(pkts)/e.secs, float64(bytes)*8/e.secs
			e.bans.observe(p, totP, e.tick)
			e.followAttack(s, ScopePrefix, p.String(), thr, pr, totP, totB)
			e.flagPrefix(a)
			continue
		}
		var flagP, flagB uint64
		for c := range NumClasses {
			flagP += a.flagged[c]
			flagB += a.flagB[c]
		}
		passP := pkts - min(a.total.DroppedPackets, pkts)
		passB := bytes - min(a.total.DroppedBytes, bytes)
		pps := float64(passP-min(flagP, passP)) / e.secs
		bps := float64(passB-min(flagB, passB)) * 8 / e.secs
		pb, bb := baselines(s, pr)
		over := e.overThreshold(thr, &pb, &bb, pps, bps)
		if s == nil && over {
			s = e.prefixes.add(a.key, e.tick)
		}
		flagged := false
		if s != nil && (over || s.flags&flagAnomalous != 0) {
			if e.legitPPS > 0 {
				e.banLegitShare = float64(a.legit) / e.secs / e.legitPPS
			}
			flagged = e.stepAttack(s, ScopePrefix, p, thr, &pb, &bb, pps, bps, over)
			e.banLegitShare = 0
		}
		if flagged {
			e.flagPrefix(a)
			continue
		}
		if over || a.total.DroppedPackets > 0 {
			continue // partly under a broader rule: nothing clean to learn
		}
		if s == nil {
			if e.sources.len()+e.prefixes.len() >= e.cfg.Tracking.MaxKeys {
				continue
			}
			s = e.prefixes.add(a.key, e.tick)
		}
		e.learn(s, pps, bps)
		pr.add(pps)
	}
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
		e.flagged[c] += float64(rest[c]) / e.secs
		e.flagBPS[c] += float64(restB[c]) * 8 / e.secs
	}
	sl := e.slots[a.slot]
	for j := int(a.slot) + 1; j < len(e.slots); j++ {
		parent := e.slots[j]
		if parent.v4 != sl.v4 {
			continue
		}
		k := prefixKey{addr: maskAddr(a.key.addr, sl.v4, parent.bits), bits: parent.bits}
		if pi, ok := e.pidx[k]; ok {
			pa := &e.pacc[pi]
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
