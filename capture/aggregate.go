package capture

import (
	"bufio"
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
)

// aggregator sums decoded packets into one tick at a time, by packet
// timestamp, with the tick's features, and decides with its Dropper which
// packets the data plane drops. It allocates nothing per packet once its
// index and slices have grown to the largest tick's number of sources,
// ports and destinations.
type aggregator struct {
	tick     time.Duration
	backTol  time.Duration
	maxEmpty int64 // most empty ticks emitted for one gap: MaxGap / tick

	open  bool          // cur holds a tick being built
	cur   detector.Tick // Sources and Features alias srcs and feat when handed out
	end   time.Time     // cur.End()
	endOK bool          // end is exactly Start + tick (no overflow)
	index srcIndex      // address to index in srcs
	srcs  []detector.Source
	high  time.Time // latest timestamp seen (the high-water mark)
	feat  featureCounter

	// dr, if not nil, decides drops. Its rules change only between
	// ticks (the detector runs between them), so what it says of a
	// source's bans and whether it holds signature rules at all is asked
	// once per tick: banned[i] for srcs[i], and sigs.
	dr     Dropper
	banned []bool
	sigs   bool
	meta   detector.PacketMeta // sigDropped's copy
	// tr, if not nil, is asked for each admitted source's trip level at
	// its first packet of the tick; left[i] holds what srcs[i] may still
	// send in the tick before it crosses it (tripNever: it will not, or
	// it has crossed it once already). trips counts this tick's trips
	// against tripCap, tripSrc is Trip's copy of a source (see
	// sigDropped), tripStats the replay's totals.
	tr        Tripper
	tripCap   int
	left      []tripLeft
	trips     int
	tripSrc   detector.Source
	tripStats tripStats
	// adm, if not nil, models the program's admission of new sources;
	// nil admits every source at its first packet.
	adm       *admission
	probation []detector.Source // storage of the tick's Probation
	// verdicts, if not nil, gets one byte per packet (verdict*); the
	// first write error is kept in verr.
	verdicts *bufio.Writer
	verr     error
}

// tripLeft is what a source may still send in the open tick before it
// crosses its trip level: packets and wire bytes. Two compares and two
// subtractions per packet, with no sum over the classes.
type tripLeft struct{ p, b uint64 }

// tripNever is the tripLeft of a source that will not cross its level in
// the tick: no count reaches it.
var tripNever = tripLeft{p: ^uint64(0), b: ^uint64(0)}

// leftOf returns the tripLeft of a tick's first packet for level l, whose
// zero measures never trip.
func leftOf(l detector.TripLevel) tripLeft {
	t := tripNever
	if l.Packets != 0 {
		t.p = l.Packets
	}
	if l.Bytes != 0 {
		t.b = l.Bytes
	}
	return t
}

// take counts p packets and b bytes and reports whether they reach the
// level: the source's count since the tick began is at or over it.
func (l *tripLeft) take(p, b uint64) bool {
	if p >= l.p || b >= l.b {
		return true
	}
	l.p -= p
	l.b -= b
	return false
}

// tripStats are ReplayStats' Trips, TripBans and TripsOverCap.
type tripStats struct{ judged, banned, overCap uint64 }

// Packet verdicts, as ReplayOptions.Verdicts gets them.
const (
	verdictDropped     = 'D'
	verdictPassed      = 'P'
	verdictUndecodable = 'U'
)

func newAggregator(tick, maxGap, backTol time.Duration) *aggregator {
	return &aggregator{
		tick:     tick,
		backTol:  backTol,
		maxEmpty: int64(maxGap / tick),
		tripCap:  DefaultTripCap,
		index:    newSrcIndex(),
		feat:     newFeatureCounter(),
	}
}

// begin starts an empty tick at start, reusing the storage of the last one.
func (a *aggregator) begin(start time.Time) {
	a.index.reset()
	a.srcs, a.banned, a.left = a.srcs[:0], a.banned[:0], a.left[:0]
	a.trips = 0
	a.feat.reset()
	a.sigs = a.dr != nil && a.dr.HasSignatures()
	if a.adm != nil {
		a.adm.tick(start)
	}
	a.cur = detector.Tick{Start: start, Length: a.tick}
	a.open = true
	a.end = start.Add(a.tick)
	// At absurd times (pcapng allows years past 292 billion) Add
	// saturates; then place decides every packet.
	a.endOK = a.end.Sub(start) == a.tick
}

