package capture

import (
	"testing"

	"github.com/floodguard/floodguard/detector"
)

// TestSampleProbation: past the bound, records are thinned evenly, each
// kept one standing for the records up to the next (with one frame each,
// its count is how many, and the total stays exact); at or below the
// bound nothing changes.
func TestSampleProbation(t *testing.T) {
	for _, c := range []struct{ n, max int }{{10, 10}, {10, 20}, {10, 3}, {1000, 7}, {65537, 65536}, {3, 1}} {
		recs := make([]detector.Source, c.n)
		for i := range recs {
			r := &recs[i]
			r.Addr = detector.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
			r.Packets[detector.ClassSYN], r.Bytes[detector.ClassSYN] = 1, 60
			r.DroppedPackets, r.DroppedBytes = 1, 60
		}
		got := sampleProbation(recs, c.max)
		if want := min(c.n, c.max); len(got) != want {
			t.Errorf("%d records, bound %d: kept %d, want %d", c.n, c.max, len(got), want)
		}
		lo, hi := uint64(c.n/c.max), uint64((c.n+c.max-1)/c.max)
		if c.n <= c.max {
			lo, hi = 1, 1
		}
		var sum detector.Counters
		for i := range got {
			r := &got[i]
			p := r.Packets[detector.ClassSYN]
			if p < lo || p > hi || r.Bytes[detector.ClassSYN] != 60*p || r.DroppedPackets != p || r.DroppedBytes != 60*p {
				t.Errorf("%d records, bound %d: record %d stands for %+v, want %d..%d frames alike", c.n, c.max, i, r.Counters, lo, hi)
			}
			sum.Add(&r.Counters)
		}
		if sum.Packets[detector.ClassSYN] != uint64(c.n) {
			t.Errorf("%d records, bound %d: they stand for %d frames, want %d", c.n, c.max, sum.Packets[detector.ClassSYN], c.n)
		}
		if got[0].Addr != detector.AddrFrom4([4]byte{198, 18, 0, 0}) {
			t.Errorf("first record kept is %v, want the first", got[0].Addr)
		}
	}
}
