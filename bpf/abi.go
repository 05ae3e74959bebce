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
	mapSlots   = "fg_source_slots"
	mapFree    = "fg_free_slots"
	mapStats   = "fg_stats"
	mapExact   = "fg_exact"
	mapPrefix4 = "fg_prefix4"
	mapPrefix6 = "fg_prefix6"
	mapBSS     = ".bss"
	varControl = "fg_control"

	mapSigRules    = "fg_sig_rules"
	mapSigIndex    = "fg_sig_index"
	mapSigStats    = "fg_sig_stats"
	mapSigScratch  = "fg_sig_scratch"
	mapExempt      = "fg_exempt"
	mapFeatPorts   = "fg_feat_ports"
	mapFeat        = "fg_feat"
	mapFeatDsts    = "fg_feat_dsts"
	mapFeatTouched = "fg_feat_touched"
	mapProbe       = "fg_probe"
	mapAdmission   = "fg_admission"
	mapTripLevels  = "fg_trip_levels"
	mapTrips       = "fg_trips"
	progXDP        = "floodguard_xdp"

	pinControl = "fg_control"
	pinLink    = "link"
)

// Flags in the high half of fg_control (FG_HAVE_*).
const (
	haveExact   = 1 << 0
	havePrefix4 = 1 << 1
	havePrefix6 = 1 << 2
	haveSigs    = 1 << 3 // fg_sig_index may list rule slots
	haveExempt  = 1 << 4 // fg_exempt may be non-empty
	haveTripLvl = 1 << 5 // fg_trip_levels may be non-empty
	// Bits 8..12: one past the highest portless signature slot in use.
	portlessShift = 8
)

// Signature rule and feature constants (floodguard.h).
const (
	// SigSlots is FG_SIG_SLOTS, the number of signature rule slots.
	SigSlots = 256
	// SigPortlessSlots is FG_SIG_PORTLESS: slots [0, SigPortlessSlots)
	// hold rules without a port component.
	SigPortlessSlots = 16
	// sigIndexSlots is FG_SIG_INDEX_SLOTS, the candidates per
	// (port kind, port) in fg_sig_index.
	sigIndexSlots = 7
	// sigWindowNs is FG_SIG_WINDOW_NS, the rate limiter's window.
	sigWindowNs = 100_000_000
	// numPortKinds and numPorts size fg_sig_index and fg_feat_ports.
	numPortKinds = int(detector.NumPortKinds)
	numPorts     = 1 << 16
	// portCounters is FG_PORT_COUNTERS, one per (kind, port); they come
	// in blocks of portBlock (FG_PORT_BLOCK), portBlocks (FG_PORT_BLOCKS)
	// of them.
	portCounters = numPortKinds * numPorts
	portBlock    = 64
	portBlocks   = portCounters / portBlock
	// portTouchedWords is FG_PORT_TOUCHED_WORDS.
	portTouchedWords = portBlocks / 64
	// MaxExempt is FG_MAX_EXEMPT, the capacity of fg_exempt.
	MaxExempt = 1024
	// FeatureDsts is FG_FEAT_DST_SLOTS, the most destinations counted by
	// address; the rest are counted together.
	FeatureDsts = 1 << featDstBits
	featDstBits = 6
	// FG_DST_HASH1 and FG_DST_HASH2.
	dstHash1 = 0x9e3779b1
	dstHash2 = 0x85ebca6b
	// numLenBuckets is FG_NUM_LEN_BUCKETS.
	numLenBuckets = detector.NumLengthBuckets
)

// Compile-time checks that the C constants and the detector's agree:
// FG_NUM_PORT_KINDS 4, FG_NUM_LEN_BUCKETS 25 (64-byte buckets, the last from
// 1536 up).
var (
	_ = [1]struct{}{}[numPortKinds-4]
	_ = [1]struct{}{}[numLenBuckets-25]
	_ = [1]struct{}{}[detector.LengthBucketWidth-64]
)

// struct fg_sig_rule flags (FG_SIG_*).
const (
	sigL4    = 1 << 0
	sigSrcV6 = 1 << 1
	sigDstV6 = 1 << 2
)

// SourceValue is struct fg_source: a per-source entry, shared by the CPUs.
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
	// Trips (trip.h): counts before the epoch BaseEpoch, the epoch it
	// last tripped in, its own level as read in LevelEpoch.
	BasePackets  uint64
	BaseBytes    uint64
	LevelPackets uint64
	LevelBytes   uint64
	BaseEpoch    uint32
	TrippedEpoch uint32
	LevelEpoch   uint32
	Pad2         uint32
}

