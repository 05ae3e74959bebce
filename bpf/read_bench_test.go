package bpf

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
)

// readTarget is the budget for reading 1M active sources in one tick.
const readTarget = 250 * time.Millisecond

// readBatch is the batch size of the batch lookups compared (the reader's
// default when it used them).
const readBatch = 4096

// BenchmarkRead1MSources measures what the daemon does once per tick with a
// full per-source table: read 1<<20 active sources (SourceReader.AppendSources,
// a scan of the mapped slots, into a reused slice), on one pinned CPU, with
// medians over READ_ROUNDS (default 5) interleaved rounds, time and
// allocations per read. In the same rounds, the reads of the layouts it
// replaced, on scratch maps with the same 1M keys: BPF_MAP_LOOKUP_BATCH of
// a shared HASH with the entry as its value (issue #14 before slots) and of
// a PERCPU_HASH of 128-byte values (before issue #14); and the batch
// lookup of fg_sources itself (address to slot), which only a load with
// pinned maps does, once.
//
// Run it once: go test -run '^$' -bench Read1MSources -benchtime 1x -cpu 1 ./bpf/
func BenchmarkRead1MSources(b *testing.B) {
	const n = 1 << 20
	rounds := benchEnvInt(b, "READ_ROUNDS", 5)
	x := loadTest(b, Options{MaxSources: n})
	fillSources(b, x, n)
	ncpu := x.ncpu

	type readCase struct {
		key, label string
		read       func() int // returns the entries read
		// Per round: thread CPU time and wall-clock time of the read, in
		// ms, and the heap allocations it made.
		ms, wallMs    []float64
		allocs, bytes []float64
	}
	dst := make([]Source, 0, n)
	var cases []*readCase
	add := func(key, label string, read func() int) {
		cases = append(cases, &readCase{key: key, label: label, read: read})
	}

	r := x.NewSourceReader()
	add("scan", "AppendSources: scan of the mapped slots (the reader)", func() int {
		var err error
		if dst, err = r.AppendSources(dst[:0]); err != nil {
			b.Fatal(err)
		}
		return len(dst)
	})
	keys, slots := make([]detector.Addr, readBatch), make([]uint32, readBatch)
	add("slots-hash", fmt.Sprintf("kernel only: BPF_MAP_LOOKUP_BATCH of fg_sources (address to slot), batch %d", readBatch), func() int {
		return batchLookupAll(b, x.sources, keys, slots)
	})
	for _, sc := range []struct {
		key, label string
		typ        ebpf.MapType
		newScratch func(tb testing.TB, typ ebpf.MapType, n, copies int) func() int
	}{
		{"scratch-hash-176", "kernel only: scratch HASH with the 176-byte entry as value (issue #14 before slots), same 1M keys", ebpf.Hash, scratchMap[SourceValue]},
		{"scratch-percpu-128", "kernel only: scratch PERCPU_HASH of 128-byte values (before issue #14), same 1M keys", ebpf.PerCPUHash, scratchMap[[128]byte]},
	} {
		copies := 1
		if sc.typ == ebpf.PerCPUHash {
			copies = ncpu
		}
		add(sc.key, sc.label+fmt.Sprintf(", batch %d", readBatch), sc.newScratch(b, sc.typ, n, copies))
	}

	cpu := pinBenchCPU(b)
	for b.Loop() {
		var ms runtime.MemStats
		for r := -1; r < rounds; r++ { // round -1 warms up
			for _, c := range cases {
				runtime.ReadMemStats(&ms)
				mallocs, total := ms.Mallocs, ms.TotalAlloc
				start, startCPU := time.Now(), threadCPUTime(b)
				got := c.read()
				cpuNs, wall := threadCPUTime(b)-startCPU, time.Since(start)
				runtime.ReadMemStats(&ms)
				if got != n {
					b.Fatalf("%s: read %d entries, want %d", c.key, got, n)
				}
				if r >= 0 {
					c.ms = append(c.ms, float64(cpuNs)/1e6)
					c.wallMs = append(c.wallMs, float64(wall.Microseconds())/1000)
					c.allocs = append(c.allocs, float64(ms.Mallocs-mallocs))
					c.bytes = append(c.bytes, float64(ms.TotalAlloc-total))
				}
			}
		}
	}

	byKey := map[string]*readCase{}
	for _, c := range cases {
		byKey[c.key] = c
		b.ReportMetric(median(c.ms), c.key+"-ms")
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "BenchmarkRead1MSources: %d active sources (%d IPv4, the rest IPv6) in %d slots of %d bytes (%d possible CPUs); "+
		"%d rounds after a warm-up, interleaved; medians; GOMAXPROCS=%d, pinned to CPU %d.\n\n",
		n, 1<<17, n, int(x.slots.ValueSize()), ncpu, rounds, runtime.GOMAXPROCS(0), cpu)
	sb.WriteString("ms: CPU time of the reading thread (user + kernel; what the read costs one core, without the time other tasks took the core); wall: elapsed time of the same reads.\n\n")
	sb.WriteString("| read of 1M entries | ms per read | min–max | wall ms | ns per entry | allocations per read | bytes allocated per read |\n")
	sb.WriteString("|---|---|---|---|---|---|---|\n")
	for _, c := range cases {
		m := median(c.ms)
		fmt.Fprintf(&sb, "| %s | %.0f | %s | %.0f | %.1f | %.0f | %.0f |\n", c.label, m, spread(c.ms, "%.0f"), median(c.wallMs), m*1e6/n, median(c.allocs), median(c.bytes))
	}
	scan := byKey["scan"]
	def := median(scan.ms)
	verdict := "**not met**"
	if def < float64(readTarget.Milliseconds()) {
		verdict = "**met**"
	}
	fmt.Fprintf(&sb, "\nTarget: reading 1M active sources in under %v on one core: %.0f ms of CPU (%.0f ms wall), %.0f allocations per read: %s; "+
		"%.1fx faster than the batch lookup of the shared hash, %.1fx faster than the per-CPU hash, in the same rounds.\n",
		readTarget, def, median(scan.wallMs), median(scan.allocs), verdict,
		median(byKey["scratch-hash-176"].ms)/def, median(byKey["scratch-percpu-128"].ms)/def)
	writeBenchTable(b, "xdp-read.md", sb.String())
}

