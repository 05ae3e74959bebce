package bpf

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// loadAdmitting loads the program admitting new sources after `after`
// frames, with a budget of free admissions per epoch (0: none), and a
// known probation seed.
func loadAdmitting(t *testing.T, after, budget int, opts Options) *XDP {
	t.Helper()
	opts.AdmitAfter = after
	x := loadTest(t, opts)
	if err := x.SetAdmission(after, budget); err != nil {
		t.Fatal(err)
	}
	x.SetAdmissionSeed(12345)
	return x
}

// TestAdmission runs frames through the program with BPF_PROG_TEST_RUN
// (on one CPU: probation is per CPU) and checks admission from both sides
// of the threshold: below it a source has no entry but its frames are in
// the global counters; the frame that reaches it creates an entry with
// every frame of the epoch (exact counts from then on); records of an
// earlier epoch are not carried; a colliding source restarts the count;
// dropped frames are recorded as dropped; the budget admits at once.
func TestAdmission(t *testing.T) {
	frame := udp4Frame("198.18.0.1")
	size := uint64(len(frame))
	a := addr("198.18.0.1")

	t.Run("threshold", func(t *testing.T) {
		x := loadAdmitting(t, 3, 0, Options{})
		onCPU(t, 0, func() {
			for i := range 2 {
				run(t, x, frame)
				if _, ok := lookupSource(t, x, a); ok {
					t.Fatalf("entry after %d frames, threshold 3", i+1)
				}
			}
			st := readStats(t, x)
			if st.Packets[detector.ClassUDP] != 2 || st.ProbationPackets != 2 || st.ProbationBytes != 2*size || st.Admitted != 0 {
				t.Errorf("on probation: stats %+v", st)
			}
			run(t, x, frame)
			s, ok := lookupSource(t, x, a)
			if !ok || s.Packets[detector.ClassUDP] != 3 || s.Bytes[detector.ClassUDP] != 3*size || s.UDPSrcPort != 53 {
				t.Fatalf("admitted at the third frame: %+v %v, want 3 frames", s, ok)
			}
			for range 5 {
				run(t, x, frame)
			}
			s, _ = lookupSource(t, x, a)
			st = readStats(t, x)
			if s.Packets[detector.ClassUDP] != 8 || st.Admitted != 1 || st.ProbationCredited != 2 || st.Packets[detector.ClassUDP] != 8 {
				t.Errorf("after admission: source %+v, stats %+v", s, st)
			}
		})
	})

	t.Run("epoch", func(t *testing.T) {
		x := loadAdmitting(t, 3, 0, Options{})
		onCPU(t, 0, func() {
			run(t, x, frame)
			run(t, x, frame)
			if err := x.AdvanceEpoch(); err != nil {
				t.Fatal(err)
			}
			run(t, x, frame) // third frame: admitted, the two before are history
			s, ok := lookupSource(t, x, a)
			if !ok || s.Packets[detector.ClassUDP] != 1 {
				t.Fatalf("admitted after an epoch change: %+v %v, want only this epoch's frame", s, ok)
			}
			if st := readStats(t, x); st.ProbationCredited != 0 {
				t.Errorf("credited %d frames of an earlier epoch", st.ProbationCredited)
			}
		})
	})

	t.Run("collision", func(t *testing.T) {
		x := loadAdmitting(t, 3, 0, Options{})
		b := collidingAddr(t, a, x.Admission().Seed)
		fb := udp4Frame(netip.Addr(b.Netip()).String())
		onCPU(t, 0, func() {
			for range 5 { // each takes the slot from the other: never three in a row
				run(t, x, frame)
				run(t, x, fb)
			}
			if _, ok := lookupSource(t, x, a); ok {
				t.Errorf("%v admitted though %v kept taking its slot", a, b)
			}
			for range 3 {
				run(t, x, frame)
			}
			if s, ok := lookupSource(t, x, a); !ok || s.Packets[detector.ClassUDP] != 3 {
				t.Errorf("three frames in a row: %+v %v", s, ok)
			}
		})
	})

	t.Run("dropped", func(t *testing.T) {
		x := loadAdmitting(t, 3, 0, Options{})
		if err := x.AddRule(netip.MustParsePrefix("198.18.0.1/32"), time.Hour); err != nil {
			t.Fatal(err)
		}
		onCPU(t, 0, func() {
			for range 3 {
				expectAction(t, x, "banned on probation", frame, xdpDrop)
			}
		})
		s, ok := lookupSource(t, x, a)
		if !ok || s.DroppedPackets != 3 || s.DroppedBytes != 3*size {
			t.Errorf("banned source admitted: %+v %v, want 3 dropped", s, ok)
		}
	})

	t.Run("records", func(t *testing.T) {
		// Frames of sources that stay on probation are readable by
		// address once their epoch closes: what the detector counts in
		// their prefixes. A second CPU keeps records of its own.
		x := loadAdmitting(t, 3, 0, Options{})
		b := "198.18.0.2"
		if err := x.AddRule(netip.MustParsePrefix(b+"/32"), time.Hour); err != nil {
			t.Fatal(err)
		}
		fb := udp4Frame(b)
		onCPU(t, 0, func() {
			run(t, x, frame)
			run(t, x, frame)
			expectAction(t, x, b, fb, xdpDrop)
		})
		cpus := 1
		if x.ncpu > 1 {
			cpus = 2
			onCPU(t, 1, func() { run(t, x, frame) })
		}
		_, recs := closeEpoch(t, x)
		var gotA detector.Counters
		var na, nb int
		for _, r := range recs {
			switch r.Addr {
			case a:
				na++
				gotA.Add(&r.Counters)
			case addr(b):
				nb++
				if r.Packets[detector.ClassUDP] != 1 || r.DroppedPackets != 1 || r.DroppedBytes != uint64(len(fb)) {
					t.Errorf("%s: record %+v, want one dropped frame", b, r.Counters)
				}
			default:
				t.Errorf("record of %v, which sent nothing", r.Addr)
			}
		}
		if want := uint64(2 + cpus - 1); na != cpus || gotA.Packets[detector.ClassUDP] != want || gotA.Bytes[detector.ClassUDP] != want*size || gotA.DroppedPackets != 0 {
			t.Errorf("198.18.0.1: %d records, %+v; want %d records, %d frames", na, gotA, cpus, want)
		}
		if nb != 1 {
			t.Errorf("%s: %d records, want 1", b, nb)
		}
		// The source's next frame, in the new epoch, clears its records;
		// admission (its third frame on CPU 0) frees the slot.
		onCPU(t, 0, func() { run(t, x, frame) })
		_, recs = closeEpoch(t, x)
		for _, r := range recs {
			if r.Addr == a {
				t.Errorf("record of an admitted source: %+v", r)
			}
		}
	})

	t.Run("budget", func(t *testing.T) {
		x := loadAdmitting(t, 3, 2, Options{})
		srcs := []string{"198.18.0.1", "198.18.0.2", "198.18.0.3"}
		onCPU(t, 0, func() {
			for _, s := range srcs {
				run(t, x, udp4Frame(s))
			}
			for i, s := range srcs {
				_, ok := lookupSource(t, x, addr(s))
				if ok != (i < 2) {
					t.Errorf("%s: entry %v with a budget of 2", s, ok)
				}
			}
			if err := x.AdvanceEpoch(); err != nil {
				t.Fatal(err)
			}
			run(t, x, udp4Frame("198.18.0.4"))
			if _, ok := lookupSource(t, x, addr("198.18.0.4")); !ok {
				t.Error("a new epoch did not renew the budget")
			}
		})
	})
}

