package bpf

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// readTrips returns the trips reported so far (waiting briefly for each).
func readTrips(t *testing.T, r *TripReader) []Trip {
	t.Helper()
	var out []Trip
	for range 100 {
		r.SetDeadline(time.Now().Add(50 * time.Millisecond))
		tr, err := r.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tr)
	}
	return out
}

// TestTrips runs frames through the program with BPF_PROG_TEST_RUN: a
// source trips once per epoch when its counts in the epoch reach its level
// (the global one, or its own), not while banned, not over the cap, and
// not at all while the level is zero.
func TestTrips(t *testing.T) {
	frame := udp4Frame("198.18.0.1")
	size := uint64(len(frame))
	a := addr("198.18.0.1")
	setup := func(t *testing.T) (*XDP, *TripReader) {
		x := loadAdmitting(t, 1, 0, Options{})
		r, err := x.NewTripReader()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return x, r
	}
	send := func(t *testing.T, x *XDP, f []byte, n int) {
		t.Helper()
		for range n {
			run(t, x, f)
		}
	}

	t.Run("global level", func(t *testing.T) {
		x, r := setup(t)
		x.SetTripLevel(5, 0, DefaultTripCap)
		send(t, x, frame, 4)
		if got := readTrips(t, r); len(got) != 0 {
			t.Fatalf("trips under the level: %+v", got)
		}
		send(t, x, frame, 1)
		got := readTrips(t, r)
		if len(got) != 1 || got[0].Addr != a || got[0].Packets != 5 || got[0].Bytes != 5*size || got[0].Class != detector.ClassUDP || got[0].TimeNs == 0 {
			t.Fatalf("at the level: %+v, want one trip at 5 packets", got)
		}
		send(t, x, frame, 20)
		if got := readTrips(t, r); len(got) != 0 {
			t.Errorf("a second trip in the same tick: %+v", got)
		}
		if err := x.AdvanceEpoch(); err != nil {
			t.Fatal(err)
		}
		send(t, x, frame, 5)
		if got := readTrips(t, r); len(got) != 1 || got[0].Packets != 5 {
			t.Errorf("next tick: %+v, want one trip counted from the tick's start", got)
		}
		if st := readStats(t, x); st.Trips != 2 || st.TripsCapped != 0 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("bytes", func(t *testing.T) {
		x, r := setup(t)
		x.SetTripLevel(0, 3*size, DefaultTripCap)
		send(t, x, frame, 3)
		if got := readTrips(t, r); len(got) != 1 || got[0].Bytes != 3*size {
			t.Errorf("byte level: %+v", got)
		}
	})

	t.Run("own level", func(t *testing.T) {
		x, r := setup(t)
		x.SetTripLevel(5, 0, DefaultTripCap)
		b := addr("198.18.0.2")
		if err := x.UpdateTripLevels([]SourceTripLevel{{Addr: a, Packets: 10}, {Addr: b}}); err != nil {
			t.Fatal(err)
		}
		send(t, x, frame, 9)
		send(t, x, udp4Frame("198.18.0.2"), 50) // own level zero: never
		if got := readTrips(t, r); len(got) != 0 {
			t.Fatalf("under its own level, or never: %+v", got)
		}
		send(t, x, frame, 1)
		if got := readTrips(t, r); len(got) != 1 || got[0].Packets != 10 {
			t.Errorf("at its own level: %+v", got)
		}
		// Back to the global level from the next tick.
		if err := x.UpdateTripLevels([]SourceTripLevel{{Addr: a, Remove: true}}); err != nil {
			t.Fatal(err)
		}
		if err := x.AdvanceEpoch(); err != nil {
			t.Fatal(err)
		}
		send(t, x, frame, 5)
		if got := readTrips(t, r); len(got) != 1 || got[0].Packets != 5 {
			t.Errorf("own level removed: %+v", got)
		}
	})

	t.Run("banned", func(t *testing.T) {
		x, r := setup(t)
		x.SetTripLevel(5, 0, DefaultTripCap)
		if err := x.AddRule(netip.MustParsePrefix("198.18.0.1/32"), time.Hour); err != nil {
			t.Fatal(err)
		}
		send(t, x, frame, 10)
		if got := readTrips(t, r); len(got) != 0 {
			t.Errorf("a banned source tripped: %+v", got)
		}
	})

	t.Run("cap", func(t *testing.T) {
		x, r := setup(t)
		x.SetTripLevel(2, 0, 1)
		onCPU(t, 0, func() {
			send(t, x, frame, 2)
			send(t, x, udp4Frame("198.18.0.2"), 2)
		})
		if got := readTrips(t, r); len(got) != 1 || got[0].Addr != a {
			t.Errorf("cap 1: %+v", got)
		}
		if st := readStats(t, x); st.Trips != 1 || st.TripsCapped != 1 {
			t.Errorf("stats %+v, want 1 trip, 1 capped", st)
		}
	})

	t.Run("off", func(t *testing.T) {
		x, r := setup(t)
		x.SetTripLevel(0, 0, DefaultTripCap)
		send(t, x, frame, 50)
		if got := readTrips(t, r); len(got) != 0 {
			t.Errorf("trips while off: %+v", got)
		}
	})
}
