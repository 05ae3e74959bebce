// Package vectors holds the one set of test frames that feeds both packet
// parsers, the XDP program (through BPF_PROG_TEST_RUN) and the replay
// decoder, with what each must make of every frame: the two paths can never
// disagree about what a packet is. Every frame is Ethernet
// (LINKTYPE_ETHERNET, 1), as XDP sees it. Addresses come from 198.18.0.0/15
// and 2001:db8::/32 only.
//
// Both suites run the table: bpf/parse_test.go through BPF_PROG_TEST_RUN,
// capture/vectors_test.go through the replay decoder, and
// capture/crosscheck_test.go through both at once, comparing the counters.
// A new parsing rule starts here, with a vector on each side of its edge.
//
// The builders the table is made of (Frame and the headers) are exported:
// they are the one frame builder of the tests, which bpf/ and capture/ use
// for frames of their own. Besides Ethernet they build the Linux cooked
// headers (LinuxSLL, LinuxSLL2) the replay decoder also reads.
package vectors

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	dst4   = net.IP{198, 19, 255, 1}
	dst6   = net.ParseIP("2001:db8:ffff::1")
)

// Frame builds a frame from layers, fixing lengths (checksums are left
// zero: the program does not check them). It panics on layers gopacket
// cannot serialize, which is a bug in the test.
func Frame(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		panic(fmt.Sprintf("serialize: %v", err))
	}
	return append([]byte(nil), buf.Bytes()...)
}

// EthHeader is an Ethernet header that, unlike layers.Ethernet, is not padded
// to the 60-byte minimum, so truncated frames stay truncated.
type EthHeader struct{ typ layers.EthernetType }

func (e EthHeader) LayerType() gopacket.LayerType { return layers.LayerTypeEthernet }

func (e EthHeader) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	h, err := b.PrependBytes(14)
	if err != nil {
		return err
	}
	copy(h[0:6], dstMAC)
	copy(h[6:12], srcMAC)
	h[12], h[13] = byte(e.typ>>8), byte(e.typ)
	return nil
}

// Eth is an unpadded Ethernet header of the given type.
func Eth(typ layers.EthernetType) EthHeader { return EthHeader{typ} }

// PaddedEth is gopacket's Ethernet layer, which pads frames to 60 bytes as
// a NIC delivers them.
func PaddedEth(typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: typ}
}

// IPv4 is an IPv4 header from src to the test destination.
func IPv4(src string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: dst4}
}

// IPv6 is an IPv6 header from src to the test destination.
func IPv6(src string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: dst6}
}

// mapped6 is an IPv6 header from src to dst carrying UDP.
func mapped6(src, dst string) *layers.IPv6 {
	ip := IPv6(src, layers.IPProtocolUDP)
	ip.DstIP = net.ParseIP(dst)
	return ip
}

// UDP is a UDP header from sport to the discard port.
func UDP(sport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: udpDstPort}
}

// The ports of TCP's header and of UDP's destination.
const (
	tcpSrcPort = 40000
	tcpDstPort = 80
	udpDstPort = 9 // discard
)

// TCP is a TCP header with the given SYN and ACK flags.
func TCP(syn, ack bool) *layers.TCP {
	return &layers.TCP{SrcPort: tcpSrcPort, DstPort: tcpDstPort, Seq: 1, SYN: syn, ACK: ack, Window: 1024}
}

// Payload is n zero bytes.
func Payload(n int) gopacket.Payload { return make(gopacket.Payload, n) }

// VLAN is an 802.1Q tag (VLAN ID vid, priority 0) followed by next.
func VLAN(vid uint16, next layers.EthernetType) *layers.Dot1Q {
	return &layers.Dot1Q{VLANIdentifier: vid, Type: next}
}

// ARP is an ARP request from src for the test destination.
func ARP(src string) *layers.ARP {
	return &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
		SourceHwAddress: srcMAC, SourceProtAddress: net.ParseIP(src).To4(), DstHwAddress: dstMAC, DstProtAddress: dst4}
}

