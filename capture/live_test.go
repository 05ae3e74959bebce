package capture

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
)

// fakeMaps is a kernel map as the live source sees it: cumulative counters
// that only grow, and a take that returns the last values.
type fakeMaps struct {
	entries map[detector.Addr]*bpf.Source
	order   []detector.Addr
	stats   bpf.Stats
	// onTake simulates packets arriving between the read and the delete.
	onTake func()
	// features is what the next ReadFeatures returns (counts since the
	// previous read, as bpf.FeatureReader gives them).
	features  detector.Features
	featReads int
	// perRead, if > 0, is how many entries a read with a deadline gets
	// before the deadline passes; cursor is where the next one goes on.
	perRead int
	cursor  int
	epochs  int
	// probation is what AppendProbation returns for the epoch just
	// closed; probationEpoch the epoch it was last asked for.
	probation      []detector.Source
	probationEpoch uint32
}

func newFakeMaps() *fakeMaps { return &fakeMaps{entries: map[detector.Addr]*bpf.Source{}} }

func (f *fakeMaps) count(a string, c detector.Class, pkts, bytes uint64, dropped bool, seenNs uint64) {
	addr := detector.AddrFrom(netip.MustParseAddr(a))
	s, ok := f.entries[addr]
	if !ok {
		s = &bpf.Source{Addr: addr, Slot: uint32(len(f.order))}
		f.entries[addr] = s
		f.order = append(f.order, addr)
	}
	s.Packets[c] += pkts
	s.Bytes[c] += bytes
	f.stats.Packets[c] += pkts
	f.stats.Bytes[c] += bytes
	if dropped {
		s.DroppedPackets += pkts
		s.DroppedBytes += bytes
		f.stats.DroppedPackets += pkts
		f.stats.DroppedBytes += bytes
	}
	s.LastSeenNs = seenNs
}

func (f *fakeMaps) AppendSources(dst []bpf.Source) ([]bpf.Source, error) {
	for _, a := range f.order {
		if s, ok := f.entries[a]; ok {
			dst = append(dst, *s)
		}
	}
	return dst, nil
}

func (f *fakeMaps) AppendSourcesUntil(dst []bpf.Source, deadline time.Time) ([]bpf.Source, bool, error) {
	if f.perRead <= 0 || deadline.IsZero() {
		out, err := f.AppendSources(dst)
		return out, true, err
	}
	n := 0
	for f.cursor < len(f.order) {
		if n == f.perRead {
			return dst, false, nil
		}
		if s, ok := f.entries[f.order[f.cursor]]; ok {
			dst = append(dst, *s)
			n++
		}
		f.cursor++
	}
	f.cursor = 0
	return dst, true, nil
}

func (f *fakeMaps) AdvanceEpoch() error { f.epochs++; return nil }

func (f *fakeMaps) Epoch() uint32 { return uint32(f.epochs) }

func (f *fakeMaps) AppendProbation(dst []detector.Source, epoch uint32) ([]detector.Source, error) {
	f.probationEpoch = epoch
	return append(dst, f.probation...), nil
}

func (f *fakeMaps) LookupSource(a detector.Addr) (bpf.Source, bool, error) {
	if s, ok := f.entries[a]; ok {
		return *s, true, nil
	}
	return bpf.Source{}, false, nil
}

func (f *fakeMaps) ReadStats() (bpf.Stats, error) { return f.stats, nil }

func (f *fakeMaps) ReadFeatures(dst *detector.Features) error {
	f.featReads++
	dst.Lengths, dst.DstsOther = f.features.Lengths, f.features.DstsOther
	dst.Ports = append(dst.Ports[:0], f.features.Ports...)
	dst.Dsts = append(dst.Dsts[:0], f.features.Dsts...)
	f.features = detector.Features{}
	return nil
}

