package capture

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestInOrderAgreesWithPlace checks the aggregator's fast path against
// place alone: wherever inOrder accepts a packet, place would have put it
// in the open tick with nothing to report, and both leave the same
// high-water mark. Timestamps go forward, back, across ticks, and to the
// ends of time.Time's range, where the tick's end overflows.
func TestInOrderAgreesWithPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const tick = time.Second
	// The last seconds time.Time can hold: past them time.Add saturates.
	far := time.Unix(math.MaxInt64-62135596800, 0).Add(-10 * time.Second)
	for _, base := range []time.Time{t0, far, time.Unix(-1<<62, 0)} {
		overflows, accepted := 0, 0
		fast := newAggregator(tick, time.Minute, 30*time.Second)
		slow := newAggregator(tick, time.Minute, 30*time.Second)
		ts := base
		fast.begin(ts.Truncate(tick))
		slow.begin(ts.Truncate(tick))
		for i := range 20000 {
			switch r := rng.IntN(100); {
			case r < 80:
				ts = ts.Add(time.Duration(rng.Int64N(int64(50 * time.Millisecond))))
			case r < 90:
				ts = ts.Add(-time.Duration(rng.Int64N(int64(3 * time.Second))))
			case r < 97:
				ts = ts.Add(time.Duration(rng.Int64N(int64(2 * time.Minute))))
			case r < 98:
				ts = base
			default:
				ts = ts.Add(-time.Duration(rng.Int64N(int64(5 * time.Minute))))
			}
			p := slow.place(ts)
			if fast.inOrder(&ts) {
				accepted++
				if p != (placement{}) {
					t.Fatalf("base %v packet %d at %v: inOrder took it, place says %+v", base, i, ts, p)
				}
			} else {
				fp := fast.place(ts)
				if fp != p {
					t.Fatalf("base %v packet %d at %v: place %+v after inOrder, %+v alone", base, i, ts, fp, p)
				}
			}
			if !fast.high.Equal(slow.high) {
				t.Fatalf("base %v packet %d: high %v, want %v", base, i, fast.high, slow.high)
			}
			if p.closeTick {
				fast.begin(p.next)
				slow.begin(p.next)
			}
			if !fast.endOK {
				overflows++
			}
		}
		if accepted == 0 || (base == far && overflows == 0) {
			t.Errorf("base %v: %d packets in order, %d with the tick's end overflowed", base, accepted, overflows)
		}
	}
}
