package detector

import (
	"bytes"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Trips (issue #17): the data plane counts each source's packets and bytes
// since the tick began and, the first time a source's count crosses its
// trip level in a tick, says so (the XDP program through its ring buffer,
// the replay's aggregator by calling Trip). Counts only grow within a tick,
// so a source whose count so far, taken over the whole tick, is over its
// threshold would be banned by the tick's end anyway: Trip bans it at once,
// by the same state machine, and the tick's end then follows it as banned.
// The levels are only a hint of when to ask: Trip judges again, so a level
// that is too low costs a refused trip, one too high a later ban (the
// tick's end), never a wrong one.

// TripLevel is the count within one tick (since the tick began) at which a
// source's tick-end judgement would find it over its threshold: Packets and
// Bytes (wire bytes), 0 meaning never by that measure.
type TripLevel struct{ Packets, Bytes uint64 }

// tripOwnMargin: a source gets a level of its own when its threshold is
// more than this factor over the global one. Below it the global level
// serves (a trip there that Trip finds under threshold is refused), so the
// kernel map holds only the sources that send far more than the rest.
const tripOwnMargin = 1.1

// tripBook holds the sources with levels of their own and what the data
// plane was last told of them.
type tripBook struct {
	// own: every source whose level is its own, tracked ones with
	// flagTripLevel set.
	own map[Addr]TripLevel
	// sent is what TripLevelChanges last reported; dirty lists, in the
	// order they first changed since then, the addresses whose entry in
	// own may differ from sent (inDirty dedups it).
	sent    map[Addr]TripLevel
	dirty   []Addr
	inDirty map[Addr]struct{}
	// events are the trips' events since the last Step, which returns
	// them first.
	events []Event
	// global caches GlobalTripLevel for the engine tick globalAt
	// (globalOK false: not computed yet, or the config changed).
	global   TripLevel
	globalAt uint32
	globalOK bool
}

func newTripBook() tripBook {
	return tripBook{own: make(map[Addr]TripLevel), sent: make(map[Addr]TripLevel), inDirty: make(map[Addr]struct{})}
}

func (b *tripBook) markDirty(a Addr) {
	if _, ok := b.inDirty[a]; !ok {
		b.inDirty[a] = struct{}{}
		b.dirty = append(b.dirty, a)
	}
}

// tripsOn reports whether one tick over threshold starts an attack, as a
// trip needs: with enter_ticks above 1 a tick over is not a ban.
func (e *Engine) tripsOn() bool { return e.cfg.Source.EnterTicks <= 1 }

// GlobalTripLevel is the level of every source without a level of its own:
// the source floor (FloorPPS, FloorBPS/8) times the tick length, or, when
// the prior baseline of unknown sources makes the threshold higher, that
// threshold; during the warm-up the ceilings times the tick. Zero (trips
// off) when Source.EnterTicks > 1 (one tick over is not a ban).
func (e *Engine) GlobalTripLevel() TripLevel {
	if !e.tripsOn() {
		return TripLevel{}
	}
	if !e.trip.globalOK || e.trip.globalAt != e.tick {
		e.trip.global = e.tripLevelOf(e.globalTripRates(e.tick < e.warmEnd))
		e.trip.globalAt, e.trip.globalOK = e.tick, true
	}
	return e.trip.global
}

// globalTripRates returns the thresholds (pps, bps) a source judged
// against the prior has: what judgeSourceSlow compares an unknown source's
// rates with (baselines with no state, of which bps has none).
func (e *Engine) globalTripRates(warm bool) (pps, bps float64) {
	t := &e.cfg.Source
	if warm {
		return t.CeilingPPS, t.CeilingBPS
	}
	pb := e.srcPrior.baseline()
	return threshold(&pb, t.K, t.Ratio, t.FloorPPS), t.FloorBPS
}

// tripLevelOf turns rate thresholds into counts within one tick.
func (e *Engine) tripLevelOf(pps, bps float64) TripLevel {
	secs := e.cfg.Tick.D().Seconds()
	return TripLevel{Packets: countLevel(pps, secs, 1), Bytes: countLevel(bps, secs, 8)}
}

// countLevel returns the least count n with float64(n)*unit/secs > thr,
// computed as the judgement computes a rate (so that rounding cannot make
// a trip at n be found under threshold), or 0 (never) past 2^62.
func countLevel(thr, secs, unit float64) uint64 {
	f := math.Floor(thr*secs/unit) + 1
	if !(f < 1<<62) { // also NaN
		return 0
	}
	n := uint64(max(f, 1))
	for float64(n)*unit/secs <= thr {
		n++
	}
	for n > 1 && float64(n-1)*unit/secs > thr {
		n--
	}
	return n
}

// TripLevel returns the level that applies to a: its own if it has one
// (TripLevelChanges), else the global one. Allowlisted addresses and
// sources already banned: zero (never).
func (e *Engine) TripLevel(a Addr) TripLevel {
	if !e.tripsOn() {
		return TripLevel{}
	}
	if l, ok := e.trip.own[a]; ok {
		return l
	}
	// Tracked banned and allowlisted sources have a zero level of their
	// own once judged; these catch the others (a ban adopted or made by
	// hand for an address not tracked, an allowlist just changed).
	if len(e.allow) > 0 || len(e.bans.idx) > 0 {
		p := a.Prefix()
		if _, ok := e.bans.idx[p]; ok || e.allowlisted(p) {
			return TripLevel{}
		}
	}
	return e.GlobalTripLevel()
}

// TripLevelChanges calls fn for each source whose own level was set,
// changed or removed (remove true) since the previous call, in the order
// they first changed: the live daemon mirrors them into a kernel map. A
// source has a level of its own when its tick-end threshold exceeds the
// global level by more than 10 %, or it is allowlisted or banned (level
// zero: never trip). Levels are worked out as Step judges each source, so
// a source's own level follows its baselines from the tick it is next seen.
func (e *Engine) TripLevelChanges(fn func(a Addr, l TripLevel, remove bool)) {
	b := &e.trip
	for _, a := range b.dirty {
		l, ok := b.own[a]
		prev, was := b.sent[a]
		switch {
		case ok && (!was || prev != l):
			b.sent[a] = l
			fn(a, l, false)
		case !ok && was:
			delete(b.sent, a)
			fn(a, TripLevel{}, true)
		}
		delete(b.inDirty, a)
	}
	b.dirty = b.dirty[:0]
}

// tripCompare sets, at the start of a Step, the rates above which a
// source's threshold earns it a level of its own in the next tick: the
// margin over the global level's rates (with the prior as it stands
// before this tick's update: close enough for a margin), or +Inf when the
// next tick is in the warm-up (every source has the ceilings then) or
// trips are off.
func (e *Engine) tripCompare() {
	e.scratch.tripCmpPPS, e.scratch.tripCmpBPS = math.Inf(1), math.Inf(1)
	if e.tripsOn() && e.tick+1 >= e.warmEnd {
		p, b := e.globalTripRates(false)
		e.scratch.tripCmpPPS, e.scratch.tripCmpBPS = p*tripOwnMargin, b*tripOwnMargin
	}
}

// tripMayOwn reports, without a square root, whether an established
// source's baselines may give it a threshold over the compare rates: the
// fast path in judgeSource asks it of every source. It has no false
// negatives where ownTripLevel's test is not at a rounding boundary.
func (e *Engine) tripMayOwn(s *keyState) bool {
	if s.samples < established {
		return false
	}
	t := &e.cfg.Source
	return overCmp(&s.pps, t, e.scratch.tripCmpPPS) || overCmp(&s.bps, t, e.scratch.tripCmpBPS)
}

// overCmp reports whether max(mean·ratio, mean + K·σ) > c.
func overCmp(b *ewma, t *Thresholds, c float64) bool {
	if b.mean*t.Ratio > c {
		return true
	}
	d := c - b.mean
	return d < 0 || t.K*t.K*b.variance > d*d
}

// ownTripLevel returns the level of its own a tracked source should have,
// if any (see TripLevelChanges).
func (e *Engine) ownTripLevel(a Addr, s *keyState) (TripLevel, bool) {
	if s.flags&(flagBanned|flagNoBan) != 0 || e.allowlisted(a.Prefix()) {
		return TripLevel{}, true
	}
	if !e.tripsOn() || s.samples < established {
		return TripLevel{}, false
	}
	t := &e.cfg.Source
	pps := threshold(&s.pps, t.K, t.Ratio, t.FloorPPS)
	bps := threshold(&s.bps, t.K, t.Ratio, t.FloorBPS)
	if pps > e.scratch.tripCmpPPS || bps > e.scratch.tripCmpBPS {
		return e.tripLevelOf(pps, bps), true
	}
	return TripLevel{}, false
}

// noteTripLevel brings a tracked source's own level up to date.
func (e *Engine) noteTripLevel(a Addr, s *keyState) {
	l, own := e.ownTripLevel(a, s)
	had := s.flags&flagTripLevel != 0
	switch {
	case !own && had:
		s.flags &^= flagTripLevel
		delete(e.trip.own, a)
		e.trip.markDirty(a)
	case own && (!had || e.trip.own[a] != l):
		s.flags |= flagTripLevel
		e.trip.own[a] = l
		e.trip.markDirty(a)
	}
}

// forget drops the own level of a source the table forgets.
func (b *tripBook) forget(a Addr) {
	if _, ok := b.own[a]; ok {
		delete(b.own, a)
		b.markDirty(a)
	}
}

// noteTripPrefix brings up to date the own level of the source a ban or
// unban of p names, if p is one address and tracked.
func (e *Engine) noteTripPrefix(p netip.Prefix) {
	if !p.IsSingleIP() {
		return
	}
	a := AddrFrom(p.Addr())
	if s := e.sources.get(a); s != nil {
		e.noteTripLevel(a, s)
	}
}

// Trip judges a source mid-tick: src holds its counts since the tick began
// (so far), at the time it crossed its level. Counts only grow within a
// tick, so if src's counts, taken over the whole tick length, are over its
// threshold, the tick-end judgement would ban it (with enter_ticks 1): Trip
// bans it now, through the same path as judgeSourceSlow (stepAttack, with
// the allowlist, warm-up ceilings, ban cap and pardons), with the events'
// Time = at, and returns whether it banned. The events are returned by the
// next Step, before that tick's own events; at the tick's end the source
// is then followed as banned (no second ban or attack_start).
//
// What Trip refuses costs nothing: an allowlisted or already banned
// source, one with dropped packets (the tick's end does not judge those
// as a source either: a covering rule holds them), one under threshold.
// A ban refused further on (the cap, a pardon) leaves the attack started,
// as the tick's end would; the tick's end asks for the ban again.
func (e *Engine) Trip(src *Source, at time.Time) bool {
	thr := &e.cfg.Source
	if !e.tripsOn() || src.DroppedPackets > 0 {
		return false
	}
	p := src.Addr.Prefix()
	if e.allowlisted(p) {
		return false
	}
	s, h := e.sources.lookup(src.Addr)
	if s != nil && s.flags&(flagBanned|flagNoBan) != 0 {
		return false
	}
	// Judge as the Step of this tick (e.tick) will, at its length, but
	// at time at, with the events kept for that Step: the scratch is
	// Step's, and what the last Step returned must hold until the next.
	saved := e.scratch
	defer func() {
		e.trip.events = e.scratch.events
		e.scratch = saved
	}()
	e.scratch.secs = e.cfg.Tick.D().Seconds()
	e.scratch.invSecs = 0
	e.scratch.warm = e.tick < e.warmEnd
	e.scratch.now = at
	e.scratch.banLegitShare = 0
	e.scratch.events = e.trip.events
	e.tripCompare()
	if s != nil {
		e.catchUp(s)
	}
	pkts, bytes := totals(&src.Counters)
	pps, bps := float64(pkts)/e.scratch.secs, float64(bytes)*8/e.scratch.secs
	pb, bb := baselines(s, &e.srcPrior)
	if !e.overThreshold(thr, &pb, &bb, pps, bps) {
		return false
	}
	if s == nil {
		s = e.sources.addHashed(src.Addr, h, e.tick)
	}
	// Judged over the whole tick (a lower bound of its rate, which is
	// what the tick's end would find at least), reported at the rate it
	// sent since the tick began: a flood tripped 50 ms into the tick at
	// 20 kpps is a 20 kpps attack, not a 1 kpps one, on the page.
	if el := at.Sub(saved.now).Seconds(); el > 0 && el < e.scratch.secs {
		pps, bps = float64(pkts)/el, float64(bytes)*8/el
	}
	e.stepAttack(s, ScopeSource, p, thr, &pb, &bb, pps, bps, true)
	e.noteTripLevel(src.Addr, s)
	return s.flags&flagBanned != 0
}

// restoreTripLevels gives the engine's restored sources their own levels,
// keeping what old, the book before the restore, had reported, so that
// TripLevelChanges tells the data plane only what changed (a restarted
// daemon's map keeps the levels its baselines give). Trips not yet
// returned by a Step are kept too. It looks at every restored source, once.
func (e *Engine) restoreTripLevels(old *tripBook) {
	e.trip.sent, e.trip.events = old.sent, old.events
	// In address order: the maps' orders are not deterministic.
	var addrs []Addr
	for a := range old.sent {
		addrs = append(addrs, a)
	}
	addrs = append(addrs, old.dirty...)
	sortAddrs(addrs)
	for _, a := range addrs {
		e.trip.markDirty(a)
	}
	addrs = addrs[:0]
	e.tripCompare()
	e.sources.all(func(a Addr, s *keyState) {
		if s.flags&(flagBanned|flagNoBan) != 0 || e.tripMayOwn(s) {
			addrs = append(addrs, a)
		}
	})
	sortAddrs(addrs)
	for _, a := range addrs {
		e.noteTripLevel(a, e.sources.get(a))
	}
}

func sortAddrs(addrs []Addr) {
	slices.SortFunc(addrs, func(x, y Addr) int { return bytes.Compare(x[:], y[:]) })
}
