package bpf

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// fillSources inserts n sources directly from user space, each with one
// UDP packet of 100 bytes: IPv4 from 198.18.0.0/15 for the first 2^17,
// IPv6 from 2001:db8::/96 for the rest. It takes the slots after those
// in use, as the program would.
func fillSources(t testing.TB, x *XDP, n int) {
	t.Helper()
	const chunk = 1 << 14
	keys := make([]detector.Addr, 0, chunk)
	slots := make([]uint32, 0, chunk)
	flush := func() {
		if len(keys) == 0 {
			return
		}
		if _, err := x.sources.BatchUpdate(keys, slots, nil); err != nil {
			t.Fatalf("fill sources: %v", err)
		}
		keys, slots = keys[:0], slots[:0]
	}
	var v SlotValue
	v.Packets[detector.ClassUDP], v.Bytes[detector.ClassUDP], v.UDPSrcPort, v.LastSeenNs = 1, 100, 53, 1
	v.Live = 1
	next := x.slotsUsed()
	if int(next)+n > len(x.slotVals) {
		t.Fatalf("fill sources: %d slots in use, room for %d, not %d more", next, len(x.slotVals), n)
	}
	if err := x.mapSlotsUpTo(next + uint32(n)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		v.Addr = sourceKey(i)
		x.slotVals[next] = v
		keys = append(keys, v.Addr)
		slots = append(slots, next)
		next++
		if len(keys) == chunk {
			flush()
		}
	}
	flush()
	atomic.StoreUint32(&x.admit.SlotsNext, next)
}

func TestReadSources(t *testing.T) {
	x := loadTest(t, Options{})
	srcs := []string{"198.18.0.1", "198.18.0.2", "2001:db8::1", "2001:db8::2", "2001:db8::3"}
	for i, s := range srcs {
		f := udp4Frame
		if netip.MustParseAddr(s).Is6() {
			f = udp6Frame
		}
		for range i + 1 {
			run(t, x, f(s))
		}
	}
	got := readSources(t, x)
	var names []string
	for _, s := range got {
		names = append(names, s.Addr.String())
		i := slices.Index(srcs, s.Addr.String())
		if s.Packets[detector.ClassUDP] != uint64(i+1) || s.UDPSrcPort != 53 {
			t.Errorf("%s: %+v", s.Addr, s)
		}
	}
	slices.Sort(names)
	if want := slices.Sorted(slices.Values(srcs)); !slices.Equal(names, want) {
		t.Errorf("sources %v, want %v", names, want)
	}

	// Deleting skips keys that are gone.
	n, err := x.DeleteSources([]detector.Addr{addr(srcs[0]), addr("198.18.200.200"), addr(srcs[2]), addr(srcs[2])})
	if err != nil || n != 2 {
		t.Errorf("delete: %d, %v; want 2", n, err)
	}
	got = readSources(t, x)
	if len(got) != len(srcs)-2 {
		t.Errorf("after delete: %v", got)
	}
}

// TestReadSourcesUntil: a read past its deadline stops and the next goes
// on from the same cursor; a pass sees each entry once.
func TestReadSourcesUntil(t *testing.T) {
	x := loadTest(t, Options{MaxSources: 1 << 14})
	const n = 3*deadlineEvery + 100
	fillSources(t, x, n)
	r := x.NewSourceReader()
	seen := map[detector.Addr]int{}
	past := time.Now().Add(-time.Second) // every read stops after one stretch
	reads := 0
	for complete := false; !complete && reads < n; reads++ {
		var got []Source
		var err error
		if got, complete, err = r.AppendSourcesUntil(nil, past); err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			seen[s.Addr]++
		}
	}
	if len(seen) != n || reads != 4 {
		t.Errorf("%d sources in %d reads, want %d in 4", len(seen), reads, n)
	}
	for a, k := range seen {
		if k != 1 {
			t.Errorf("%v seen %d times in one pass", a, k)
		}
	}
	// The next pass starts afresh and reads everything at once.
	got, complete, err := r.AppendSourcesUntil(nil, time.Time{})
	if err != nil || !complete || len(got) != n {
		t.Errorf("next pass %d sources, complete %v, %v", len(got), complete, err)
	}
}

// TestReadSourcesReuse checks that a steady-state read allocates nothing.
func TestReadSourcesReuse(t *testing.T) {
	x := loadTest(t, Options{MaxSources: 1 << 14})
	fillSources(t, x, 10000)
	r := x.NewSourceReader()
	buf := readSources(t, x)
	if len(buf) != 10000 {
		t.Fatalf("read: %d", len(buf))
	}
	allocs := testing.AllocsPerRun(5, func() {
		var err error
		if buf, err = r.AppendSources(buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per read of 10000 entries", allocs)
	}
}

func BenchmarkReadSources(b *testing.B) {
	const n = 1 << 20
	x := loadTest(b, Options{MaxSources: n})
	fillSources(b, x, n)
	r := x.NewSourceReader()
	buf := readSources(b, x)
	if len(buf) != n {
		b.Fatalf("read: %d", len(buf))
	}
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = r.AppendSources(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
}
