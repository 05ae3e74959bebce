package daemon

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// What GET /v1/top returns at most.
const (
	topSources  = 20
	topPrefixes = 20
	topRules    = 50
)

// Top is what `floodguard top` shows: the daemon's status and, for the last
// tick, the rate of each protocol class against its baseline, the busiest
// sources and prefixes, and the rules in force with their hit counters.
type Top struct {
	Status Status `json:"status"`
	// TickLength is the tick's length (the rates are per second).
	TickLength time.Duration `json:"tick_ns"`
	// Warm is false during the warm-up (thresholds are the hard ceilings).
	Warm bool `json:"warm"`
	// Classes is all traffic ("all") first, then each protocol class.
	Classes []TopClass `json:"classes"`
	// SourcesSeen counts the sources in the tick; SourcesLost the packets
	// whose source the full per-source map could not track.
	SourcesSeen int    `json:"sources_seen"`
	SourcesLost uint64 `json:"sources_lost,omitempty"`
	// Sources and Prefixes are the busiest of the tick, busiest first.
	Sources  []TopKey `json:"sources"`
	Prefixes []TopKey `json:"prefixes"`
	// PrefixesSeen counts the prefixes the tick's sources fall in.
	PrefixesSeen int `json:"prefixes_seen"`
	// Rules are the rules in force, those dropping most first; RulesTotal
	// counts them all when there are more than Rules holds.
	Rules      []TopRule `json:"rules"`
	RulesTotal int       `json:"rules_total"`
}

// TopClass is one protocol class (or all traffic) in the tick.
type TopClass struct {
	Class        string  `json:"class"`
	PPS          float64 `json:"pps"`
	BPS          float64 `json:"bps"`
	BaselinePPS  float64 `json:"baseline_pps"`
	ThresholdPPS float64 `json:"threshold_pps"`
	Anomalous    bool    `json:"anomalous,omitempty"`
	Learnt       bool    `json:"learnt"`
}

// TopKey is a source (an address) or a prefix in the tick.
type TopKey struct {
	Target string  `json:"target"`
	PPS    float64 `json:"pps"` // everything it sent, dropped or not
	BPS    float64 `json:"bps"`
	// DroppedPPS is the part of PPS a rule dropped in the kernel.
	DroppedPPS float64 `json:"dropped_pps"`
	// Sources is, for a prefix, how many of the tick's sources it holds.
	Sources int `json:"sources,omitempty"`
	// BaselinePPS is the detector's learnt rate for the key, if it tracks
	// it (Tracked).
	BaselinePPS float64 `json:"baseline_pps"`
	Tracked     bool    `json:"tracked"`
	// Ban is the rule covering the key (its own or a wider prefix's), if
	// any.
	Ban       string `json:"ban,omitempty"`
	BanDryRun bool   `json:"ban_dry_run,omitempty"`
}

// TopRule is a rule as /v1/bans shows it, with the rate it dropped at in
// the tick (0 when unknown: the first tick watched, or a dry run).
type TopRule struct {
	Ban
	DroppedPPS float64 `json:"dropped_pps"`
}

// topFeed publishes a Top per tick while someone is watching (a request in
// the last few seconds), and lets requests wait for the next one.
type topFeed struct {
	// wanted is when a request last came (Unix nanoseconds).
	wanted atomic.Int64
	// tick is the tick's length (nanoseconds), for the request handlers.
	tick atomic.Int64

	mu   sync.Mutex
	top  *Top
	at   time.Time     // when top was published
	next chan struct{} // closed when the next Top is published

	// Owned by the tick loop.
	srcs      topHeap[rankedSource]
	pfxs      topHeap[TopKey]
	prevDrops map[string]uint64 // each rule's dropped packets at the last tick
	prevTicks uint64            // the Status.Ticks of the last published Top
}

type rankedSource struct {
	pkts uint64
	i    int
}

// watchedFor is how long after a request the tick loop keeps publishing.
func watchedFor(tick time.Duration) time.Duration { return max(5*time.Second, 3*tick) }

// publishTop computes the tick's Top if someone watches; t is the tick the
// engine has just judged and s the status just set.
func (c *control) publishTop(t *detector.Tick) {
	f := &c.top
	tick := c.d.file.Tick.D()
	f.tick.Store(int64(tick))
	if time.Since(time.Unix(0, f.wanted.Load())) > watchedFor(tick) {
		if f.prevDrops != nil {
			f.prevDrops, f.prevTicks = nil, 0
		}
		return
	}
	c.mu.Lock()
	st := c.status
	c.mu.Unlock()
	top := c.d.top(t, st, f)
	f.mu.Lock()
	f.top, f.at = top, time.Now()
	if f.next != nil {
		close(f.next)
		f.next = nil
	}
	f.mu.Unlock()
}

