package detector

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestSeenOnce(t *testing.T) {
	f := newSeenOnce(16)
	// Neighbouring IPv4 and IPv6 addresses must not share slots, or each
	// would evict the other and never be remembered.
	var addrs []Addr
	a4, a6 := netip.MustParseAddr("198.18.16.1"), netip.MustParseAddr("2001:db8:1::1")
	for range 500 {
		addrs = append(addrs, AddrFrom(a4), AddrFrom(a6))
		a4, a6 = a4.Next(), a6.Next()
	}
	for _, a := range addrs {
		if f.testAndSet(a) {
			t.Fatalf("%s seen before it was", a)
		}
	}
	missed := 0
	for _, a := range addrs {
		if !f.testAndSet(a) {
			missed++
		}
	}
	if missed > len(addrs)/100 {
		t.Fatalf("%d of %d addresses forgotten: the hash spreads them badly", missed, len(addrs))
	}
}

// TestSourceTableMatchesMap drives the source table with random inserts,
// lookups and removals and checks it against a map after every step. Two
// seeds: a random one, and zero, under which every IPv4 address hashes
// alike, so every probe chain is as long as it can be and every removal
// must shift the chain back correctly.
func TestSourceTableMatchesMap(t *testing.T) {
	for _, tc := range []struct {
		name string
		zero bool
		ops  int
	}{{"random-seed", false, 200_000}, {"all-collide", true, 6_000}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			st := newSourceTable()
			if tc.zero {
				st.key = AddrHash{}
			}
			model := map[Addr]int32{} // address -> slot
			var live []Addr
			addr := func() Addr {
				if len(live) > 0 && rng.IntN(2) == 0 {
					return live[rng.IntN(len(live))]
				}
				var b [4]byte
				b[0], b[1] = 198, 18+byte(rng.IntN(2))
				b[2], b[3] = byte(rng.IntN(256)), byte(rng.IntN(256))
				if !tc.zero && rng.IntN(4) == 0 {
					b6 := netip.MustParseAddr("2001:db8::").As16()
					b6[14], b6[15] = b[2], b[3]
					return AddrFrom(netip.AddrFrom16(b6))
				}
				return AddrFrom(netip.AddrFrom4(b))
			}
			for op := range tc.ops {
				a := addr()
				slot, ok := model[a]
				switch got := st.get(a); {
				case ok && got != &st.recs.slots[slot].keyState:
					t.Fatalf("op %d: %s not found at slot %d", op, a, slot)
				case !ok && got != nil:
					t.Fatalf("op %d: %s found but was never added or was removed", op, a)
				}
				if !ok {
					st.add(a, uint32(op))
					model[a] = st.find(a, st.hash(a))
					live = append(live, a)
				} else if rng.IntN(3) == 0 {
					// What expire does to a slot it frees.
					st.unindex(a, slot)
					st.recs.slots[slot] = sourceRec{}
					st.recs.free = append(st.recs.free, slot)
					delete(model, a)
					i := slices.Index(live, a)
					live = slices.Delete(live, i, i+1)
				}
				if st.len() != len(model) {
					t.Fatalf("op %d: len %d, want %d", op, st.len(), len(model))
				}
			}
			n := 0
			st.all(func(a Addr, s *keyState) {
				n++
				if slot, ok := model[a]; !ok || s != &st.recs.slots[slot].keyState {
					t.Fatalf("all: %s is not in the table", a)
				}
			})
			if n != len(model) {
				t.Fatalf("all visited %d sources, want %d", n, len(model))
			}
		})
	}
}

// TestTickPrefixesMatchesMap checks one prefix length's per-tick set
// against a map over ticks of varying sizes, across growth and resets and
// the wrap of its tick stamp.
func TestTickPrefixesMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tp := newTickPrefixes(0, prefixSlot{v4: true, bits: 24})
	for tick, n := range []int{0, 10, 5000, 3, 40000, 1} {
		if tick == 4 {
			tp.gen = ^uint32(0) // the next reset wraps
		}
		tp.reset()
		model := map[Addr]*prefixAcc{}
		for range n {
			a := AddrFrom(netip.AddrFrom4([4]byte{198, 18 + byte(rng.IntN(2)), byte(rng.IntN(256)), byte(rng.IntN(256))}))
			lo, hi := binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:])
			k := maskAddr(a, true, 24)
			if want, got := model[k], tp.find(lo, hi); (want == nil) != (got == nil) {
				t.Fatalf("tick %d: find %s = %v, want present=%v", tick, a, got, want != nil)
			}
			acc := tp.get(lo, hi)
			if acc.key.addr != k || acc.key.bits != 24 {
				t.Fatalf("tick %d: %s went to %v", tick, a, acc.key.prefix())
			}
			acc.sources++
			model[k] = acc
		}
		if len(tp.accs) != len(model) {
			t.Fatalf("tick %d: %d prefixes, want %d", tick, len(tp.accs), len(model))
		}
	}
}
