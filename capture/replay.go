package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
)

// Replay defaults and limits.
const (
	DefaultTick   = time.Second
	MinTick       = 100 * time.Millisecond
	DefaultMaxGap = 10 * time.Minute
)

// Dropper is the simulated data plane: it says which packets its rules
// drop. Its rules may change only between ticks, while the replay waits
// for the next call of Next, as the detector's do.
type Dropper interface {
	// Banned reports whether a source or prefix rule drops the traffic
	// of source a at time at. The replay asks once per source per tick,
	// at the source's first packet, with the tick's end for at: a ban
	// drops a source's whole tick or none of it, as it did when the
	// replay judged whole ticks. What a ban drops no signature rule sees.
	Banned(a detector.Addr, at time.Time) bool
	// HasSignatures reports whether any signature rule is held, expired
	// or not. The replay asks once per tick, and while there is none
	// never calls Dropped.
	HasSignatures() bool
	// Dropped reports whether the signature rules drop packet p, seen at
	// at (its timestamp). The replay asks for every decodable packet no
	// ban dropped, in capture order: rate limits count the packets.
	Dropped(p *detector.PacketMeta, at time.Time) bool
}

// Tripper is the detector as the replay's model of the XDP program's trips
// sees it (detector.Engine is one; issue #17): the program compares each
// admitted source's counts since the tick began with its trip level and,
// the first time one is crossed in a tick, asks for a judgement at once.
type Tripper interface {
	// TripLevel is the level of source a; the replay asks at the
	// source's first packet of the tick (with an entry), as it asks
	// Dropper.Banned.
	TripLevel(a detector.Addr) detector.TripLevel
	// Trip judges src, its counts so far in the tick, at the time of the
	// packet that crossed its level, and reports whether it banned src:
	// the rest of the source's packets in the tick are dropped then, as
	// the program drops them once the rule is written.
	Trip(src *detector.Source, at time.Time) bool
}

// DefaultTripCap is ReplayOptions.TripCap's default.
const DefaultTripCap = 64

// ReplayOptions configure a Replay. Zero values take the defaults.
type ReplayOptions struct {
	// Tick is the tick length (default DefaultTick, at least MinTick).
	Tick time.Duration
	// MaxGap is the longest silence filled with empty ticks (default
	// DefaultMaxGap, at least one tick). After a longer one the replay
	// emits MaxGap/Tick empty ticks and resynchronises to the next packet.
	MaxGap time.Duration
	// BackwardsTolerance is how far a timestamp may go back and still be
	// counted in the current tick (default MaxGap). Further back, the
	// current tick is closed and the clock resynchronised.
	BackwardsTolerance time.Duration
	// Stdin is read for the path "-".
	Stdin io.Reader
	// Dropper, if not nil, decides which packets the data plane drops:
	// they are counted as dropped in the tick and under their source.
	Dropper Dropper
	// Verdicts, if not nil, gets one byte per packet read, in capture
	// order: 'D' dropped (by a ban or a signature rule, or over a rate
	// limit), 'P' passed, 'U' undecodable (and passed). It is buffered
	// here and flushed when the captures end (before Next returns io.EOF
	// or the read error), by Flush and by Close. A write error ends the
	// replay: Next returns it after the tick it happened in. The packet
	// that ends a tick is decided, with the rules of the next one, when
	// that tick is asked for: a replay stopped early has written the
	// verdicts of every packet counted in a tick returned.
	Verdicts io.Writer
	// AdmitAfter is the XDP program's admission threshold to model
	// (bpf.Options.AdmitAfter): a new source is counted under its own
	// address from its AdmitAfter-th packet, as the program admits it on
	// one CPU; until then only in the totals. Default
	// bpf.DefaultAdmitAfter; 1 counts every source from its first packet.
	AdmitAfter int
	// AdmitBudget is the program's admission budget to model
	// (bpf.Options.AdmitBudget): the first AdmitBudget new sources of a
	// tick are admitted at their first packet. Default
	// bpf.DefaultAdmitBudget; negative: none.
	AdmitBudget int
	// AdmissionSeed keys the modelled probation table's hash
	// (DefaultAdmissionSeed when 0). Sources whose slots collide delay
	// each other's admission, so the seed can change which early packets
	// count under their source.
	AdmissionSeed uint32
	// SourceIdleTimeout forgets an admitted source silent this long, as
	// the live source removes its entry (LiveOptions.IdleTimeout; default
	// DefaultSourceIdleTimeout).
	SourceIdleTimeout time.Duration
	// Tripper, if not nil, is asked for trip levels and judges the
	// sources that cross theirs mid-tick (see Tripper).
	Tripper Tripper
	// TripCap is the most trips in one tick (default DefaultTripCap):
	// the program's cap per CPU and epoch, the replay being one CPU. A
	// source crossing its level past it is counted (ReplayStats.
	// TripsOverCap) and left to the tick's end.
	TripCap int
}