// collidingAddr finds an address in 198.18.0.0/15 whose probation slot is
// a's.
func collidingAddr(t *testing.T, a detector.Addr, seed uint32) detector.Addr {
	t.Helper()
	want := probeSlot(&a, seed)
	for i := 1; i < 1<<17; i++ {
		b := detector.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
		if b != a && probeSlot(&b, seed) == want {
			return b
		}
	}
	t.Fatal("no colliding address in 198.18.0.0/15")
	return detector.Addr{}
}

// TestAdmissionModel runs the same random frames (sources drawn from a
// small pool with colliding slots, some banned, epochs moving) through the
// program and through Probation, the Go model the replay uses: the entries
// and the probation counters must be identical.
func TestAdmissionModel(t *testing.T) {
	for _, c := range []struct{ after, budget int }{{3, 0}, {4, 0}, {2, 5}, {3, 40}} {
		t.Run(fmt.Sprintf("after-%d-budget-%d", c.after, c.budget), func(t *testing.T) {
			x := loadAdmitting(t, c.after, c.budget, Options{})
			seed := x.Admission().Seed
			model, err := NewProbation(c.after, c.budget, seed)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, uint64(c.after*100+c.budget)))
			var pool []detector.Addr
			for i := range 60 {
				pool = append(pool, detector.AddrFrom4([4]byte{198, 19, 0, byte(i)}))
			}
			for range 20 { // colliding pairs
				pool = append(pool, collidingAddr(t, pool[rng.IntN(len(pool))], seed))
			}
			banned := pool[7]
			if err := x.AddRule(netip.PrefixFrom(banned.Netip(), 32), time.Hour); err != nil {
				t.Fatal(err)
			}
			want := map[detector.Addr]*detector.Counters{}
			var probation uint64
			var rec Admitted
			records := 0
			onCPU(t, 0, func() {
				for i := range 3000 {
					if i%500 == 499 {
						records += compareRecords(t, x, model)
						model.AdvanceEpoch()
					}
					src := pool[rng.IntN(len(pool))]
					f := udp4Frame(src.Netip().String())
					run(t, x, f)
					w := uint64(len(f))
					dropped := src == banned
					if c := want[src]; c != nil {
						c.Packets[detector.ClassUDP]++
						c.Bytes[detector.ClassUDP] += w
						if dropped {
							c.DroppedPackets++
							c.DroppedBytes += w
						}
						continue
					}
					if !model.Admit(&src, detector.ClassUDP, w, dropped, 53, &rec) {
						probation++
						continue
					}
					c := rec.Counters
					c.Packets[detector.ClassUDP]++
					c.Bytes[detector.ClassUDP] += w
					if dropped {
						c.DroppedPackets++
						c.DroppedBytes += w
					}
					want[src] = &c
				}
			})
			records += compareRecords(t, x, model)
			if records == 0 && c.after > 1 {
				t.Error("no probation record: the test exercised too little")
			}
			got := readSources(t, x)
			if len(got) != len(want) {
				t.Errorf("program admitted %d sources, model %d", len(got), len(want))
			}
			for _, s := range got {
				if w := want[s.Addr]; w == nil || *w != s.Counters {
					t.Errorf("%v: program %+v, model %+v", s.Addr, s.Counters, w)
				}
			}
			if st := readStats(t, x); st.ProbationPackets != probation {
				t.Errorf("probation frames: program %d, model %d", st.ProbationPackets, probation)
			}
			if probation == 0 && c.after > 1 {
				t.Error("nothing went through probation: the test exercised too little")
			}
		})
	}
}

