package capture

import "strconv"

// LinkType is a pcap LINKTYPE_ value (tcpdump.org/linktypes.html).
// floodguard does not use gopacket's layers.LinkType because in gopacket
// v1.1.19 it is a uint8: it cannot hold LINKTYPE_LINUX_SLL2 (276), and
// pcapgo truncates the file's link type to it (276 reads as 20). The
// readers here take the link type from the file themselves.
type LinkType uint16

// The link types Decoder understands. Every other one is undecodable.
const (
	LinkTypeNull      LinkType = 0   // BSD loopback, host-order family
	LinkTypeEthernet  LinkType = 1   // Ethernet II
	LinkTypeRawDLT12  LinkType = 12  // DLT_RAW on most systems
	LinkTypeRawDLT14  LinkType = 14  // DLT_RAW on OpenBSD
	LinkTypeRaw       LinkType = 101 // raw IPv4 or IPv6
	LinkTypeLoop      LinkType = 108 // OpenBSD loopback, network-order family
	LinkTypeLinuxSLL  LinkType = 113 // Linux cooked capture v1
	LinkTypeIPv4      LinkType = 228 // raw IPv4 (by name; we still check)
	LinkTypeIPv6      LinkType = 229 // raw IPv6 (by name; we still check)
	LinkTypeLinuxSLL2 LinkType = 276 // Linux cooked capture v2

	// linkTypeInvalid stands for a classic pcap link-type field above
	// 16 bits (after masking the FCS bits); nothing is assigned to it.
	linkTypeInvalid LinkType = 0xffff
)

// String returns a short name with the number, e.g. "ethernet(1)".
func (t LinkType) String() string {
	n := strconv.Itoa(int(t))
	switch t {
	case LinkTypeNull:
		return "null(" + n + ")"
	case LinkTypeEthernet:
		return "ethernet(" + n + ")"
	case LinkTypeRawDLT12, LinkTypeRawDLT14, LinkTypeRaw:
		return "raw(" + n + ")"
	case LinkTypeLoop:
		return "loop(" + n + ")"
	case LinkTypeLinuxSLL:
		return "linux_sll(" + n + ")"
	case LinkTypeIPv4:
		return "ipv4(" + n + ")"
	case LinkTypeIPv6:
		return "ipv6(" + n + ")"
	case LinkTypeLinuxSLL2:
		return "linux_sll2(" + n + ")"
	}
	return "linktype(" + n + ")"
}