// ReplayStats count what a Replay has read so far.
type ReplayStats struct {
	// Files is the number of files opened.
	Files int
	// Packets and Bytes count every packet read (wire bytes).
	Packets uint64
	Bytes   uint64
	// Undecodable and UndecodableBytes count packets with no readable IP
	// source; UndecodableByLinkType splits the packets by link type.
	Undecodable           uint64
	UndecodableBytes      uint64
	UndecodableByLinkType map[LinkType]uint64
	// BackwardsTimestamps counts packets stamped earlier than one already
	// read, within the tolerance, and counted in the current tick.
	BackwardsTimestamps uint64
	// ClockJumps counts resynchronisations: a gap above MaxGap or a step
	// back beyond the tolerance.
	ClockJumps uint64
	// Ticks counts ticks returned, EmptyTicks the part with no packets
	// that filled gaps.
	Ticks      uint64
	EmptyTicks uint64
	// Trips counts sources that crossed their trip level (at most once
	// per tick each) and were judged; TripBans those the judgement
	// banned; TripsOverCap those past ReplayOptions.TripCap, not judged.
	Trips        uint64
	TripBans     uint64
	TripsOverCap uint64
}

// Replay reads capture files in order as one stream of packets and returns
// them as ticks of per-source counts, by packet timestamp. Ticks continue
// across files. It is not safe for concurrent use.
type Replay struct {
	opt   ReplayOptions
	paths []string
	next  int     // index in paths of the next file to open
	rd    *Reader // current file, nil between files
	rec   Record  // the packet read last
	pkt   Packet  // and decoded
	dec   *Decoder
	agg   *aggregator
	stats ReplayStats

	sizes     int64 // total size of all files, -1 if unknown (stdin)
	doneBytes int64 // bytes read from files already closed

	// Between a tick and the next call: empty ticks still to emit, and
	// the packet that closed the tick, which opens the following one.
	emptyLeft  int64
	emptyStart time.Time
	empty      detector.Tick
	pending    bool
	pendPkt    Packet
	pendWire   uint64
	pendStart  time.Time
	pendTS     time.Time

	err error // returned once all ticks are out: io.EOF or the failure
}