// inOrder reports whether a packet stamped ts goes into the open tick
// without being late, and if so records ts as the latest: what place
// decides for nearly every packet, with two comparisons instead of the
// durations place works with (time.Sub checks every result for overflow):
// 7% of the replay source's time on the bench capture. It returns false
// in every other case, which place then handles.
//
// It agrees with place: ts >= high means place takes the forward branch,
// and ts < start+tick, exact since the Add did not overflow, is
// ts.Sub(start) < tick (and where that Sub saturates, to the minimum, it
// is below tick as well).
func (a *aggregator) inOrder(ts *time.Time) bool {
	if !a.endOK || ts.Before(a.high) || !ts.Before(a.end) {
		return false
	}
	a.high = *ts
	return true
}

// placement says where a packet goes relative to the open tick.
type placement struct {
	// closeTick: the packet belongs after the open tick, which must be
	// closed first. Otherwise the packet goes into the open tick.
	closeTick bool
	// empties is how many empty ticks come between the closed tick and
	// the packet's tick, which starts at next.
	empties int64
	next    time.Time
	// jump: the clock was resynchronised (gap above MaxGap, or backwards
	// beyond the tolerance).
	jump bool
	// backwards: the timestamp is earlier than one already seen, within
	// the tolerance.
	backwards bool
}

// place decides where a packet stamped ts goes. The first packet of a
// replay must have been given a tick with begin(ts.Truncate(tick)).
//
// Tick starts are all multiples of the tick length since Go's zero time
// (time.Truncate), so resynchronising lands on the same grid. Durations
// saturate in time.Sub, so absurd timestamps (pcapng files with times in
// the year 570000) become clock jumps rather than overflows.
func (a *aggregator) place(ts time.Time) placement {
	var p placement
	if ts.Before(a.high) {
		if a.high.Sub(ts) > a.backTol {
			a.high = ts
			return placement{closeTick: true, next: ts.Truncate(a.tick), jump: true}
		}
		// Counted in the open tick even if it belongs to an earlier one:
		// that tick has been handed out already.
		p.backwards = true
	} else {
		a.high = ts
	}
	d := ts.Sub(a.cur.Start)
	if d < a.tick {
		return p
	}
	n := int64(d / a.tick) // the packet is in the n-th tick after the open one
	p.closeTick = true
	if n-1 > a.maxEmpty {
		p.empties, p.next, p.jump = a.maxEmpty, ts.Truncate(a.tick), true
		return p
	}
	p.empties, p.next = n-1, a.cur.Start.Add(time.Duration(n)*a.tick)
	return p
}

// add counts one packet of wire length wire, stamped ts, into the open
// tick and decides whether the data plane drops it: first the bans of its
// source (asked at the source's first packet in the tick, for the tick's
// end: see Dropper.Banned), then, if no ban drops it, the signature rules
// at the packet's time.
// Everything is counted, dropped or not, in the counters and features
// alike; the dropped part in the Dropped counters too. A source the
// program would not hold an entry for (admission.go) is counted in the
// totals only, until its probation admits it.
func (a *aggregator) add(pkt *Packet, wire uint64, ts *time.Time) {
	if !pkt.OK {
		a.cur.UnparsedPackets++
		a.cur.UnparsedBytes += wire
		a.verdict(verdictUndecodable)
		return
	}
	t := &a.cur
	t.Total.Packets[pkt.Class]++
	t.Total.Bytes[pkt.Class] += wire
	t.Features.Lengths[pkt.Class][detector.LengthBucket(pkt.Length)]++
	a.feat.add(&pkt.PacketMeta, wire)

	i, ok := a.index.lookup(&pkt.Src, a.srcs)
	if !ok {
		banned := a.dr != nil && a.dr.Banned(pkt.Src, a.end)
		if a.adm != nil && !a.adm.admitted(&pkt.Src, t.Start) {
			// On probation: decided and counted in the totals, under
			// no source unless this packet admits it (with what the
			// probation table recorded of it in this tick).
			dropped := banned || (a.sigs && a.sigDropped(pkt, ts))
			if !a.adm.probation(pkt, wire, dropped, t.Start) {
				t.ProbationPackets++
				a.count(nil, pkt.Class, dropped, wire)
				return
			}
			t.ProbationPackets -= a.adm.rec.TotalPackets() // credited to it
			a.appendSource(pkt.Src, banned, &a.adm.rec)
			i = len(a.srcs) - 1
			s := &a.srcs[i]
			a.sourcePort(s, pkt)
			a.count(s, pkt.Class, dropped, wire)
			// The entry starts with what probation credited: its
			// level is compared with all of it.
			if a.left[i].take(s.TotalPackets(), s.TotalBytes()) {
				a.trip(i, ts)
			}
			return
		}
		a.appendSource(pkt.Src, banned, nil)
		i = len(a.srcs) - 1
	}
	s := &a.srcs[i]
	a.sourcePort(s, pkt)
	a.count(s, pkt.Class, a.banned[i] || (a.sigs && a.sigDropped(pkt, ts)), wire)
	// After the count, as the program compares the entry's counts once
	// it has added the frame (a banned source's left is tripNever: what
	// a rule drops never trips).
	if a.left[i].take(1, wire) {
		a.trip(i, ts)
	}
}