// top gathers the tick's Top.
func (d *daemon) top(t *detector.Tick, st Status, f *topFeed) *Top {
	secs := t.Length.Seconds()
	if secs <= 0 {
		secs = d.file.Tick.D().Seconds()
	}
	eng := d.eng
	top := &Top{Status: st, TickLength: d.file.Tick.D(), SourcesSeen: len(t.Sources), SourcesLost: t.SourcesLost}
	top.Warm = st.Ticks*uint64(d.file.Tick.D()) >= uint64(d.file.WarmUp.D())

	for _, b := range eng.Baselines() {
		tc := TopClass{Class: b.Class, BaselinePPS: b.MeanPPS, ThresholdPPS: b.ThresholdPPS, Anomalous: b.Anomalous, Learnt: b.Learnt}
		var pkts, bytes uint64
		if b.Class == "all" {
			pkts, bytes = t.Total.TotalPackets(), t.Total.TotalBytes()
		} else if c, ok := classByName(b.Class); ok {
			pkts, bytes = t.Total.Packets[c], t.Total.Bytes[c]
		}
		tc.PPS, tc.BPS = float64(pkts)/secs, float64(bytes)*8/secs
		top.Classes = append(top.Classes, tc)
	}

	rules, err := d.bans()
	if err != nil {
		d.log.Warn().Err(err).Msg("top: list rules")
	}
	rules = inForce(rules, eng.Bans(), time.Now())
	cover := newRuleIndex(rules)
	key := func(p netip.Prefix, c *detector.Counters) TopKey {
		k := TopKey{PPS: float64(c.TotalPackets()) / secs, BPS: float64(c.TotalBytes()) * 8 / secs, DroppedPPS: float64(c.DroppedPackets) / secs}
		k.BaselinePPS, k.Tracked = eng.KeyBaseline(p)
		if r, ok := cover.lookup(p); ok {
			k.Ban, k.BanDryRun = rules[r].Target, rules[r].DryRun
		}
		return k
	}

	// The busiest sources: a bounded heap over the tick, not a sort of it.
	f.srcs.reset(topSources, func(a, b *rankedSource) bool { return a.pkts < b.pkts })
	for i := range t.Sources {
		f.srcs.offer(rankedSource{pkts: t.Sources[i].TotalPackets(), i: i})
	}
	for _, r := range f.srcs.sorted() {
		s := &t.Sources[r.i]
		p := s.Addr.Prefix()
		k := key(p, &s.Counters)
		k.Target = s.Addr.String()
		top.Sources = append(top.Sources, k)
	}

	f.pfxs.reset(topPrefixes, func(a, b *TopKey) bool { return a.PPS < b.PPS })
	eng.TickPrefixes(func(p detector.TickPrefix) {
		top.PrefixesSeen++
		pps := float64(p.Counters.TotalPackets()) / secs
		if f.pfxs.full() && pps <= f.pfxs.min().PPS {
			return
		}
		k := TopKey{Target: p.Prefix.String(), PPS: pps, BPS: float64(p.Counters.TotalBytes()) * 8 / secs,
			DroppedPPS: float64(p.Counters.DroppedPackets) / secs, Sources: p.Sources}
		f.pfxs.offer(k)
	})
	for _, k := range f.pfxs.sorted() {
		// Baselines and bans only for the few shown.
		p := netip.MustParsePrefix(k.Target)
		k.BaselinePPS, k.Tracked = eng.KeyBaseline(p)
		if r, ok := cover.lookup(p); ok {
			k.Ban, k.BanDryRun = rules[r].Target, rules[r].DryRun
		}
		top.Prefixes = append(top.Prefixes, k)
	}

	top.Rules, f.prevDrops = rankRules(rules, f.prevDrops, f.prevTicks+1 == st.Ticks, secs)
	f.prevTicks = st.Ticks
	top.RulesTotal = len(top.Rules)
	if len(top.Rules) > topRules {
		top.Rules = top.Rules[:topRules]
	}
	return top
}

// rankRules adds each rule's drop rate in the tick (its counter's growth
// since the last tick, if prev is of it) and orders the rules busiest first,
// then by time left. It returns the counters to compare the next tick with.
func rankRules(rules []Ban, prev map[string]uint64, consecutive bool, secs float64) ([]TopRule, map[string]uint64) {
	out := make([]TopRule, len(rules))
	now := make(map[string]uint64, len(rules))
	for i, b := range rules {
		out[i].Ban = b
		now[b.Target] = b.Packets
		if p, ok := prev[b.Target]; ok && consecutive && b.Packets >= p {
			out[i].DroppedPPS = float64(b.Packets-p) / secs
		}
	}
	slices.SortStableFunc(out, func(a, b TopRule) int {
		if c := cmp.Compare(b.DroppedPPS, a.DroppedPPS); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Packets, a.Packets); c != 0 {
			return c
		}
		return cmp.Compare(b.TimeLeft, a.TimeLeft)
	})
	return out, now
}

// inForce keeps the rules still in force: kernel rules with time left, and
// a dry run's rules (in the detector's book only), given their time left
// from the book.
func inForce(rules []Ban, book []detector.ActiveBan, now time.Time) []Ban {
	var expires map[string]time.Time
	out := rules[:0]
	for _, r := range rules {
		if r.DryRun && r.Scope != detector.ScopeSignature.String() { // signature rules carry their own
			if expires == nil {
				expires = make(map[string]time.Time, len(book))
				for _, b := range book {
					expires[b.Prefix.String()] = b.Expires
				}
			}
			r.TimeLeft = max(0, expires[r.Target].Sub(now))
		}
		if r.TimeLeft > 0 || r.DryRun {
			out = append(out, r)
		}
	}
	return out
}