func (f *fakeMaps) TakeSources(keys []detector.Addr, dst []bpf.Source) ([]bpf.Source, error) {
	if f.onTake != nil {
		f.onTake()
	}
	for _, k := range keys {
		if s, ok := f.entries[k]; ok {
			dst = append(dst, *s)
			delete(f.entries, k)
		}
	}
	return dst, nil
}

type liveHarness struct {
	t    *testing.T
	live *Live
	mono uint64
	now  time.Time
	// running sums over every tick of the sources and of the totals
	srcSum, totSum detector.Counters
}

func (h *liveHarness) sumsAgree() {
	h.t.Helper()
	if h.srcSum != h.totSum {
		h.t.Fatalf("sources sum to %+v over all ticks, totals to %+v", h.srcSum, h.totSum)
	}
}

func newLiveHarness(t *testing.T, maps LiveMaps) *liveHarness {
	h := &liveHarness{t: t, now: time.Unix(1_700_000_000, 0), mono: uint64(time.Hour)}
	l, err := NewLive(context.Background(), maps, LiveOptions{
		Tick: time.Second, IdleTimeout: 10 * time.Second,
		Monotonic: func() (uint64, error) { return h.mono, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.live = l
	return h
}

func (h *liveHarness) collect() map[string]detector.Source {
	h.t.Helper()
	tk, err := h.live.Collect(h.now)
	if err != nil {
		h.t.Fatal(err)
	}
	h.now = h.now.Add(time.Second)
	h.mono += uint64(time.Second)
	out := map[string]detector.Source{}
	var sum detector.Counters
	for _, s := range tk.Sources {
		if _, dup := out[s.Addr.String()]; dup {
			h.t.Fatalf("source %s twice in one tick", s.Addr)
		}
		out[s.Addr.String()] = s
		sum.Add(&s.Counters)
	}
	// Stats and sources are read one after the other, so a packet may land
	// in one tick's total and the next tick's sources: only the running
	// sums must agree.
	h.srcSum.Add(&sum)
	h.totSum.Add(&tk.Total)
	return out
}

func TestLiveDeltasAreExact(t *testing.T) {
	f := newFakeMaps()
	h := newLiveHarness(t, f)
	// Counted before floodguard started (an adopted program): history.
	f.count("198.18.0.10", detector.ClassUDP, 1000, 64000, false, h.mono)
	if got := h.collect(); len(got) != 0 {
		t.Fatalf("priming read yielded %v", got)
	}
	f.count("198.18.0.10", detector.ClassUDP, 7, 448, false, h.mono)
	f.count("2001:db8::5", detector.ClassSYN, 3, 180, true, h.mono)
	got := h.collect()
	if s := got["198.18.0.10"]; s.Packets[detector.ClassUDP] != 7 || s.Bytes[detector.ClassUDP] != 448 {
		t.Fatalf("198.18.0.10 = %+v, want 7 packets", s)
	}
	if s := got["2001:db8::5"]; s.Packets[detector.ClassSYN] != 3 || s.DroppedPackets != 3 {
		t.Fatalf("2001:db8::5 = %+v, want 3 dropped SYNs", s)
	}
	// A quiet tick yields nothing for quiet sources.
	if got := h.collect(); len(got) != 0 {
		t.Fatalf("quiet tick yielded %v", got)
	}
	h.sumsAgree()
}

func TestLiveCounterWrap(t *testing.T) {
	f := newFakeMaps()
	h := newLiveHarness(t, f)
	a := detector.AddrFrom(netip.MustParseAddr("198.18.0.10"))
	f.entries[a] = &bpf.Source{Addr: a, Slot: uint32(len(f.order)), LastSeenNs: h.mono}
	f.entries[a].Packets[detector.ClassTCP] = ^uint64(0) - 2 // about to wrap
	f.order = append(f.order, a)
	h.collect()
	f.entries[a].Packets[detector.ClassTCP] += 10 // wraps to 7
	f.stats.Packets[detector.ClassTCP] += 10
	if s := h.collect()["198.18.0.10"]; s.Packets[detector.ClassTCP] != 10 {
		t.Fatalf("after wrap: %d packets, want 10", s.Packets[detector.ClassTCP])
	}
}

// TestLiveSlotTakenByAnother: a source deleted by something else than the
// live source (an operator, a replaced map) leaves its slot, and the next
// source in it is counted from zero, not against the first one's counts.
func TestLiveSlotTakenByAnother(t *testing.T) {
	f := newFakeMaps()
	h := newLiveHarness(t, f)
	h.collect()
	f.count("198.18.0.10", detector.ClassUDP, 500, 32000, false, h.mono)
	h.collect()
	a, b := addr("198.18.0.10"), addr("198.18.0.11")
	slot := f.entries[a].Slot
	delete(f.entries, a)
	f.entries[b] = &bpf.Source{Addr: b, Slot: slot, LastSeenNs: h.mono}
	f.entries[b].Packets[detector.ClassUDP] = 3
	f.order = append(f.order, b)
	f.stats.Packets[detector.ClassUDP] += 3
	got := h.collect()
	if s := got["198.18.0.11"]; s.Packets[detector.ClassUDP] != 3 || len(got) != 1 {
		t.Fatalf("the slot's new source: %+v (tick %v), want its 3 packets alone", s, got)
	}
	h.sumsAgree()
}

func TestLiveIdleEvictionLosesNothing(t *testing.T) {
	f := newFakeMaps()
	h := newLiveHarness(t, f)
	h.collect()
	f.count("198.18.0.10", detector.ClassUDP, 5, 320, false, h.mono)
	h.collect()
	for range 10 { // idle up to the timeout
		h.collect()
	}
	// Two packets arrive between the read that finds it idle and the
	// delete: they must be in that tick.
	f.onTake = func() { f.count("198.18.0.10", detector.ClassUDP, 2, 128, false, h.mono-uint64(time.Minute)) }
	f.stats.Packets[detector.ClassUDP] += 0
	got := h.collect()
	if s := got["198.18.0.10"]; s.Packets[detector.ClassUDP] != 2 {
		t.Fatalf("evicted source's last packets: %+v (tick %v)", s, got)
	}
	if len(f.entries) != 0 || h.live.Stats().Evicted != 1 {
		t.Fatalf("entries %v, evicted %d", f.entries, h.live.Stats().Evicted)
	}
	// It comes back: a new entry counts from zero.
	f.onTake = nil
	f.count("198.18.0.10", detector.ClassUDP, 4, 256, false, h.mono)
	if s := h.collect()["198.18.0.10"]; s.Packets[detector.ClassUDP] != 4 {
		t.Fatalf("returning source: %+v", s)
	}
	h.sumsAgree()
}

func TestLiveOptionsValidated(t *testing.T) {
	for _, o := range []LiveOptions{{Tick: time.Millisecond}, {Tick: time.Second, IdleTimeout: time.Millisecond}} {
		if _, err := NewLive(context.Background(), newFakeMaps(), o); err == nil {
			t.Errorf("NewLive(%+v) accepted", o)
		}
	}
}

// TestLiveFeatures checks that every tick carries the features read with
// it, and that the priming read (history) is dropped.
func TestLiveFeatures(t *testing.T) {
	f := newFakeMaps()
	h := newLiveHarness(t, f)
	f.features.Ports = []detector.PortCount{{Kind: detector.UDPSrcPort, Port: 53, Packets: 9, Bytes: 900}}
	f.features.DstsOther = 7
	tk, err := h.live.Collect(h.now)
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.Features.Ports) != 0 || tk.Features.DstsOther != 0 || f.featReads != 1 {
		t.Errorf("priming tick features %+v after %d reads, want none after 1", tk.Features, f.featReads)
	}
	dst := detector.AddrFrom(netip.MustParseAddr("198.18.0.10"))
	f.features.Ports = []detector.PortCount{{Kind: detector.TCPDstPort, Port: 443, Packets: 3, Bytes: 180}}
	f.features.Lengths[detector.ClassTCP][0] = 3
	f.features.Dsts = []detector.DstCount{{Addr: dst, Packets: 3}}
	f.features.DstsOther = 1
	tk, err = h.live.Collect(h.now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := detector.Features{
		Ports:     []detector.PortCount{{Kind: detector.TCPDstPort, Port: 443, Packets: 3, Bytes: 180}},
		Dsts:      []detector.DstCount{{Addr: dst, Packets: 3}},
		DstsOther: 1,
	}
	want.Lengths[detector.ClassTCP][0] = 3
	got := tk.Features
	if len(got.Ports) != 1 || got.Ports[0] != want.Ports[0] || len(got.Dsts) != 1 || got.Dsts[0] != want.Dsts[0] ||
		got.DstsOther != want.DstsOther || got.Lengths != want.Lengths {
		t.Errorf("tick features %+v, want %+v", got, want)
	}
}

// TestLivePartialReads: a read that stops at its budget leaves the rest of
// the map to the next tick; a source read after n ticks is counted at its
// average rate over them, and the totals stay exact every tick.
func TestLivePartialReads(t *testing.T) {
	f := newFakeMaps()
	h := newLiveHarness(t, f)
	h.collect() // prime: reads everything
	f.perRead = 2
	addrs := []string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"}
	for _, a := range addrs {
		f.count(a, detector.ClassUDP, 100, 6400, false, h.mono)
	}
	got := h.collect() // reads .1 and .2 (new: one tick of the pass)
	if len(got) != 2 || got["198.18.0.1"].Packets[detector.ClassUDP] != 100 {
		t.Fatalf("first partial read: %+v", got)
	}
	if !h.live.Stats().Partial || h.live.Stats().PartialReads != 1 {
		t.Errorf("stats %+v: want a partial read", h.live.Stats())
	}
	for _, a := range addrs {
		f.count(a, detector.ClassUDP, 100, 6400, false, h.mono)
	}
	got = h.collect() // reads .3 and .4: new, over the pass's two reads
	if len(got) != 2 || got["198.18.0.3"].Packets[detector.ClassUDP] != 100 || got["198.18.0.4"].Bytes[detector.ClassUDP] != 6400 {
		t.Fatalf("second partial read: %+v", got)
	}
	if h.live.Stats().Partial {
		t.Errorf("the pass ended: stats %+v", h.live.Stats())
	}
	got = h.collect() // .1 and .2 again: 100 packets since their read, over 2 ticks
	if len(got) != 2 || got["198.18.0.2"].Packets[detector.ClassUDP] != 50 {
		t.Fatalf("third read: %+v", got)
	}
	if f.epochs != 4 {
		t.Errorf("%d admission epochs, want one per read (4)", f.epochs)
	}
}

// TestLiveTrip: a trip reaches OnTrip with the source's counts since the
// last read, at the trip's time; a trip of an evicted source or from a
// tick already read does not.
func TestLiveTrip(t *testing.T) {
	f := newFakeMaps()
	h := newLiveHarness(t, f)
	var got []detector.Source
	var at []time.Time
	h.live.opts.OnTrip = func(src *detector.Source, when time.Time) {
		got = append(got, *src)
		at = append(at, when)
	}
	f.count("198.18.0.1", detector.ClassUDP, 500, 32000, false, h.mono)
	h.collect()
	f.count("198.18.0.1", detector.ClassUDP, 1200, 76800, false, h.mono)
	f.count("198.18.0.2", detector.ClassUDP, 1000, 64000, false, h.mono) // new since the read
	ep := uint32(f.epochs)
	trips := []bpf.Trip{
		{Addr: addr("198.18.0.1"), Packets: 1000, TimeNs: h.mono - uint64(100*time.Millisecond), Epoch: ep},
		{Addr: addr("198.18.0.2"), Packets: 1000, TimeNs: h.mono, Epoch: ep},
		{Addr: addr("198.18.0.3"), Packets: 1000, TimeNs: h.mono, Epoch: ep},     // no entry
		{Addr: addr("198.18.0.1"), Packets: 1000, TimeNs: h.mono, Epoch: ep - 1}, // a tick already read
	}
	before := time.Now()
	for i := range trips {
		if err := h.live.trip(&trips[i]); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0].Packets[detector.ClassUDP] != 1200 || got[1].Packets[detector.ClassUDP] != 1000 {
		t.Fatalf("trips handed on: %+v", got)
	}
	if d := before.Sub(at[0]); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("trip time %v before now, want about 100ms", d)
	}
	if st := h.live.Stats(); st.Trips != 2 || st.TripsStale != 2 {
		t.Errorf("stats %+v, want 2 trips and 2 stale", st)
	}
}

// TestLiveFewPacketsEviction: an entry with fewer than FewPackets packets
// (what a spoofed flood gets admitted within the budget) leaves after the
// short idle timeout; a source that sent more stays until the idle
// timeout.
func TestLiveFewPacketsEviction(t *testing.T) {
	f := newFakeMaps()
	h := newLiveHarness(t, f) // idle timeout 10 s, tick 1 s
	h.live.opts.IdleTimeout = time.Minute
	h.collect()
	f.count("198.18.0.1", detector.ClassSYN, 1, 60, false, h.mono)
	f.count("198.18.0.2", detector.ClassUDP, FewPackets, 640, false, h.mono)
	for range int(DefaultFewPacketsIdleTimeout/time.Second) + 2 {
		h.collect()
	}
	if _, ok := f.entries[addr("198.18.0.1")]; ok {
		t.Error("a one-packet entry outlived the few-packets idle timeout")
	}
	if _, ok := f.entries[addr("198.18.0.2")]; !ok {
		t.Errorf("an entry with %d packets left before the idle timeout", FewPackets)
	}
	h.sumsAgree()
}

// TestLiveProbationRecords: the records of the epoch the read closes reach
// the tick; past LiveOptions.MaxProbationRecords they are sampled, standing
// for the same frames, and the stats say so.
func TestLiveProbationRecords(t *testing.T) {
	f := newFakeMaps()
	live, err := NewLive(context.Background(), f, LiveOptions{MaxProbationRecords: 4})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	if _, err := live.Collect(now); err != nil { // prime
		t.Fatal(err)
	}
	for i := range 10 {
		var r detector.Source
		r.Addr = detector.AddrFrom4([4]byte{198, 18, 9, byte(i)})
		r.Packets[detector.ClassSYN], r.Bytes[detector.ClassSYN] = 1, 60
		f.probation = append(f.probation, r)
	}
	for _, c := range []struct {
		n, want int
		sampled bool
	}{{3, 3, false}, {10, 4, true}} {
		f.probation = f.probation[:c.n]
		closed := f.Epoch()
		now = now.Add(time.Second)
		tk, err := live.Collect(now)
		if err != nil {
			t.Fatal(err)
		}
		if f.probationEpoch != closed {
			t.Errorf("records asked for epoch %d, want the one the read closed, %d", f.probationEpoch, closed)
		}
		var frames uint64
		for i := range tk.Probation {
			frames += tk.Probation[i].TotalPackets()
		}
		st := live.Stats()
		if len(tk.Probation) != c.want || frames != uint64(c.n) || st.Sampled != c.sampled || st.ProbationRecords != c.n || st.ProbationKept != c.want {
			t.Errorf("%d records, bound 4: tick has %d standing for %d frames, stats %+v; want %d for %d, sampled %v",
				c.n, len(tk.Probation), frames, st, c.want, c.n, c.sampled)
		}
	}
	if st := live.Stats(); st.SampledTicks != 1 {
		t.Errorf("sampled ticks %d, want 1", st.SampledTicks)
	}
}
