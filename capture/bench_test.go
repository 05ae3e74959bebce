package capture

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// benchFrame is one frame of the benchmark mix.
type benchFrame struct {
	lt   LinkType
	data []byte
	// srcOff is where the IPv4 source address sits in data, for frames of
	// the spoofed flood whose source the benchmark varies; 0 otherwise.
	srcOff int
}

// benchMix builds n frames resembling a link under a spoofed SYN flood:
// half spoofed SYNs from 20,000 addresses, the rest reflection replies,
// ordinary TCP, IPv6, VLAN-tagged traffic, fragments, ICMP, ARP and
// extension headers. The random source is seeded: the mix is the same on
// every run.
func benchMix(tb testing.TB, n int) []benchFrame {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	v4 := func(pool int) string {
		i := rng.IntN(pool)
		return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
	}
	v6 := func(pool int) string {
		i := rng.IntN(pool)
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}).String()
	}
	s := frameOf
	arp := arpFrame(tb)
	out := make([]benchFrame, 0, n)
	for range n {
		var f []byte
		srcOff := 0
		switch p := rng.IntN(100); {
		case p < 50:
			f = s(paddedEth(layers.EthernetTypeIPv4), ip4(v4(20000), layers.IPProtocolTCP), tcp(true, false))
			srcOff = 14 + 12
		case p < 65:
			ports := []uint16{53, 123, 161, 1900}
			f = s(paddedEth(layers.EthernetTypeIPv4), ip4(v4(2000), layers.IPProtocolUDP), udp(ports[rng.IntN(len(ports))]), payload(400))
		case p < 75:
			f = s(paddedEth(layers.EthernetTypeIPv4), ip4(v4(100), layers.IPProtocolTCP), tcp(true, true), payload(1200))
		case p < 83:
			f = s(paddedEth(layers.EthernetTypeIPv6), ip6(v6(500), layers.IPProtocolTCP), tcp(true, false))
		case p < 88:
			f = s(paddedEth(layers.EthernetTypeDot1Q), vlan(100, layers.EthernetTypeIPv4), ip4(v4(100), layers.IPProtocolUDP), udp(443), payload(1200))
		case p < 93:
			ip := ip4(v4(50), layers.IPProtocolUDP)
			ip.FragOffset = 185
			f = s(paddedEth(layers.EthernetTypeIPv4), ip, payload(1480))
		case p < 95:
			f = s(paddedEth(layers.EthernetTypeIPv4), ip4(v4(2000), layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}, payload(28))
		case p < 98:
			f = arp
		default:
			f = s(paddedEth(layers.EthernetTypeIPv6), ip6(v6(50), layers.IPProtocolIPv6HopByHop), ext6(layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Fragment, 8),
				frag6(layers.IPProtocolUDP, 0, true), udp(53), payload(1200))
		}
		out = append(out, benchFrame{LinkTypeEthernet, f, srcOff})
	}
	return out
}

// pipeline is the decoder and the aggregator, with a Dropper, as the
// replay runs them; frame stamps its packets ts.
type pipeline struct {
	dec *Decoder
	agg *aggregator
	ts  time.Time
}

// newPipeline has a Dropper that bans nothing and holds no signature
// rule.
func newPipeline() *pipeline { return newPipelineWith(&dropAt{}) }

func newPipelineWith(dr Dropper) *pipeline {
	agg := newAggregator(time.Second, time.Minute, time.Minute)
	agg.dr = dr
	return &pipeline{dec: NewDecoder(), agg: agg, ts: t0}
}

// newSigPipeline has a SimulatedPlane holding signature rules of the kind
// the detector installs against the mix's floods: rate limits and drops
// by port, protocol, length and flags, and a few that match nothing.
func newSigPipeline(tb testing.TB) *pipeline {
	tb.Helper()
	plane := NewSimulatedPlane()
	port := func(p uint16) detector.Range { return detector.Range{Lo: p, Hi: p} }
	dst := netip.MustParsePrefix("198.19.255.0/24")
	for _, r := range []detector.SignatureRule{
		{Match: detector.Match{Proto: protoTCP, DstPort: port(80), TCPFlags: 0x02, TCPFlagsMask: 0x12}, RatePPS: 100_000},
		{Match: detector.Match{Proto: protoUDP, SrcPort: port(53)}, RatePPS: 20_000},
		{Match: detector.Match{Proto: protoUDP, SrcPort: port(123), Dst: dst}},
		{Match: detector.Match{Proto: protoUDP, SrcPort: port(1900)}},
		{Match: detector.Match{Proto: protoUDP, SrcPort: port(161), Length: detector.Range{Lo: 400, Hi: 1500}}, RatePPS: 1000},
		{Match: detector.Match{Proto: protoUDP, Fragment: detector.FragLater}, RatePPS: 5000},
		{Match: detector.Match{Proto: protoICMP}, RatePPS: 1000},
		{Match: detector.Match{Proto: protoTCP, DstPort: detector.Range{Lo: 8000, Hi: 8100}}},
		{Match: detector.Match{Proto: protoUDP, DstPort: port(11211)}},
		{Match: detector.Match{Proto: protoUDP, SrcPort: port(389)}},
		{Match: detector.Match{Dst: netip.MustParsePrefix("203.0.113.0/24")}},
		{Match: detector.Match{Length: detector.Range{Lo: 9000, Hi: 65535}}},
	} {
		r.Expires = t0.Add(time.Hour)
		if err := plane.InstallSignature(r); err != nil {
			tb.Fatal(err)
		}
	}
	return newPipelineWith(plane)
}

