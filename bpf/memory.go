package bpf

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"unsafe"

	"github.com/cilium/ebpf"
)

// The kernel memory the maps take, estimated from their specs: what the
// memory budget of issue #14 (all maps together at most 1 GiB on a 64-CPU
// host at default sizes) is checked against, without loading anything.

// MapMemory is one map's estimated kernel memory.
type MapMemory struct {
	Name  string
	Type  ebpf.MapType
	Bytes uint64
}

// Per-element overheads of the kernel's map implementations (Linux 6.x,
// x86-64): a hash element's header (struct htab_elem: list node, hash,
// and a pointer for per-CPU values or the LRU node), a hash bucket
// (struct bucket: list head and lock), an LPM trie node's header.
const (
	htabElemHeader = 48
	htabBucket     = 16
	lpmNodeHeader  = 40
)

func roundUp8(n uint32) uint64 { return (uint64(n) + 7) &^ 7 }

// mapMemory estimates the kernel memory of a map with this spec on a host
// with ncpu possible CPUs: preallocated hash maps count every element,
// LPM tries (allocated as rules are added) their capacity, per-CPU values
// once per CPU.
func mapMemory(ms *ebpf.MapSpec, ncpu int) uint64 {
	key, val, n := roundUp8(ms.KeySize), roundUp8(ms.ValueSize), uint64(ms.MaxEntries)
	switch ms.Type {
	case ebpf.Array:
		return val * n
	case ebpf.PerCPUArray:
		return val * n * uint64(ncpu)
	case ebpf.Hash, ebpf.LRUHash:
		// Preallocated elements, plus one spare per CPU for updates.
		return (htabElemHeader+key+val)*(n+uint64(ncpu)) + htabBucket*pow2(n)
	case ebpf.PerCPUHash, ebpf.LRUCPUHash:
		return (htabElemHeader+key+8)*(n+uint64(ncpu)) + val*uint64(ncpu)*n + htabBucket*pow2(n)
	case ebpf.LPMTrie:
		return (lpmNodeHeader + key + val) * n
	case ebpf.Stack, ebpf.Queue:
		// One ring of values, unpadded, with a spare element.
		return uint64(ms.ValueSize) * (n + 1)
	}
	return (key + val) * n
}

func pow2(n uint64) uint64 {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len64(n-1)
}

// EstimateMapMemory returns each map's estimated kernel memory, largest
// first, and their total, for the maps Load would create with opts on a
// host with ncpu possible CPUs (the port summer's included).
func EstimateMapMemory(opts Options, ncpu int) ([]MapMemory, uint64, error) {
	spec, sum, err := sizedSpecs(opts, ncpu)
	if err != nil {
		return nil, 0, err
	}
	var out []MapMemory
	var total uint64
	add := func(name string, ms *ebpf.MapSpec) {
		b := mapMemory(ms, ncpu)
		out = append(out, MapMemory{Name: name, Type: ms.Type, Bytes: b})
		total += b
	}
	for name, ms := range spec.Maps {
		add(name, ms)
	}
	// The port summer's own maps (its fg_feat_ports is the program's).
	for name, ms := range sum.Maps {
		if name != sumportsMapFgFeatPorts {
			add(name, ms)
		}
	}
	slices.SortFunc(out, func(a, b MapMemory) int {
		if a.Bytes != b.Bytes {
			if a.Bytes > b.Bytes {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out, total, nil
}

// MappedMemory is what a process that opens the program keeps mapped, and
// so resident (the kernel maps every page of a BPF array's mapping at
// once): the maps mapControl maps whole, by name, and the first chunk of
// slots (the slots are mapped chunk by chunk as they come into use, so
// their share grows with the admitted sources, not with the CPUs).
type MappedMemory struct {
	Maps       []MapMemory
	SlotChunk  uint64
	TotalBytes uint64
}

// EstimateMappedMemory returns what the daemon keeps mapped on a host with
// ncpu possible CPUs at the sizes opts gives, from the objects' map specs.
func EstimateMappedMemory(opts Options, ncpu int) (MappedMemory, error) {
	var out MappedMemory
	spec, sum, err := sizedSpecs(opts, ncpu)
	if err != nil {
		return out, err
	}
	for _, mp := range (&XDP{}).mappings() {
		ms := spec.Maps[mp.name]
		if ms == nil {
			ms = sum.Maps[mp.name]
		}
		if ms == nil {
			return out, fmt.Errorf("mapped map %s: in neither object", mp.name)
		}
		b := uint64(mappingSize(ms.ValueSize, ms.MaxEntries))
		out.Maps = append(out.Maps, MapMemory{Name: mp.name, Type: ms.Type, Bytes: b})
		out.TotalBytes += b
	}
	out.SlotChunk = slotChunk * uint64(unsafe.Sizeof(SlotValue{}))
	out.TotalBytes += out.SlotChunk
	return out, nil
}

// sizedSpecs returns the program's and the port summer's map specs, sized
// as Load would size them with opts on a host with ncpu possible CPUs.
func sizedSpecs(opts Options, ncpu int) (spec, sum *ebpf.CollectionSpec, err error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, nil, err
	}
	if spec, err = loadFloodguard(); err != nil {
		return nil, nil, fmt.Errorf("load object: %w", err)
	}
	if err := prepareSpec(spec, opts, ncpu); err != nil {
		return nil, nil, err
	}
	if sum, err = loadSumports(); err != nil {
		return nil, nil, fmt.Errorf("load object: %w", err)
	}
	return spec, sum, nil
}
