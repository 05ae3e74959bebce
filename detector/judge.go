package detector

import (
	"fmt"
	"net/netip"
)

// Judging one key in one tick: a source here, a prefix in prefixes.go, both
// through the same attack state machine (stepAttack, followAttack,
// countCalm); the threshold tests (overThreshold, calm) serve the
// aggregate classes too.

// overThreshold reports whether a rate pair is over the thresholds given the
// baselines (during the warm-up: over the hard ceiling).
func (e *Engine) overThreshold(t *Thresholds, pb, bb *ewma, pps, bps float64) bool {
	if e.scratch.warm {
		return pps > t.CeilingPPS || bps > t.CeilingBPS
	}
	// Cheapest test first: almost every key is under its floor.
	return (pps > t.FloorPPS && pps > pb.mean*t.Ratio && pps > pb.mean+t.K*pb.sigma()) ||
		(bps > t.FloorBPS && bps > bb.mean*t.Ratio && bps > bb.mean+t.K*bb.sigma())
}

// calm reports whether a rate pair is below the exit level of an attack.
func (e *Engine) calm(t *Thresholds, pb, bb *ewma, pps, bps float64) bool {
	if e.scratch.warm {
		return pps < t.CeilingPPS*t.ExitFraction && bps < t.CeilingBPS*t.ExitFraction
	}
	return pps < threshold(pb, t.K, t.Ratio, t.FloorPPS)*t.ExitFraction &&
		bps < threshold(bb, t.K, t.Ratio, t.FloorBPS)*t.ExitFraction
}

// baselines returns the baselines a key is judged against: its own once
// established, the population prior before.
func baselines(s *keyState, p *prior) (ewma, ewma) {
	if s != nil && s.samples >= established {
		return s.pps, s.bps
	}
	pb := p.baseline()
	// No bps prior is kept: the bps floor alone guards new keys.
	return pb, ewma{}
}

// judgeSource judges one source; slot is where Step found it in the table
// before judging the sources ahead of it, or -1.
func (e *Engine) judgeSource(src *Source, slot int32) {
	pkts, bytes := totals(&src.Counters)
	if slot < 0 {
		// Absent then; but a source judged since may have added it (a
		// tick should not name an address twice, but if one does, it is
		// judged as before).
		s, h := e.sources.lookup(src.Addr)
		if s != nil {
			e.catchUp(s)
		}
		e.judgeSourceSlow(src, s, h, pkts, bytes)
		return
	}
	// Nothing is removed from the table while sources are judged, so the
	// slot still holds the source.
	s := &e.sources.recs.slots[slot].keyState
	e.catchUp(s)
	// The common case, almost every source in almost every tick: a tracked
	// source, neither anomalous nor banned nor dropped, under its floors
	// (its ceilings in the warm-up). It is not over threshold whatever its
	// baseline (see overThreshold), so it is learnt from straight away:
	// this is judgeSourceSlow without the branches it would not take.
	if s.flags&(flagAnomalous|flagBanned) == 0 && src.DroppedPackets|src.DroppedBytes == 0 {
		pps, bps := e.perSec(float64(pkts)), e.perSec(float64(bytes)*8)
		if pps <= e.scratch.quietPPS && bps <= e.scratch.quietBPS {
			legit := s.samples >= established
			e.learn(s, pps, bps)
			e.srcPrior.add(pps)
			if legit {
				e.scratch.legitPPS += pps
			}
			// Almost every source has, and keeps, the global trip level:
			// a cheap test leaves the others to noteTripLevel.
			if s.flags&flagTripLevel != 0 || e.tripMayOwn(s) {
				e.noteTripLevel(src.Addr, s)
			}
			e.accumulatePrefixes(src, pkts, bytes, false, legit)
			return
		}
	}
	e.judgeSourceSlow(src, s, 0, pkts, bytes)
}

// countDropped adds what rules dropped of a source's tick (pkts and bytes
// are its totals) to the tick's dropped traffic by class, which the
// aggregate does not judge.
func (e *Engine) countDropped(src *Source, pkts, bytes uint64) {
	if src.DroppedPackets == 0 {
		return
	}
	for c := range NumClasses {
		e.scratch.dropP[c] += float64(src.Packets[c]) * float64(src.DroppedPackets) / float64(max(pkts, 1))
		e.scratch.dropB[c] += float64(src.Bytes[c]) * float64(src.DroppedBytes) / float64(max(bytes, 1))
	}
}

// totals returns c.TotalPackets() and c.TotalBytes() in one pass (and
// without the copy of the arrays that ranging over them by value makes).
func totals(c *Counters) (pkts, bytes uint64) {
	for i := range c.Packets {
		pkts += c.Packets[i]
		bytes += c.Bytes[i]
	}
	return pkts, bytes
}

