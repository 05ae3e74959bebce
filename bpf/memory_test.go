package bpf

import (
	"testing"

	"github.com/cilium/ebpf"
)

// memoryBudget is issue #14's budget: every pinned map together, at
// default sizes, on a 64-CPU host.
const memoryBudget = 1 << 30

// TestMapMemoryBudget computes the maps' kernel memory at 64 CPUs from the
// object's map specs (no privileges needed): a change that breaks the
// budget (a per-CPU per-source value, a larger default) fails here.
func TestMapMemoryBudget(t *testing.T) {
	for _, ncpu := range []int{2, 16, 64} {
		maps, total, err := EstimateMapMemory(Options{}, ncpu)
		if err != nil {
			t.Fatal(err)
		}
		if ncpu == 64 {
			for _, m := range maps {
				t.Logf("%-16s %-12v %8.1f MiB", m.Name, m.Type, float64(m.Bytes)/(1<<20))
			}
			t.Logf("total at 64 CPUs: %.1f MiB (budget %d MiB)", float64(total)/(1<<20), memoryBudget>>20)
			if total > memoryBudget {
				t.Errorf("maps take %.1f MiB at 64 CPUs, over the %d MiB budget", float64(total)/(1<<20), memoryBudget>>20)
			}
		}
	}
	// The per-source map, per CPU before issue #14, would alone break it.
	spec, err := loadFloodguard()
	if err != nil {
		t.Fatal(err)
	}
	ms := spec.Maps[mapSources].Copy()
	ms.MaxEntries = DefaultMaxSources
	ms.Type = ebpf.PerCPUHash
	ms.ValueSize = 128
	if old := mapMemory(ms, 64); old < 8<<30 {
		t.Errorf("the per-CPU layout estimates %d B at 64 CPUs; issue #14 measured ~8.6 GB", old)
	}
}
