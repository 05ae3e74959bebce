package capture

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/privtest"
	"github.com/floodguard/floodguard/internal/vectors"
)

// skipOrFail skips tb with the reason, or fails it under
// FLOODGUARD_REQUIRE_PRIVILEGED=1 (CI, where kernel tests must run).
var skipOrFail = privtest.SkipOrFail

// requirePrivileged skips (or fails) tb unless it runs as root.
func requirePrivileged(tb testing.TB) { privtest.RequireRoot(tb, "loads the XDP program") }

// loadXDP loads the real XDP program, unattached, for BPF_PROG_TEST_RUN,
// admitting sources after admitAfter frames, with the replay's probation
// seed. The maps are kept small: the per-source map is preallocated.
func loadXDP(tb testing.TB, admitAfter int) *bpf.XDP {
	tb.Helper()
	requirePrivileged(tb)
	x, err := bpf.Load(bpf.Options{MaxSources: 1024, MaxRules: 64, AdmitAfter: admitAfter})
	if errors.Is(err, bpf.ErrPermission) || errors.Is(err, bpf.ErrKernelTooOld) {
		skipOrFail(tb, "needs root: BPF cannot be loaded here: %v", err)
	}
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	tb.Cleanup(func() { x.Close() })
	x.SetAdmissionSeed(DefaultAdmissionSeed)
	return x
}

// xdpPass is the action the program returns for every frame while no rule
// is installed.
const xdpPass = 2

// runXDP runs the program once on frame, which must pass.
func runXDP(tb testing.TB, x *bpf.XDP, name string, frame []byte) {
	tb.Helper()
	ret, err := x.Program().Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		tb.Fatalf("%s: run: %v", name, err)
	}
	if ret != xdpPass {
		tb.Fatalf("%s: XDP action %d, want pass", name, ret)
	}
}

// onOneCPU runs fn on the calling goroutine's thread pinned to one CPU (the
// first it may use). The program keeps the last UDP port per CPU and the
// reader picks the CPU that saw the source last by a coarse clock, so "the
// last port" is only well defined when every frame runs on one CPU.
func onOneCPU(tb testing.TB, fn func()) {
	tb.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		tb.Fatalf("get affinity: %v", err)
	}
	for c := 0; c < len(old)*64; c++ {
		if old.IsSet(c) {
			one.Set(c)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		tb.Fatalf("pin to one CPU: %v", err)
	}
	defer unix.SchedSetaffinity(0, &old)
	fn()
}

// bySource indexes a tick's sources.
func bySource(tk *detector.Tick) map[detector.Addr]detector.Source {
	m := make(map[detector.Addr]detector.Source, len(tk.Sources))
	for _, s := range tk.Sources {
		m[s.Addr] = s
	}
	return m
}

// probationByAddr sums a tick's probation records by address.
func probationByAddr(tk *detector.Tick) map[detector.Addr]detector.Counters {
	m := make(map[detector.Addr]detector.Counters)
	for i := range tk.Probation {
		c := m[tk.Probation[i].Addr]
		c.Add(&tk.Probation[i].Counters)
		m[tk.Probation[i].Addr] = c
	}
	return m
}

// TestXDPAndReplayAgree sends every shared vector, several times over,
// through the real XDP program (BPF_PROG_TEST_RUN) read back by the live
// source, and through the replay decoder and aggregator: the per-source
// counters and UDP ports, the totals and the unparsed counts must be
// identical, with the same admission on both sides: within the budget
// every source from its first frame; past it, sources with fewer frames
// than the threshold in the totals only, the others counted from their
// first frame of the tick (recorded on probation).
func TestXDPAndReplayAgree(t *testing.T) {
	for _, c := range []struct{ after, budget int }{
		{bpf.DefaultAdmitAfter, bpf.DefaultAdmitBudget},
		{bpf.DefaultAdmitAfter, 3},
		{bpf.DefaultAdmitAfter, 0},
		{bpf.MaxAdmit, 0},
		{1, 0},
	} {
		t.Run(fmt.Sprintf("after-%d-budget-%d", c.after, c.budget), func(t *testing.T) {
			testXDPAndReplayAgree(t, c.after, c.budget)
		})
	}
}

