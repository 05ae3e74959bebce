package synth

import (
	"encoding/binary"
	"net/netip"
)

// Every frame is captured arriving at the victim from its upstream router, so
// the link-layer addresses are the same for all traffic.
const (
	routerMAC = "\x02\x00\x00\x00\x00\x01"
	victimMAC = "\x02\x00\x00\x00\x00\x02"
)

const (
	ethHeaderLen  = 14
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	tcpHeaderLen  = 20
	echoHeaderLen = 8
	// minFrameLen is the Ethernet minimum without FCS: a receiver sees short
	// frames padded to it.
	minFrameLen = 60
	// maxFrameLen is a full frame for a 1500-byte MTU.
	maxFrameLen = ethHeaderLen + 1500
	// maxHeaderLen bounds what a frame builder writes (Ethernet, IPv6, TCP
	// with 20 bytes of options); everything after it is zero payload.
	maxHeaderLen = ethHeaderLen + ipv6HeaderLen + tcpHeaderLen + 20

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// TCP flags.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagPSH = 0x08
	flagACK = 0x10
)

// tcpOpts selects the TCP option block. Real stacks put MSS, SACK-permitted,
// timestamps and window scale on a SYN and timestamps on every later segment;
// flood tools usually send no options at all.
type tcpOpts uint8

const (
	optsNone tcpOpts = iota // 20-byte header
	optsSYN                 // 40-byte header: MSS, SACK-permitted, TS, NOP, WS
	optsTS                  // 32-byte header: NOP, NOP, TS
)

func (o tcpOpts) len() int {
	switch o {
	case optsSYN:
		return 20
	case optsTS:
		return 12
	}
	return 0
}

// victim4 and victim6 are the destination of every packet.
func victim4() [4]byte { return [4]byte{198, 18, 0, 1} }

func victim6() [16]byte {
	return [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
}

// ipHdr is the per-packet IP layer of a frame. The destination is always the
// victim of the source's address family.
type ipHdr struct {
	src  netip.Addr // IPv4 (not IPv4-mapped) or IPv6
	ttl  uint8      // TTL or hop limit
	id   uint16     // IPv4 identification
	df   bool       // IPv4 don't-fragment
	flow uint32     // IPv6 flow label
}

// tcpSeg is the TCP layer of a frame. The payload is payload zero bytes.
type tcpSeg struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
	win          uint16
	opts         tcpOpts
	tsval        uint32
	payload      int
}

// frame is one Ethernet frame being built. It is reused for every packet of a
// capture: builders write headers only, and payload bytes are always zero.
// Zero payload keeps building cheap (nothing to fill) and lets checksums be
// computed over the headers alone, so they stay valid even for frames the
// capture truncates to its snap length.
type frame struct {
	b     [maxFrameLen]byte
	wire  int // length on the wire (and pcap original length)
	dirty int // header bytes written for this frame, cleared before the next
}

// bytes returns the whole frame as it appears on the wire.
func (f *frame) bytes() []byte { return f.b[:f.wire] }

// ip writes the Ethernet and IP headers of a packet whose IP payload is l4Len
// bytes and returns the offset of the layer-4 header. The caller keeps l4Len
// within the 1500-byte MTU.
func (f *frame) ip(h *ipHdr, proto uint8, l4Len int) int {
	clear(f.b[:f.dirty])
	b := f.b[:]
	copy(b[0:6], victimMAC)
	copy(b[6:12], routerMAC)
	off := ethHeaderLen
	if h.src.Is6() {
		b[12], b[13] = 0x86, 0xdd
		ip := b[off : off+ipv6HeaderLen]
		binary.BigEndian.PutUint32(ip[0:4], 6<<28|h.flow&0xfffff)
		binary.BigEndian.PutUint16(ip[4:6], uint16(l4Len))
		ip[6] = proto
		ip[7] = h.ttl
		src, dst := h.src.As16(), victim6()
		copy(ip[8:24], src[:])
		copy(ip[24:40], dst[:])
		off += ipv6HeaderLen
	} else {
		b[12], b[13] = 0x08, 0x00
		ip := b[off : off+ipv4HeaderLen]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4HeaderLen+l4Len))
		binary.BigEndian.PutUint16(ip[4:6], h.id)
		if h.df {
			ip[6] = 0x40
		}
		ip[8] = h.ttl
		ip[9] = proto
		src, dst := h.src.As4(), victim4()
		copy(ip[12:16], src[:])
		copy(ip[16:20], dst[:])
		binary.BigEndian.PutUint16(ip[10:12], ^fold(sum16(ip, 0)))
		off += ipv4HeaderLen
	}
	f.wire = max(off+l4Len, minFrameLen)
	return off
}