// compareRecords closes the program's epoch and checks that its probation
// records are the model's, which the caller then advances; it returns how
// many there were.
func compareRecords(t *testing.T, x *XDP, model *Probation) int {
	t.Helper()
	want := model.AppendEpoch(nil)
	closed, got := closeEpoch(t, x)
	byAddr := func(a, b detector.Source) int { return bytes.Compare(a.Addr[:], b.Addr[:]) }
	slices.SortFunc(got, byAddr)
	slices.SortFunc(want, byAddr)
	if !slices.Equal(got, want) {
		t.Errorf("epoch %d: program's probation records %+v, model's %+v", closed, got, want)
	}
	return len(want)
}

// TestAdmissionFullMap: admission into a full per-source map fails
// visibly, and rules and totals do not depend on it.
func TestAdmissionFullMap(t *testing.T) {
	x := loadAdmitting(t, 2, 0, Options{MaxSources: 2})
	var srcs []string
	for i := range 6 {
		srcs = append(srcs, netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}).String())
	}
	if err := x.AddRule(netip.MustParsePrefix(srcs[5]+"/32"), time.Hour); err != nil {
		t.Fatal(err)
	}
	onCPU(t, 0, func() {
		for range 3 {
			for _, s := range srcs {
				want := uint32(xdpPass)
				if s == srcs[5] {
					want = xdpDrop
				}
				expectAction(t, x, s, udp4Frame(s), want)
			}
		}
	})
	st := readStats(t, x)
	if st.Packets[detector.ClassUDP] != 18 || st.DroppedPackets != 3 {
		t.Errorf("totals %+v, want 18 frames, 3 dropped", st)
	}
	if st.SourceInsertFailures == 0 {
		t.Errorf("no insert failure with 6 sources in a map of 2: %+v", st)
	}
}
