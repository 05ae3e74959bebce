package capture

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// TestReplayTripBansMidTick replays a single-source flood through the
// detector: the source is banned at the packet that crosses the floor's
// trip level, mid-tick, and the rest of its tick is dropped, as the XDP
// program drops it once the rule is written.
func TestReplayTripBansMidTick(t *testing.T) {
	const flood, client = "198.19.1.1", "192.0.2.10"
	const n = 3000 // in the first second: 3000 pps against the 1000 pps floor
	gap := time.Second / n
	var recs []rec
	for i := range n {
		recs = append(recs, rec{ts: at(time.Duration(i) * gap), data: udpFrom(t, flood, 4444)})
		if i%100 == 0 {
			recs = append(recs, rec{ts: at(time.Duration(i) * gap), data: synFrom(t, client)})
		}
	}
	// One packet in the next tick closes the first.
	recs = append(recs, rec{ts: at(1500 * time.Millisecond), data: udpFrom(t, flood, 4444)})

	cfg := detector.DefaultConfig()
	cfg.WarmUp = 0 // the floor applies from the first tick
	plane := NewSimulatedPlane()
	eng, err := detector.New(cfg, plane)
	if err != nil {
		t.Fatal(err)
	}
	var verdicts bytes.Buffer
	r := replayOf(t, ReplayOptions{Dropper: plane, Tripper: eng, Verdicts: &verdicts}, pcapFile(1, recs...))
	tk, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	evs := eng.Step(tk)

	// The floor's level is 1001 packets: the 1001st flood packet trips.
	crossing := at(1000 * gap)
	if len(evs) < 2 || evs[0].Kind != detector.AttackStart || evs[1].Kind != detector.Ban ||
		!evs[0].Time.Equal(crossing) || !evs[1].Time.Equal(crossing) || evs[1].Target != flood+"/32" {
		t.Fatalf("want attack_start and ban of %s at %v first, got %v", flood, crossing, evs)
	}
	for _, ev := range evs[2:] {
		if ev.Kind == detector.Ban || ev.Kind == detector.AttackStart {
			t.Fatalf("a second decision at the tick's end: %v", ev)
		}
	}
	var fs, cs *detector.Source
	for i := range tk.Sources {
		switch tk.Sources[i].Addr {
		case addr(flood):
			fs = &tk.Sources[i]
		case addr(client):
			cs = &tk.Sources[i]
		}
	}
	if fs == nil || cs == nil {
		t.Fatalf("sources: %+v", tk.Sources)
	}
	if fs.TotalPackets() != n || fs.DroppedPackets != n-1001 || cs.DroppedPackets != 0 {
		t.Fatalf("flood %d packets, %d dropped (want %d of %d); client dropped %d",
			fs.TotalPackets(), fs.DroppedPackets, n-1001, n, cs.DroppedPackets)
	}
	if tk.Total.DroppedPackets != n-1001 {
		t.Fatalf("tick dropped %d, want %d", tk.Total.DroppedPackets, n-1001)
	}
	// Verdicts in capture order: the flood's packets pass up to the
	// crossing one, then drop; the client's always pass.
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	v := verdicts.Bytes()
	floodSeen := 0
	for i, rc := range recs[:len(recs)-1] {
		want := byte(verdictPassed)
		if bytes.Equal(rc.data, recs[0].data) {
			floodSeen++
			if floodSeen > 1001 {
				want = verdictDropped
			}
		}
		if i >= len(v) || v[i] != want {
			t.Fatalf("verdict %d (flood packet %d) = %q, want %q", i, floodSeen, v[i:i+1], want)
		}
	}
	if st := r.Stats(); st.Trips != 1 || st.TripBans != 1 || st.TripsOverCap != 0 {
		t.Fatalf("stats: %d trips, %d bans, %d over the cap", st.Trips, st.TripBans, st.TripsOverCap)
	}
	// The next tick: the plane's rule drops the flood from its first
	// packet; no trip (a banned source's packets never count).
	tk, err = r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if tk.Total.DroppedPackets != 1 || r.Stats().Trips != 1 {
		t.Fatalf("next tick: dropped %d, trips %d", tk.Total.DroppedPackets, r.Stats().Trips)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("want io.EOF, got %v", err)
	}
}

// fakeTripper gives every source one level and records the trips.
type fakeTripper struct {
	level detector.TripLevel
	ban   bool
	trips []fakeTrip
}