// maxL4 is the largest layer-4 length (header and payload) that fits the MTU.
func maxL4(h *ipHdr) int {
	if h.src.Is6() {
		return 1500 - ipv6HeaderLen
	}
	return 1500 - ipv4HeaderLen
}

// tcp builds a TCP segment.
func (f *frame) tcp(h *ipHdr, s *tcpSeg) {
	hl := tcpHeaderLen + s.opts.len()
	l4 := min(hl+s.payload, maxL4(h))
	off := f.ip(h, protoTCP, l4)
	t := f.b[off : off+hl]
	binary.BigEndian.PutUint16(t[0:2], s.sport)
	binary.BigEndian.PutUint16(t[2:4], s.dport)
	binary.BigEndian.PutUint32(t[4:8], s.seq)
	binary.BigEndian.PutUint32(t[8:12], s.ack)
	t[12] = byte(hl/4) << 4
	t[13] = s.flags
	binary.BigEndian.PutUint16(t[14:16], s.win)
	o := t[tcpHeaderLen:]
	switch s.opts {
	case optsSYN:
		mss := uint16(1460)
		if h.src.Is6() {
			mss = 1440
		}
		o[0], o[1] = 2, 4 // MSS
		binary.BigEndian.PutUint16(o[2:4], mss)
		o[4], o[5] = 4, 2 // SACK permitted
		o[6], o[7] = 8, 10
		binary.BigEndian.PutUint32(o[8:12], s.tsval)
		o[16] = 1           // NOP
		o[17], o[18] = 3, 3 // window scale
		o[19] = 7
	case optsTS:
		o[0], o[1] = 1, 1 // NOP NOP
		o[2], o[3] = 8, 10
		binary.BigEndian.PutUint32(o[4:8], s.tsval)
		binary.BigEndian.PutUint32(o[8:12], s.ack^0x5a5a5a5a) // an echoed peer clock
	}
	binary.BigEndian.PutUint16(t[16:18], ^fold(sum16(t, pseudo(h, protoTCP, l4))))
	f.dirty = off + hl
}

// udp builds a UDP datagram with payload zero bytes.
func (f *frame) udp(h *ipHdr, sport, dport uint16, payload int) {
	l4 := min(udpHeaderLen+payload, maxL4(h))
	off := f.ip(h, protoUDP, l4)
	u := f.b[off : off+udpHeaderLen]
	binary.BigEndian.PutUint16(u[0:2], sport)
	binary.BigEndian.PutUint16(u[2:4], dport)
	binary.BigEndian.PutUint16(u[4:6], uint16(l4))
	c := ^fold(sum16(u, pseudo(h, protoUDP, l4)))
	if c == 0 {
		c = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(u[6:8], c)
	f.dirty = off + udpHeaderLen
}

// echo builds an ICMP (IPv4) or ICMPv6 (IPv6) echo request.
func (f *frame) echo(h *ipHdr, id, seq uint16, payload int) {
	l4 := min(echoHeaderLen+payload, maxL4(h))
	proto, typ, ph := uint8(protoICMP), byte(8), uint32(0)
	if h.src.Is6() {
		proto, typ = protoICMPv6, 128
		ph = pseudo(h, protoICMPv6, l4) // ICMPv6, unlike ICMP, covers a pseudo-header
	}
	off := f.ip(h, proto, l4)
	e := f.b[off : off+echoHeaderLen]
	e[0] = typ
	binary.BigEndian.PutUint16(e[4:6], id)
	binary.BigEndian.PutUint16(e[6:8], seq)
	binary.BigEndian.PutUint16(e[2:4], ^fold(sum16(e, ph)))
	f.dirty = off + echoHeaderLen
}

// pseudo returns the ones'-complement sum of the layer-4 pseudo-header.
func pseudo(h *ipHdr, proto uint8, l4Len int) uint32 {
	var s uint32
	if h.src.Is6() {
		src, dst := h.src.As16(), victim6()
		s = sum16(src[:], 0)
		s = sum16(dst[:], s)
	} else {
		src, dst := h.src.As4(), victim4()
		s = sum16(src[:], 0)
		s = sum16(dst[:], s)
	}
	return s + uint32(proto) + uint32(l4Len)
}

// sum16 adds b as big-endian 16-bit words to s (len(b) is always even here).
func sum16(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	return s
}

// fold folds a 32-bit ones'-complement sum to 16 bits.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
