package detector

import (
	"net/netip"
	"time"
)

// Class is a protocol class counted separately by every data source. The
// numbering is shared with the XDP program (bpf/floodguard.h): keep them equal.
type Class uint8

const (
	// ClassSYN is TCP with SYN set and ACK clear: the SYN-flood signal.
	ClassSYN Class = iota
	// ClassTCP is every other TCP segment, including non-first fragments
	// whose flags cannot be seen.
	ClassTCP
	// ClassUDP is UDP, including non-first fragments of UDP datagrams.
	ClassUDP
	// ClassICMP is ICMP and ICMPv6.
	ClassICMP
	// ClassOther is any other IP payload (GRE, ESP, unknown protocols).
	ClassOther
	// NumClasses is the number of classes; not a class itself.
	NumClasses
)

var classNames = [NumClasses]string{"syn", "tcp", "udp", "icmp", "other"}

// String returns the short lowercase name used in events and metrics.
func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "invalid"
}

// Counters are the counts for one source (or for the whole tick) over one
// tick. Packets and Bytes count everything seen from the source, dropped or
// not; DroppedPackets and DroppedBytes are the part of it that a drop rule
// discarded. Bytes are wire bytes of the frame as seen at the capture point
// (pcap original length, or XDP data_end - data).
type Counters struct {
	Packets        [NumClasses]uint64
	Bytes          [NumClasses]uint64
	DroppedPackets uint64
	DroppedBytes   uint64
}

// TotalPackets returns the packets over all classes.
func (c *Counters) TotalPackets() uint64 {
	var n uint64
	for _, p := range c.Packets {
		n += p
	}
	return n
}

// TotalBytes returns the bytes over all classes.
func (c *Counters) TotalBytes() uint64 {
	var n uint64
	for _, b := range c.Bytes {
		n += b
	}
	return n
}

// Add adds o to c.
func (c *Counters) Add(o *Counters) {
	for i := range c.Packets {
		c.Packets[i] += o.Packets[i]
		c.Bytes[i] += o.Bytes[i]
	}
	c.DroppedPackets += o.DroppedPackets
	c.DroppedBytes += o.DroppedBytes
}

// Source is one source address's counters in a tick.
type Source struct {
	Addr Addr
	Counters
	// UDPSrcPort is a UDP source port seen from this source in the tick (the
	// last one the data source recorded; 0 if none). Reflection floods come
	// from one well-known port, so it is enough to group reflectors.
	UDPSrcPort uint16
}

// Tick is everything one data source saw in one tick. The replay source and
// the live XDP source both produce it; the detector consumes it. A Tick and
// its Sources slice belong to the producer and are valid only until the next
// tick is requested.
type Tick struct {
	// Start is the beginning of the tick (packet time in replay, wall clock
	// live) and Length its duration.
	Start  time.Time
	Length time.Duration
	// Total is the sum over every IP packet in the tick. It stays exact even
	// when the per-source view is partial (see SourcesLost).
	Total Counters
	// Sources holds per-source counters in no particular order; each address
	// appears at most once.
	Sources []Source
	// UnparsedPackets and UnparsedBytes count frames with no IP source
	// address the data source could read (ARP, malformed, unknown link).
	UnparsedPackets uint64
	UnparsedBytes   uint64
	// SourcesLost counts packets whose source could not be tracked (live
	// per-source map full). Non-zero means Sources is incomplete.
	SourcesLost uint64
	// ProbationPackets counts packets of new sources the data source did
	// not track individually (the XDP program's admission, which the
	// replay models): in Total, under no Source. Each may be a source of
	// its own (a spoofed flood).
	ProbationPackets uint64
	// Probation holds what the data source recorded of those packets by
	// source address (bpf DESIGN.md, "Admission": most of them, within a
	// documented bound; an address may appear more than once). They are
	// counted in their prefixes, never judged as sources: a source gets
	// its own baseline only once admitted.
	Probation []Source
	// Features are the tick's traffic by port, length and destination,
	// for signature rules.
	Features Features
}

// End returns the end of the tick, the time at which decisions about it are
// made.
func (t *Tick) End() time.Time { return t.Start.Add(t.Length) }

// Addr is an IPv4 or IPv6 address in the 16-byte form shared with the XDP
// program: IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d). Unlike
// netip.Addr it holds no pointer, so large maps keyed by it cost the garbage
// collector nothing.
type Addr [16]byte

// AddrFrom converts a netip.Addr (IPv4, IPv4-mapped or IPv6; the zone is
// dropped).
func AddrFrom(a netip.Addr) Addr { return Addr(a.As16()) }

// AddrFrom4 makes an Addr from four IPv4 bytes.
func AddrFrom4(b [4]byte) Addr {
	return Addr{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}
}

// Is4 reports whether a is an IPv4-mapped address.
func (a Addr) Is4() bool {
	return a[0]|a[1]|a[2]|a[3]|a[4]|a[5]|a[6]|a[7]|a[8]|a[9] == 0 && a[10] == 0xff && a[11] == 0xff
}

// Netip returns a as a netip.Addr, unmapped for IPv4.
func (a Addr) Netip() netip.Addr { return netip.AddrFrom16(a).Unmap() }

// String formats a like netip.Addr does (dotted quad for IPv4).
func (a Addr) String() string { return a.Netip().String() }

// Prefix returns the single-address prefix (/32 or /128) for a.
func (a Addr) Prefix() netip.Prefix {
	n := a.Netip()
	return netip.PrefixFrom(n, n.BitLen())
}
