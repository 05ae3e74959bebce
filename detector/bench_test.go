package detector

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// benchTick builds a tick of n distinct sources at ordinary rates: IPv4
// from 198.18.0.0/15 (at most 100k of them, 256 per /24) and the rest IPv6
// from 2001:db8::/32, 256 per /64.
func benchTick(n int) *Tick {
	t := &Tick{Start: time.Unix(1_700_000_000, 0), Length: time.Second, Sources: make([]Source, n)}
	for i := range t.Sources {
		s := &t.Sources[i]
		if i < 100_000 {
			s.Addr = AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
		} else {
			j := i - 100_000
			s.Addr = Addr{0x20, 0x01, 0x0d, 0xb8, 0, byte(j >> 24), byte(j >> 16), byte(j >> 8), 15: byte(j)}
		}
		s.Packets[ClassTCP] = uint64(1 + i%5)
		s.Bytes[ClassTCP] = s.Packets[ClassTCP] * 300
		t.Total.Add(&s.Counters)
	}
	return t
}

type nopEnforcer struct{}

func (nopEnforcer) Ban(Rule) error { return nil }

func (nopEnforcer) Unban(netip.Prefix) error { return nil }

// BenchmarkStep measures the detector's cost per tick and per active source
// once every source is tracked (steady state), and the memory each tracked
// source takes.
func BenchmarkStep(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("sources=%d", n), func(b *testing.B) {
			tk := benchTick(n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			eng, err := New(DefaultConfig(), nopEnforcer{})
			if err != nil {
				b.Fatal(err)
			}
			for range 3 { // every source established
				eng.Step(tk)
				tk.Start = tk.Start.Add(time.Second)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				eng.Step(tk)
				tk.Start = tk.Start.Add(time.Second)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/source")
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-bytes/source")
			runtime.KeepAlive(eng)
		})
	}
}

// learntEngine returns an engine that has learnt its baselines from 30
// ticks of tk, whose Start it moves on a second each.
func learntEngine(b *testing.B, tk *Tick) *Engine {
	b.Helper()
	eng, err := New(DefaultConfig(), nopEnforcer{})
	if err != nil {
		b.Fatal(err)
	}
	for range 30 {
		eng.Step(tk)
		tk.Start = tk.Start.Add(time.Second)
	}
	return eng
}

// BenchmarkStepCarpet measures a tick of a carpet: n established sources
// (100k IPv4 and the rest IPv6, as benchTick) all sending ten times their
// usual UDP rate from one source port, past the aggregate threshold, so
// that the distributed analysis and the signature's exempt sources run
// over every source each tick.
func BenchmarkStepCarpet(b *testing.B) {
	for _, n := range []int{10_000, 65_536} {
		b.Run(fmt.Sprintf("sources=%d", n), func(b *testing.B) {
			calm := benchTick(n)
			eng := learntEngine(b, calm)
			flood := benchTick(n)
			flood.Total = Counters{}
			for i := range flood.Sources {
				s := &flood.Sources[i]
				s.Packets[ClassUDP], s.Bytes[ClassUDP], s.UDPSrcPort = 10*s.Packets[ClassTCP], 10*s.Bytes[ClassTCP], 53
				flood.Total.Add(&s.Counters)
			}
			flood.Start = calm.Start
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				eng.Step(flood)
				flood.Start = flood.Start.Add(time.Second)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/source")
		})
	}
}

// BenchmarkStepProbation measures a tick of a random-source flood past the
// admission budget: 1000 ordinary sources and n probation records
// (Tick.Probation) from addresses spread over 2001:db8::/32, new every
// tick, as the live source reads them from the program's probation tables
// (at most 16384 per CPU per tick).
func BenchmarkStepProbation(b *testing.B) {
	for _, n := range []int{32_768, 1 << 20} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			tk := benchTick(1000)
			eng := learntEngine(b, tk)
			tk.Probation = make([]Source, n)
			x := uint64(0x9e3779b97f4a7c15)
			fill := func() {
				for i := range tk.Probation {
					x ^= x << 13
					x ^= x >> 7
					x ^= x << 17
					r := &tk.Probation[i]
					r.Addr = Addr{0x20, 0x01, 0x0d, 0xb8}
					binary.LittleEndian.PutUint64(r.Addr[4:], x)
					binary.LittleEndian.PutUint32(r.Addr[12:], uint32(x>>17))
					r.Packets[ClassSYN], r.Bytes[ClassSYN] = 1, 74
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				fill()
				b.StartTimer()
				eng.Step(tk)
				tk.Start = tk.Start.Add(time.Second)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record")
			b.ReportMetric(float64(eng.Stats().TrackedKeys), "keys")
		})
	}
}
