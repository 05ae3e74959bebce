package bpf

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// BenchmarkMapMemory reports the kernel memory of every map at the default
// sizes on this machine: the memlock line of the map's fdinfo (the kernel's
// own accounting) next to the plain sum (key + value) × max_entries, with
// the value counted once per possible CPU for per-CPU maps. LPM tries are
// allocated per rule (BPF_F_NO_PREALLOC): their figures are for no rules.
func BenchmarkMapMemory(b *testing.B) {
	x := loadTest(b, Options{MaxSources: DefaultMaxSources, MaxRules: DefaultMaxRules})
	ncpu := mustPossibleCPU(b)
	byName := x.mapsByName()
	names := slices.Sorted(maps.Keys(byName))
	var sb strings.Builder
	for b.Loop() {
		sb.Reset()
		fmt.Fprintf(&sb, "Map memory at default sizes (MaxSources %d, MaxRules %d), %d possible CPUs:\n\n", DefaultMaxSources, DefaultMaxRules, ncpu)
		sb.WriteString("| map | type | key B | value B | max_entries | (key+value) × entries (value × CPUs for per-CPU maps) | memlock (fdinfo) |\n")
		sb.WriteString("|---|---|---|---|---|---|---|\n")
		var totalLock, totalSum float64
		for _, name := range names {
			m := *byName[name]
			lock, err := fdinfoMemlock(m)
			if err != nil {
				b.Fatal(err)
			}
			val := float64(m.ValueSize())
			switch m.Type() {
			case ebpf.PerCPUHash, ebpf.PerCPUArray, ebpf.LRUCPUHash:
				val *= float64(ncpu)
			}
			sum := (float64(m.KeySize()) + val) * float64(m.MaxEntries())
			if m.Type() == ebpf.LPMTrie {
				sum = 0 // nothing allocated until rules are added
			}
			totalLock += lock
			totalSum += sum
			fmt.Fprintf(&sb, "| %s | %v | %d | %d | %d | %s | %s |\n", name, m.Type(), m.KeySize(), m.ValueSize(), m.MaxEntries(), fmtBytes(sum), fmtBytes(lock))
			b.ReportMetric(lock/(1<<20), name+"-MiB")
		}
		fmt.Fprintf(&sb, "| **total** | | | | | %s | **%s** |\n", fmtBytes(totalSum), fmtBytes(totalLock))
		b.ReportMetric(totalLock/(1<<20), "total-MiB")
		b.ReportMetric(float64(ncpu), "possible-cpus")
	}
	writeBenchTable(b, "xdp-maps.md", sb.String())
}

// fmtBytes formats a byte count in MiB, or KiB below 1 MiB.
func fmtBytes(v float64) string {
	if v < 1<<20 {
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", v/(1<<20))
}

// fdinfoMemlock returns the memlock figure of a map's fdinfo, in bytes.
func fdinfoMemlock(m *ebpf.Map) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", m.FD()))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "memlock:"); ok {
			var n float64
			if _, err := fmt.Sscan(strings.TrimSpace(v), &n); err != nil {
				return 0, fmt.Errorf("fdinfo memlock %q: %w", v, err)
			}
			return n, nil
		}
	}
	return 0, errors.New("fdinfo: no memlock line")
}
