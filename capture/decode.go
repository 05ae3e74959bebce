package capture

import (
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// Bounds on header chains. The XDP parser (bpf/) must use the same values,
// or the two data sources will disagree on deeply nested frames.
const (
	// MaxVLANTags is the most 802.1Q/802.1ad tags (TPID 0x8100, 0x88a8,
	// 0x9100) walked after the Ethernet (or cooked) header: 802.1Q inside
	// 802.1ad (QinQ), as the XDP program's VLAN_MAX_DEPTH. A frame with
	// more is undecodable.
	MaxVLANTags = 2
	// MaxIPv6ExtHeaders is the most IPv6 extension headers walked looking
	// for the transport header (the XDP program's IPV6_EXT_MAX_CHAIN). A
	// longer chain is attributed to its source with ClassOther.
	MaxIPv6ExtHeaders = 6
)

// Packet is what the decoder learned from one frame.
type Packet struct {
	// PacketMeta is what signature rules see of the packet: Src (IPv4
	// stored IPv4-mapped), Dst, Proto, L4 with the ports and TCP flags,
	// the IP length and the fragment kind (see Decoder.Decode for the
	// rules). L4 reports whether the transport header was read: false for
	// non-first fragments, transport headers cut short by the capture,
	// and protocols other than TCP and UDP, and then the ports and flags
	// are zero.
	detector.PacketMeta
	// Class is the protocol class (see Decoder.Decode for the rules).
	Class detector.Class
	// OK reports whether the frame had a readable IP source. When false,
	// the frame is undecodable and every other field is zero.
	OK bool
}

// IP protocol numbers used in classification.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// TCP flag bits in byte 13 of the TCP header.
const (
	tcpFlagSYN = 0x02
	tcpFlagACK = 0x10
)

// Layer types for the link layers gopacket v1.1.19 has no type for. They
// are never registered (registration is global state); they only key the
// decoder's own container.
const (
	layerTypeSLL2  gopacket.LayerType = 1000 + iota // LINKTYPE_LINUX_SLL2
	layerTypeLoop                                   // LINKTYPE_LOOP, network-order family
	layerTypeRawIP                                  // raw IPv4 or IPv6, by version nibble
)

// linkKind indexes the decoder's parsers.
type linkKind uint8

const (
	linkNone linkKind = iota
	linkEthernet
	linkSLL
	linkSLL2
	linkNull
	linkLoop
	linkRaw
	numLinkKinds
)

func kindOf(lt LinkType) linkKind {
	switch lt {
	case LinkTypeEthernet:
		return linkEthernet
	case LinkTypeLinuxSLL:
		return linkSLL
	case LinkTypeLinuxSLL2:
		return linkSLL2
	case LinkTypeNull:
		return linkNull
	case LinkTypeLoop:
		return linkLoop
	case LinkTypeRaw, LinkTypeRawDLT12, LinkTypeRawDLT14, LinkTypeIPv4, LinkTypeIPv6:
		return linkRaw
	}
	return linkNone
}

// Decoder turns frames into Packets. It allocates nothing per frame: the
// layers are preallocated and reused. A Decoder is not safe for concurrent
// use.
type Decoder struct {
	eth   ethernetLayer
	sll   sllLayer
	sll2  sll2Layer
	null  nullLayer
	loop  loopLayer
	raw   rawIPLayer
	pppoe pppoeLayer
	ip4   ipv4Layer
	ip6   ipv6Layer
	tcp   tcpLayer
	udp   udpLayer

	parsers [numLinkKinds]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
}

// NewDecoder returns a Decoder for every supported link type.
func NewDecoder() *Decoder {
	d := &Decoder{decoded: make([]gopacket.LayerType, 0, 8)}
	// One container holds every layer; the parsers differ only in the
	// layer they start from.
	var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
	for _, l := range []gopacket.DecodingLayer{
		&d.eth, &d.sll, &d.sll2, &d.null, &d.loop, &d.raw,
		&d.pppoe, &d.ip4, &d.ip6, &d.tcp, &d.udp,
	} {
		dlc = dlc.Put(l)
	}
	first := [numLinkKinds]gopacket.LayerType{
		linkEthernet: layers.LayerTypeEthernet,
		linkSLL:      layers.LayerTypeLinuxSLL,
		linkSLL2:     layerTypeSLL2,
		linkNull:     layers.LayerTypeLoopback,
		linkLoop:     layerTypeLoop,
		linkRaw:      layerTypeRawIP,
	}
	for k := linkEthernet; k < numLinkKinds; k++ {
		p := gopacket.NewDecodingLayerParser(first[k])
		p.SetDecodingLayerContainer(dlc)
		// Decoding stops at the transport header or at anything we do not
		// follow (tunnels, ARP): that is the normal end, not an error.
		p.IgnoreUnsupported = true
		// Let panics through: a recovered panic would hide a decoder bug
		// from FuzzDecode. Every layer here bounds-checks its reads.
		p.IgnorePanic = true
		d.parsers[k] = p
	}
	return d
}

// Decode reads one frame of link type lt. It never fails: a frame without
// a readable IP source address comes back with OK false.
//
// Byte-level rules (all multi-byte fields are big-endian, network order,
// except the BSD null family):
//
// Link layers, by link type:
//   - Ethernet (1): 14 bytes; EtherType at bytes 12-13. A length value
//     (< 0x0600, 802.3/LLC) is not IP.
//   - Linux SLL (113): 16 bytes; protocol (an EtherType) at bytes 14-15.
//   - Linux SLL2 (276): 20 bytes; protocol (an EtherType) at bytes 0-1.
//   - BSD null (0): 4-byte address family in the byte order of the host
//     that captured, which may differ from the file's: read it
//     little-endian and, if the value is above 0xffff, byte-swap it. 2 is
//     IPv4; 10, 24, 28 and 30 (Linux, NetBSD/OpenBSD, FreeBSD, macOS) are
//     IPv6; anything else is not IP.
//   - Loop (108): the same 4-byte family, always big-endian.
//   - Raw IP (101, 12, 14, 228 IPv4, 229 IPv6): no header; the high
//     nibble of byte 0 decides (4 IPv4, 6 IPv6, else not IP), whatever
//     the link type says.
//
// After Ethernet, SLL and SLL2 the EtherType is followed through up to
// MaxVLANTags 4-byte VLAN tags (TPID 0x8100, 0x88a8 or 0x9100; the inner
// EtherType is at tag bytes 2-3). 0x0800 is IPv4, 0x86dd IPv6, 0x8864 a
// PPPoE session: 6-byte PPPoE header (version/type 0x11, code 0) then a
// 2-byte PPP protocol, 0x0021 IPv4 or 0x0057 IPv6. Anything else is not IP.
//
// These are the XDP program's rules (bpf/floodguard.c), byte for byte: the
// shared vectors in internal/vectors hold both to them. In particular the
// IP length fields (IPv4 total length, IPv6 payload length) are not read:
// headers are bounded by the captured frame alone, as XDP bounds them by
// data_end, so a sender cannot make the two paths disagree by understating
// them. (Ethernet padding after a well-formed packet never reaches a
// header.)
//
// IPv4: at least 20 bytes captured, version nibble 4, IHL (low nibble of
// byte 0) >= 5 and IHL*4 bytes captured; otherwise not decodable. Source at
// bytes 12-15, destination at 16-19, protocol at byte 9, Length the total
// length at bytes 2-3 as it stands; the transport header follows the
// IHL*4 bytes. Fragment offset is bytes 6-7 & 0x1fff: if non-zero the
// packet is a later (non-first) fragment, FragLater; if zero with more
// fragments (bytes 6-7 & 0x2000) a first fragment, FragFirst; else
// FragNone.
//
// IPv6: at least 40 bytes captured, version nibble 6; source at bytes
// 8-23, destination at 24-39, next header at byte 6; Length is the payload
// length (bytes 4-5) + 40, at most 65535. Up to MaxIPv6ExtHeaders
// extension headers are skipped: hop-by-hop (0), routing (43) and
// destination options (60), each (byte 1 + 1) * 8 bytes; AH (51), (byte 1
// + 2) * 4 bytes; fragment (44), 8 bytes, offset = bytes 2-3 >> 3: if
// non-zero the packet is FragLater and the fragment header's next header
// (byte 0) names the protocol with no further walking; if zero, FragFirst
// when the M flag (byte 3 & 1) is set, else FragNone (an atomic
// fragment), and the walk goes on. The last fragment header read decides.
// A chain longer than MaxIPv6ExtHeaders (a fragment header in seventh place
// included) or running past the capture leaves the protocol at the
// extension header's number, which classifies as ClassOther (and is
// Proto).
//
// Transport, only in a first fragment (or unfragmented packet): TCP needs
// 20 bytes and a data offset (byte 12 >> 4) of at least 5, and reads the
// ports at bytes 0-1 and 2-3 and the flags at byte 13; UDP needs 8 and
// reads the ports at bytes 0-1 and 2-3. Then L4 is set; otherwise ports
// and flags stay zero.
//
// Class: TCP (6) is ClassSYN when SYN (0x02) is set and ACK (0x10) clear,
// else ClassTCP (also when the flags were not read); UDP (17) ClassUDP
// (with or without a port); ICMP (1) and ICMPv6 (58) ClassICMP; any other
// protocol ClassOther. Once the source is read the frame counts under it
// whatever follows, so a truncated or malformed transport header cannot
// hide a source.
func (d *Decoder) Decode(lt LinkType, data []byte) Packet {
	var pkt Packet
	d.decode(lt, data, &pkt)
	return pkt
}

// decode is Decode writing into *pkt. The replay decodes every packet into
// the same Packet: that made the whole replay source about 10% faster than
// taking Decode's result into a new one (interleaved A/B, same file).
func (d *Decoder) decode(lt LinkType, data []byte, pkt *Packet) {
	*pkt = Packet{}
	k := kindOf(lt)
	if k == linkNone {
		return
	}
	// The error says where decoding stopped; what was decoded before it
	// is still valid, and that is all we look at.
	_ = d.parsers[k].DecodeLayers(data, &d.decoded)
	var ok, tcpOK, udpOK bool
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			ok = true
			pkt.Src, pkt.Dst = detector.AddrFrom4(d.ip4.src), detector.AddrFrom4(d.ip4.dst)
			pkt.Proto, pkt.Length, pkt.Fragment = d.ip4.proto, d.ip4.length, d.ip4.frag
		case layers.LayerTypeIPv6:
			ok = true
			pkt.Src, pkt.Dst = d.ip6.src, d.ip6.dst
			pkt.Proto, pkt.Length, pkt.Fragment = d.ip6.proto, d.ip6.length, d.ip6.frag
		case layers.LayerTypeTCP:
			tcpOK = true
		case layers.LayerTypeUDP:
			udpOK = true
		}
	}
	if !ok {
		return // still all zero
	}
	pkt.OK = true
	switch pkt.Proto {
	case protoTCP:
		pkt.Class = detector.ClassTCP
		if tcpOK {
			pkt.L4 = true
			pkt.SrcPort, pkt.DstPort, pkt.TCPFlags = d.tcp.srcPort, d.tcp.dstPort, d.tcp.flags
			if d.tcp.flags&(tcpFlagSYN|tcpFlagACK) == tcpFlagSYN {
				pkt.Class = detector.ClassSYN
			}
		}
	case protoUDP:
		pkt.Class = detector.ClassUDP
		if udpOK {
			pkt.L4, pkt.SrcPort, pkt.DstPort = true, d.udp.srcPort, d.udp.dstPort
		}
	case protoICMP, protoICMPv6:
		pkt.Class = detector.ClassICMP
	default:
		pkt.Class = detector.ClassOther
	}
}
