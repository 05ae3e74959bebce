package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
)

// LiveMaps is what the live source reads of the loaded XDP program:
// cumulative per-source counters, the global counters, and an atomic
// read-and-delete for evicting idle sources. *bpf.XDP implements it.
type LiveMaps interface {
	// AppendSources appends every per-source entry (summed over CPUs) to
	// dst.
	AppendSources(dst []bpf.Source) ([]bpf.Source, error)
	ReadStats() (bpf.Stats, error)
	// TakeSources deletes the entries for keys and appends their last
	// values to dst, atomically per entry: a packet counted before the
	// delete is in the value returned, none is lost between read and
	// delete. Keys already gone are skipped.
	TakeSources(keys []detector.Addr, dst []bpf.Source) ([]bpf.Source, error)
	// ReadFeatures fills f with the traffic by port, length and
	// destination since the previous call (bpf.FeatureReader.Read).
	ReadFeatures(f *detector.Features) error
	// AppendSourcesUntil is AppendSources with a deadline, after which a
	// read stops and the next goes on (bpf.SourceReader).
	AppendSourcesUntil(dst []bpf.Source, deadline time.Time) ([]bpf.Source, bool, error)
	// AdvanceEpoch starts a new admission epoch (bpf.XDP.AdvanceEpoch).
	AdvanceEpoch() error
	// LookupSource returns one source's entry (for a trip).
	LookupSource(addr detector.Addr) (bpf.Source, bool, error)
	// Epoch returns the current admission epoch (bpf.XDP.Epoch).
	Epoch() uint32
	// AppendProbation appends the frames recorded on probation in epoch,
	// by source (bpf.XDP.AppendProbation).
	AppendProbation(dst []detector.Source, epoch uint32) ([]detector.Source, error)
}

// LiveOptions configure the live source.
type LiveOptions struct {
	// Tick is the read interval (default 1s, at least 100ms).
	Tick time.Duration
	// IdleTimeout removes a source from the kernel map once it has sent
	// nothing for this long (default 5m), so the map does not fill with
	// stale entries. An entry with fewer than FewPackets packets goes
	// after DefaultFewPacketsIdleTimeout (at least two ticks): what a
	// spoofed flood gets admitted leaves within seconds.
	IdleTimeout time.Duration
	// Monotonic returns the kernel's CLOCK_MONOTONIC in ns, the clock of
	// bpf.Source.LastSeenNs (default bpf.MonotonicNow).
	Monotonic func() (uint64, error)
	// ReadBudget bounds the per-source part of a read (default half the
	// tick; negative: no bound). A read that reaches it stops, and the
	// next tick goes on where it stopped: the per-source view is then
	// spread over several ticks (LiveStats.PartialReads), while the
	// totals, features and rules stay exact and on time.
	ReadBudget time.Duration
	// Trips, if not nil, brings the program's trips (bpf.TripReader);
	// Next hands each to OnTrip, with the source's counts since the
	// tick began, as soon as it arrives, and goes on waiting for the
	// tick. OnTrip runs on the goroutine that calls Next, the one that
	// runs the detector, so it may call the engine.
	Trips  <-chan bpf.Trip
	OnTrip func(src *detector.Source, at time.Time)
	// MaxProbationRecords bounds the probation records of a tick
	// (default DefaultMaxProbationRecords; negative: no bound). Past it
	// an even sample is kept, each record scaled to stand for those left
	// out (LiveStats.SampledTicks): prefixes see the right rates on
	// average, and the detector's work stays bounded.
	MaxProbationRecords int
}

func (o *LiveOptions) setDefaults() error {
	if o.Tick == 0 {
		o.Tick = time.Second
	}
	if o.Tick < 100*time.Millisecond {
		return fmt.Errorf("live source: tick %s is shorter than 100ms", o.Tick)
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultSourceIdleTimeout
	}
	if o.ReadBudget == 0 {
		o.ReadBudget = o.Tick / 2
	}
	if o.IdleTimeout < o.Tick {
		return fmt.Errorf("live source: idle timeout %s is shorter than the tick %s", o.IdleTimeout, o.Tick)
	}
	if o.Monotonic == nil {
		o.Monotonic = bpf.MonotonicNow
	}
	if o.MaxProbationRecords == 0 {
		o.MaxProbationRecords = DefaultMaxProbationRecords
	}
	return nil
}

