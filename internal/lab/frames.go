package lab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// testNets are the only networks the lab configures or sends from and to:
// 198.18.0.0/15 (RFC 2544 benchmarking) and 2001:db8::/32 (documentation).
var testNets = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("2001:db8::/32")}

// ErrNotTestAddress is returned for an address outside 198.18.0.0/15 and
// 2001:db8::/32.
var ErrNotTestAddress = errors.New("not a test address (198.18.0.0/15, 2001:db8::/32)")

// CheckAddr returns an error wrapping ErrNotTestAddress unless a is in
// 198.18.0.0/15 or 2001:db8::/32.
func CheckAddr(a netip.Addr) error {
	a = a.Unmap()
	for _, n := range testNets {
		if n.Contains(a) {
			return nil
		}
	}
	return fmt.Errorf("lab: %v: %w", a, ErrNotTestAddress)
}

// checkPrefix requires the whole of p to be test addresses.
func checkPrefix(p netip.Prefix) error {
	p = p.Masked()
	for _, n := range testNets {
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			return nil
		}
	}
	return fmt.Errorf("lab: %v: %w", p, ErrNotTestAddress)
}

// Packet describes the frames of a flood.
type Packet struct {
	SrcMAC, DstMAC net.HardwareAddr
	// Src and Dst are test addresses of one family.
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// Size is the frame's length in bytes, Ethernet header included
	// (at least the headers; 0 means as small as the headers allow).
	Size int
}

func (p *Packet) check() error {
	if err := CheckAddr(p.Dst); err != nil {
		return err
	}
	if p.Src.IsValid() {
		if err := CheckAddr(p.Src); err != nil {
			return err
		}
		if p.Src.Is4() != p.Dst.Is4() {
			return fmt.Errorf("lab: source %v and destination %v are of different families", p.Src, p.Dst)
		}
	}
	if len(p.SrcMAC) != 6 || len(p.DstMAC) != 6 {
		return errors.New("lab: packet needs source and destination MAC addresses")
	}
	return nil
}

// Frames yields the frames of a flood, the i-th on the i-th call. The slice
// returned is valid until the next call.
type Frames interface {
	Frame(i uint64) []byte
}

// constFrames repeats one frame.
type constFrames []byte

func (c constFrames) Frame(uint64) []byte { return c }

// UDPFrames returns a flood of identical UDP datagrams from p.Src to p.Dst
// (IPv4 or IPv6), with valid checksums.
func UDPFrames(p Packet) (Frames, error) {
	if !p.Src.IsValid() {
		return nil, errors.New("lab: UDP flood needs a source address")
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	b := newBuilder(p, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(p.SrcPort), DstPort: layers.UDPPort(p.DstPort)}
	f, err := b.build(p.Src, udp, b.payload(8))
	if err != nil {
		return nil, err
	}
	return constFrames(append([]byte(nil), f...)), nil
}

// SpoofedSYNFrames returns a flood of TCP SYNs to p.Dst:p.DstPort, each from
// a new random address of spoof (test addresses only, the family of p.Dst),
// a random source port and sequence number. p.Src is ignored. The same seed
// gives the same frames.
func SpoofedSYNFrames(p Packet, spoof netip.Prefix, seed uint64) (Frames, error) {
	p.Src = netip.Addr{}
	if err := p.check(); err != nil {
		return nil, err
	}
	spoof = spoof.Masked()
	if err := checkPrefix(spoof); err != nil {
		return nil, err
	}
	if spoof.Addr().Is4() != p.Dst.Is4() {
		return nil, fmt.Errorf("lab: spoofed prefix %v and destination %v are of different families", spoof, p.Dst)
	}
	b := newBuilder(p, layers.IPProtocolTCP)
	return &synFrames{b: b, spoof: spoof, rng: rand.New(rand.NewPCG(seed, 0x5eed)), pay: b.payload(20)}, nil
}

type synFrames struct {
	b     *builder
	spoof netip.Prefix
	rng   *rand.Rand
	pay   gopacket.Payload
	tcp   layers.TCP
}

func (s *synFrames) Frame(uint64) []byte {
	src := randomIn(s.rng, s.spoof)
	s.tcp = layers.TCP{
		SrcPort: layers.TCPPort(1024 + s.rng.IntN(64511)), DstPort: layers.TCPPort(s.b.p.DstPort),
		Seq: s.rng.Uint32(), SYN: true, Window: 64240,
	}
	f, err := s.b.build(src, &s.tcp, s.pay)
	if err != nil {
		// The headers are fixed but for addresses and numbers already
		// checked: serializing cannot fail.
		panic(fmt.Sprintf("lab: build SYN frame: %v", err))
	}
	return f
}

// randomIn returns a random address of p.
func randomIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	host := len(b)*8 - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		bits := min(host, 8)
		mask := byte(1<<bits - 1)
		b[i] = b[i]&^mask | byte(rng.Uint32())&mask
		host -= bits
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// builder serializes frames of one flow shape into a reused buffer.
type builder struct {
	p     Packet
	proto layers.IPProtocol
	eth   layers.Ethernet
	ip4   layers.IPv4
	ip6   layers.IPv6
	buf   gopacket.SerializeBuffer
}

func newBuilder(p Packet, proto layers.IPProtocol) *builder {
	b := &builder{p: p, proto: proto, buf: gopacket.NewSerializeBuffer()}
	b.eth = layers.Ethernet{SrcMAC: p.SrcMAC, DstMAC: p.DstMAC, EthernetType: layers.EthernetTypeIPv4}
	if p.Dst.Is6() {
		b.eth.EthernetType = layers.EthernetTypeIPv6
	}
	return b
}

// payload returns zero bytes making the frame p.Size long after an L4
// header of l4 bytes.
func (b *builder) payload(l4 int) gopacket.Payload {
	ipHdr := 20
	if b.p.Dst.Is6() {
		ipHdr = 40
	}
	return make(gopacket.Payload, max(0, b.p.Size-14-ipHdr-l4))
}

// build serializes Ethernet, IP from src to p.Dst, l4 and payload, with
// lengths and checksums computed.
func (b *builder) build(src netip.Addr, l4 interface {
	gopacket.SerializableLayer
	SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
}, pay gopacket.Payload) ([]byte, error) {
	var ip gopacket.SerializableLayer
	if b.p.Dst.Is4() {
		s, d := src.As4(), b.p.Dst.As4()
		b.ip4 = layers.IPv4{Version: 4, TTL: 64, Protocol: b.proto, Flags: layers.IPv4DontFragment, SrcIP: s[:], DstIP: d[:]}
		ip = &b.ip4
		l4.SetNetworkLayerForChecksum(&b.ip4)
	} else {
		s, d := src.As16(), b.p.Dst.As16()
		b.ip6 = layers.IPv6{Version: 6, HopLimit: 64, NextHeader: b.proto, SrcIP: s[:], DstIP: d[:]}
		ip = &b.ip6
		l4.SetNetworkLayerForChecksum(&b.ip6)
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(b.buf, opts, &b.eth, ip, l4, pay); err != nil {
		return nil, fmt.Errorf("lab: serialize frame: %w", err)
	}
	return b.buf.Bytes(), nil
}