type fakeTrip struct {
	src detector.Source
	at  time.Time
}

func (f *fakeTripper) TripLevel(detector.Addr) detector.TripLevel { return f.level }

func (f *fakeTripper) Trip(src *detector.Source, at time.Time) bool {
	f.trips = append(f.trips, fakeTrip{*src, at})
	return f.ban
}

func TestReplayTrips(t *testing.T) {
	srcs := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"}
	// Each source sends four packets in the first tick, in turns.
	var recs []rec
	for k := range 4 {
		for i, s := range srcs {
			recs = append(recs, rec{ts: at(time.Duration(10*k+i) * time.Millisecond), data: synFrom(t, s)})
		}
	}
	wire := uint64(len(synFrom(t, srcs[0])))
	for _, tc := range []struct {
		name    string
		level   detector.TripLevel
		cap     int
		ban     bool
		dropper Dropper
		admit   bool // admission after 3 packets, no budget
		// trips: the sources judged, in order, at their crossing packet
		// (the k-th of the source: 1-based).
		trips   []string
		k       int
		overCap uint64
		dropped uint64
	}{
		{name: "packets", level: detector.TripLevel{Packets: 2}, trips: srcs, k: 2},
		{name: "bytes", level: detector.TripLevel{Bytes: 3 * wire}, trips: srcs, k: 3},
		{name: "either measure", level: detector.TripLevel{Packets: 3, Bytes: 2 * wire}, trips: srcs, k: 2},
		{name: "never", level: detector.TripLevel{}},
		{name: "over the count: no trip", level: detector.TripLevel{Packets: 5}},
		{name: "cap", level: detector.TripLevel{Packets: 2}, cap: 3, trips: srcs[:3], k: 2, overCap: 2},
		{name: "ban drops the rest", level: detector.TripLevel{Packets: 2}, ban: true, trips: srcs, k: 2, dropped: 5 * 2},
		{name: "banned sources never trip", level: detector.TripLevel{Packets: 1}, trips: srcs[1:], k: 1,
			dropper: &dropAt{a: addr(srcs[0]), from: t0}, dropped: 4},
		// Admitted at its third packet, a source's entry holds the
		// two probation recorded: the level is compared with all three.
		{name: "admission credit", level: detector.TripLevel{Packets: 3}, admit: true, trips: srcs, k: 3},
		{name: "on probation: never", level: detector.TripLevel{Packets: 1}, admit: true, trips: srcs, k: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTripper{level: tc.level, ban: tc.ban}
			opt := ReplayOptions{Tripper: f, TripCap: tc.cap, Dropper: tc.dropper}
			if tc.admit {
				opt.AdmitAfter, opt.AdmitBudget = 3, -1
			}
			r := replayOf(t, opt, pcapFile(1, recs...))
			tk, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if len(f.trips) != len(tc.trips) {
				t.Fatalf("%d trips, want %d: %+v", len(f.trips), len(tc.trips), f.trips)
			}
			for j, tr := range f.trips {
				i := 0
				for i < len(srcs) && srcs[i] != tc.trips[j] {
					i++
				}
				wantAt := at(time.Duration(10*(tc.k-1)+i) * time.Millisecond)
				if tr.src.Addr != addr(tc.trips[j]) || tr.src.TotalPackets() != uint64(tc.k) || !tr.at.Equal(wantAt) {
					t.Fatalf("trip %d: %v with %d packets at %v, want %s with %d at %v",
						j, tr.src.Addr, tr.src.TotalPackets(), tr.at.Sub(t0), tc.trips[j], tc.k, wantAt.Sub(t0))
				}
			}
			st := r.Stats()
			if st.Trips != uint64(len(tc.trips)) || st.TripsOverCap != tc.overCap {
				t.Fatalf("stats: %d trips, %d over the cap", st.Trips, st.TripsOverCap)
			}
			if tk.Total.DroppedPackets != tc.dropped {
				t.Fatalf("dropped %d, want %d", tk.Total.DroppedPackets, tc.dropped)
			}
		})
	}
}

func TestNewReplayTripCap(t *testing.T) {
	path := writeTemp(t, "a.pcap", pcapFile(1, rec{ts: t0, data: synFrom(t, "192.0.2.1")}))
	if _, err := NewReplay([]string{path}, ReplayOptions{TripCap: -1}); err == nil {
		t.Fatal("a negative trip cap was accepted")
	}
}