// snapshot is what the live source remembers of the source in a slot
// (bpf.Source.Slot): its address, and its cumulative counters at the read
// of that epoch. Keyed by slot, the snapshots of a read are visited in the
// order the read returns the sources, without hashing an address: with a
// million sources a map took most of a tick's work.
type snapshot struct {
	addr  detector.Addr
	c     detector.Counters
	epoch uint32
	used  bool
}

// Live turns the XDP program's cumulative counters into per-tick deltas: the
// same detector.Tick the replay source yields. Deltas are exact: counters
// are read, never reset, so no packet is counted twice or lost between two
// reads, and a source leaves the map only through an atomic read-and-delete
// whose last counts go into the tick.
type Live struct {
	ctx   context.Context
	maps  LiveMaps
	opts  LiveOptions
	timer *time.Ticker

	prev      []snapshot // by slot
	nprev     int        // snapshots in use
	prevStats bpf.Stats
	epoch     uint32 // reads so far
	passStart uint32 // epoch of the first read of the current pass
	primed    bool
	last      time.Time

	buf   []bpf.Source
	taken []bpf.Source
	idle  []detector.Addr
	idleI map[detector.Addr]int32 // index in tick.Sources of idle sources
	tick  detector.Tick

	stats LiveStats
}

// LiveStats are the live source's running totals.
type LiveStats struct {
	Reads        uint64
	Sources      int           // entries read by the last read
	Evicted      uint64        // idle sources removed from the map
	LastReadTime time.Duration // duration of the last map read
	// PartialReads counts reads that stopped at the read budget before
	// the end of the per-source map; Partial says the last one did.
	PartialReads uint64
	Partial      bool
	// ProbationPackets counts packets of sources the program had not
	// admitted (bpf.Stats.ProbationPackets) since the live source
	// started, Admitted the sources it admitted.
	ProbationPackets uint64
	Admitted         uint64
	// Trips counts the trips handed to OnTrip; TripsStale those whose
	// source had no entry any more or that belonged to an earlier tick.
	Trips      uint64
	TripsStale uint64
	// SampledTicks counts ticks whose probation records were more than
	// LiveOptions.MaxProbationRecords and were sampled; Sampled says the
	// last one was, ProbationRecords how many the last read found and
	// ProbationKept how many of them the tick kept.
	SampledTicks     uint64
	Sampled          bool
	ProbationRecords int
	ProbationKept    int
}

// NewLive returns a live source over maps. Next blocks until the next tick
// and returns ctx's error once ctx is done.
func NewLive(ctx context.Context, maps LiveMaps, opts LiveOptions) (*Live, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	return &Live{
		ctx: ctx, maps: maps, opts: opts,
		idleI: make(map[detector.Addr]int32),
	}, nil
}

// Stats returns running totals.
func (l *Live) Stats() LiveStats { return l.stats }

// Next waits for the next tick and returns its counts.
func (l *Live) Next() (*detector.Tick, error) {
	if !l.primed {
		// The first read only records where the counters stand: what
		// was counted before (a program adopted from an earlier run)
		// is history, not this tick.
		if _, err := l.Collect(time.Now()); err != nil {
			return nil, err
		}
		l.timer = time.NewTicker(l.opts.Tick)
	}
	for {
		select {
		case <-l.ctx.Done():
			l.timer.Stop()
			return nil, l.ctx.Err()
		case now := <-l.timer.C:
			return l.Collect(now)
		case tr := <-l.opts.Trips:
			if err := l.trip(&tr); err != nil {
				return nil, err
			}
		}
	}
}