func testXDPAndReplayAgree(t *testing.T, after, budget int) {
	x := loadXDP(t, after)
	if err := x.SetAdmission(after, budget); err != nil {
		t.Fatal(err)
	}
	live, err := NewLive(context.Background(), LiveMapsOf(x), LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	if _, err := live.Collect(start); err != nil { // prime
		t.Fatal(err)
	}

	agg := newAggregator(time.Second, time.Minute, time.Minute)
	if agg.adm, err = newAdmission(after, budget, DefaultAdmissionSeed, DefaultSourceIdleTimeout, DefaultFewPacketsIdleTimeout); err != nil {
		t.Fatal(err)
	}
	agg.begin(start)
	sendVectors(t, x, agg, start)
	want := agg.close()
	got, err := live.Collect(start.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st := live.Stats(); after > 1 && budget == 0 && st.ProbationPackets == 0 {
		t.Errorf("no packet on probation: %+v", st)
	}

	g, w := bySource(got), bySource(want)
	if len(g) != len(w) {
		t.Errorf("XDP saw %d sources, replay %d", len(g), len(w))
	}
	for a, ws := range w {
		gs, ok := g[a]
		if !ok {
			t.Errorf("%s: counted by replay only", a)
			continue
		}
		if gs != ws {
			t.Errorf("%s: XDP %+v, replay %+v", a, gs, ws)
		}
	}
	if got.Total != want.Total {
		t.Errorf("totals: XDP %+v, replay %+v", got.Total, want.Total)
	}
	if got.ProbationPackets != want.ProbationPackets {
		t.Errorf("packets on probation: XDP %d, replay %d", got.ProbationPackets, want.ProbationPackets)
	}
	// What the detector counts in prefixes on top of the sources.
	gp, wp := probationByAddr(got), probationByAddr(want)
	if !maps.Equal(gp, wp) {
		t.Errorf("probation records: XDP %+v, replay %+v", gp, wp)
	}
	if want.ProbationPackets > 0 && len(wp) == 0 {
		t.Error("frames on probation but no record of them")
	}
	if got.UnparsedPackets != want.UnparsedPackets || got.UnparsedBytes != want.UnparsedBytes {
		t.Errorf("unparsed: XDP %d/%d B, replay %d/%d B", got.UnparsedPackets, got.UnparsedBytes, want.UnparsedPackets, want.UnparsedBytes)
	}
	if got.UnparsedPackets == 0 || len(g) < 2 {
		t.Fatalf("the vectors exercised too little: %d sources, %d unparsed", len(g), got.UnparsedPackets)
	}
	for _, s := range w {
		if s.UDPSrcPort == 0 {
			t.Errorf("%s: no UDP port: the vectors should leave one", s.Addr)
		}
	}
}

// maxLinearFrame is the largest frame BPF_PROG_TEST_RUN hands to XDP in one
// piece (a 4 KiB page less head- and tailroom); bytes past it would go to
// fragments, beyond data_end, which replay does not model.
const maxLinearFrame = 3000

// FuzzXDPAgreesWithReplay runs arbitrary Ethernet frames through the real
// XDP program and the replay decoder: both must find the same source (or
// none), class and UDP port. Its seeds are the shared vectors, so a plain
// `go test` checks each of them one by one; `-fuzz` hunts for new
// disagreements.
func FuzzXDPAgreesWithReplay(f *testing.F) {
	for _, v := range vectors.All() {
		f.Add(v.Frame)
	}
	x := loadXDP(f, 1)
	r := x.NewSourceReader()
	dec := NewDecoder()
	var sources []bpf.Source
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > maxLinearFrame {
			return // refused by, or not linear in, BPF_PROG_TEST_RUN
		}
		before, err := x.ReadStats()
		if err != nil {
			t.Fatal(err)
		}
		runXDP(t, x, "frame", frame)
		after, err := x.ReadStats()
		if err != nil {
			t.Fatal(err)
		}
		if sources, err = r.AppendSources(sources[:0]); err != nil {
			t.Fatal(err)
		}
		// Leave the map empty for the next frame.
		for _, s := range sources {
			if _, err := x.DeleteSources([]detector.Addr{s.Addr}); err != nil {
				t.Fatal(err)
			}
		}

		p := dec.Decode(LinkTypeEthernet, frame)
		if !p.OK {
			if after.UnparsedPackets-before.UnparsedPackets != 1 || len(sources) != 0 {
				t.Fatalf("replay: unparsed; XDP: sources %+v, stats %+v -> %+v", sources, before, after)
			}
			return
		}
		wantPort := uint16(0)
		if p.Class == detector.ClassUDP && p.L4 {
			wantPort = p.SrcPort
		}
		if len(sources) != 1 {
			t.Fatalf("replay: %s class %s; XDP: sources %+v (unparsed %d -> %d)", p.Src, p.Class, sources, before.UnparsedPackets, after.UnparsedPackets)
		}
		s := sources[0]
		if s.Addr != p.Src || s.Packets[p.Class] != 1 || s.TotalPackets() != 1 || s.UDPSrcPort != wantPort {
			t.Fatalf("replay: %s class %s port %d; XDP: %+v", p.Src, p.Class, wantPort, s)
		}
	})
}