// judgeSourceSlow judges a source the fast path in judgeSource does not:
// s is its state (caught up) or nil, h its hash, pkts and bytes its totals.
func (e *Engine) judgeSourceSlow(src *Source, s *keyState, h uint64, pkts, bytes uint64) {
	thr := &e.cfg.Source
	passedP := float64(pkts - min(src.DroppedPackets, pkts))
	passedB := float64(bytes - min(src.DroppedBytes, bytes))
	var flagged, legit bool
	switch {
	case s != nil && s.flags&flagBanned != 0:
		// Banned by the detector: judged on what it sends, dropped or not,
		// so the attack ends only when the source stops.
		totP, totB := float64(pkts)/e.scratch.secs, float64(bytes)*8/e.scratch.secs
		e.bans.observe(src.Addr.Prefix(), totP, e.tick)
		e.followAttack(s, ScopeSource, src.Addr.String(), thr, &e.srcPrior, totP, totB)
		flagged = true
	case src.DroppedPackets > 0:
		// Dropped by a covering prefix rule: nothing to learn from it.
		flagged = true
	default:
		pps, bps := passedP/e.scratch.secs, passedB*8/e.scratch.secs
		pb, bb := baselines(s, &e.srcPrior)
		over := e.overThreshold(thr, &pb, &bb, pps, bps)
		if s == nil && over {
			s = e.sources.addHashed(src.Addr, h, e.tick)
		}
		if s != nil && (over || s.flags&flagAnomalous != 0) {
			flagged = e.stepAttack(s, ScopeSource, src.Addr.Prefix(), thr, &pb, &bb, pps, bps, over)
		}
		if !flagged && !over {
			if s == nil {
				// A source is remembered from its second tick on: a
				// spoofed flood's one-packet sources would otherwise each
				// cost a table insertion and, soon after, an eviction.
				// Until it is established it is judged against the prior
				// anyway.
				if !e.seen.testAndSet(src.Addr) || e.sources.len()+e.prefixes.len() >= e.cfg.Tracking.MaxKeys {
					e.srcPrior.add(pps)
					break
				}
				s = e.sources.addHashed(src.Addr, h, e.tick)
			}
			// Established and within its band: legitimate-looking, which
			// no single ban may drop much of (see Bans.MaxLegitShare).
			legit = s.samples >= established
			e.learn(s, pps, bps)
			e.srcPrior.add(pps)
			if legit {
				e.scratch.legitPPS += pps
			}
		}
	}
	e.countDropped(src, pkts, bytes)
	if flagged {
		for c := range NumClasses {
			p := float64(src.Packets[c]) / e.scratch.secs
			b := float64(src.Bytes[c]) * 8 / e.scratch.secs
			if src.DroppedPackets > 0 {
				// Passed share only; dropped traffic never reached the host.
				p *= passedP / float64(max(pkts, 1))
				b *= passedB / float64(max(bytes, 1))
			}
			e.scratch.flagged[c] += p
			e.scratch.flagBPS[c] += b
		}
	}
	if s != nil {
		e.noteTripLevel(src.Addr, s)
	}
	e.accumulatePrefixes(src, pkts, bytes, flagged, legit)
}

// learn folds a normal sample into a key's baseline.
func (e *Engine) learn(s *keyState, pps, bps float64) {
	if s.samples == 0 {
		s.pps.mean, s.bps.mean = pps, bps
	} else {
		s.pps.update(pps, e.alpha)
		s.bps.update(bps, e.alpha)
	}
	if s.samples < ^uint16(0) {
		s.samples++
	}
	s.lastTick = e.tick
}

// stepAttack advances a source or prefix's attack state with this tick's
// rate and reports whether its traffic counts as attack traffic this tick.
func (e *Engine) stepAttack(s *keyState, scope Scope, p netip.Prefix, thr *Thresholds, pb, bb *ewma, pps, bps float64, over bool) bool {
	s.lastTick = e.tick
	target := p.Addr().String()
	if scope == ScopePrefix {
		target = p.String()
	}
	if s.flags&flagAnomalous == 0 {
		if !over {
			s.over = 0
			return false
		}
		if s.over < 255 {
			s.over++
		}
		if int(s.over) < thr.EnterTicks {
			return false
		}
		s.flags |= flagAnomalous
		s.flags &^= flagNoBan
		s.calm = 0
		e.list(s, scope, p)
		reason := e.overReason(thr, pb, bb, pps, bps)
		ev := e.emit(AttackStart, scope, target, pps, bps, pb.mean, reason)
		if why := e.banKey(s, scope, p, thr, pb, pps, bps, reason); why != "" {
			e.scratch.events[ev].Reason += "; not banned: " + why
		}
		return true
	}
	// Anomalous and not banned: refused, or unbanned while still active.
	if e.calm(thr, pb, bb, pps, bps) {
		e.countCalm(s, scope, target, pps, bps, pb.mean, thr)
		return false
	}
	s.calm = 0
	if over && s.flags&flagNoBan == 0 {
		e.banKey(s, scope, p, thr, pb, pps, bps, e.overReason(thr, pb, bb, pps, bps))
	}
	return true
}