// trip hands a trip to OnTrip with the source's counts since the tick
// began: its entry now, less what the last read saw of it.
func (l *Live) trip(tr *bpf.Trip) error {
	if l.opts.OnTrip == nil {
		return nil
	}
	mono, err := l.opts.Monotonic()
	if err != nil {
		return fmt.Errorf("live source: %w", err)
	}
	cur, ok, err := l.maps.LookupSource(tr.Addr)
	if err != nil {
		return fmt.Errorf("live source: trip: %w", err)
	}
	if !ok || tr.Epoch != l.maps.Epoch() {
		l.stats.TripsStale++ // evicted since, or from a tick already read
		return nil
	}
	src := detector.Source{Addr: tr.Addr}
	base := &detector.Counters{}
	if snap, ok := l.snapOf(&cur); ok {
		base = &snap.c
	}
	deltaCounters(&src.Counters, &cur.Counters, base)
	src.UDPSrcPort = tickPort(&src.Counters, cur.UDPSrcPort)
	at := time.Now()
	if mono > tr.TimeNs {
		at = at.Add(-time.Duration(mono - tr.TimeNs))
	}
	l.stats.Trips++
	l.opts.OnTrip(&src, at)
	return nil
}

// Close stops the ticker.
func (l *Live) Close() error {
	if l.timer != nil {
		l.timer.Stop()
	}
	return nil
}

// delta returns cur-prev for a cumulative counter. A uint64 counter that
// wrapped once still gives the right difference; a counter that went far
// backwards belongs to an entry deleted and created again between two reads
// (by something other than this source), whose whole count is new.
func delta(cur, prev uint64) uint64 {
	d := cur - prev
	if d > 1<<63 {
		return cur
	}
	return d
}

func deltaCounters(dst, cur, prev *detector.Counters) bool {
	var any uint64
	for c := range detector.NumClasses {
		dst.Packets[c] = delta(cur.Packets[c], prev.Packets[c])
		dst.Bytes[c] = delta(cur.Bytes[c], prev.Bytes[c])
		any |= dst.Packets[c]
	}
	dst.DroppedPackets = delta(cur.DroppedPackets, prev.DroppedPackets)
	dst.DroppedBytes = delta(cur.DroppedBytes, prev.DroppedBytes)
	return any != 0
}