// sendVectors sends the shared vectors, in three rounds with uneven counts
// per source, through the program (on one CPU) and the aggregator's open
// tick, stamped start.
func sendVectors(t *testing.T, x *bpf.XDP, agg *aggregator, start time.Time) {
	t.Helper()
	dec := NewDecoder()
	vs := vectors.All()
	onOneCPU(t, func() {
		for round := range 3 {
			for i, v := range vs {
				if round > 0 && i%(round+1) != 0 {
					continue // uneven counts per source
				}
				runXDP(t, x, v.Name, v.Frame)
				p := dec.Decode(LinkTypeEthernet, v.Frame)
				agg.add(&p, uint64(len(v.Frame)), &start)
			}
		}
	})
}

// tripRecorder is a Tripper with one level for every source that records
// the trips it is asked to judge and bans nothing.
type tripRecorder struct {
	level detector.TripLevel
	trips map[detector.Addr]uint64 // packets at the trip
}

func (r *tripRecorder) TripLevel(detector.Addr) detector.TripLevel { return r.level }

func (r *tripRecorder) Trip(src *detector.Source, _ time.Time) bool {
	r.trips[src.Addr] = src.TotalPackets()
	return false
}

// TestXDPAndReplayAgreeOnTrips (issue #17): the shared vectors, three
// rounds with uneven counts per source, through the program with a trip
// level and through the replay with the same level: the same sources trip,
// at the same count, once each.
func TestXDPAndReplayAgreeOnTrips(t *testing.T) {
	for _, level := range []detector.TripLevel{{Packets: 2}, {Packets: 3}, {Bytes: 200}} {
		t.Run(fmt.Sprintf("%d-packets-%d-bytes", level.Packets, level.Bytes), func(t *testing.T) {
			x := loadXDP(t, 1)
			x.SetTripLevel(level.Packets, level.Bytes, bpf.DefaultTripCap)
			rd, err := x.NewTripReader()
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			rec := &tripRecorder{level: level, trips: map[detector.Addr]uint64{}}
			agg := newAggregator(time.Second, time.Minute, time.Minute)
			agg.tr = rec
			start := time.Unix(1_700_000_000, 0)
			agg.begin(start)
			sendVectors(t, x, agg, start)
			got := map[detector.Addr]uint64{}
			for {
				rd.SetDeadline(time.Now().Add(100 * time.Millisecond))
				tr, err := rd.Read()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, dup := got[tr.Addr]; dup {
					t.Errorf("%v tripped twice in one tick", tr.Addr)
				}
				got[tr.Addr] = tr.Packets
			}
			if len(got) == 0 {
				t.Fatal("no trip: the vectors exercised nothing")
			}
			if !maps.Equal(got, rec.trips) {
				t.Errorf("trips (source: packets at the trip): XDP %v, replay %v", got, rec.trips)
			}
		})
	}
}