// SlotValue is struct fg_slot: a per-source entry and its address, in the
// slot fg_sources gives the address. Live is 1 while the entry is in use.
type SlotValue struct {
	SourceValue
	Addr detector.Addr
	Live uint32
	Pad  uint32
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
	// ProbationPackets and ProbationBytes count frames of sources on
	// probation (not yet admitted to the per-source map); Admitted counts
	// the sources admitted.
	ProbationPackets uint64
	ProbationBytes   uint64
	Admitted         uint64
	// ProbationCredited counts the probation frames added to their
	// source's new entry at its admission.
	ProbationCredited uint64
	// Admission state, not counters (ReadStats leaves them zero).
	BudgetEpoch uint32
	BudgetUsed  uint32
	// Trips sent, and those over the cap (or refused by a full ring
	// buffer), not sent.
	Trips       uint64
	TripsCapped uint64
	// Trip cap state, not counters.
	TripEpoch uint32
	TripUsed  uint32
}

// TripLevelValue is struct fg_trip_level: a source's own trip level.
type TripLevelValue struct {
	Packets uint64
	Bytes   uint64
}

// TripRecord is struct fg_trip, one record of the fg_trips ring buffer.
type TripRecord struct {
	Addr    detector.Addr
	Packets uint64
	Bytes   uint64
	TimeNs  uint64 // CLOCK_MONOTONIC
	Epoch   uint32
	Class   uint8
	Pad     [3]uint8
}

// Admission (struct fg_probe, struct fg_admission; admission.go).
const (
	probeBits    = 14
	ProbeSlots   = 1 << probeBits // FG_PROBE_SLOTS, per CPU
	MaxAdmit     = 4              // FG_ADMIT_MAX
	probeRecords = MaxAdmit - 1
	probeDropped = 0x80
	probeMul     = 0x9e3779b1
)

// ProbeValue is struct fg_probe: a probation slot of one CPU's region.
type ProbeValue struct {
	Addr     detector.Addr
	Epoch    uint32
	Seen     uint8
	N        uint8
	Class    [probeRecords]uint8
	Pad      uint8
	UDPSport uint16
	Len      [probeRecords]uint32
}

// AdmissionValue is struct fg_admission.
type AdmissionValue struct {
	Threshold uint32
	Epoch     uint32
	Seed      uint32
	Budget    uint32
	// Trips: the global level and the cap per CPU and epoch.
	TripPackets uint64
	TripBytes   uint64
	TripCap     uint32
	// Slots (slots.go): how many, and the next never used one.
	SlotCount uint32
	SlotsNext uint32
	Pad       uint32
}

// SigRuleValue is struct fg_sig_rule: one slot of fg_sig_rules, which user
// space writes through a memory mapping (see sig.go for the protocol).
// Prefixes are 16-byte addresses and masks (IPv4-mapped for IPv4); ranges
// are inclusive, "any" being 0..65535.
type SigRuleValue struct {
	ExpiresNs uint64 // CLOCK_MONOTONIC; 0: free slot
	RatePPS   uint64 // 0: drop
	Allowance uint64 // packets per 100 ms window
	Src       detector.Addr
	SrcMask   detector.Addr
	Dst       detector.Addr
	DstMask   detector.Addr
	SportLo   uint16
	SportHi   uint16
	DportLo   uint16
	DportHi   uint16
	LenLo     uint16
	LenHi     uint16
	Proto     uint8
	TCPFlags  uint8
	TCPMask   uint8
	Frag      uint8
	Flags     uint8 // sig* flags
	Indexed   uint8 // 0: portless; else 1 + the port kind it is indexed by
	Pad       [22]uint8
	Window    uint64 // rate limiter (program)
	Count     uint64
	Pad2      [6]uint64
}

// SigStatsValue is struct fg_sig_stats: one CPU's counters of a slot.
type SigStatsValue struct {
	HitPackets     uint64
	HitBytes       uint64
	DroppedPackets uint64
	DroppedBytes   uint64
}

// PortCountValue is struct fg_port_count.
type PortCountValue struct {
	Packets uint64
	Bytes   uint64
}