func (p *pipeline) frame(f *benchFrame) {
	pkt := p.dec.Decode(f.lt, f.data)
	p.agg.add(&pkt, uint64(len(f.data)), &p.ts)
}

// TestDecodeAggregateAllocs checks that decoding and aggregating allocate
// nothing once the per-tick map and slice have grown: neither per packet
// nor at tick turnover, with signature rules or without.
func TestDecodeAggregateAllocs(t *testing.T) {
	frames := benchMix(t, 20000)
	for name, p := range map[string]*pipeline{"no-rules": newPipeline(), "signatures": newSigPipeline(t)} {
		tick := func() {
			p.agg.begin(t0)
			for i := range frames {
				p.ts = p.ts.Add(time.Microsecond)
				p.frame(&frames[i])
			}
			p.agg.close()
		}
		tick() // warm up: grow the map and the source slice
		if n := testing.AllocsPerRun(5, tick); n != 0 {
			t.Errorf("%s: %.1f allocations per tick of %d packets, want 0", name, n, len(frames))
		}
		p.agg.begin(t0)
		i := 0
		if n := testing.AllocsPerRun(10000, func() {
			p.frame(&frames[i%len(frames)])
			i++
		}); n != 0 {
			t.Errorf("%s: %.2f allocations per packet, want 0", name, n)
		}
	}
}

// floodSources returns n spoofed IPv4 sources drawn from a pool of 20,000.
func floodSources(n int) []uint32 {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]uint32, n)
	for i := range out {
		out[i] = 10<<24 | uint32(rng.IntN(20000))
	}
	return out
}

// BenchmarkDecodeAggregate measures one packet: decode plus the per-source
// map update, with a tick closed every 65,536 packets. The 1,024 frames
// stay in cache, as a frame just copied out of the file buffer would be;
// the spoofed-SYN half of them gets a new source each time from a pool of
// 20,000, so the per-source map has the size it has under a real flood.
func BenchmarkDecodeAggregate(b *testing.B) {
	aggregateLoop(b, newPipeline(), 0)
}

// BenchmarkDecodeAggregateTrips is BenchmarkDecodeAggregate with a
// Tripper whose level no source reaches: the trip level asked at each
// source's first packet of a tick, and the comparison after each packet.
func BenchmarkDecodeAggregateTrips(b *testing.B) {
	p := newPipeline()
	p.agg.tr = &fakeTripper{level: detector.TripLevel{Packets: 1 << 40, Bytes: 1 << 50}}
	aggregateLoop(b, p, 0)
}

// BenchmarkDecodeAggregateSignatures is BenchmarkDecodeAggregate with
// the signature rules of newSigPipeline and the packets 1 µs apart (1
// Mpps: the rate limits pass some of each window and drop the rest).
func BenchmarkDecodeAggregateSignatures(b *testing.B) {
	aggregateLoop(b, newSigPipeline(b), time.Microsecond)
}

// aggregateLoop runs p over the benchmark mix, the spoofed half from a
// pool of 65,536 sources, each packet step after the last (0: all at
// t0), starting a new tick every 65,536 packets.
func aggregateLoop(b *testing.B, p *pipeline, step time.Duration) {
	frames := benchMix(b, 1<<10)
	srcs := floodSources(1 << 16)
	p.agg.begin(t0)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := &frames[i&(len(frames)-1)]
		if f.srcOff != 0 {
			binary.BigEndian.PutUint32(f.data[f.srcOff:], srcs[i&(len(srcs)-1)])
		}
		if step != 0 {
			p.ts = p.ts.Add(step)
		}
		p.frame(f)
		i++
		if i&(1<<16-1) == 0 {
			p.agg.close()
			p.agg.begin(t0)
		}
	}
}

// BenchmarkDecode measures the decoder alone on the same frames.
func BenchmarkDecode(b *testing.B) {
	frames := benchMix(b, 1<<10)
	d := NewDecoder()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		f := &frames[i&(len(frames)-1)]
		d.Decode(f.lt, f.data)
		i++
	}
}

// BenchmarkReplay measures the whole replay source (file reading,
// decoding, ticks) over a 100,000-packet pcap; ns/packet is the figure to
// compare with the capture rates in the corpus notes.
func BenchmarkReplay(b *testing.B) {
	frames := benchMix(b, 100000)
	recs := make([]rec, len(frames))
	for i, f := range frames {
		recs[i] = rec{ts: at(time.Duration(i) * 10 * time.Microsecond), data: f.data} // 100 kpps
	}
	path := writeTemp(b, "bench.pcap", pcapFile(1, recs...))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReplay([]string{path}, ReplayOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
		r.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/packet")
}
