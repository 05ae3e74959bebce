package bpf

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// parseCase is one frame and what the program must make of it. Every frame
// passes (no rules are installed).
type parseCase struct {
	name  string
	frame []byte
	// src is the source the frame is counted under; "" means the frame
	// must count as unparsed and under no source.
	src   string
	class detector.Class
	sport uint16 // expected UDP source port on the source entry
}

// patch returns a copy of b with b[off] = v.
func patch(b []byte, off int, v byte) []byte {
	b = append([]byte(nil), b...)
	b[off] = v
	return b
}

func synV4(src string) []byte {
	return frameOf(eth(layers.EthernetTypeIPv4), ip4(src, layers.IPProtocolTCP), tcp(true, false))
}

func parseCases() []parseCase {
	const (
		v4  = "198.18.0.1"
		v6  = "2001:db8::1"
		ext = 14 + 40 // offset of the first IPv6 extension header
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
		ip := ip4(v4, layers.IPProtocolUDP)
		ip.Options = opts
		return ip
	}
	frag4 := func(proto layers.IPProtocol, offset uint16, flags layers.IPv4Flag) *layers.IPv4 {
		ip := ip4(v4, proto)
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
			b = append(b, ip6Ext(layers.IPProtocolIPv6Destination, next, 8)...)
		}
		return b
	}
	f := frameOf
	raw := func(b []byte) []byte { return b }

	return []parseCase{
		// IPv4 classes.
		{"v4/udp", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolUDP), udp(53), gopacket.Payload("x")), v4, detector.ClassUDP, 53},
		{"v4/udp-padded", f(paddedEth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolUDP), udp(53)), v4, detector.ClassUDP, 53},
		{"v4/syn", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolTCP), tcp(true, false)), v4, detector.ClassSYN, 0},
		{"v4/syn-ack", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolTCP), tcp(true, true)), v4, detector.ClassTCP, 0},
		{"v4/ack", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolTCP), tcp(false, true)), v4, detector.ClassTCP, 0},
		{"v4/icmp", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}), v4, detector.ClassICMP, 0},
		{"v4/gre", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolGRE), gopacket.Payload(make([]byte, 8))), v4, detector.ClassOther, 0},
		{"v4/icmpv6-number", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolICMPv6), gopacket.Payload(make([]byte, 8))), v4, detector.ClassICMP, 0},
		{"v4/options", f(eth(layers.EthernetTypeIPv4), withOpts([]layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}), udp(123)), v4, detector.ClassUDP, 123},
		{"v4/options-ihl15", f(eth(layers.EthernetTypeIPv4), withOpts(nop40), udp(1900)), v4, detector.ClassUDP, 1900},
		{"v4/dont-fragment", f(eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolUDP, 0, layers.IPv4DontFragment), udp(11211)), v4, detector.ClassUDP, 11211},
		{"v4/first-fragment", f(eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolUDP, 0, layers.IPv4MoreFragments), udp(389), gopacket.Payload(make([]byte, 64))), v4, detector.ClassUDP, 389},
		{"v4/nonfirst-fragment-udp", f(eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolUDP, 100, 0), gopacket.Payload(udp8)), v4, detector.ClassUDP, 0},
		{"v4/nonfirst-fragment-tcp", f(eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolTCP, 100, layers.IPv4MoreFragments), gopacket.Payload(syn20)), v4, detector.ClassTCP, 0},
		{"v4/nonfirst-fragment-icmp", f(eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolICMPv4, 1, 0), gopacket.Payload(make([]byte, 16))), v4, detector.ClassICMP, 0},
		{"v4/nonfirst-fragment-other", f(eth(layers.EthernetTypeIPv4), frag4(layers.IPProtocolGRE, 7, 0), gopacket.Payload(make([]byte, 16))), v4, detector.ClassOther, 0},
		{"v4/truncated-tcp", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolTCP), gopacket.Payload(syn20[:10])), v4, detector.ClassTCP, 0},
		{"v4/tcp-doff-4", raw(patch(synV4(v4), 14+20+12, 0x40)), v4, detector.ClassTCP, 0},
		{"v4/truncated-udp", f(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolUDP), gopacket.Payload(udp8[:4])), v4, detector.ClassUDP, 0},

		// VLAN tags.
		{"vlan/syn", f(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}, ip4(v4, layers.IPProtocolTCP), tcp(true, false)), v4, detector.ClassSYN, 0},
		{"vlan/8021ad-single", f(eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}, ip4(v4, layers.IPProtocolUDP), udp(53)), v4, detector.ClassUDP, 53},
		{"vlan/qinq-v6-udp", f(eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv6}, ip6(v6, layers.IPProtocolUDP), udp(5353)), v6, detector.ClassUDP, 5353},
		{"vlan/three-tags", f(eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 1, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 2, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 3, Type: layers.EthernetTypeIPv4}, ip4(v4, layers.IPProtocolUDP), udp(53)), "", 0, 0},

		// IPv6 and its extension headers.
		{"v6/syn", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolTCP), tcp(true, false)), v6, detector.ClassSYN, 0},
		{"v6/syn-ack", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolTCP), tcp(true, true)), v6, detector.ClassTCP, 0},
		{"v6/icmpv6", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, gopacket.Payload(make([]byte, 8))), v6, detector.ClassICMP, 0},
		{"v6/icmpv4-number", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolICMPv4), gopacket.Payload(make([]byte, 8))), v6, detector.ClassICMP, 0},
		{"v6/no-next-header", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolNoNextHeader)), v6, detector.ClassOther, 0},
		{"v6/esp", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolESP), gopacket.Payload(make([]byte, 16))), v6, detector.ClassOther, 0},
		{"v6/hbh-dst-routing-udp", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6HopByHop),
			gopacket.Payload(append(append(ip6Ext(layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Destination, 8),
				ip6Ext(layers.IPProtocolIPv6Destination, layers.IPProtocolIPv6Routing, 16)...),
				ip6Ext(layers.IPProtocolIPv6Routing, layers.IPProtocolUDP, 24)...)), udp(123)), v6, detector.ClassUDP, 123},
		{"v6/ah-syn", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolAH), gopacket.Payload(ip6Ext(layers.IPProtocolAH, layers.IPProtocolTCP, 24)), tcp(true, false)), v6, detector.ClassSYN, 0},
		{"v6/first-fragment-udp", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(ip6Frag(layers.IPProtocolUDP, 0, true)), udp(53), gopacket.Payload(make([]byte, 32))), v6, detector.ClassUDP, 53},
		{"v6/first-fragment-dstopts-syn", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(append(ip6Frag(layers.IPProtocolIPv6Destination, 0, true), ip6Ext(layers.IPProtocolIPv6Destination, layers.IPProtocolTCP, 8)...)), tcp(true, false)), v6, detector.ClassSYN, 0},
		{"v6/nonfirst-fragment-udp", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(append(ip6Frag(layers.IPProtocolUDP, 185, false), udp8...))), v6, detector.ClassUDP, 0},
		{"v6/nonfirst-fragment-tcp", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(append(ip6Frag(layers.IPProtocolTCP, 10, true), syn20...))), v6, detector.ClassTCP, 0},
		{"v6/nonfirst-fragment-icmpv6", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(append(ip6Frag(layers.IPProtocolICMPv6, 3, false), make([]byte, 8)...))), v6, detector.ClassICMP, 0},
		{"v6/six-ext-headers", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Destination), gopacket.Payload(dstopts(6, layers.IPProtocolUDP)), udp(53)), v6, detector.ClassUDP, 53},
		// Longer chains and truncated extension headers still count by
		// source (and obey rules), as class other.
		{"v6/seven-ext-headers", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Destination), gopacket.Payload(dstopts(7, layers.IPProtocolUDP)), udp(53)), v6, detector.ClassOther, 0},
		{"v6/truncated-ext-header", raw(frameOf(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6HopByHop), gopacket.Payload(ip6Ext(layers.IPProtocolIPv6HopByHop, layers.IPProtocolUDP, 32)[:16]))), v6, detector.ClassOther, 0},
		{"v6/truncated-fragment-header", raw(frameOf(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Fragment), gopacket.Payload(ip6Frag(layers.IPProtocolUDP, 0, true)[:6]))), v6, detector.ClassOther, 0},
		{"v6/ext-header-no-room-for-length", raw(frameOf(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolIPv6Destination), gopacket.Payload([]byte{17}))), v6, detector.ClassOther, 0},
		{"v6/truncated-udp", f(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolUDP), gopacket.Payload(udp8[:7])), v6, detector.ClassUDP, 0},

		// No readable IP source: passed and counted as unparsed.
		{"arp", f(eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: srcMAC, SourceProtAddress: net.IP{198, 18, 0, 1}, DstHwAddress: dstMAC, DstProtAddress: dst4}), "", 0, 0},
		{"ethernet-only", raw(frameOf(eth(layers.EthernetTypeIPv4))), "", 0, 0},
		{"v4/truncated-header", raw(frameOf(eth(layers.EthernetTypeIPv4), gopacket.Payload(make([]byte, 19)))), "", 0, 0},
		{"v4/ihl-4", raw(patch(synV4(v4), 14, 0x44)), "", 0, 0},
		{"v4/ihl-0", raw(patch(synV4(v4), 14, 0x40)), "", 0, 0},
		{"v4/ihl-15-past-end", raw(patch(frameOf(eth(layers.EthernetTypeIPv4), ip4(v4, layers.IPProtocolUDP), udp(53)), 14, 0x4f)), "", 0, 0},
		{"v4/version-6", raw(patch(synV4(v4), 14, 0x65)), "", 0, 0},
		{"v6/truncated-header", raw(frameOf(eth(layers.EthernetTypeIPv6), gopacket.Payload(patch(make([]byte, 39), 0, 0x60)))), "", 0, 0},
		{"v6/version-4", raw(patch(frameOf(eth(layers.EthernetTypeIPv6), ip6(v6, layers.IPProtocolUDP), udp(53)), 14, 0x40)), "", 0, 0},
		{"vlan/truncated-tag", raw(frameOf(eth(layers.EthernetTypeDot1Q), gopacket.Payload([]byte{0, 10}))), "", 0, 0},
		{"vlan/tag-then-nothing", raw(frameOf(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4})), "", 0, 0},
		{"ipx", raw(frameOf(eth(0x8137), gopacket.Payload(make([]byte, 46)))), "", 0, 0},
	}
}