// PortBlockValue is struct fg_port_block: the counters of 64 consecutive
// (kind, port) pairs, a value of fg_feat_ports (one per CPU) and of the
// port summer's fg_port_sums.
type PortBlockValue [portBlock]PortCountValue

// FeatValue is struct fg_feat: one CPU's cumulative length buckets and
// destination counts.
type FeatValue struct {
	Lengths    [NumClasses][numLenBuckets]uint64
	DstPackets [FeatureDsts]uint64 // by slot of fg_feat_dsts
	DstsOther  uint64              // frames to destinations without a slot
	DstSample  detector.Addr       // the destination of the last of those
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
	// entries is the fixed capacity of maps whose index layout the
	// program and user space share (0: sized by Options, or any).
	entries uint32
}

var abi = map[string]mapABI{
	mapSources: {ebpf.Hash, detector.Addr{}, uint32(0), 0},
	mapSlots:   {ebpf.Array, uint32(0), SlotValue{}, 0},
	mapFree:    {ebpf.Stack, nil, uint32(0), 0},
	mapStats:   {ebpf.PerCPUArray, uint32(0), Stats{}, 1},
	mapExact:   {ebpf.Hash, detector.Addr{}, ExactRuleValue{}, 0},
	mapPrefix4: {ebpf.LPMTrie, LPM4Key{}, PrefixRuleValue{}, 0},
	mapPrefix6: {ebpf.LPMTrie, LPM6Key{}, PrefixRuleValue{}, 0},
	mapBSS:     {ebpf.Array, uint32(0), uint64(0), 1},

	mapSigRules:    {ebpf.Array, uint32(0), SigRuleValue{}, SigSlots},
	mapSigIndex:    {ebpf.Array, uint32(0), uint64(0), uint32(numPortKinds * numPorts)},
	mapSigStats:    {ebpf.PerCPUArray, uint32(0), SigStatsValue{}, SigSlots},
	mapSigScratch:  {ebpf.PerCPUArray, uint32(0), [40]byte{}, 1},
	mapExempt:      {ebpf.Hash, detector.Addr{}, uint8(0), MaxExempt},
	mapFeatPorts:   {ebpf.PerCPUArray, uint32(0), PortBlockValue{}, uint32(portBlocks)},
	mapFeat:        {ebpf.PerCPUArray, uint32(0), FeatValue{}, 1},
	mapFeatDsts:    {ebpf.Array, uint32(0), detector.Addr{}, FeatureDsts},
	mapFeatTouched: {ebpf.Array, uint32(0), uint64(0), uint32(portTouchedWords)},
	// One region of ProbeSlots per possible CPU (prepareSpec).
	mapProbe:      {ebpf.Array, uint32(0), ProbeValue{}, 0},
	mapAdmission:  {ebpf.Array, uint32(0), AdmissionValue{}, 1},
	mapTripLevels: {ebpf.Hash, detector.Addr{}, TripLevelValue{}, 0},
	mapTrips:      {ebpf.RingBuf, nil, nil, 0},
}

// mapInfo is what checkABI needs from a MapSpec or a Map.
type mapInfo interface {
	Type() ebpf.MapType
	KeySize() uint32
	ValueSize() uint32
	MaxEntries() uint32
}

type specInfo struct{ *ebpf.MapSpec }

func (s specInfo) Type() ebpf.MapType { return s.MapSpec.Type }
func (s specInfo) KeySize() uint32    { return s.MapSpec.KeySize }
func (s specInfo) ValueSize() uint32  { return s.MapSpec.ValueSize }
func (s specInfo) MaxEntries() uint32 { return s.MapSpec.MaxEntries }

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
	if k := abiSize(want.key); m.KeySize() != uint32(k) {
		return fmt.Errorf("map %s: %w: key size %d, want %d", name, ErrABIMismatch, m.KeySize(), k)
	}
	if v := abiSize(want.value); m.ValueSize() != uint32(v) {
		return fmt.Errorf("map %s: %w: value size %d, want %d", name, ErrABIMismatch, m.ValueSize(), v)
	}
	if want.entries != 0 && m.MaxEntries() != want.entries {
		return fmt.Errorf("map %s: %w: %d entries, want %d", name, ErrABIMismatch, m.MaxEntries(), want.entries)
	}
	return nil
}

// abiSize is the size of a map's key or value mirror; nil for none (a ring
// buffer has neither).
func abiSize(v any) int {
	if v == nil {
		return 0
	}
	return binary.Size(v)
}
