package detector

// Features are the per-tick counts the signature logic reads: traffic by
// port and by packet length, from the kernel or from replay alike, with no
// per-source work. Like Counters they count every packet seen, dropped or
// not, so a flood a rule already drops still shows (and renews the rule).
type Features struct {
	// Ports holds the ports that carried traffic in the tick, each
	// (Kind, Port) at most once, in no particular order.
	Ports []PortCount
	// Lengths counts packets per protocol class and IP length bucket
	// (LengthBucket).
	Lengths [NumClasses][NumLengthBuckets]uint64
	// Dsts counts packets per destination address, the busiest first
	// few; the rest are in DstsOther.
	Dsts      []DstCount
	DstsOther uint64
}

// PortKind says which port of which protocol a PortCount counts.
type PortKind uint8

const (
	UDPSrcPort PortKind = iota
	UDPDstPort
	TCPSrcPort
	TCPDstPort
	// NumPortKinds is the number of kinds; not a kind itself.
	NumPortKinds
)

var portKindNames = [NumPortKinds]string{"udp sport", "udp dport", "tcp sport", "tcp dport"}

func (k PortKind) String() string {
	if k < NumPortKinds {
		return portKindNames[k]
	}
	return "invalid"
}

// Proto is the IP protocol of the kind's ports.
func (k PortKind) Proto() uint8 {
	if k == TCPSrcPort || k == TCPDstPort {
		return 6
	}
	return 17
}

// IsSrc reports whether the kind counts source ports.
func (k PortKind) IsSrc() bool { return k == UDPSrcPort || k == TCPSrcPort }

// PortCount is one port's traffic in a tick. Only packets whose transport
// header was read count (not later fragments).
type PortCount struct {
	Kind    PortKind
	Port    uint16
	Packets uint64
	Bytes   uint64
}

// DstCount is one destination address's packets in a tick.
type DstCount struct {
	Addr    Addr
	Packets uint64
}

// Length buckets are 64 bytes of IP length wide; the last one holds
// everything from 1536 bytes up (jumbo frames, BIG TCP).
const (
	LengthBucketWidth = 64
	NumLengthBuckets  = 1536/LengthBucketWidth + 1
)

// LengthBucket returns the bucket of an IP total length.
func LengthBucket(ipLen uint16) int {
	return min(int(ipLen)/LengthBucketWidth, NumLengthBuckets-1)
}

// LengthBucketRange is the range of IP lengths bucket b holds.
func LengthBucketRange(b int) Range {
	lo := uint16(b * LengthBucketWidth)
	if b >= NumLengthBuckets-1 {
		return Range{Lo: lo, Hi: 65535}
	}
	return Range{Lo: lo, Hi: lo + LengthBucketWidth - 1}
}