// TestParse runs every frame shape through the program with
// BPF_PROG_TEST_RUN and checks the action, the global counters and the
// per-source entry.
func TestParse(t *testing.T) {
	x := loadTest(t, Options{})
	reader := x.NewSourceReader(0)
	var sources []Source
	for _, tc := range parseCases() {
		frame := tc.frame
		before := readStats(t, x)
		if got := run(t, x, frame); got != xdpPass {
			t.Errorf("%s: action %d, want pass", tc.name, got)
		}
		delta := diffStats(readStats(t, x), before)
		n := uint64(len(frame))

		var err error
		sources, err = reader.AppendSources(sources[:0])
		if err != nil {
			t.Fatal(err)
		}
		if tc.src == "" {
			want := Stats{UnparsedPackets: 1, UnparsedBytes: n}
			if delta != want {
				t.Errorf("%s: stats delta %+v, want %+v", tc.name, delta, want)
			}
			if len(sources) != 0 {
				t.Errorf("%s: counted under sources %v", tc.name, sources)
			}
			continue
		}
		var want Stats
		want.Packets[tc.class], want.Bytes[tc.class] = 1, n
		if delta != want {
			t.Errorf("%s: stats delta %+v, want %+v", tc.name, delta, want)
		}
		if len(sources) != 1 || sources[0].Addr != addr(tc.src) {
			t.Errorf("%s: sources %v, want only %s", tc.name, sources, tc.src)
		} else {
			s := sources[0]
			var wc detector.Counters
			wc.Packets[tc.class], wc.Bytes[tc.class] = 1, n
			if s.Counters != wc || s.UDPSrcPort != tc.sport || s.LastSeenNs == 0 {
				t.Errorf("%s: source %+v, want counters %+v udp port %d", tc.name, s, wc, tc.sport)
			}
		}
		// Start the next case from an empty per-source map.
		if n, err := x.DeleteSources([]detector.Addr{addr(tc.src)}); n != 1 || err != nil {
			t.Fatalf("%s: delete source: %d, %v", tc.name, n, err)
		}
	}
}

