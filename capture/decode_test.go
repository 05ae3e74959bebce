package capture

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

type decodeCase struct {
	name  string
	lt    LinkType
	frame []byte
	want  decoded
}

// decoded is the part of a Packet the link-layer cases check: the source,
// the class and the UDP source port. The fields signature rules read
// besides are checked on the shared vectors (TestDecodeSharedVectors),
// whose IP headers these cases share.
type decoded struct {
	Src        detector.Addr
	Class      detector.Class
	UDPSrcPort uint16
	L4, OK     bool
}

func decodedOf(p Packet) decoded {
	d := decoded{Src: p.Src, Class: p.Class, L4: p.L4, OK: p.OK}
	if p.Class == detector.ClassUDP {
		d.UDPSrcPort = p.SrcPort
	}
	return d
}

// decodeCases covers every header shape the decoder follows and the ways
// a frame can fail. Shared by the table test, the truncation sweep, the
// fuzz seeds and the benchmark.
func decodeCases(tb testing.TB) []decodeCase {
	tb.Helper()
	s := frameOf
	syn4 := decoded{Src: addr(tSrc4), Class: detector.ClassSYN, L4: true, OK: true}
	tcp4 := decoded{Src: addr(tSrc4), Class: detector.ClassTCP, L4: true, OK: true}
	tcp4noL4 := decoded{Src: addr(tSrc4), Class: detector.ClassTCP, OK: true}
	udp4 := func(port uint16) decoded {
		return decoded{Src: addr(tSrc4), Class: detector.ClassUDP, UDPSrcPort: port, L4: true, OK: true}
	}
	udp4noL4 := decoded{Src: addr(tSrc4), Class: detector.ClassUDP, OK: true}
	icmp4 := decoded{Src: addr(tSrc4), Class: detector.ClassICMP, OK: true}
	syn6 := decoded{Src: addr(tSrc6), Class: detector.ClassSYN, L4: true, OK: true}
	tcp6noL4 := decoded{Src: addr(tSrc6), Class: detector.ClassTCP, OK: true}
	udp6 := decoded{Src: addr(tSrc6), Class: detector.ClassUDP, UDPSrcPort: 53, L4: true, OK: true}
	udp6noL4 := decoded{Src: addr(tSrc6), Class: detector.ClassUDP, OK: true}
	other6 := decoded{Src: addr(tSrc6), Class: detector.ClassOther, OK: true}
	none := decoded{}

	ipv4Body := s(ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false))
	ipv6Body := s(ip6(tSrc6, layers.IPProtocolTCP), tcp(true, false))
	udp6Body := s(ip6(tSrc6, layers.IPProtocolUDP), udp(53), payload(4))
	ethHdr := func(etype uint16) []byte { return frameOf(eth(layers.EthernetType(etype))) }

	frag4 := func(proto layers.IPProtocol, off uint16, mf bool, l4 ...gopacket.SerializableLayer) []byte {
		ip := ip4(tSrc4, proto)
		ip.FragOffset = off
		if mf {
			ip.Flags = layers.IPv4MoreFragments
		}
		return s(append([]gopacket.SerializableLayer{paddedEth(layers.EthernetTypeIPv4), ip}, l4...)...)
	}
	withOpts := func(n int) []byte { // IPv4 options of n*4 bytes (NOPs and EOL)
		ip := ip4(tSrc4, layers.IPProtocolTCP)
		ip.Options = []layers.IPv4Option{{OptionType: 1}}
		for range n*4 - 2 {
			ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 1})
		}
		ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 0})
		return s(paddedEth(layers.EthernetTypeIPv4), ip, tcp(true, false))
	}
	patch16 := func(b []byte, off int, v uint16) []byte {
		binary.BigEndian.PutUint16(b[off:], v)
		return b
	}
	chain6 := func(n int, last layers.IPProtocol) []byte { // n hop-by-hop/dest-opts headers then last
		ls := []gopacket.SerializableLayer{paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6HopByHop)}
		kind := layers.IPProtocolIPv6HopByHop
		for i := range n {
			next := layers.IPProtocolIPv6Destination
			if i == n-1 {
				next = last
			}
			ls = append(ls, ext6(kind, next, 8))
			kind = next
		}
		return s(append(ls, udp(53), payload(4))...)
	}

	return []decodeCase{
		// Ethernet and IPv4.
		{"eth/ipv4/tcp-syn", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false)), syn4},
		{"eth/ipv4/tcp-synack", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, true)), tcp4},
		{"eth/ipv4/tcp-syn-ece-cwr", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP),
			&layers.TCP{SrcPort: 1, DstPort: 30120, SYN: true, ECE: true, CWR: true}), syn4},
		{"eth/ipv4/tcp-rst", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP),
			&layers.TCP{SrcPort: 1, DstPort: 2, RST: true}), tcp4},
		{"eth/ipv4/udp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolUDP), udp(161), payload(20)), udp4(161)},
		{"eth/ipv4/udp-port0", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolUDP), udp(0)), udp4(0)},
		{"eth/ipv4/icmp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}), icmp4},
		{"eth/ipv4/gre", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolGRE), payload(8)),
			decoded{Src: addr(tSrc4), Class: detector.ClassOther, OK: true}},
		{"eth/ipv4/ipip-outer-source", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolIPv4),
			ip4(tSrc4b, layers.IPProtocolTCP), tcp(true, false)), decoded{Src: addr(tSrc4), Class: detector.ClassOther, OK: true}},
		{"eth/ipv4-options-ihl6/tcp", LinkTypeEthernet, withOpts(1), syn4},
		{"eth/ipv4-options-ihl15/tcp", LinkTypeEthernet, withOpts(10), syn4},
		{"eth/ipv4-totlen0-bigtcp/tcp", LinkTypeEthernet, patch16(s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false), payload(100)), 16, 0), syn4},
		// The IP length fields bound nothing, as in the XDP program.
		{"eth/ipv4-totlen-below-ihl/tcp", LinkTypeEthernet, patch16(s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false)), 16, 10), syn4},
		{"eth/ipv4-totlen-cuts-tcp", LinkTypeEthernet, patch16(s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false)), 16, 30), syn4},
		{"eth/ipv4-padding-ignored/udp", LinkTypeEthernet, cat(s(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolUDP), udp(7)), make([]byte, 18)), udp4(7)},
		// IPv4 fragments.
		{"eth/ipv4-frag-first/udp", LinkTypeEthernet, frag4(layers.IPProtocolUDP, 0, true, udp(53), payload(100)), udp4(53)},
		{"eth/ipv4-frag-later/udp", LinkTypeEthernet, frag4(layers.IPProtocolUDP, 185, true, payload(100)), udp4noL4},
		{"eth/ipv4-frag-last/udp", LinkTypeEthernet, frag4(layers.IPProtocolUDP, 370, false, payload(100)), udp4noL4},
		{"eth/ipv4-frag-later/tcp-looks-like-syn", LinkTypeEthernet, frag4(layers.IPProtocolTCP, 3, false, tcp(true, false)), tcp4noL4},
		{"eth/ipv4-frag-later/icmp", LinkTypeEthernet, frag4(layers.IPProtocolICMPv4, 3, false, payload(16)), icmp4},
		// VLAN and PPPoE.
		{"eth/dot1q/ipv4/udp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeDot1Q), vlan(100, layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolUDP), udp(123)), udp4(123)},
		{"eth/qinq-88a8/dot1q/ipv4", LinkTypeEthernet, cat(frameOf(eth(0x88a8), vlan(200, 0x8100), vlan(2001, 0x0800)), ipv4Body), syn4},
		{"eth/9100/dot1q/ipv4", LinkTypeEthernet, cat(frameOf(eth(0x9100), vlan(200, 0x8100), vlan(2001, 0x0800)), ipv4Body), syn4},
		{"eth/2-tags/ipv4", LinkTypeEthernet, cat(frameOf(eth(0x88a8), vlan(1, 0x8100), vlan(2, 0x0800)), ipv4Body), syn4},
		{"eth/3-tags/ipv4-too-deep", LinkTypeEthernet, cat(frameOf(eth(0x8100), vlan(1, 0x8100), vlan(2, 0x8100), vlan(3, 0x0800)), ipv4Body), none},
		{"eth/dot1q/ipv6", LinkTypeEthernet, cat(frameOf(eth(0x8100), vlan(7, 0x86dd)), ipv6Body), syn6},
		{"eth/dot1q-cut", LinkTypeEthernet, cat(ethHdr(0x8100), []byte{0, 7}), none},
		{"eth/pppoe/ipv4", LinkTypeEthernet, cat(ethHdr(0x8864), []byte{0x11, 0, 0, 1, 0, 0, 0x00, 0x21}, ipv4Body), syn4},
		{"eth/dot1q/dot1q/pppoe/ipv6", LinkTypeEthernet, cat(frameOf(eth(0x8100), vlan(939, 0x8100), vlan(744, 0x8864)), []byte{0x11, 0, 0, 1, 0, 0, 0x00, 0x57}, ipv6Body), syn6},
		{"eth/pppoe/lcp", LinkTypeEthernet, cat(ethHdr(0x8864), []byte{0x11, 0, 0, 1, 0, 4, 0xc0, 0x21, 1, 1, 0, 4}), none},
		{"eth/pppoe-discovery", LinkTypeEthernet, cat(ethHdr(0x8863), []byte{0x11, 0x09, 0, 0, 0, 0}), none},
		{"eth/pppoe-bad-version", LinkTypeEthernet, cat(ethHdr(0x8864), []byte{0x22, 0, 0, 1, 0, 0, 0x00, 0x21}, ipv4Body), none},
		// Not IP.
		{"eth/arp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeARP), arpRequest(tSrc4)), none},
		{"eth/802.3-llc", LinkTypeEthernet, cat(ethHdr(0x0026), []byte{0x42, 0x42, 0x03}, make([]byte, 35)), none},
		{"eth/mpls", LinkTypeEthernet, cat(ethHdr(0x8847), []byte{0, 0x01, 0x01, 0x40}, ipv4Body), none},
		{"eth/ipv4-ethertype-but-v6", LinkTypeEthernet, cat(ethHdr(0x0800), ipv6Body), none},
		{"eth/ipv6-ethertype-but-v4", LinkTypeEthernet, cat(ethHdr(0x86dd), ipv4Body, make([]byte, 20)), none},
		// IPv6 and extension headers.
		{"eth/ipv6/tcp-syn", LinkTypeEthernet, cat(ethHdr(0x86dd), ipv6Body), syn6},
		{"eth/ipv6/icmpv6", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, payload(8)), decoded{Src: addr(tSrc6), Class: detector.ClassICMP, OK: true}},
		{"eth/ipv6/hbh/udp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6HopByHop),
			ext6(layers.IPProtocolIPv6HopByHop, layers.IPProtocolUDP, 8), udp(53), payload(4)), udp6},
		{"eth/ipv6/hbh/routing/destopts/tcp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6HopByHop),
			ext6(layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Routing, 8), ext6(layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Destination, 24),
			ext6(layers.IPProtocolIPv6Destination, layers.IPProtocolTCP, 16), tcp(true, false)), syn6},
		{"eth/ipv6/ah/tcp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolAH),
			ext6(layers.IPProtocolAH, layers.IPProtocolTCP, 24), tcp(true, false)), syn6},
		{"eth/ipv6/frag-first/udp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6Fragment),
			frag6(layers.IPProtocolUDP, 0, true), udp(53), payload(64)), udp6},
		{"eth/ipv6/frag-first/destopts/udp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6Fragment),
			frag6(layers.IPProtocolIPv6Destination, 0, true), ext6(layers.IPProtocolIPv6Destination, layers.IPProtocolUDP, 8), udp(53), payload(64)), udp6},
		{"eth/ipv6/frag-later/udp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6Fragment),
			frag6(layers.IPProtocolUDP, 181, true), payload(64)), udp6noL4},
		{"eth/ipv6/frag-later/tcp", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6Fragment),
			frag6(layers.IPProtocolTCP, 1, false), tcp(true, false)), tcp6noL4},
		{"eth/ipv6/frag-later/destopts", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6Fragment),
			frag6(layers.IPProtocolIPv6Destination, 1, false), payload(16)), other6},
		{"eth/ipv6/chain-at-max/udp", LinkTypeEthernet, chain6(MaxIPv6ExtHeaders, layers.IPProtocolUDP), udp6},
		{"eth/ipv6/chain-too-long/udp", LinkTypeEthernet, chain6(MaxIPv6ExtHeaders+1, layers.IPProtocolUDP), other6},
		{"eth/ipv6/ext-cut-by-capture", LinkTypeEthernet, cat(ethHdr(0x86dd), s(ip6(tSrc6, layers.IPProtocolIPv6HopByHop), ext6(layers.IPProtocolIPv6HopByHop, layers.IPProtocolUDP, 32))[:60]), other6},
		{"eth/ipv6/ext-past-payload-length", LinkTypeEthernet, patch16(s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6HopByHop), ext6(layers.IPProtocolIPv6HopByHop, layers.IPProtocolUDP, 32), udp(53)), 18, 8), udp6},
		{"eth/ipv6/no-next-header", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolNoNextHeader)), other6},
		{"eth/ipv6/ipv4-inside", LinkTypeEthernet, s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false)), other6},
		{"eth/ipv6-plen0-jumbo/hbh/tcp", LinkTypeEthernet, patch16(s(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolIPv6HopByHop),
			ext6(layers.IPProtocolIPv6HopByHop, layers.IPProtocolTCP, 8), tcp(true, false), payload(200)), 18, 0), syn6},
		{"eth/ipv6/udp-cut", LinkTypeEthernet, cat(ethHdr(0x86dd), udp6Body[:44]), udp6noL4},
		// Linux cooked.
		{"sll/ipv4", LinkTypeLinuxSLL, cat(sllHeader(0x0800), ipv4Body), syn4},
		{"sll/ipv6", LinkTypeLinuxSLL, cat(sllHeader(0x86dd), udp6Body), udp6},
		{"sll/dot1q/ipv4", LinkTypeLinuxSLL, cat(sllHeader(0x8100), frameOf(vlan(5, 0x0800)), ipv4Body), syn4},
		{"sll/arp", LinkTypeLinuxSLL, cat(sllHeader(0x0806), make([]byte, 28)), none},
		{"sll-cut", LinkTypeLinuxSLL, sllHeader(0x0800)[:15], none},
		{"sll2/ipv4", LinkTypeLinuxSLL2, cat(sll2Header(0x0800), ipv4Body), syn4},
		{"sll2/ipv6", LinkTypeLinuxSLL2, cat(sll2Header(0x86dd), udp6Body), udp6},
		{"sll2/arp", LinkTypeLinuxSLL2, cat(sll2Header(0x0806), make([]byte, 28)), none},
		{"sll2-cut", LinkTypeLinuxSLL2, sll2Header(0x0800)[:19], none},
		// BSD null and loop.
		{"null-le-af2/ipv4", LinkTypeNull, cat([]byte{2, 0, 0, 0}, ipv4Body), syn4},
		{"null-be-af2/ipv4", LinkTypeNull, cat([]byte{0, 0, 0, 2}, ipv4Body), syn4},
		{"null-af10-linux/ipv6", LinkTypeNull, cat([]byte{10, 0, 0, 0}, ipv6Body), syn6},
		{"null-af24-netbsd/ipv6", LinkTypeNull, cat([]byte{24, 0, 0, 0}, ipv6Body), syn6},
		{"null-af28-freebsd/ipv6", LinkTypeNull, cat([]byte{28, 0, 0, 0}, ipv6Body), syn6},
		{"null-af30-darwin/ipv6", LinkTypeNull, cat([]byte{30, 0, 0, 0}, ipv6Body), syn6},
		{"null-be-af30/ipv6", LinkTypeNull, cat([]byte{0, 0, 0, 30}, ipv6Body), syn6},
		{"null-af2-but-ipv6", LinkTypeNull, cat([]byte{2, 0, 0, 0}, ipv6Body), none},
		{"null-unknown-af", LinkTypeNull, cat([]byte{0x0f, 0, 0x08, 0}, ipv4Body), none},
		{"null-cut", LinkTypeNull, []byte{2, 0, 0}, none},
		{"loop-af2/ipv4", LinkTypeLoop, cat([]byte{0, 0, 0, 2}, ipv4Body), syn4},
		{"loop-af24/ipv6", LinkTypeLoop, cat([]byte{0, 0, 0, 24}, ipv6Body), syn6},
		{"loop-host-order-is-wrong", LinkTypeLoop, cat([]byte{2, 0, 0, 0}, ipv4Body), none},
		// Raw IP: the version nibble decides.
		{"raw101/ipv4", LinkTypeRaw, ipv4Body, syn4},
		{"raw101/ipv6", LinkTypeRaw, ipv6Body, syn6},
		{"raw12/ipv4", LinkTypeRawDLT12, ipv4Body, syn4},
		{"raw14/ipv6", LinkTypeRawDLT14, ipv6Body, syn6},
		{"ipv4-linktype/ipv4", LinkTypeIPv4, ipv4Body, syn4},
		{"ipv4-linktype/holding-ipv6", LinkTypeIPv4, ipv6Body, syn6},
		{"ipv6-linktype/holding-ipv4", LinkTypeIPv6, ipv4Body, syn4},
		{"raw/version5", LinkTypeRaw, cat([]byte{0x50}, ipv4Body[1:]), none},
		{"raw/empty", LinkTypeRaw, nil, none},
		// Malformed IP.
		{"raw/ipv4-19-bytes", LinkTypeRaw, ipv4Body[:19], none},
		{"raw/ipv4-ihl4", LinkTypeRaw, cat([]byte{0x44}, ipv4Body[1:]), none},
		{"raw/ipv4-ihl15-cut", LinkTypeRaw, cat([]byte{0x4f}, ipv4Body[1:40]), none},
		{"raw/ipv4-tcp-19-bytes", LinkTypeRaw, ipv4Body[:39], tcp4noL4},
		{"raw/ipv4-udp-7-bytes", LinkTypeRaw, s(ip4(tSrc4, layers.IPProtocolUDP), udp(9))[:27], udp4noL4},
		{"raw/ipv6-39-bytes", LinkTypeRaw, ipv6Body[:39], none},
		// Link types we do not read.
		{"ppp", LinkType(9), cat([]byte{0xff, 0x03, 0x00, 0x21}, ipv4Body), none},
		{"user13", LinkType(160), ipv4Body, none},
		{"eth-empty", LinkTypeEthernet, nil, none},
		{"eth-13-bytes", LinkTypeEthernet, make([]byte, 13), none},
	}
}