// banKey bans an anomalous source or prefix, returning why not if it could
// not. A refusal is remembered until the key's next attack.
func (e *Engine) banKey(s *keyState, scope Scope, p netip.Prefix, thr *Thresholds, pb *ewma, pps, bps float64, reason string) string {
	hold := threshold(pb, thr.K, thr.Ratio, thr.FloorPPS) * thr.ExitFraction
	if e.scratch.warm {
		hold = thr.CeilingPPS * thr.ExitFraction
	}
	if ok, why := e.tryBan(p, scope, pps, bps, pb.mean, hold, reason); !ok {
		// The allowlist does not change with time: stop asking. Other
		// refusals (cap, pardon, install failure) may clear, so the next
		// tick over threshold asks again.
		if e.allowlisted(p) {
			s.flags |= flagNoBan
		}
		return why
	}
	s.flags |= flagBanned
	return ""
}

// list puts a key on the list of keys followed even in ticks it is absent.
func (e *Engine) list(s *keyState, scope Scope, p netip.Prefix) {
	if scope == ScopeSource {
		e.listSource(s, AddrFrom(p.Addr()))
		return
	}
	if s.flags&flagListed == 0 {
		s.flags |= flagListed
		e.anomPfx = append(e.anomPfx, e.prefixKeyOf(p))
	}
}

// followAttack tracks an attack by a banned key, judged on its total rate.
func (e *Engine) followAttack(s *keyState, scope Scope, target string, thr *Thresholds, p *prior, pps, bps float64) {
	pb, bb := baselines(s, p)
	over := e.overThreshold(thr, &pb, &bb, pps, bps)
	if s.flags&flagAnomalous == 0 {
		if over {
			// A new wave from a key whose ban still holds.
			s.flags |= flagAnomalous
			s.calm = 0
			e.emit(AttackStart, scope, target, pps, bps, pb.mean, e.overReason(thr, &pb, &bb, pps, bps)+"; already banned, still dropped")
		}
		return
	}
	if e.calm(thr, &pb, &bb, pps, bps) {
		e.countCalm(s, scope, target, pps, bps, pb.mean, thr)
	} else {
		s.calm = 0
	}
}

func (e *Engine) countCalm(s *keyState, scope Scope, target string, pps, bps, base float64, thr *Thresholds) {
	if s.calm < 255 {
		s.calm++
	}
	if int(s.calm) >= thr.ExitTicks {
		s.flags &^= flagAnomalous
		s.over, s.calm = 0, 0
		e.emit(AttackEnd, scope, target, pps, bps, base, fmt.Sprintf("below exit level for %d ticks", thr.ExitTicks))
	}
}

// absentSources moves listed sources (anomalous or banned) that sent
// nothing this tick towards the end of their attack, and drops from the list
// those that are neither any more.
func (e *Engine) absentSources() {
	keep := e.anomSrc[:0]
	for _, a := range e.anomSrc {
		s := e.sources.get(a)
		if s == nil {
			continue
		}
		if s.flags&(flagAnomalous|flagBanned) == 0 {
			s.flags &^= flagListed
			continue
		}
		keep = append(keep, a)
		if s.lastTick == e.tick {
			continue
		}
		s.lastTick = e.tick
		if s.flags&flagAnomalous != 0 {
			pb, _ := baselines(s, &e.srcPrior)
			e.countCalm(s, ScopeSource, a.String(), 0, 0, pb.mean, &e.cfg.Source)
		}
	}
	e.anomSrc = keep
}

// listSource puts a source on the list of keys followed even when absent.
func (e *Engine) listSource(s *keyState, a Addr) {
	if s.flags&flagListed == 0 {
		s.flags |= flagListed
		e.anomSrc = append(e.anomSrc, a)
	}
}

func (e *Engine) overReason(thr *Thresholds, pb, bb *ewma, pps, bps float64) string {
	if e.scratch.warm {
		return fmt.Sprintf("over the warm-up ceiling (%.0f pps or %.0f bps)", thr.CeilingPPS, thr.CeilingBPS)
	}
	if pps > thr.FloorPPS && pps > pb.mean*thr.Ratio && pps > pb.mean+thr.K*pb.sigma() {
		return fmt.Sprintf("%.0f pps over max(baseline %.1f + %g·σ %.1f, %g× baseline, floor %.0f)",
			pps, pb.mean, thr.K, pb.sigma(), thr.Ratio, thr.FloorPPS)
	}
	return fmt.Sprintf("%.0f bps over max(baseline %.0f + %g·σ %.0f, %g× baseline, floor %.0f)",
		bps, bb.mean, thr.K, bb.sigma(), thr.Ratio, thr.FloorBPS)
}