// NewReplay checks the options and the paths ("-" is opt.Stdin, at most
// once) and opens the first file, so that a wrong path or format fails
// before any tick. Later files are opened when reached.
func NewReplay(paths []string, opt ReplayOptions) (*Replay, error) {
	if len(paths) == 0 {
		return nil, errors.New("replay: no capture files given")
	}
	if opt.Tick == 0 {
		opt.Tick = DefaultTick
	}
	if opt.Tick < MinTick {
		return nil, fmt.Errorf("replay: tick %v is shorter than the minimum %v", opt.Tick, MinTick)
	}
	if opt.MaxGap == 0 {
		opt.MaxGap = DefaultMaxGap
	}
	if opt.MaxGap < opt.Tick {
		return nil, fmt.Errorf("replay: max gap %v is shorter than the tick %v", opt.MaxGap, opt.Tick)
	}
	if opt.BackwardsTolerance == 0 {
		opt.BackwardsTolerance = opt.MaxGap
	}
	if opt.BackwardsTolerance < 0 {
		return nil, fmt.Errorf("replay: negative backwards tolerance %v", opt.BackwardsTolerance)
	}
	r := &Replay{
		opt:   opt,
		paths: paths,
		dec:   NewDecoder(),
		agg:   newAggregator(opt.Tick, opt.MaxGap, opt.BackwardsTolerance),
		stats: ReplayStats{UndecodableByLinkType: make(map[LinkType]uint64)},
	}
	r.agg.dr = opt.Dropper
	if opt.TripCap == 0 {
		opt.TripCap = DefaultTripCap
	}
	if opt.TripCap < 0 {
		return nil, fmt.Errorf("replay: negative trip cap %d", opt.TripCap)
	}
	r.agg.tr, r.agg.tripCap = opt.Tripper, opt.TripCap
	if opt.AdmitAfter == 0 {
		opt.AdmitAfter = bpf.DefaultAdmitAfter
	}
	if opt.AdmissionSeed == 0 {
		opt.AdmissionSeed = DefaultAdmissionSeed
	}
	if opt.SourceIdleTimeout == 0 {
		opt.SourceIdleTimeout = DefaultSourceIdleTimeout
	}
	if opt.SourceIdleTimeout < opt.Tick {
		return nil, fmt.Errorf("replay: source idle timeout %v is shorter than the tick %v", opt.SourceIdleTimeout, opt.Tick)
	}
	switch {
	case opt.AdmitBudget == 0:
		opt.AdmitBudget = bpf.DefaultAdmitBudget
	case opt.AdmitBudget < 0:
		opt.AdmitBudget = 0
	}
	if opt.AdmitAfter > 1 {
		adm, err := newAdmission(opt.AdmitAfter, opt.AdmitBudget, opt.AdmissionSeed, opt.SourceIdleTimeout, fewPacketsIdle(opt.Tick))
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		r.agg.adm = adm
	}
	r.opt = opt
	if opt.Verdicts != nil {
		r.agg.verdicts = bufio.NewWriterSize(opt.Verdicts, 64<<10)
	}
	stdin := 0
	for _, p := range paths {
		if p == StdinPath {
			if stdin++; stdin > 1 {
				return nil, errors.New("replay: standard input (-) given more than once")
			}
			if opt.Stdin == nil {
				return nil, errors.New("replay: - given but no standard input reader")
			}
			r.sizes = -1
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		switch {
		case fi.IsDir():
			return nil, fmt.Errorf("replay: %s is a directory", p)
		case !fi.Mode().IsRegular():
			r.sizes = -1 // a pipe or device: no size to show progress against
		case r.sizes >= 0:
			r.sizes += fi.Size()
		}
	}
	if err := r.openNext(); err != nil {
		return nil, err
	}
	return r, nil
}

// openNext opens paths[r.next].
func (r *Replay) openNext() error {
	rd, err := Open(r.paths[r.next], r.opt.Stdin)
	if err != nil {
		return err
	}
	r.next++
	r.rd = rd
	r.stats.Files++
	return nil
}

// readRecord reads the next packet of the stream into r.rec, moving on to
// the next file at the end of one. It returns io.EOF after the last file.
func (r *Replay) readRecord() error {
	for {
		if r.rd == nil {
			if r.next == len(r.paths) {
				return io.EOF
			}
			if err := r.openNext(); err != nil {
				return err
			}
		}
		err := r.rd.read(&r.rec)
		if err == nil {
			return nil
		}
		if err != io.EOF {
			return err
		}
		r.doneBytes += r.rd.BytesRead()
		if cerr := r.rd.Close(); cerr != nil {
			return fmt.Errorf("close %s: %w", r.rd.Name(), cerr)
		}
		r.rd = nil
	}
}

// Next returns the next tick. The Tick and its Sources are valid until the
// next call. After the last tick it returns io.EOF; if a file is damaged or
// cannot be opened, it first returns every tick up to the damage, the last
// one partial, and then the error (a *ReadError for damage).
func (r *Replay) Next() (*detector.Tick, error) {
	if r.emptyLeft > 0 {
		r.empty = detector.Tick{Start: r.emptyStart, Length: r.opt.Tick}
		r.emptyStart = r.emptyStart.Add(r.opt.Tick)
		r.emptyLeft--
		r.stats.Ticks++
		r.stats.EmptyTicks++
		return &r.empty, nil
	}
	if r.pending {
		r.agg.begin(r.pendStart)
		r.agg.add(&r.pendPkt, r.pendWire, &r.pendTS)
		r.pending = false
	}
	if r.err != nil {
		return nil, r.err
	}
	rec, pkt := &r.rec, &r.pkt
	for {
		if err := r.readRecord(); err != nil {
			if ferr := r.flushVerdicts(); ferr != nil && err == io.EOF {
				err = ferr
			}
			r.err = err
			if r.agg.open {
				r.stats.Ticks++
				return r.agg.close(), nil
			}
			return nil, err
		}
		r.dec.decode(rec.LinkType, rec.Data, pkt)
		wire := uint64(max(rec.Info.Length, rec.Info.CaptureLength))
		r.stats.Packets++
		r.stats.Bytes += wire
		if !pkt.OK {
			r.stats.Undecodable++
			r.stats.UndecodableBytes += wire
			r.stats.UndecodableByLinkType[rec.LinkType]++
		}
		ts := &rec.Info.Timestamp
		if !r.agg.open {
			r.agg.begin(ts.Truncate(r.opt.Tick))
		}
		if r.agg.inOrder(ts) { // the common case, decided with two comparisons
			r.agg.add(pkt, wire, ts)
			continue
		}
		p := r.agg.place(*ts)
		if p.backwards {
			r.stats.BackwardsTimestamps++
		}
		if p.jump {
			r.stats.ClockJumps++
		}
		if !p.closeTick {
			r.agg.add(pkt, wire, ts)
			continue
		}
		r.emptyLeft, r.emptyStart = p.empties, r.agg.cur.End()
		r.pending, r.pendPkt, r.pendWire, r.pendStart, r.pendTS = true, *pkt, wire, p.next, *ts
		r.stats.Ticks++
		if r.agg.verr != nil {
			r.err = r.verdictError(r.agg.verr)
		}
		return r.agg.close(), nil
	}
}

// Flush writes out the verdicts buffered so far (see
// ReplayOptions.Verdicts).
func (r *Replay) Flush() error { return r.flushVerdicts() }

// flushVerdicts writes out the buffered verdicts.
func (r *Replay) flushVerdicts() error {
	if r.agg.verdicts == nil {
		return nil
	}
	err := r.agg.verr
	if ferr := r.agg.verdicts.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return r.verdictError(err)
	}
	return nil
}

func (r *Replay) verdictError(err error) error {
	return fmt.Errorf("replay: write verdicts: %w", err)
}

// Stats returns the counts so far.
func (r *Replay) Stats() ReplayStats {
	s := r.stats
	s.Trips, s.TripBans, s.TripsOverCap = r.agg.tripStats.judged, r.agg.tripStats.banned, r.agg.tripStats.overCap
	s.UndecodableByLinkType = maps.Clone(r.stats.UndecodableByLinkType)
	return s
}

// Progress returns the bytes read from the files so far and their total
// size, or -1 for the total when standard input is among them. For gzip
// files both count compressed bytes.
func (r *Replay) Progress() (done, total int64) {
	done = r.doneBytes
	if r.rd != nil {
		done += r.rd.BytesRead()
	}
	return done, r.sizes
}

// Close closes the current file and flushes the verdicts. Next returns
// io.EOF afterwards.
func (r *Replay) Close() error {
	r.err, r.emptyLeft, r.pending, r.agg.open = io.EOF, 0, false, false
	err := r.flushVerdicts()
	if r.rd == nil {
		return err
	}
	if cerr := r.rd.Close(); err == nil {
		err = cerr
	}
	r.rd = nil
	return err
}