// LinuxSLL is a Linux cooked header (LINKTYPE_LINUX_SLL, 16 bytes) of a
// packet to this host with protocol proto, from the test source MAC.
func LinuxSLL(proto layers.EthernetType) gopacket.Payload {
	b := make(gopacket.Payload, 16)
	binary.BigEndian.PutUint16(b[0:2], 0) // packet to us
	binary.BigEndian.PutUint16(b[2:4], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(b[4:6], 6) // address length
	copy(b[6:12], srcMAC)                 // address
	binary.BigEndian.PutUint16(b[14:16], uint16(proto))
	return b
}

// LinuxSLL2 is a Linux cooked v2 header (LINKTYPE_LINUX_SLL2, 20 bytes)
// with protocol proto, received on interface 2 from the test source MAC.
func LinuxSLL2(proto layers.EthernetType) gopacket.Payload {
	b := make(gopacket.Payload, 20)
	binary.BigEndian.PutUint16(b[0:2], uint16(proto))
	binary.BigEndian.PutUint32(b[4:8], 2)  // interface index
	binary.BigEndian.PutUint16(b[8:10], 1) // ARPHRD_ETHER
	b[10], b[11] = 0, 6                    // packet to us, address length
	copy(b[12:18], srcMAC)                 // address
	return b
}

// IPv6Ext returns a raw IPv6 extension header of the given kind and total
// length (a multiple of 8, or of 4 for AH) followed by next.
func IPv6Ext(kind, next layers.IPProtocol, length int) gopacket.Payload {
	b := make(gopacket.Payload, length)
	b[0] = byte(next)
	if kind == layers.IPProtocolAH {
		b[1] = byte(length/4 - 2)
	} else {
		b[1] = byte(length/8 - 1)
	}
	return b
}

// IPv6Frag returns a raw IPv6 fragment header with the offset in 8-byte units
// and the more-fragments flag.
func IPv6Frag(next layers.IPProtocol, offset uint16, more bool) gopacket.Payload {
	fo := offset << 3
	if more {
		fo |= 1
	}
	return gopacket.Payload{byte(next), 0, byte(fo >> 8), byte(fo), 0, 0, 0x12, 0x34}
}

// Vector is one frame and what both floodguard parsers (the XDP program and
// the replay decoder) must make of it.
type Vector struct {
	Name  string
	Frame []byte
	// Src is the source the frame is counted under; "" means the frame
	// must count as unparsed and under no source.
	Src   string
	Class detector.Class
	// UDPPort is the UDP source port recorded for the source (0: none).
	UDPPort uint16
	// Meta is what signature rules see of the frame; zero when Src is "".
	Meta Meta
}

// Meta is what a signature rule can see of a frame with a source: the
// fields of detector.PacketMeta but the source, which is Vector.Src. Both
// parsers must extract exactly these.
type Meta struct {
	Dst   string
	Proto uint8
	// L4: the transport header was read. Then SrcPort and DstPort (TCP,
	// UDP) and TCPFlags (TCP, the whole byte 13) are set, else zero.
	L4               bool
	SrcPort, DstPort uint16
	TCPFlags         uint8
	// Length is the IP total length field (IPv6: payload length + 40,
	// at most 65535) as the header states it, whatever the frame holds.
	Length   uint16
	Fragment detector.Fragment // FragNone, FragFirst or FragLater
}

// PacketMeta returns what the parsers must extract from v's frame, the
// zero value for a frame with no source.
func (v Vector) PacketMeta() detector.PacketMeta {
	if v.Src == "" {
		return detector.PacketMeta{}
	}
	m := v.Meta
	return detector.PacketMeta{
		Src: detector.AddrFrom(netip.MustParseAddr(v.Src)), Dst: detector.AddrFrom(netip.MustParseAddr(m.Dst)),
		Proto: m.Proto, L4: m.L4, SrcPort: m.SrcPort, DstPort: m.DstPort, TCPFlags: m.TCPFlags,
		Length: m.Length, Fragment: m.Fragment,
	}
}

// Builders of the expected Meta: m4 and m6 a packet to the test
// destination whose transport header was not read, udp and tcp with the
// header read (UDP and TCP build theirs with these ports), frag a fragment.
func m4(proto uint8, length uint16) Meta {
	return Meta{Dst: dst4.String(), Proto: proto, Length: length, Fragment: detector.FragNone}
}

func m6(proto uint8, length uint16) Meta {
	return Meta{Dst: dst6.String(), Proto: proto, Length: length, Fragment: detector.FragNone}
}

func (m Meta) udp(sport uint16) Meta {
	m.L4, m.SrcPort, m.DstPort = true, sport, udpDstPort
	return m
}

func (m Meta) tcp(flags uint8) Meta {
	m.L4, m.SrcPort, m.DstPort, m.TCPFlags = true, tcpSrcPort, tcpDstPort, flags
	return m
}

func (m Meta) to(dst string) Meta {
	m.Dst = dst
	return m
}

func (m Meta) frag(f detector.Fragment) Meta {
	m.Fragment = f
	return m
}

// patch returns a copy of b with b[off] = v.
func patch(b []byte, off int, v byte) []byte {
	b = append([]byte(nil), b...)
	b[off] = v
	return b
}

// patch16 returns a copy of b with the big-endian v at b[off:off+2].
func patch16(b []byte, off int, v uint16) []byte {
	b = patch(b, off, byte(v>>8))
	b[off+1] = byte(v)
	return b
}

func synV4(src string) []byte {
	return Frame(Eth(layers.EthernetTypeIPv4), IPv4(src, layers.IPProtocolTCP), TCP(true, false))
}

// All returns every vector: each header shape the parsers handle, and
// malformed or truncated frames that must count as unparsed (or, with a
// readable source, under their protocol's class) without crashing.
func All() []Vector {
	const (
		v4 = "198.18.0.1"
		v6 = "2001:db8::1"
		// mappedSrc and mappedDst: the IPv4-mapped vector's addresses.
		mappedSrc = "::ffff:198.18.0.77"
		mappedDst = "2001:db8::1"
		ext       = 14 + 40 // offset of the first IPv6 extension header
	)
	// syn20 is a 20-byte payload that reads as a TCP SYN header if parsed.
	syn20 := make([]byte, 20)
	syn20[12], syn20[13] = 0x50, 0x02
	// udp8 reads as a UDP header with source port 53 if parsed.
	udp8 := []byte{0, 53, 0, 9, 0, 8, 0, 0}
	// nop40 is 40 bytes of IPv4 NOP options: IHL 15, the maximum.
	var nop40 []layers.IPv4Option
	for range 40 {
		nop40 = append(nop40, layers.IPv4Option{OptionType: 1, OptionLength: 1})
	}
	withOpts := func(opts []layers.IPv4Option) *layers.IPv4 {
		ip := IPv4(v4, layers.IPProtocolUDP)
		ip.Options = opts
		return ip
	}
	frag4 := func(proto layers.IPProtocol, offset uint16, flags layers.IPv4Flag) *layers.IPv4 {
		ip := IPv4(v4, proto)
		ip.FragOffset, ip.Flags = offset, flags
		return ip
	}
	dstopts := func(n int, last layers.IPProtocol) []byte {
		var b []byte
		for i := range n {
			next := layers.IPProtocolIPv6Destination
			if i == n-1 {
				next = last
			}
			b = append(b, IPv6Ext(layers.IPProtocolIPv6Destination, next, 8)...)
		}
		return b
	}
	f := Frame
	raw := func(b []byte) []byte { return b }
	// Expected Meta: protocols, TCP flags, fragment kinds.
	const (
		tcpP, udpP = uint8(layers.IPProtocolTCP), uint8(layers.IPProtocolUDP)
		syn, ack   = uint8(0x02), uint8(0x10)
		first      = detector.FragFirst
		later      = detector.FragLater
	)

	return []Vector{
		// IPv4 classes.
		{"v4/udp", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), UDP(53), gopacket.Payload("x")), v4, detector.ClassUDP, 53, m4(udpP, 29).udp(53)},
		{"v4/udp-padded", f(PaddedEth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), UDP(53)), v4, detector.ClassUDP, 53, m4(udpP, 28).udp(53)},
		{"v4/syn", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolTCP), TCP(true, false)), v4, detector.ClassSYN, 0, m4(tcpP, 40).tcp(syn)},
		{"v4/syn-ack", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolTCP), TCP(true, true)), v4, detector.ClassTCP, 0, m4(tcpP, 40).tcp(syn | ack)},
		{"v4/ack", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolTCP), TCP(false, true)), v4, detector.ClassTCP, 0, m4(tcpP, 40).tcp(ack)},
		// Every TCP flag bit of byte 13 (NS, in byte 12, is no flag
		// here), and ports other than the builders' defaults.
		{"v4/tcp-all-flags", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 65535, FIN: true, SYN: true, RST: true,
			PSH: true, ACK: true, URG: true, ECE: true, CWR: true, NS: true}), v4, detector.ClassTCP, 0, Meta{Dst: dst4.String(), Proto: tcpP, L4: true, SrcPort: 1, DstPort: 65535, TCPFlags: 0xff, Length: 40, Fragment: detector.FragNone}},
		{"v4/udp-ports", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), &layers.UDP{SrcPort: 65535, DstPort: 123}), v4, detector.ClassUDP, 65535, Meta{Dst: dst4.String(), Proto: udpP, L4: true, SrcPort: 65535, DstPort: 123, Length: 28, Fragment: detector.FragNone}},
		{"v4/icmp", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}), v4, detector.ClassICMP, 0, m4(1, 28)},
		{"v4/gre", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolGRE), Payload(8)), v4, detector.ClassOther, 0, m4(47, 28)},
		{"v4/icmpv6-number", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolICMPv6), Payload(8)), v4, detector.ClassICMP, 0, m4(58, 28)},
		{"v4/options", f(Eth(layers.EthernetTypeIPv4), withOpts([]layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}), UDP(123)), v4, detector.ClassUDP, 123, m4(udpP, 32).udp(123)},
		{"v4/options-ihl15", f(Eth(layers.EthernetTypeIPv4), withOpts(nop40), UDP(1900)), v4, detector.ClassUDP, 1900, m4(udpP, 68).udp(1900)},
		{"v4/dont-fragment", f(Eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolUDP, 0, layers.IPv4DontFragment), UDP(11211)), v4, detector.ClassUDP, 11211, m4(udpP, 28).udp(11211)},
		{"v4/first-fragment", f(Eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolUDP, 0, layers.IPv4MoreFragments), UDP(389), Payload(64)), v4, detector.ClassUDP, 389, m4(udpP, 92).udp(389).frag(first)},
		{"v4/first-fragment-syn", f(Eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolTCP, 0, layers.IPv4MoreFragments), TCP(true, false), Payload(8)), v4, detector.ClassSYN, 0, m4(tcpP, 48).tcp(syn).frag(first)},
		{"v4/nonfirst-fragment-udp", f(Eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolUDP, 100, 0), gopacket.Payload(udp8)), v4, detector.ClassUDP, 0, m4(udpP, 28).frag(later)},
		{"v4/nonfirst-fragment-tcp", f(Eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolTCP, 100, layers.IPv4MoreFragments), gopacket.Payload(syn20)), v4, detector.ClassTCP, 0, m4(tcpP, 40).frag(later)},
		{"v4/nonfirst-fragment-icmp", f(Eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolICMPv4, 1, 0), Payload(16)), v4, detector.ClassICMP, 0, m4(1, 36).frag(later)},
		{"v4/nonfirst-fragment-other", f(Eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolGRE, 7, 0), Payload(16)), v4, detector.ClassOther, 0, m4(47, 36).frag(later)},
		{"v4/truncated-tcp", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolTCP), gopacket.Payload(syn20[:10])), v4, detector.ClassTCP, 0, m4(tcpP, 30)},
		{"v4/tcp-doff-4", raw(patch(synV4(v4), 14+20+12, 0x40)), v4, detector.ClassTCP, 0, m4(tcpP, 40)},
		{"v4/truncated-udp", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), gopacket.Payload(udp8[:4])), v4, detector.ClassUDP, 0, m4(udpP, 24)},
		{"v4/udp-port-0", f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), UDP(0)), v4, detector.ClassUDP, 0, m4(udpP, 28).udp(0)},
		{"v4/tcp-doff-15-past-end", raw(patch(synV4(v4), 14+20+12, 0xf0)), v4, detector.ClassSYN, 0, m4(tcpP, 40).tcp(syn)},
		// Headers are bounded by the frame, never by the IP length
		// fields: an attacker who understates them still shows his SYNs
		// and ports to both parsers.
		{"v4/total-length-cuts-tcp", raw(patch16(synV4(v4), 14+2, 30)), v4, detector.ClassSYN, 0, m4(tcpP, 30).tcp(syn)},
		{"v4/total-length-below-ihl", raw(patch16(f(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), UDP(161)), 14+2, 10)), v4, detector.ClassUDP, 161, m4(udpP, 10).udp(161)},
		{"v4/total-length-zero", raw(patch16(synV4(v4), 14+2, 0)), v4, detector.ClassSYN, 0, m4(tcpP, 0).tcp(syn)},
		{"v4/total-length-past-end", raw(patch16(synV4(v4), 14+2, 1500)), v4, detector.ClassSYN, 0, m4(tcpP, 1500).tcp(syn)},

		// VLAN tags.
		{"vlan/syn", f(Eth(layers.EthernetTypeDot1Q), VLAN(10, layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolTCP), TCP(true, false)), v4, detector.ClassSYN, 0, m4(tcpP, 40).tcp(syn)},
		{"vlan/8021ad-single", f(Eth(layers.EthernetTypeQinQ), VLAN(10, layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), UDP(53)), v4, detector.ClassUDP, 53, m4(udpP, 28).udp(53)},
		{"vlan/qinq-v6-udp", f(Eth(layers.EthernetTypeQinQ), VLAN(100, layers.EthernetTypeDot1Q), VLAN(10, layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolUDP), UDP(5353)), v6, detector.ClassUDP, 5353, m6(udpP, 48).udp(5353)},
		{"vlan/three-tags", f(Eth(layers.EthernetTypeQinQ), VLAN(1, layers.EthernetTypeDot1Q), VLAN(2, layers.EthernetTypeDot1Q), VLAN(3, layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), UDP(53)), "", 0, 0, Meta{}},

		// PPPoE sessions (RFC 2516) and the legacy QinQ TPID.
		{"pppoe/v4-udp", f(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(pppoe(0x0021)), IPv4(v4, layers.IPProtocolUDP), UDP(53)), v4, detector.ClassUDP, 53, m4(udpP, 28).udp(53)},
		{"pppoe/v6-syn", f(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(pppoe(0x0057)), IPv6(v6, layers.IPProtocolTCP), TCP(true, false)), v6, detector.ClassSYN, 0, m6(tcpP, 60).tcp(syn)},
		{"vlan/pppoe-v4-syn", f(Eth(layers.EthernetTypeDot1Q), VLAN(7, layers.EthernetTypePPPoESession), gopacket.Payload(pppoe(0x0021)), IPv4(v4, layers.IPProtocolTCP), TCP(true, false)), v4, detector.ClassSYN, 0, m4(tcpP, 40).tcp(syn)},
		{"vlan/9100-legacy-qinq", f(Eth(0x9100), VLAN(5, layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), UDP(123)), v4, detector.ClassUDP, 123, m4(udpP, 28).udp(123)},
		{"pppoe/lcp", raw(Frame(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(append(pppoe(0xc021), make([]byte, 20)...)))), "", 0, 0, Meta{}},
		{"pppoe/discovery-code", raw(Frame(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(append(patch(pppoe(0x0021), 1, 0x09), make([]byte, 40)...)))), "", 0, 0, Meta{}},
		{"pppoe/truncated", raw(Frame(Eth(layers.EthernetTypePPPoESession), gopacket.Payload([]byte{0x11, 0, 0}))), "", 0, 0, Meta{}},
		{"pppoe/no-ppp-protocol", raw(Frame(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(pppoe(0x0021)[:7]))), "", 0, 0, Meta{}},
		{"pppoe/bad-version", raw(Frame(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(patch(pppoe(0x0021), 0, 0x22)), IPv4(v4, layers.IPProtocolUDP), UDP(53))), "", 0, 0, Meta{}},
		{"pppoe/truncated-ipv4", raw(Frame(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(append(pppoe(0x0021), make([]byte, 19)...)))), "", 0, 0, Meta{}},
		{"pppoe/ipv4-protocol-holding-ipv6", f(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(pppoe(0x0021)), IPv6(v6, layers.IPProtocolUDP), UDP(53)), "", 0, 0, Meta{}},
		{"pppoe/discovery-ethertype", f(Eth(layers.EthernetTypePPPoEDiscovery), gopacket.Payload(pppoe(0x0021)), IPv4(v4, layers.IPProtocolUDP), UDP(53)), "", 0, 0, Meta{}},
		{"pppoe/v6-ext-truncated-tcp", f(Eth(layers.EthernetTypePPPoESession), gopacket.Payload(pppoe(0x0057)), IPv6(v6, layers.IPProtocolIPv6Destination),
			gopacket.Payload(append(IPv6Ext(layers.IPProtocolIPv6Destination, layers.IPProtocolTCP, 8), syn20[:19]...))), v6, detector.ClassTCP, 0, m6(tcpP, 67)},
		{"vlan/qinq-pppoe-v4-udp", f(Eth(layers.EthernetTypeQinQ), VLAN(100, layers.EthernetTypeDot1Q),
			VLAN(7, layers.EthernetTypePPPoESession), gopacket.Payload(pppoe(0x0021)), IPv4(v4, layers.IPProtocolUDP), UDP(500)), v4, detector.ClassUDP, 500, m4(udpP, 28).udp(500)},
		// The PPP protocol field is not an EtherType: 0x8100 there is
		// no VLAN tag.
		{"vlan/qinq-pppoe-ppp-protocol-8100", f(Eth(layers.EthernetTypeQinQ), VLAN(100, layers.EthernetTypeDot1Q),
			VLAN(7, layers.EthernetTypePPPoESession), gopacket.Payload(pppoe(0x8100)), VLAN(3, layers.EthernetTypeIPv4),
			IPv4(v4, layers.IPProtocolUDP), UDP(53)), "", 0, 0, Meta{}},

		// IPv6 and its extension headers.
		// An IPv4-mapped source (::ffff:a.b.c.d) is the IPv4 source a.b.c.d
		// (the same per-source key; Src is as detector.Addr formats it), and
		// IPv4 source and signature rules apply to it (detector.Addr.Netip
		// unmaps). The destination stays IPv6.
		{"v6/ipv4-mapped-src-udp", f(Eth(layers.EthernetTypeIPv6), mapped6(mappedSrc, mappedDst), UDP(53), Payload(4)), "198.18.0.77", detector.ClassUDP, 53, m6(udpP, 52).to(mappedDst).udp(53)},
		{"v6/syn", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolTCP), TCP(true, false)), v6, detector.ClassSYN, 0, m6(tcpP, 60).tcp(syn)},
		{"v6/syn-ack", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolTCP), TCP(true, true)), v6, detector.ClassTCP, 0, m6(tcpP, 60).tcp(syn | ack)},
		{"v6/icmpv6", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, Payload(8)), v6, detector.ClassICMP, 0, m6(58, 52)},
		{"v6/icmpv4-number", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolICMPv4), Payload(8)), v6, detector.ClassICMP, 0, m6(1, 48)},
		{"v6/no-next-header", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolNoNextHeader)), v6, detector.ClassOther, 0, m6(59, 40)},
		{"v6/esp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolESP), Payload(16)), v6, detector.ClassOther, 0, m6(50, 56)},
		{"v6/hbh-dst-routing-udp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6HopByHop),
			gopacket.Payload(append(append(IPv6Ext(layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination, 8),
				IPv6Ext(layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Routing, 16)...),
				IPv6Ext(layers.IPProtocolIPv6Routing, layers.IPProtocolUDP, 24)...)), UDP(123)), v6, detector.ClassUDP, 123, m6(udpP, 96).udp(123)},
		{"v6/ah-syn", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolAH), gopacket.Payload(IPv6Ext(layers.IPProtocolAH, layers.IPProtocolTCP, 24)), TCP(true, false)), v6, detector.ClassSYN, 0, m6(tcpP, 84).tcp(syn)},
		{"v6/first-fragment-udp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(IPv6Frag(layers.IPProtocolUDP, 0, true)), UDP(53), Payload(32)), v6, detector.ClassUDP, 53, m6(udpP, 88).udp(53).frag(first)},
		{"v6/first-fragment-dstopts-syn", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(append(IPv6Frag(layers.IPProtocolIPv6Destination, 0, true), IPv6Ext(layers.IPProtocolIPv6Destination, layers.IPProtocolTCP, 8)...)), TCP(true, false)), v6, detector.ClassSYN, 0, m6(tcpP, 76).tcp(syn).frag(first)},
		// Offset 0 and no more fragments: an atomic fragment (RFC 6946),
		// a whole packet.
		{"v6/atomic-fragment-udp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(IPv6Frag(layers.IPProtocolUDP, 0, false)), UDP(53)), v6, detector.ClassUDP, 53, m6(udpP, 56).udp(53)},
		{"v6/nonfirst-fragment-udp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(append(IPv6Frag(layers.IPProtocolUDP, 185, false), udp8...))), v6, detector.ClassUDP, 0, m6(udpP, 56).frag(later)},
		{"v6/nonfirst-fragment-tcp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(append(IPv6Frag(layers.IPProtocolTCP, 10, true), syn20...))), v6, detector.ClassTCP, 0, m6(tcpP, 68).frag(later)},
		{"v6/nonfirst-fragment-icmpv6", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(append(IPv6Frag(layers.IPProtocolICMPv6, 3, false), make([]byte, 8)...))), v6, detector.ClassICMP, 0, m6(58, 56).frag(later)},
		{"v6/six-ext-headers", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Destination), gopacket.Payload(dstopts(6, layers.IPProtocolUDP)), UDP(53)), v6, detector.ClassUDP, 53, m6(udpP, 96).udp(53)},
		// Longer chains and truncated extension headers still count by
		// source (and obey rules), as class other.
		{"v6/seven-ext-headers", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Destination), gopacket.Payload(dstopts(7, layers.IPProtocolUDP)), UDP(53)), v6, detector.ClassOther, 0, m6(60, 104)},
		{"v6/truncated-ext-header", raw(Frame(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6HopByHop), gopacket.Payload(IPv6Ext(layers.IPProtocolIPv6HopByHop, layers.IPProtocolUDP, 32)[:16]))), v6, detector.ClassOther, 0, m6(0, 56)},
		{"v6/truncated-fragment-header", raw(Frame(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(IPv6Frag(layers.IPProtocolUDP, 0, true)[:6]))), v6, detector.ClassOther, 0, m6(44, 46)},
		{"v6/ext-header-no-room-for-length", raw(Frame(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Destination), gopacket.Payload([]byte{17}))), v6, detector.ClassOther, 0, m6(60, 41)},
		{"v6/truncated-udp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolUDP), gopacket.Payload(udp8[:7])), v6, detector.ClassUDP, 0, m6(udpP, 47)},
		// The seventh header is a fragment header: past the bound, even
		// though a non-first fragment would end the walk.
		{"v6/six-ext-then-nonfirst-fragment", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Destination),
			gopacket.Payload(append(dstopts(6, layers.IPProtocolIPv6Fragment), append(IPv6Frag(layers.IPProtocolUDP, 10, false), udp8...)...))), v6, detector.ClassOther, 0, m6(44, 104)},
		{"v6/five-ext-then-nonfirst-fragment", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Destination),
			gopacket.Payload(append(dstopts(5, layers.IPProtocolIPv6Fragment), append(IPv6Frag(layers.IPProtocolUDP, 10, false), udp8...)...))), v6, detector.ClassUDP, 0, m6(udpP, 96).frag(later)},
		{"v6/ah-past-end", raw(Frame(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolAH), gopacket.Payload(IPv6Ext(layers.IPProtocolAH, layers.IPProtocolTCP, 24)[:12]))), v6, detector.ClassOther, 0, m6(51, 52)},
		{"v6/ext-then-truncated-tcp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6HopByHop),
			gopacket.Payload(append(IPv6Ext(layers.IPProtocolIPv6HopByHop, layers.IPProtocolTCP, 8), syn20[:19]...))), v6, detector.ClassTCP, 0, m6(tcpP, 67)},
		{"v6/ext-then-truncated-udp", f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6Routing),
			gopacket.Payload(append(IPv6Ext(layers.IPProtocolIPv6Routing, layers.IPProtocolUDP, 16), udp8[:7]...))), v6, detector.ClassUDP, 0, m6(udpP, 63)},
		{"v6/tcp-doff-4", raw(patch(f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolTCP), TCP(true, false)), 14+40+12, 0x40)), v6, detector.ClassTCP, 0, m6(tcpP, 60)},
		// The payload length bounds nothing either (0 is also a jumbogram).
		{"v6/payload-length-cuts-ext", raw(patch16(f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolIPv6HopByHop),
			gopacket.Payload(IPv6Ext(layers.IPProtocolIPv6HopByHop, layers.IPProtocolUDP, 8)), UDP(123)), 14+4, 4)), v6, detector.ClassUDP, 123, m6(udpP, 44).udp(123)},
		{"v6/payload-length-cuts-tcp", raw(patch16(f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolTCP), TCP(true, false)), 14+4, 8)), v6, detector.ClassSYN, 0, m6(tcpP, 48).tcp(syn)},
		// FlowSpec's length has 16 bits: 65535 + 40 saturates.
		{"v6/payload-length-max", raw(patch16(f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolUDP), UDP(53)), 14+4, 0xffff)), v6, detector.ClassUDP, 53, m6(udpP, 65535).udp(53)},
		{"v6/payload-length-65495", raw(patch16(f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolUDP), UDP(53)), 14+4, 65495)), v6, detector.ClassUDP, 53, m6(udpP, 65535).udp(53)},
		{"v6/payload-length-65494", raw(patch16(f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolUDP), UDP(53)), 14+4, 65494)), v6, detector.ClassUDP, 53, m6(udpP, 65534).udp(53)},
		{"v6/payload-length-zero", raw(patch16(f(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolUDP), UDP(53)), 14+4, 0)), v6, detector.ClassUDP, 53, m6(udpP, 40).udp(53)},

		// No readable IP source: passed and counted as unparsed.
		{"arp", f(Eth(layers.EthernetTypeARP), ARP(v4)), "", 0, 0, Meta{}},
		{"ethernet-only", raw(Frame(Eth(layers.EthernetTypeIPv4))), "", 0, 0, Meta{}},
		{"v4/truncated-header", raw(Frame(Eth(layers.EthernetTypeIPv4), Payload(19))), "", 0, 0, Meta{}},
		{"v4/ihl-4", raw(patch(synV4(v4), 14, 0x44)), "", 0, 0, Meta{}},
		{"v4/ihl-0", raw(patch(synV4(v4), 14, 0x40)), "", 0, 0, Meta{}},
		{"v4/ihl-15-past-end", raw(patch(Frame(Eth(layers.EthernetTypeIPv4), IPv4(v4, layers.IPProtocolUDP), UDP(53)), 14, 0x4f)), "", 0, 0, Meta{}},
		{"v4/version-6", raw(patch(synV4(v4), 14, 0x65)), "", 0, 0, Meta{}},
		{"v6/truncated-header", raw(Frame(Eth(layers.EthernetTypeIPv6), gopacket.Payload(patch(make([]byte, 39), 0, 0x60)))), "", 0, 0, Meta{}},
		{"v6/version-4", raw(patch(Frame(Eth(layers.EthernetTypeIPv6), IPv6(v6, layers.IPProtocolUDP), UDP(53)), 14, 0x40)), "", 0, 0, Meta{}},
		{"vlan/truncated-tag", raw(Frame(Eth(layers.EthernetTypeDot1Q), gopacket.Payload([]byte{0, 10}))), "", 0, 0, Meta{}},
		{"vlan/tag-then-nothing", raw(Frame(Eth(layers.EthernetTypeDot1Q), VLAN(10, layers.EthernetTypeIPv4))), "", 0, 0, Meta{}},
		{"ipx", raw(Frame(Eth(0x8137), Payload(46))), "", 0, 0, Meta{}},
		{"802.3-length", raw(Frame(Eth(0x002e), Payload(46))), "", 0, 0, Meta{}},
		{"mpls-holding-ipv4", f(Eth(layers.EthernetTypeMPLSUnicast), gopacket.Payload([]byte{0, 0x01, 0x01, 0x40}), IPv4(v4, layers.IPProtocolUDP), UDP(53)), "", 0, 0, Meta{}},
	}
}

// pppoe returns a PPPoE session header (version 1, type 1, code 0, session
// 0x1234) followed by the PPP protocol field.
func pppoe(proto uint16) []byte {
	return []byte{0x11, 0, 0x12, 0x34, 0, 0, byte(proto >> 8), byte(proto)}
}