// Collect reads the maps now and returns the counts since the previous
// read (the first call returns an empty tick). Next calls it every tick;
// tests call it directly.
func (l *Live) Collect(now time.Time) (*detector.Tick, error) {
	start := time.Now()
	mono, err := l.opts.Monotonic()
	if err != nil {
		return nil, fmt.Errorf("live source: %w", err)
	}
	// Frames on probation from here on belong to this tick or later, not
	// to one already read. The closed epoch's records are read at once:
	// the next frame hashed to a slot clears them.
	closed := l.maps.Epoch()
	if err := l.maps.AdvanceEpoch(); err != nil {
		return nil, fmt.Errorf("live source: %w", err)
	}
	t := &l.tick
	if t.Probation, err = l.maps.AppendProbation(t.Probation[:0], closed); err != nil {
		return nil, fmt.Errorf("live source: %w", err)
	}
	l.stats.ProbationRecords = len(t.Probation)
	l.stats.Sampled = l.opts.MaxProbationRecords > 0 && len(t.Probation) > l.opts.MaxProbationRecords
	if l.stats.Sampled {
		t.Probation = sampleProbation(t.Probation, l.opts.MaxProbationRecords)
		l.stats.SampledTicks++
	}
	l.stats.ProbationKept = len(t.Probation)
	st, err := l.maps.ReadStats()
	if err != nil {
		return nil, fmt.Errorf("live source: %w", err)
	}
	var deadline time.Time
	if l.opts.ReadBudget > 0 {
		deadline = start.Add(l.opts.ReadBudget)
	}
	var complete bool
	l.buf, complete, err = l.appendSources(deadline)
	if err != nil {
		return nil, fmt.Errorf("live source: %w", err)
	}
	l.stats.Partial = !complete
	if err := l.maps.ReadFeatures(&t.Features); err != nil {
		return nil, fmt.Errorf("live source: %w", err)
	}
	if !l.primed {
		// History, like the counters' first read.
		t.Features = detector.Features{Ports: t.Features.Ports[:0], Dsts: t.Features.Dsts[:0]}
		t.Probation = t.Probation[:0]
	}
	t.Sources = t.Sources[:0]
	t.Total = detector.Counters{}
	t.UnparsedPackets, t.UnparsedBytes, t.SourcesLost, t.ProbationPackets = 0, 0, 0, 0
	if l.primed {
		t.Start, t.Length = l.last, now.Sub(l.last)
		for c := range detector.NumClasses {
			t.Total.Packets[c] = delta(st.Packets[c], l.prevStats.Packets[c])
			t.Total.Bytes[c] = delta(st.Bytes[c], l.prevStats.Bytes[c])
		}
		t.Total.DroppedPackets = delta(st.DroppedPackets, l.prevStats.DroppedPackets)
		t.Total.DroppedBytes = delta(st.DroppedBytes, l.prevStats.DroppedBytes)
		t.UnparsedPackets = delta(st.UnparsedPackets, l.prevStats.UnparsedPackets)
		t.UnparsedBytes = delta(st.UnparsedBytes, l.prevStats.UnparsedBytes)
		t.SourcesLost = delta(st.SourceInsertFailures, l.prevStats.SourceInsertFailures)
		// Frames credited to an entry may have gone on probation in the
		// previous read's tick: saturate.
		pp := delta(st.ProbationPackets, l.prevStats.ProbationPackets)
		t.ProbationPackets = pp - min(pp, delta(st.ProbationCredited, l.prevStats.ProbationCredited))
		l.stats.ProbationPackets += pp
		l.stats.Admitted += delta(st.Admitted, l.prevStats.Admitted)
	} else {
		t.Start, t.Length = now, 0
	}
	l.prevStats = st
	l.epoch++
	l.collectSources(mono)
	if err := l.evictIdle(); err != nil {
		return nil, err
	}
	if !l.stats.Partial {
		// A pass over the map ended: entries it did not see vanished
		// without passing through evictIdle (deleted by hand, or the map
		// was replaced) and must not keep stale snapshots.
		if l.nprev > len(l.buf) {
			for i := range l.prev {
				if s := &l.prev[i]; s.used && s.epoch < l.passStart {
					s.used = false
					l.nprev--
				}
			}
		}
		l.passStart = l.epoch + 1
	} else {
		l.stats.PartialReads++
	}
	l.primed = true
	l.last = now
	l.stats.Reads++
	l.stats.Sources = len(l.buf)
	l.stats.LastReadTime = time.Since(start)
	return t, nil
}

// appendSources reads the per-source map into l.buf until deadline (none
// if zero) and reports whether the read reached the end of the map.
func (l *Live) appendSources(deadline time.Time) ([]bpf.Source, bool, error) {
	if !l.primed {
		// The priming read takes everything, whatever it costs.
		buf, err := l.maps.AppendSources(l.buf[:0])
		return buf, true, err
	}
	return l.maps.AppendSourcesUntil(l.buf[:0], deadline)
}

// collectSources turns the entries read into the tick's sources and lists
// the idle ones. A source last read n reads ago (the reads in between
// stopped at their budget before reaching it) has its counts since then
// divided by n: the detector sees its average rate over those ticks rather
// than n ticks of traffic in one. A source new to the live source is
// counted over the reads of the current pass, for the same reason.
func (l *Live) collectSources(mono uint64) {
	t := &l.tick
	idleNs, fewNs := uint64(l.opts.IdleTimeout), uint64(fewPacketsIdle(l.opts.Tick))
	l.idle = l.idle[:0]
	clear(l.idleI)
	// At most one per entry: one allocation when the map grows, not a
	// series of copies of a tick that may hold a million sources.
	t.Sources = slices.Grow(t.Sources, len(l.buf))
	var zero detector.Counters
	for i := range l.buf {
		s := &l.buf[i]
		snap, ok := l.snapOf(s)
		span := uint32(1)
		if !ok {
			// New, or the slot's previous source left unseen (deleted by
			// hand): its snapshot is this source's from now on.
			if !snap.used {
				l.nprev++
			}
			*snap = snapshot{addr: s.Addr, used: true}
			span = l.epoch - l.passStart + 1
		} else if l.epoch-snap.epoch > 1 {
			span = l.epoch - snap.epoch
		}
		base := &snap.c
		if !ok && !l.primed {
			base = &s.Counters // priming: history, not this tick
		} else if !ok {
			base = &zero // created since the last read: all of it is new
		}
		var d detector.Source
		sent := deltaCounters(&d.Counters, &s.Counters, base)
		if sent {
			if span > 1 {
				d.Counters = spread(&d.Counters, uint64(span))
			}
			d.Addr, d.UDPSrcPort = s.Addr, tickPort(&d.Counters, s.UDPSrcPort)
			t.Sources = append(t.Sources, d)
		}
		snap.c, snap.epoch = s.Counters, l.epoch
		if mono > s.LastSeenNs && (mono-s.LastSeenNs > idleNs || (s.TotalPackets() < FewPackets && mono-s.LastSeenNs > fewNs)) {
			l.idle = append(l.idle, s.Addr)
			if sent {
				l.idleI[s.Addr] = int32(len(t.Sources) - 1)
			}
		}
	}
}