// diffStats returns a - b field by field.
func diffStats(a, b Stats) Stats {
	for c := range NumClasses {
		a.Packets[c] -= b.Packets[c]
		a.Bytes[c] -= b.Bytes[c]
	}
	a.DroppedPackets -= b.DroppedPackets
	a.DroppedBytes -= b.DroppedBytes
	a.UnparsedPackets -= b.UnparsedPackets
	a.UnparsedBytes -= b.UnparsedBytes
	a.SourceInsertFailures -= b.SourceInsertFailures
	return a
}

// maxLinearFrame is a frame size BPF_PROG_TEST_RUN keeps linear (4 KiB
// pages, 256 bytes of headroom, skb_shared_info tailroom).
const maxLinearFrame = 3000

// FuzzParse feeds arbitrary frames to the program: it must pass every one
// (no rules are installed) and count it exactly once, as unparsed or under
// a class.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add(tc.frame)
	}
	x := loadTest(f, Options{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > maxLinearFrame {
			// BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet
			// header and puts bytes past a page (minus head- and
			// tailroom) in fragments, beyond data_end.
			return
		}
		before := readStats(t, x)
		if got := run(t, x, frame); got != xdpPass {
			t.Fatalf("action %d, want pass", got)
		}
		d := diffStats(readStats(t, x), before)
		var pkts, bytes uint64
		for c := range NumClasses {
			pkts += d.Packets[c]
			bytes += d.Bytes[c]
		}
		pkts += d.UnparsedPackets
		bytes += d.UnparsedBytes
		if pkts != 1 || bytes != uint64(len(frame)) {
			t.Fatalf("counted %d frames, %d bytes; want 1, %d: %+v", pkts, bytes, len(frame), d)
		}
	})
}
