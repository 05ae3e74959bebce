package detector

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Rule is a drop rule the detector asks the data plane to install.
type Rule struct {
	Prefix netip.Prefix
	// TTL is the rule's lifetime from Expires-TTL; the data plane must stop
	// dropping by itself once it has passed.
	TTL time.Duration
	// Expires is on the tick clock (packet time in replay, wall clock live).
	Expires time.Time
}

// Enforcer is the data plane as the detector sees it: the kernel rule writer
// live, a simulated rule table in replay. Ban installs or extends a rule.
type Enforcer interface {
	Ban(r Rule) error
	Unban(p netip.Prefix) error
}

// SignatureEnforcer is a data plane that also enforces signature rules
// (the kernel and the replay's simulated plane both are). A rule is named
// by its Match: Install adds or replaces (renews) it, Remove deletes it.
// SetExempt replaces the set of sources no signature rule may drop.
type SignatureEnforcer interface {
	InstallSignature(r SignatureRule) error
	RemoveSignature(m Match) error
	SetExempt(addrs []Addr) error
}

// aggAll indexes the all-traffic aggregate after the protocol classes.
const aggAll = int(NumClasses)

// aggState is an aggregate key: all traffic, or one protocol class.
type aggState struct {
	pps, bps   ewma
	samples    uint32
	over, calm int
	anomalous  bool
	peakPPS    float64
}

// prefixKey is a source prefix: the masked address and the prefix length
// within its family (24 for an IPv4 /24).
type prefixKey struct {
	addr Addr
	bits uint8
}

func (k prefixKey) prefix() netip.Prefix {
	a := k.addr.Netip()
	return netip.PrefixFrom(a, int(k.bits))
}

// prefixSlot is one tracked prefix length of one family.
type prefixSlot struct {
	v4   bool
	bits uint8
}

// prefixAcc sums one prefix's sources within a tick. The fields every
// source adds to come first.
type prefixAcc struct {
	key     prefixKey
	slot    uint8
	sources uint32
	legit   uint64 // packets of legitimate-looking sources
	total   Counters
	flagged [NumClasses]uint64 // passed packets of flagged sources
	flagB   [NumClasses]uint64 // and their bytes
}

// Engine is the detector. It is not safe for concurrent use; one goroutine
// feeds it ticks in order.
type Engine struct {
	cfg     Config
	enf     Enforcer
	alpha   float64
	decay   decayTable
	tick    uint32 // ticks processed so far
	warmEnd uint32 // first tick after the warm-up

	sources  sourceTable
	seen     seenOnce
	prefixes table[prefixKey]
	agg      [NumClasses + 1]aggState
	srcPrior prior
	slots    []prefixSlot
	pfxPrior []prior

	// slots4 and slots6 list the indexes in slots of each family.
	slots4, slots6 []uint8

	// scratch describes the tick being judged; see tickScratch.
	scratch tickScratch
	// anomSrc and anomPfx list the keys followed even in ticks they are
	// absent (anomalous or banned); they live across ticks.
	anomSrc []Addr
	anomPfx []prefixKey

	bans banBook
	// sig holds signature rules and what deriving them needs.
	sig        sigState
	allow      []netip.Prefix // configured allowlist, then extraAllow
	extraAllow []netip.Prefix
	stats      Stats
}

// tickScratch is the engine's per-tick scratch: what Step works out about
// the tick it is judging (its length, clock, warm-up state) and the slices,
// sets and sums it fills while judging it. Each field is set or reset within
// a Step before it is read (most at its start; cands and ports when the
// distributed-attack analysis begins), so none of it is valid beyond one
// Step, except that the events Step returns and the prefixes TickPrefixes
// reads hold until the next Step. The fields are kept in the Engine and
// reused, rather than made each tick, to keep Step allocation-free in the
// steady state.
type tickScratch struct {
	secs float64
	// invSecs is 1/secs when secs is a power of two (the default 1s
	// tick), else 0: dividing by a power of two and multiplying by its
	// inverse give the same result, and a multiplication is cheaper.
	invSecs float64
	warm    bool
	// A source at or under both quiet rates cannot be over threshold:
	// the source floors, or the ceilings in the warm-up.
	quietPPS, quietBPS float64
	now                time.Time
	tickPfx            []tickPrefixes          // this tick's prefixes, one set per slot
	flagged            [NumClasses + 1]float64 // pps of flagged passed traffic
	flagBPS            [NumClasses + 1]float64
	dropP              [NumClasses]float64 // dropped packets by class, from sources
	dropB              [NumClasses]float64
	// legitPPS is this tick's rate of established sources within their
	// band; banLegitShare is the share of it the ban being judged would
	// drop (set around a prefix's judgement).
	legitPPS      float64
	banLegitShare float64
	events        []Event
	cands         []candidate
	ports         map[uint16]float64
}

