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
	key       prefixKey
	slot      uint8
	sources   uint32
	probation uint32 // of sources, the probation records (Tick.Probation)
	legit     uint64 // packets of legitimate-looking sources
	total     Counters
	flagged   [NumClasses]uint64 // passed packets of flagged sources
	flagB     [NumClasses]uint64 // and their bytes
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
	// trip holds the trip levels of sources and the trips' events (trip.go).
	trip tripBook
	// sig holds signature rules and what deriving them needs.
	sig        sigState
	allow      []netip.Prefix // configured allowlist, then extraAllow
	extraAllow []netip.Prefix
	// allowChanged: the allowlist changed (a reload, the host's addresses,
	// a restored snapshot); the next Step lifts the bans it now covers and
	// re-sends the exempt sources of signature rules.
	allowChanged bool
	stats        Stats
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
	// tripCmpPPS and tripCmpBPS: a source whose threshold is over either
	// gets a trip level of its own (tripCompare).
	tripCmpPPS, tripCmpBPS float64
	ports                  map[uint16]float64
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
		trip:     newTripBook(),
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

// lookAhead is how many sources Step looks up ahead of judging them.
const lookAhead = 32

// Step judges one tick and returns the events it caused, in a deterministic
// order: first those of the trips since the last Step (Trip), in the order
// they happened, then the tick's own. The returned slice is reused by the
// next call.
func (e *Engine) Step(t *Tick) []Event {
	e.scratch.events = append(e.scratch.events[:0], e.trip.events...)
	tripped := len(e.scratch.events)
	e.trip.events = e.trip.events[:0]
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
	e.tripCompare()
	e.resetPrefixes()
	if e.allowChanged {
		e.applyAllowlist()
	}
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
	// Frames of sources on probation (no entry yet) count in their
	// prefixes, as if from sources seen for the first time, and what
	// rules dropped of them is not judged in the aggregate; they get no
	// baseline of their own until admitted.
	for i := range t.Probation {
		p := &t.Probation[i]
		pkts, bytes := totals(&p.Counters)
		e.countDropped(p, pkts, bytes)
		e.accumulateProbation(p)
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
	e.sources.expire(e.tick, len(e.sources.recs.slots)/64+64, idle, probation, &e.trip)
	e.prefixes.expire(e.tick, len(e.prefixes.slots)/64+64, idle, probation)
	e.tick++
	sortEvents(e.scratch.events[tripped:])
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