// snapOf returns the snapshot of s's slot, and whether it is s's.
func (l *Live) snapOf(s *bpf.Source) (*snapshot, bool) {
	if int(s.Slot) >= len(l.prev) {
		l.prev = append(l.prev, make([]snapshot, int(s.Slot)+1-len(l.prev))...)
		l.prev = l.prev[:cap(l.prev)]
	}
	snap := &l.prev[s.Slot]
	return snap, snap.used && snap.addr == s.Addr
}

// spread returns c divided by n (rounded down).
func spread(c *detector.Counters, n uint64) detector.Counters {
	var out detector.Counters
	for k := range detector.NumClasses {
		out.Packets[k], out.Bytes[k] = c.Packets[k]/n, c.Bytes[k]/n
	}
	out.DroppedPackets, out.DroppedBytes = c.DroppedPackets/n, c.DroppedBytes/n
	return out
}

// evictIdle removes idle sources from the kernel map. Their last counts
// (anything that arrived between the read and the delete) join this tick.
func (l *Live) evictIdle() error {
	if len(l.idle) == 0 {
		return nil
	}
	var err error
	l.taken, err = l.maps.TakeSources(l.idle, l.taken[:0])
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("live source: evict idle sources: %w", err)
	}
	t := &l.tick
	for i := range l.taken {
		s := &l.taken[i]
		snap, ok := l.snapOf(s)
		if !ok {
			continue
		}
		var d detector.Counters
		if deltaCounters(&d, &s.Counters, &snap.c) && l.primed {
			if j, ok := l.idleI[s.Addr]; ok {
				t.Sources[j].Add(&d)
				t.Sources[j].UDPSrcPort = tickPort(&t.Sources[j].Counters, s.UDPSrcPort)
			} else {
				t.Sources = append(t.Sources, detector.Source{Addr: s.Addr, Counters: d, UDPSrcPort: tickPort(&d, s.UDPSrcPort)})
			}
		}
		snap.used = false
		l.nprev--
		l.stats.Evicted++
	}
	return nil
}

// tickPort is the UDP source port to report for a source whose counts in
// the tick are c: the map keeps the last port ever seen, but a tick without
// UDP from the source has none, as replay reports it.
func tickPort(c *detector.Counters, port uint16) uint16 {
	if c.Packets[detector.ClassUDP] == 0 {
		return 0
	}
	return port
}

// xdpMaps adapts a loaded program to LiveMaps.
type xdpMaps struct {
	*bpf.XDP
	r  *bpf.SourceReader
	fr *bpf.FeatureReader
}

// LiveMapsOf returns the LiveMaps of a loaded XDP program. It reads the
// program's features: make one per program.
func LiveMapsOf(x *bpf.XDP) LiveMaps {
	return xdpMaps{XDP: x, r: x.NewSourceReader(), fr: x.NewFeatureReader()}
}

func (m xdpMaps) AppendSources(dst []bpf.Source) ([]bpf.Source, error) { return m.r.AppendSources(dst) }

func (m xdpMaps) AppendSourcesUntil(dst []bpf.Source, deadline time.Time) ([]bpf.Source, bool, error) {
	return m.r.AppendSourcesUntil(dst, deadline)
}

func (m xdpMaps) ReadFeatures(f *detector.Features) error { return m.fr.Read(f) }
