// Package report records a replay tick by tick and writes it as one
// self-contained HTML page: the aggregate rate against its baseline band,
// the rate per protocol class, attack windows, ban and unban markers (all
// drawn as inline SVG by this package), tables of the attacks and of the
// banned targets, and the summary numbers. The page loads nothing: no
// scripts, fonts, styles or images from elsewhere.
package report

import (
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// DefaultMaxPoints is the most points a chart series keeps by default.
const DefaultMaxPoints = 1500

// Options configure a Recorder.
type Options struct {
	// WarmUp is the detector's warm-up, counted from the first tick. Its
	// thresholds are the hard ceilings, so the baseline band is not drawn
	// during it.
	WarmUp time.Duration
	// MaxPoints bounds the points of each series (default DefaultMaxPoints,
	// at least 16). Longer replays are downsampled to buckets of several
	// ticks that keep each series' maximum, so peaks survive.
	MaxPoints int
}

// Series indexes in a bucket.
const (
	sPPS        = iota // all packets per second, dropped or not
	sBPS               // all bytes per second
	sDroppedPPS        // packets per second dropped by a ban
	sDroppedBPS        // bytes per second dropped
	sMean              // baseline mean of "all" in pps
	sThreshold         // "all" threshold in pps, NaN during the warm-up
	sClass             // first of detector.NumClasses per-class pps series
	numSeries   = sClass + int(detector.NumClasses)
)

// bucket is one or more consecutive ticks: each series holds its maximum
// over them (NaN when no tick had a value).
type bucket struct {
	start, end time.Time
	ticks      int
	v          [numSeries]float64
}

func (b *bucket) merge(o *bucket) {
	b.end = o.end
	b.ticks += o.ticks
	for i := range b.v {
		b.v[i] = maxNaN(b.v[i], o.v[i])
	}
}

// maxNaN is the larger of a and b, ignoring NaN.
func maxNaN(a, b float64) float64 {
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return max(a, b)
}

// Attack is one attack as the detector reported it.
type Attack struct {
	// Detected is the end of the tick the attack was detected in, Began the
	// start of that tick, Ended the time of its end event (zero if it was
	// still going at the end of the replay).
	Detected, Began, Ended time.Time
	Scope                  detector.Scope
	// Target is an address, a CIDR or "*"; Class the class of an aggregate
	// attack.
	Target, Class string
	// PeakPPS is the highest rate of the target over the attack's ticks
	// (dropped packets included); BaselinePPS its baseline at detection.
	PeakPPS, BaselinePPS float64
	Reason               string
}

// Banned is one ban target over the replay: it may be banned several
// times.
type Banned struct {
	Target      string
	Scope       detector.Scope
	FirstBanned time.Time
	Times       int
	// TTL is the lifetime of the last ban; Lifted the time of the last
	// unban, zero if the target was still banned at the end.
	TTL    time.Duration
	Lifted time.Time
	DryRun bool
	// DroppedPackets and DroppedBytes are the traffic its rule dropped.
	DroppedPackets, DroppedBytes uint64
}

// marker is the bans or unbans decided in one tick.
type marker struct {
	at      time.Time
	unban   bool
	count   int
	targets []string // the first few
}

// maxMarkerTargets is how many targets a marker names.
const maxMarkerTargets = 8

// Recorder collects what a report shows. Feed it every tick with Observe,
// then write the page with WriteHTML. It is not safe for concurrent use.
type Recorder struct {
	opt     Options
	warmEnd time.Time

	buckets []bucket
	width   int // ticks per bucket
	ticks   uint64
	first   time.Time
	last    time.Time
	peakPPS float64
	peakAt  time.Time
	peakBPS float64

	attacks []Attack
	open    map[attackKey]int // attacks still going, by key, to index in attacks
	openIdx prefixIndex       // open source and prefix attacks, by target
	touched []int             // open attacks with traffic this tick
	tickPk  map[int]uint64

	banned    []Banned
	bannedIdx map[string]int
	banIdx    prefixIndex // every ban target, to attribute drops
	markers   []marker
	started   int
	bans      int
	unbans    int

	incidents []incident // from Page
	paged     bool       // Page is in use: show the incidents table
}

type attackKey struct {
	scope         detector.Scope
	target, class string
}

// NewRecorder returns an empty Recorder.
func NewRecorder(opt Options) *Recorder {
	if opt.MaxPoints == 0 {
		opt.MaxPoints = DefaultMaxPoints
	}
	opt.MaxPoints = max(opt.MaxPoints, 16)
	return &Recorder{
		opt:       opt,
		width:     1,
		open:      make(map[attackKey]int),
		openIdx:   newPrefixIndex(),
		tickPk:    make(map[int]uint64),
		bannedIdx: make(map[string]int),
		banIdx:    newPrefixIndex(),
	}
}

// Observe records one tick, the events the detector decided for it and its
// aggregate baselines after the tick (detector.Engine.Baselines: "all"
// first, then each class).
func (r *Recorder) Observe(t *detector.Tick, evs []detector.Event, baselines []detector.Baseline) {
	if r.ticks == 0 {
		r.first = t.Start
		r.warmEnd = t.Start.Add(r.opt.WarmUp)
	}
	r.ticks++
	if t.End().After(r.last) {
		r.last = t.End()
	}
	secs := t.Length.Seconds()
	if secs <= 0 {
		secs = 1
	}
	b := bucket{start: t.Start, end: t.End(), ticks: 1}
	b.v[sPPS] = float64(t.Total.TotalPackets()) / secs
	b.v[sBPS] = float64(t.Total.TotalBytes()) / secs
	b.v[sDroppedPPS] = float64(t.Total.DroppedPackets) / secs
	b.v[sDroppedBPS] = float64(t.Total.DroppedBytes) / secs
	for c := range detector.NumClasses {
		b.v[sClass+int(c)] = float64(t.Total.Packets[c]) / secs
	}
	b.v[sMean], b.v[sThreshold] = math.NaN(), math.NaN()
	for _, bl := range baselines {
		if bl.Class != "all" || !bl.Learnt {
			continue
		}
		b.v[sMean] = bl.MeanPPS
		if !t.Start.Before(r.warmEnd) { // judged after the warm-up
			b.v[sThreshold] = bl.ThresholdPPS
		}
	}
	if b.v[sPPS] > r.peakPPS {
		r.peakPPS, r.peakAt = b.v[sPPS], t.Start
	}
	r.peakBPS = max(r.peakBPS, b.v[sBPS])
	r.add(b)

	r.events(t, evs)
	r.scanSources(t, secs)
	// Aggregate attacks peak at their class's rate.
	for k, i := range r.open {
		if k.scope != detector.ScopeAggregate {
			continue
		}
		pps := b.v[sPPS]
		for c := range detector.NumClasses {
			if c.String() == k.class {
				pps = b.v[sClass+int(c)]
			}
		}
		r.attacks[i].PeakPPS = max(r.attacks[i].PeakPPS, pps)
	}
}

// add appends a one-tick bucket, folding it into the last bucket while that
// one is not full, and halving the buckets when there are too many.
func (r *Recorder) add(b bucket) {
	if n := len(r.buckets); n > 0 {
		last := &r.buckets[n-1]
		if last.ticks < r.width && last.end.Equal(b.start) {
			last.merge(&b)
			return
		}
	}
	if len(r.buckets) == r.opt.MaxPoints {
		half := r.buckets[:0]
		for i := 0; i < len(r.buckets); i += 2 {
			m := r.buckets[i]
			if i+1 < len(r.buckets) && m.end.Equal(r.buckets[i+1].start) {
				m.merge(&r.buckets[i+1])
			} else if i+1 < len(r.buckets) {
				// Not contiguous (a clock jump): keep both.
				half = append(half, m)
				m = r.buckets[i+1]
			}
			half = append(half, m)
		}
		r.buckets = half
		r.width *= 2
		if len(r.buckets) == r.opt.MaxPoints { // all clock jumps: drop the oldest
			r.buckets = slices.Delete(r.buckets, 0, 1)
		}
	}
	r.buckets = append(r.buckets, b)
}

func (r *Recorder) events(t *detector.Tick, evs []detector.Event) {
	banM, unbanM := -1, -1 // this tick's markers in r.markers
	for i := range evs {
		ev := &evs[i]
		key := attackKey{ev.Scope, ev.Target, ev.Class}
		switch ev.Kind {
		case detector.AttackStart:
			r.started++
			if _, ok := r.open[key]; ok {
				continue
			}
			r.open[key] = len(r.attacks)
			r.attacks = append(r.attacks, Attack{
				Detected: ev.Time, Began: t.Start, Scope: ev.Scope, Target: ev.Target, Class: ev.Class,
				PeakPPS: ev.PPS, BaselinePPS: ev.BaselinePPS, Reason: ev.Reason,
			})
			if p, ok := targetPrefix(ev.Target); ok && ev.Scope != detector.ScopeAggregate {
				r.openIdx.add(p, len(r.attacks)-1)
			}
		case detector.AttackEnd:
			i, ok := r.open[key]
			if !ok {
				continue
			}
			delete(r.open, key)
			r.attacks[i].Ended = ev.Time
			if p, ok := targetPrefix(ev.Target); ok && ev.Scope != detector.ScopeAggregate {
				r.openIdx.remove(p)
			}
		case detector.Ban:
			r.bans++
			banM = r.mark(banM, ev, false)
			i, ok := r.bannedIdx[ev.Target]
			if !ok {
				i = len(r.banned)
				r.bannedIdx[ev.Target] = i
				r.banned = append(r.banned, Banned{Target: ev.Target, Scope: ev.Scope, FirstBanned: ev.Time})
				if p, ok := targetPrefix(ev.Target); ok {
					r.banIdx.add(p, i)
				}
			}
			bn := &r.banned[i]
			bn.Times++
			bn.TTL, bn.Lifted, bn.DryRun = ev.TTL, time.Time{}, ev.DryRun
		case detector.Unban:
			r.unbans++
			unbanM = r.mark(unbanM, ev, true)
			if i, ok := r.bannedIdx[ev.Target]; ok {
				r.banned[i].Lifted = ev.Time
			}
		}
	}
}

// mark counts ev in marker m of r.markers, or in a new one if m < 0, and
// returns the marker's index.
func (r *Recorder) mark(m int, ev *detector.Event, unban bool) int {
	if m < 0 {
		m = len(r.markers)
		r.markers = append(r.markers, marker{at: ev.Time, unban: unban})
	}
	mk := &r.markers[m]
	mk.count++
	if len(mk.targets) < maxMarkerTargets {
		mk.targets = append(mk.targets, ev.Target)
	}
	return m
}

// scanSources attributes dropped traffic to ban targets and measures the
// rate of open source and prefix attacks. It walks the sources only when
// there is something to find.
func (r *Recorder) scanSources(t *detector.Tick, secs float64) {
	drops := t.Total.DroppedPackets > 0 && r.banIdx.len() > 0
	attacks := r.openIdx.len() > 0
	if !drops && !attacks {
		return
	}
	for i := range t.Sources {
		s := &t.Sources[i]
		if drops && s.DroppedPackets > 0 {
			r.banIdx.each(s.Addr, func(j int) bool {
				r.banned[j].DroppedPackets += s.DroppedPackets
				r.banned[j].DroppedBytes += s.DroppedBytes
				return false // the most specific rule only, as the data plane matches
			})
		}
		if attacks {
			n := s.TotalPackets()
			r.openIdx.each(s.Addr, func(j int) bool {
				if _, ok := r.tickPk[j]; !ok {
					r.touched = append(r.touched, j)
				}
				r.tickPk[j] += n
				return true
			})
		}
	}
	for _, j := range r.touched {
		r.attacks[j].PeakPPS = max(r.attacks[j].PeakPPS, float64(r.tickPk[j])/secs)
		delete(r.tickPk, j)
	}
	r.touched = r.touched[:0]
}

// targetPrefix parses an event target: an address or a CIDR.
func targetPrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// prefixIndex finds the prefixes holding an address: exact ones by a map
// lookup, others by one lookup per prefix length in use, longest first.
type prefixIndex struct {
	exact map[detector.Addr]int
	byLen map[lenKey]map[netip.Prefix]int
	lens  []lenKey // in use, longest first
	n     int
}

type lenKey struct {
	v4   bool
	bits int
}

func newPrefixIndex() prefixIndex {
	return prefixIndex{exact: make(map[detector.Addr]int), byLen: make(map[lenKey]map[netip.Prefix]int)}
}

func (x *prefixIndex) len() int { return x.n }

func (x *prefixIndex) add(p netip.Prefix, v int) {
	if p.IsSingleIP() {
		if _, ok := x.exact[detector.AddrFrom(p.Addr())]; !ok {
			x.n++
		}
		x.exact[detector.AddrFrom(p.Addr())] = v
		return
	}
	k := lenKey{p.Addr().Is4(), p.Bits()}
	m := x.byLen[k]
	if m == nil {
		m = make(map[netip.Prefix]int)
		x.byLen[k] = m
		x.lens = append(x.lens, k)
		slices.SortFunc(x.lens, func(a, b lenKey) int { return b.bits - a.bits })
	}
	if _, ok := m[p]; !ok {
		x.n++
	}
	m[p] = v
}

func (x *prefixIndex) remove(p netip.Prefix) {
	if p.IsSingleIP() {
		a := detector.AddrFrom(p.Addr())
		if _, ok := x.exact[a]; ok {
			delete(x.exact, a)
			x.n--
		}
		return
	}
	if m := x.byLen[lenKey{p.Addr().Is4(), p.Bits()}]; m != nil {
		if _, ok := m[p]; ok {
			delete(m, p)
			x.n--
		}
	}
}

// each calls fn with the value of every prefix holding a, most specific
// first, until fn returns false.
func (x *prefixIndex) each(a detector.Addr, fn func(int) bool) {
	if v, ok := x.exact[a]; ok && !fn(v) {
		return
	}
	if len(x.lens) == 0 {
		return
	}
	na := a.Netip()
	for _, k := range x.lens {
		if k.v4 != na.Is4() {
			continue
		}
		p, err := na.Prefix(k.bits)
		if err != nil {
			continue
		}
		if v, ok := x.byLen[k][p]; ok && !fn(v) {
			return
		}
	}
}