// Stats are running totals for summaries and metrics.
type Stats struct {
	Ticks          uint64
	TrackedSources int
	TrackedKeys    int
	ActiveBans     int
	BansIssued     uint64
	BansRefused    uint64
	Unbans         uint64
	PriorPPS       float64
}

// New returns an Engine with cfg (validated here) writing rules through enf.
func New(cfg Config, enf Enforcer) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if enf == nil {
		return nil, fmt.Errorf("new detector: nil enforcer")
	}
	tick := cfg.Tick.D()
	alpha := alphaFor(float64(cfg.HalfLife.D()) / float64(tick))
	e := &Engine{
		cfg: cfg, enf: enf, alpha: alpha, decay: newDecayTable(alpha),
		warmEnd:  uint32((cfg.WarmUp.D() + tick - 1) / tick),
		sources:  newSourceTable(),
		seen:     newSeenOnce(20),
		prefixes: newTable[prefixKey](),
		scratch:  tickScratch{ports: make(map[uint16]float64)},
		bans:     newBanBook(),
		sig:      newSigState(),
	}
	// Longest prefixes first within each family, so a flagged /64 is taken
	// out of its /48 before the /48 is judged.
	v4 := slices.Clone(cfg.Prefixes.IPv4)
	v6 := slices.Clone(cfg.Prefixes.IPv6)
	slices.Sort(v4)
	slices.Sort(v6)
	for _, l := range slices.Backward(slices.Compact(v4)) {
		e.slots = append(e.slots, prefixSlot{v4: true, bits: uint8(l)})
	}
	for _, l := range slices.Backward(slices.Compact(v6)) {
		e.slots = append(e.slots, prefixSlot{bits: uint8(l)})
	}
	e.pfxPrior = make([]prior, len(e.slots))
	for i, sl := range e.slots {
		if sl.v4 {
			e.slots4 = append(e.slots4, uint8(i))
		} else {
			e.slots6 = append(e.slots6, uint8(i))
		}
		e.scratch.tickPfx = append(e.scratch.tickPfx, newTickPrefixes(i, sl))
	}
	for _, c := range cfg.Bans.Allowlist {
		e.allow = append(e.allow, c.Prefix)
	}
	return e, nil
}

// Config returns the configuration the engine runs with.
func (e *Engine) Config() Config { return e.cfg }

// Stats returns running totals.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Ticks = uint64(e.tick)
	s.TrackedSources = e.sources.len()
	s.TrackedKeys = e.sources.len() + e.prefixes.len()
	s.ActiveBans = len(e.bans.list)
	s.PriorPPS = e.srcPrior.value
	return s
}

// Step judges one tick and returns the events it caused, in a deterministic
// order. The returned slice is reused by the next call.
func (e *Engine) Step(t *Tick) []Event {
	e.scratch.events = e.scratch.events[:0]
	e.scratch.secs = t.Length.Seconds()
	if e.scratch.secs <= 0 {
		e.scratch.secs = e.cfg.Tick.D().Seconds()
	}
	e.scratch.invSecs = 0
	if frac, _ := math.Frexp(e.scratch.secs); frac == 0.5 {
		e.scratch.invSecs = 1 / e.scratch.secs
	}
	e.scratch.now = t.End()
	e.scratch.warm = e.tick < e.warmEnd
	e.scratch.quietPPS, e.scratch.quietBPS = e.cfg.Source.FloorPPS, e.cfg.Source.FloorBPS
	if e.scratch.warm {
		e.scratch.quietPPS, e.scratch.quietBPS = e.cfg.Source.CeilingPPS, e.cfg.Source.CeilingBPS
	}
	e.scratch.flagged = [NumClasses + 1]float64{}
	e.scratch.flagBPS = [NumClasses + 1]float64{}
	e.scratch.dropP = [NumClasses]float64{}
	e.scratch.legitPPS = 0
	e.scratch.dropB = [NumClasses]float64{}
	e.resetPrefixes()
	e.tickFeatures(t)

	// Sources are looked up lookAhead at a time before they are judged: the
	// lookups are independent, so their cache misses (at a million sources
	// nearly every lookup misses) overlap instead of stalling each
	// judgement in turn.
	var slots [lookAhead]int32
	for srcs := t.Sources; len(srcs) > 0; {
		batch := srcs[:min(lookAhead, len(srcs))]
		srcs = srcs[len(batch):]
		for i := range batch {
			slots[i] = e.sources.find(batch[i].Addr, e.sources.hash(batch[i].Addr))
		}
		for i := range batch {
			e.judgeSource(&batch[i], slots[i])
		}
	}
	e.absentSources()
	e.judgePrefixes()
	e.absentPrefixes()
	e.judgeAggregate(t)
	e.maintainBans()
	e.maintainSignatures(t)
	e.learnFeatures(t)

	e.srcPrior.endTick(e.cfg.PriorQuantile, e.alpha)
	for i := range e.pfxPrior {
		e.pfxPrior[i].endTick(e.cfg.PriorQuantile, e.alpha)
	}
	ticks := func(d Duration) uint32 { return uint32(d.D() / e.cfg.Tick.D()) }
	idle, probation := ticks(e.cfg.Tracking.IdleTimeout), ticks(e.cfg.Tracking.ProbationTimeout)
	// Sweep a bounded slice of each table per tick: the whole table is
	// covered every 64 ticks without a per-tick pause proportional to it.
	e.sources.expire(e.tick, len(e.sources.recs.slots)/64+64, idle, probation)
	e.prefixes.expire(e.tick, len(e.prefixes.slots)/64+64, idle, probation)
	e.tick++
	sortEvents(e.scratch.events)
	return e.scratch.events
}

