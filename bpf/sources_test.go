package bpf

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// fillSources inserts n sources directly from user space, each with one
// UDP packet of 100 bytes on every CPU: IPv4 from 198.18.0.0/15 for the
// first 2^17, IPv6 from 2001:db8::/96 for the rest.
func fillSources(t testing.TB, x *XDP, n int) {
	t.Helper()
	const chunk = 1 << 14
	keys := make([]detector.Addr, 0, chunk)
	vals := make([]SourceValue, 0, chunk)
	flush := func() {
		if len(keys) == 0 {
			return
		}
		if _, err := x.sources.BatchUpdate(keys, vals, nil); err != nil {
			t.Fatalf("fill sources: %v", err)
		}
		keys, vals = keys[:0], vals[:0]
	}
	var v SourceValue
	v.Packets[detector.ClassUDP], v.Bytes[detector.ClassUDP], v.UDPSrcPort, v.LastSeenNs = 1, 100, 53, 1
	for i := range n {
		var a detector.Addr
		if i < 1<<17 {
			a = detector.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
		} else {
			a = detector.Addr{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}
		}
		keys = append(keys, a)
		vals = append(vals, v)
		if len(keys) == chunk {
			flush()
		}
	}
	flush()
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
	// A batch of 2 makes the reader go round several times.
	for _, batch := range []int{0, 1, 2, 1000} {
		got, err := x.NewSourceReader(batch).AppendSources(nil)
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Addr.String())
			i := slices.Index(srcs, s.Addr.String())
			if s.Packets[detector.ClassUDP] != uint64(i+1) || s.UDPSrcPort != 53 {
				t.Errorf("batch %d: %s: %+v", batch, s.Addr, s)
			}
		}
		slices.Sort(names)
		if want := slices.Sorted(slices.Values(srcs)); !slices.Equal(names, want) {
			t.Errorf("batch %d: sources %v, want %v", batch, names, want)
		}
	}

	// The iteration fallback reads the same.
	r := x.NewSourceReader(0)
	r.noBatch = true
	got, err := r.AppendSources(nil)
	if err != nil || len(got) != len(srcs) {
		t.Errorf("iterate: %d sources, %v", len(got), err)
	}

	// Deleting skips keys that are gone.
	n, err := x.DeleteSources([]detector.Addr{addr(srcs[0]), addr("198.18.200.200"), addr(srcs[2])})
	if err != nil || n != 2 {
		t.Errorf("delete: %d, %v; want 2", n, err)
	}
	got, err = x.NewSourceReader(0).AppendSources(got[:0])
	if err != nil || len(got) != len(srcs)-2 {
		t.Errorf("after delete: %v, %v", got, err)
	}
	if n, err := x.deleteEach([]detector.Addr{addr(srcs[1]), addr(srcs[1])}, 0); err != nil || n != 1 {
		t.Errorf("delete each: %d, %v; want 1", n, err)
	}
}

// TestReadSourcesUntil: a read past its deadline stops and the next goes
// on from the same cursor; a pass sees each entry once.
func TestReadSourcesUntil(t *testing.T) {
	x := loadTest(t, Options{MaxSources: 1 << 14})
	const n = 5000
	fillSources(t, x, n)
	for _, batch := range []int{64, 1000} {
		r := x.NewSourceReader(batch)
		seen := map[detector.Addr]int{}
		past := time.Now().Add(-time.Second) // every read stops after one chunk
		reads := 0
		for complete := false; !complete && reads < n; reads++ {
			var got []Source
			var err error
			got, complete, err = r.AppendSourcesUntil(nil, past)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range got {
				seen[s.Addr]++
			}
		}
		if len(seen) != n || reads < 2 {
			t.Errorf("batch %d: %d sources in %d reads, want %d in several", batch, len(seen), reads, n)
		}
		for a, k := range seen {
			if k != 1 {
				t.Errorf("batch %d: %v seen %d times in one pass", batch, a, k)
			}
		}
		// The next pass starts afresh and reads everything at once.
		got, complete, err := r.AppendSourcesUntil(nil, time.Time{})
		if err != nil || !complete || len(got) != n {
			t.Errorf("batch %d: next pass %d sources, complete %v, %v", batch, len(got), complete, err)
		}
	}
}

// TestReadSourcesReuse checks that a steady-state read allocates nothing
// per entry.
func TestReadSourcesReuse(t *testing.T) {
	x := loadTest(t, Options{MaxSources: 1 << 14})
	fillSources(t, x, 10000)
	r := x.NewSourceReader(0)
	buf, err := r.AppendSources(nil)
	if err != nil || len(buf) != 10000 {
		t.Fatalf("read: %d, %v", len(buf), err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		buf, err = r.AppendSources(buf[:0])
		if err != nil {
			t.Fatal(err)
		}
	})
	// A constant few per read (cursor, syscall attributes), not per entry.
	if allocs > 50 {
		t.Errorf("%v allocations per read of 10000 entries", allocs)
	}
	t.Logf("%v allocations per read of %d entries", allocs, len(buf))
}

func BenchmarkReadSources(b *testing.B) {
	const n = 1 << 20
	x := loadTest(b, Options{MaxSources: n})
	fillSources(b, x, n)
	for _, batch := range []int{1024, DefaultReadBatch, 16384} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			r := x.NewSourceReader(batch)
			buf, err := r.AppendSources(nil)
			if err != nil || len(buf) != n {
				b.Fatalf("read: %d, %v", len(buf), err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if buf, err = r.AppendSources(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
		})
	}
	b.Run("iterate", func(b *testing.B) {
		r := x.NewSourceReader(0)
		r.noBatch = true
		var buf []Source
		var err error
		b.ReportAllocs()
		for b.Loop() {
			if buf, err = r.AppendSources(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
	})
}