func TestDecode(t *testing.T) {
	d := NewDecoder()
	for _, tc := range decodeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if got := decodedOf(d.Decode(tc.lt, tc.frame)); got != tc.want {
				t.Errorf("Decode(%v, % x)\n got %+v\nwant %+v", tc.lt, tc.frame, got, tc.want)
			}
		})
	}
}

// TestDecodeTruncated decodes every prefix of every case: nothing panics,
// and whatever is decoded from a prefix agrees with the whole frame (a
// source is never invented, a class never contradicts the protocol, and
// the fields of a header read whole are the whole frame's).
func TestDecodeTruncated(t *testing.T) {
	d := NewDecoder()
	for _, tc := range decodeCases(t) {
		full := d.Decode(tc.lt, tc.frame)
		for n := range len(tc.frame) {
			got := d.Decode(tc.lt, tc.frame[:n])
			if !got.OK {
				if got != (Packet{}) {
					t.Errorf("%s[:%d]: undecodable but fields set: %+v", tc.name, n, got)
				}
				continue
			}
			if !tc.want.OK || got.Src != tc.want.Src {
				t.Errorf("%s[:%d]: got %+v, whole frame gives %+v", tc.name, n, got, tc.want)
				continue
			}
			sameProto := got.Class == tc.want.Class ||
				(got.Class == detector.ClassTCP && tc.want.Class == detector.ClassSYN) ||
				got.Class == detector.ClassOther // cut inside an IPv6 extension chain
			if !sameProto || (got.L4 && !tc.want.L4) {
				t.Errorf("%s[:%d]: got %+v, whole frame gives %+v", tc.name, n, got, tc.want)
			}
			if got.Dst != full.Dst || got.Length != full.Length ||
				(got.L4 && (got.SrcPort != full.SrcPort || got.DstPort != full.DstPort || got.TCPFlags != full.TCPFlags)) {
				t.Errorf("%s[:%d]: got %+v, whole frame gives %+v", tc.name, n, got, full)
			}
		}
	}
}

// TestDecodeReusesNoState decodes a frame after an unrelated one: fields
// of the previous frame must not leak into the next.
func TestDecodeReusesNoState(t *testing.T) {
	d := NewDecoder()
	cases := decodeCases(t)
	fresh := make([]Packet, len(cases))
	for i, c := range cases {
		fresh[i] = NewDecoder().Decode(c.lt, c.frame)
	}
	for _, a := range cases {
		for i, b := range cases {
			d.Decode(a.lt, a.frame)
			if got := d.Decode(b.lt, b.frame); got != fresh[i] {
				t.Fatalf("after %s, %s: got %+v want %+v", a.name, b.name, got, fresh[i])
			}
		}
	}
}