func (e *Engine) resetPrefixes() {
	for i := range e.scratch.tickPfx {
		e.scratch.tickPfx[i].reset()
	}
}

// perSec returns v/e.scratch.secs.
func (e *Engine) perSec(v float64) float64 {
	if e.scratch.invSecs != 0 {
		return v * e.scratch.invSecs
	}
	return v / e.scratch.secs
}

// catchUp folds in the zero-rate ticks a key was absent for.
func (e *Engine) catchUp(s *keyState) {
	// Small enough to inline: most keys were seen in the last tick.
	if e.tick-s.lastTick > 1 {
		e.catchUpGap(s)
	}
	s.lastTick = e.tick
}

func (e *Engine) catchUpGap(s *keyState) {
	gap := e.tick - s.lastTick
	// Absent means under threshold: the run of over-threshold ticks is
	// broken.
	s.over = 0
	if s.samples > 0 {
		dn := e.decay.pow(gap - 1)
		s.pps.decayIdle(dn)
		s.bps.decayIdle(dn)
	}
}

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

// lookAhead is how many sources Step looks up ahead of judging them.
const lookAhead = 32

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
			e.accumulatePrefixes(src, pkts, bytes, false, legit)
			return
		}
	}
	e.judgeSourceSlow(src, s, 0, pkts, bytes)
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
	if src.DroppedPackets > 0 {
		for c := range NumClasses {
			e.scratch.dropP[c] += float64(src.Packets[c]) * float64(src.DroppedPackets) / float64(max(pkts, 1))
			e.scratch.dropB[c] += float64(src.Bytes[c]) * float64(src.DroppedBytes) / float64(max(bytes, 1))
		}
	}
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

// emit appends an event and returns its index.
func (e *Engine) emit(kind EventKind, scope Scope, target string, pps, bps, base float64, reason string) int {
	ev := Event{Time: e.scratch.now, Kind: kind, Scope: scope, Target: target, PPS: pps, BPS: bps, BaselinePPS: base, Reason: reason}
	if scope != ScopeAggregate {
		if p, err := netip.ParsePrefix(target); err == nil {
			ev.Prefix = p
		} else if a, err := netip.ParseAddr(target); err == nil {
			ev.Prefix = netip.PrefixFrom(a, a.BitLen())
		}
	}
	e.scratch.events = append(e.scratch.events, ev)
	return len(e.scratch.events) - 1
}

// sortEvents orders events: attack starts, bans, unbans, attack ends; within
// a kind by scope and target. Insertion order is deterministic already; this
// makes it readable too.
func sortEvents(evs []Event) {
	rank := map[EventKind]int{AttackStart: 0, Ban: 1, Unban: 2, AttackEnd: 3}
	slices.SortStableFunc(evs, func(a, b Event) int {
		if r := rank[a.Kind] - rank[b.Kind]; r != 0 {
			return r
		}
		return int(a.Scope) - int(b.Scope)
	})
}

// AggregateBaseline returns the all-traffic baseline in packets per second.
func (e *Engine) AggregateBaseline() float64 { return e.agg[aggAll].pps.mean }

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
