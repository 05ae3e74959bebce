package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
)

// The Go mirrors of the records in floodguard.h. Field order, sizes and
// padding match the C structs exactly; TestABIMatchesBTF checks every field
// offset against the BTF of the compiled object, and the loader checks key
// and value sizes of every map it opens (checkABI).

// NumClasses is FG_NUM_CLASSES, the number of protocol classes; the class
// numbering is detector.Class.
const NumClasses = int(detector.NumClasses)

// Compile-time check that the C class count (5, floodguard.h) and
// detector.NumClasses agree.
var _ = [1]struct{}{}[NumClasses-5]

// Names of the maps in the object and of their pins under the pin
// directory. The .bss map holding fg_control is pinned as pinControl.
const (
	mapSources = "fg_sources"
	mapStats   = "fg_stats"
	mapExact   = "fg_exact"
	mapPrefix4 = "fg_prefix4"
	mapPrefix6 = "fg_prefix6"
	mapBSS     = ".bss"
	varControl = "fg_control"
	progXDP    = "floodguard_xdp"

	pinControl = "fg_control"
	pinLink    = "link"
)

// Flags in the high half of fg_control (FG_HAVE_*).
const (
	haveExact   = 1 << 0
	havePrefix4 = 1 << 1
	havePrefix6 = 1 << 2
)

// SourceValue is struct fg_source: one CPU's copy of a per-source entry.
// Counters are cumulative since the entry was created. Times are
// CLOCK_MONOTONIC nanoseconds.
type SourceValue struct {
	Packets         [NumClasses]uint64
	Bytes           [NumClasses]uint64
	DroppedPackets  uint64
	DroppedBytes    uint64
	LastSeenNs      uint64
	ExactExpiresNs  uint64 // rule cache, valid for RulesGen
	PrefixExpiresNs uint64 // rule cache, valid for RulesGen
	RulesGen        uint32
	UDPSrcPort      uint16 // host byte order; 0: none seen
	Pad             uint16
}

// Stats is struct fg_stats: one CPU's copy of the global counters, or their
// sum over CPUs (ReadStats).
type Stats struct {
	// Packets and Bytes count every frame with a readable IP source, by
	// class, dropped or not. They stay exact when the per-source map is
	// full.
	Packets        [NumClasses]uint64
	Bytes          [NumClasses]uint64
	DroppedPackets uint64
	DroppedBytes   uint64
	// UnparsedPackets and UnparsedBytes count frames passed without a
	// readable IP source address.
	UnparsedPackets uint64
	UnparsedBytes   uint64
	// SourceInsertFailures counts frames whose source could not be added to
	// the per-source map because it was full (detector.Tick.SourcesLost).
	SourceInsertFailures uint64
	// DroppedClassPackets and DroppedClassBytes split DroppedPackets and
	// DroppedBytes by class (appended to the C struct, after the fields
	// above, to keep their offsets).
	DroppedClassPackets [NumClasses]uint64
	DroppedClassBytes   [NumClasses]uint64
}

// ExactRuleValue is struct fg_exact_rule.
type ExactRuleValue struct {
	ExpiresNs uint64 // CLOCK_MONOTONIC; the rule drops while now < ExpiresNs
}

// PrefixRuleValue is struct fg_prefix_rule.
type PrefixRuleValue struct {
	ExpiresNs uint64 // CLOCK_MONOTONIC; the rule drops while now < ExpiresNs
	Packets   uint64 // frames this rule dropped
	Bytes     uint64 // frame bytes this rule dropped
}

// LPM4Key is struct fg_lpm4_key. Prefixlen is in host byte order, Addr in
// network byte order with the bits past Prefixlen zero.
type LPM4Key struct {
	Prefixlen uint32
	Addr      [4]byte
}

// LPM6Key is struct fg_lpm6_key.
type LPM6Key struct {
	Prefixlen uint32
	Addr      [16]byte
}

// ErrABIMismatch is returned when a map's key or value size, or its type,
// differs from the Go mirror of its record: the object, a pinned map left by
// another floodguard version, or this package is out of date.
var ErrABIMismatch = errors.New("map layout does not match this floodguard build")

type mapABI struct {
	typ   ebpf.MapType
	key   any
	value any
}

var abi = map[string]mapABI{
	mapSources: {ebpf.PerCPUHash, detector.Addr{}, SourceValue{}},
	mapStats:   {ebpf.PerCPUArray, uint32(0), Stats{}},
	mapExact:   {ebpf.Hash, detector.Addr{}, ExactRuleValue{}},
	mapPrefix4: {ebpf.LPMTrie, LPM4Key{}, PrefixRuleValue{}},
	mapPrefix6: {ebpf.LPMTrie, LPM6Key{}, PrefixRuleValue{}},
	mapBSS:     {ebpf.Array, uint32(0), uint64(0)},
}

// mapInfo is what checkABI needs from a MapSpec or a Map.
type mapInfo interface {
	Type() ebpf.MapType
	KeySize() uint32
	ValueSize() uint32
}

type specInfo struct{ *ebpf.MapSpec }

func (s specInfo) Type() ebpf.MapType { return s.MapSpec.Type }
func (s specInfo) KeySize() uint32    { return s.MapSpec.KeySize }
func (s specInfo) ValueSize() uint32  { return s.MapSpec.ValueSize }

// checkABI reports, wrapping ErrABIMismatch, how map name differs from the Go
// mirror of its records.
func checkABI(name string, m mapInfo) error {
	want, ok := abi[name]
	if !ok {
		return fmt.Errorf("map %s: %w: unknown map", name, ErrABIMismatch)
	}
	if m.Type() != want.typ {
		return fmt.Errorf("map %s: %w: type %s, want %s", name, ErrABIMismatch, m.Type(), want.typ)
	}
	if k := binary.Size(want.key); m.KeySize() != uint32(k) {
		return fmt.Errorf("map %s: %w: key size %d, want %d", name, ErrABIMismatch, m.KeySize(), k)
	}
	if v := binary.Size(want.value); m.ValueSize() != uint32(v) {
		return fmt.Errorf("map %s: %w: value size %d, want %d", name, ErrABIMismatch, m.ValueSize(), v)
	}
	return nil
}