// batchLookupAll reads the whole map m with BPF_MAP_LOOKUP_BATCH into the
// reused buffers and returns the number of entries read.
func batchLookupAll(tb testing.TB, m *ebpf.Map, keys []detector.Addr, vals any) int {
	var cursor ebpf.MapBatchCursor
	total := 0
	for {
		got, err := m.BatchLookup(&cursor, keys, vals, nil)
		total += got
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return total
		}
		if err != nil {
			tb.Fatalf("batch lookup: %v", err)
		}
	}
}

// scratchMap creates a hash map of typ with n entries under the keys
// fillSources uses and values of type V (copies per key: 1, or the number
// of CPUs for per-CPU maps), and returns a function reading all of it with
// batch lookups of readBatch entries.
func scratchMap[V any](tb testing.TB, typ ebpf.MapType, n, copies int) func() int {
	tb.Helper()
	var zero V
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: typ, KeySize: 16, ValueSize: uint32(unsafe.Sizeof(zero)), MaxEntries: uint32(n)})
	if err != nil {
		tb.Fatalf("scratch map: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	const chunk = 1 << 14
	keys := make([]detector.Addr, 0, chunk)
	vals := make([]V, chunk*copies)
	for i := range n {
		keys = append(keys, sourceKey(i))
		if len(keys) == chunk || i == n-1 {
			if _, err := m.BatchUpdate(keys, vals[:len(keys)*copies], nil); err != nil {
				tb.Fatalf("fill scratch map: %v", err)
			}
			keys = keys[:0]
		}
	}
	keys = make([]detector.Addr, readBatch)
	vals = make([]V, readBatch*copies)
	return func() int { return batchLookupAll(tb, m, keys, vals) }
}

// sourceKey is the i-th key fillSources inserts.
func sourceKey(i int) detector.Addr {
	if i < 1<<17 {
		return detector.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
	}
	return detector.Addr{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}
}
