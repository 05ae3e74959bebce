package daemon

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestTopHeap(t *testing.T) {
	var h topHeap[int]
	less := func(a, b *int) bool { return *a < *b }
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ n, items int }{{20, 0}, {20, 5}, {20, 20}, {20, 1000}, {1, 50}, {0, 10}} {
		h.reset(tc.n, less)
		var all []int
		for range tc.items {
			v := rng.IntN(500)
			all = append(all, v)
			h.offer(v)
		}
		slices.Sort(all)
		slices.Reverse(all)
		want := all[:min(tc.n, len(all))]
		if got := h.sorted(); !slices.Equal(got, want) {
			t.Errorf("top %d of %d: %v, want %v", tc.n, tc.items, got, want)
		}
	}
	// Warm, it allocates nothing.
	h.reset(20, less)
	for i := range 100 {
		h.offer(i)
	}
	h.sorted()
	if n := testing.AllocsPerRun(10, func() {
		h.reset(20, less)
		for i := range 1000 {
			h.offer(i)
		}
		h.sorted()
	}); n != 0 {
		t.Errorf("%v allocations a round", n)
	}
}

func TestRuleIndex(t *testing.T) {
	rules := []Ban{{Target: "198.18.0.66/32"}, {Target: "198.19.7.0/24"}, {Target: "198.19.0.0/16"}, {Target: "2001:db8:1:2::/64"}, {Target: "junk"}}
	ix := newRuleIndex(rules)
	for key, want := range map[string]string{
		"198.18.0.66/32":       "198.18.0.66/32",
		"198.18.0.67/32":       "",
		"198.19.7.9/32":        "198.19.7.0/24", // the most specific rule
		"198.19.7.0/24":        "198.19.7.0/24",
		"198.19.8.0/24":        "198.19.0.0/16",
		"198.18.0.0/24":        "", // a /32 inside does not hold the /24
		"2001:db8:1:2::99/128": "2001:db8:1:2::/64",
		"2001:db8:1:3::/64":    "",
	} {
		got := ""
		if i, ok := ix.lookup(netip.MustParsePrefix(key)); ok {
			got = rules[i].Target
		}
		if got != want {
			t.Errorf("%s: rule %q, want %q", key, got, want)
		}
	}
}

func TestRankRules(t *testing.T) {
	rules := []Ban{
		{Target: "198.18.0.1/32", Packets: 1000, TimeLeft: time.Minute},
		{Target: "198.18.0.2/32", Packets: 5000, TimeLeft: time.Minute},
		{Target: "198.18.0.3/32", Packets: 0, TimeLeft: time.Hour},
	}
	got, prev := rankRules(rules, nil, false, 1)
	if got[0].Target != "198.18.0.2/32" || got[0].DroppedPPS != 0 {
		t.Errorf("first tick: %+v", got)
	}
	rules[0].Packets, rules[1].Packets = 4000, 5100
	got, _ = rankRules(rules, prev, true, 2)
	if got[0].Target != "198.18.0.1/32" || got[0].DroppedPPS != 1500 || got[1].DroppedPPS != 50 || got[2].Target != "198.18.0.3/32" {
		t.Errorf("second tick: %+v", got)
	}
	got, _ = rankRules(rules, prev, false, 2)
	if got[0].DroppedPPS != 0 {
		t.Errorf("after a gap: %+v", got)
	}
}