// trip handles a source's crossing of its trip level at packet time ts:
// once per source per tick, up to tripCap per tick, it hands the
// Tripper a copy of the source's counts so far and, if it bans the
// source, drops the rest of the source's tick.
func (a *aggregator) trip(i int, ts *time.Time) {
	a.left[i] = tripNever
	if a.trips >= a.tripCap {
		a.tripStats.overCap++
		return
	}
	a.trips++
	a.tripStats.judged++
	a.tripSrc = a.srcs[i]
	if a.tr.Trip(&a.tripSrc, *ts) {
		a.banned[i] = true
		a.tripStats.banned++
	}
}

// appendSource adds a source to the open tick, with its counts from the
// probation table if it was just admitted (rec not nil).
func (a *aggregator) appendSource(addr detector.Addr, banned bool, rec *bpf.Admitted) {
	src := detector.Source{Addr: addr}
	if rec != nil {
		src.Counters, src.UDPSrcPort = rec.Counters, rec.UDPSrcPort
	}
	a.index.insert(len(a.srcs))
	a.srcs = append(a.srcs, src)
	a.banned = append(a.banned, banned)
	left := tripNever
	if a.tr != nil && !banned {
		left = leftOf(a.tr.TripLevel(addr))
	}
	a.left = append(a.left, left)
}

// sourcePort records a packet's UDP source port under its source. Port 0
// means "none" in the tick, as in the XDP program, which keeps the last
// non-zero port: a datagram from port 0 does not erase it.
func (a *aggregator) sourcePort(s *detector.Source, pkt *Packet) {
	if pkt.Class == detector.ClassUDP && pkt.L4 && pkt.SrcPort != 0 {
		s.UDPSrcPort = pkt.SrcPort
	}
}

// count counts a packet (already in the totals by class) under its source,
// if it has one, and as dropped or passed.
func (a *aggregator) count(s *detector.Source, class detector.Class, dropped bool, wire uint64) {
	if s != nil {
		s.Packets[class]++
		s.Bytes[class] += wire
	}
	if !dropped {
		a.verdict(verdictPassed)
		return
	}
	if s != nil {
		s.DroppedPackets++
		s.DroppedBytes += wire
	}
	t := &a.cur
	t.Total.DroppedPackets++
	t.Total.DroppedBytes += wire
	a.verdict(verdictDropped)
}

// sigDropped asks the Dropper about the signature rules. It hands over
// a copy of the packet's meta: a pointer passed to an interface method
// escapes, and the caller's Packet would have to live on the heap.
func (a *aggregator) sigDropped(pkt *Packet, ts *time.Time) bool {
	a.meta = pkt.PacketMeta
	return a.dr.Dropped(&a.meta, *ts)
}

// verdict writes a packet's verdict, if verdicts are written (a test
// small enough to be inlined).
func (a *aggregator) verdict(v byte) {
	if a.verdicts != nil {
		a.writeVerdict(v)
	}
}

// writeVerdict is kept out of line so that verdict inlines.
//
//go:noinline
func (a *aggregator) writeVerdict(v byte) {
	if err := a.verdicts.WriteByte(v); err != nil && a.verr == nil {
		a.verr = err
	}
}

// close finishes the open tick and returns it.
func (a *aggregator) close() *detector.Tick {
	a.open = false
	a.cur.Sources = a.srcs
	if a.adm != nil {
		a.adm.closed(a.srcs)
		a.cur.Probation = a.adm.probe.AppendEpoch(a.probation[:0])
		a.probation = a.cur.Probation
	}
	a.feat.finish(&a.cur.Features)
	return &a.cur
}
