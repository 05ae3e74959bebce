package capture

import (
	"math/rand/v2"
	"testing"

	"github.com/floodguard/floodguard/detector"
)

// TestSrcIndex checks the index against a map over ticks of varying sizes
// (growing the table from its minimum), with IPv4 and IPv6 sources, and
// across the wrap of its generation counter.
func TestSrcIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	t.Run("vs-map", func(t *testing.T) {
		ix := newSrcIndex()
		for tick, n := range []int{10, 3000, 0, 70000, 5, 20000} {
			ix.reset()
			checkIndexTick(t, &ix, rng, tick, n)
		}
	})
	t.Run("generation-wrap", func(t *testing.T) {
		ix := newSrcIndex()
		ix.reset()
		checkIndexTick(t, &ix, rng, 0, 700) // slots of generation 2 left behind
		ix.gen = 1<<16 - 1
		for tick := 1; tick <= 4; tick++ { // the wrap clears them
			ix.reset()
			if ix.gen == 0 || ix.gen >= 1<<16 {
				t.Fatalf("generation %d", ix.gen)
			}
			checkIndexTick(t, &ix, rng, tick, 700)
		}
	})
}

// checkIndexTick looks up n packets' sources, drawn from a pool of n/2
// addresses so that about half are repeats, in an index just reset.
func checkIndexTick(t *testing.T, ix *srcIndex, rng *rand.Rand, tick, n int) {
	t.Helper()
	pool := make([]detector.Addr, n/2+1)
	for i := range pool {
		if rng.IntN(4) == 0 {
			var a detector.Addr
			for j := range a {
				a[j] = byte(rng.Uint32())
			}
			pool[i] = a
		} else {
			pool[i] = detector.AddrFrom4([4]byte{10, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		}
	}
	var srcs []detector.Source
	want := make(map[detector.Addr]int)
	for range n {
		a := pool[rng.IntN(len(pool))]
		i, found := ix.lookup(&a, srcs)
		wi, wfound := want[a]
		if !wfound {
			wi = len(srcs)
		}
		if found != wfound || i != wi {
			t.Fatalf("tick %d: %v: index %d found %v, want %d found %v", tick, a, i, found, wi, wfound)
		}
		// Leave some misses out of the tick, as the aggregator does with
		// sources on probation: they must miss again.
		if !found && rng.IntN(3) != 0 {
			srcs = append(srcs, detector.Source{Addr: a})
			ix.insert(i)
			want[a] = i
		}
	}
	if 2*len(srcs) > len(ix.slots) {
		t.Errorf("tick %d: %d sources in %d slots", tick, len(srcs), len(ix.slots))
	}
}