func classByName(name string) (detector.Class, bool) {
	for c := range detector.NumClasses {
		if c.String() == name {
			return c, true
		}
	}
	return 0, false
}

// ruleIndex finds the most specific rule covering a key.
type ruleIndex struct {
	byPrefix map[netip.Prefix]int
	bits4    []int // distinct rule lengths, longest first
	bits6    []int
}

func newRuleIndex(rules []Ban) ruleIndex {
	ix := ruleIndex{byPrefix: make(map[netip.Prefix]int, len(rules))}
	for i, r := range rules {
		p, err := netip.ParsePrefix(r.Target)
		if err != nil {
			continue
		}
		p = p.Masked()
		ix.byPrefix[p] = i
		if p.Addr().Is4() {
			ix.bits4 = append(ix.bits4, p.Bits())
		} else {
			ix.bits6 = append(ix.bits6, p.Bits())
		}
	}
	for _, b := range []*[]int{&ix.bits4, &ix.bits6} {
		slices.Sort(*b)
		*b = slices.Compact(*b)
		slices.Reverse(*b)
	}
	return ix
}

// lookup returns the index of the longest rule holding all of p.
func (ix *ruleIndex) lookup(p netip.Prefix) (int, bool) {
	bits := ix.bits6
	if p.Addr().Is4() {
		bits = ix.bits4
	}
	for _, b := range bits {
		if b > p.Bits() {
			continue
		}
		q, err := p.Addr().Prefix(b)
		if err != nil {
			continue
		}
		if i, ok := ix.byPrefix[q]; ok {
			return i, true
		}
	}
	return 0, false
}

// topHeap keeps the n greatest items offered: a min-heap of at most n, so
// choosing among m items costs O(m log n) and no allocation once warm.
type topHeap[T any] struct {
	n     int
	less  func(a, b *T) bool
	items []T
}

func (h *topHeap[T]) reset(n int, less func(a, b *T) bool) {
	h.n, h.less, h.items = n, less, h.items[:0]
}

func (h *topHeap[T]) full() bool { return len(h.items) >= h.n }

// min returns the least item kept (the heap must not be empty).
func (h *topHeap[T]) min() *T { return &h.items[0] }

func (h *topHeap[T]) offer(v T) {
	if h.n <= 0 {
		return
	}
	// v goes into the slice before it is compared: its address, taken
	// for less, would otherwise make every offer allocate.
	h.items = append(h.items, v)
	n := len(h.items) - 1
	if n < h.n {
		h.up(n)
		return
	}
	if h.less(&h.items[0], &h.items[n]) {
		h.items[0] = h.items[n]
		h.items = h.items[:n]
		h.down(0)
		return
	}
	h.items = h.items[:n]
}

func (h *topHeap[T]) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(&h.items[i], &h.items[p]) {
			return
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *topHeap[T]) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(&h.items[r], &h.items[l]) {
			m = r
		}
		if !h.less(&h.items[m], &h.items[i]) {
			return
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
}

// sorted empties the heap into its items, greatest first (the slice is the
// heap's own, valid until the next reset).
func (h *topHeap[T]) sorted() []T {
	items := h.items
	for n := len(items); n > 1; n-- {
		items[0], items[n-1] = items[n-1], items[0]
		h.items = items[:n-1]
		h.down(0)
	}
	h.items = items[:0]
	return items
}

// handleTop serves GET /v1/top[?after=TICKS]: the last tick's Top, or with
// after, the first Top of a tick past that count (waiting for it at most a
// few ticks), so a client polling with the Ticks it last got sees each tick
// once.
func (c *control) handleTop(w http.ResponseWriter, r *http.Request) {
	f := &c.top
	f.wanted.Store(time.Now().UnixNano())
	after := int64(-1)
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("after=%q: want a tick count", v))
			return
		}
		after = int64(n)
	}
	tick := time.Duration(f.tick.Load())
	if tick <= 0 {
		tick = time.Second
	}
	timer := time.NewTimer(3*tick + 2*time.Second)
	defer timer.Stop()
	for {
		f.mu.Lock()
		top, at := f.top, f.at
		if f.next == nil {
			f.next = make(chan struct{})
		}
		next := f.next
		f.mu.Unlock()
		// A Top is fresh if published in the last tick or two: one left
		// from an earlier watcher is not.
		if top != nil && time.Since(at) <= 2*tick+100*time.Millisecond && int64(top.Status.Ticks) > after {
			writeJSON(w, top)
			return
		}
		select {
		case <-next:
		case <-timer.C:
			if top == nil {
				httpError(w, http.StatusServiceUnavailable, fmt.Errorf("no tick processed in %v", 3*tick+2*time.Second))
				return
			}
			writeJSON(w, top)
			return
		case <-r.Context().Done():
			return
		}
	}
}
