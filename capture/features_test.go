package capture

import (
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// featuresOf copies every tick's Features out of the replay's storage.
func featuresOf(t *testing.T, r *Replay) []detector.Features {
	t.Helper()
	var out []detector.Features
	for {
		tk, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		f := tk.Features
		f.Ports, f.Dsts = slices.Clone(f.Ports), slices.Clone(f.Dsts)
		out = append(out, f)
	}
}

// portMap indexes ports by kind and port, whose order is unspecified.
func portMap(ps []detector.PortCount) map[[2]int]detector.PortCount {
	m := make(map[[2]int]detector.PortCount)
	for _, p := range ps {
		k := [2]int{int(p.Kind), int(p.Port)}
		if _, dup := m[k]; dup {
			panic(fmt.Sprintf("%s %d twice", p.Kind, p.Port))
		}
		m[k] = p
	}
	return m
}

// withDst returns a copy of an Ethernet IPv4 frame sent to dst instead.
func withDst(frame []byte, dst string) []byte {
	b := slices.Clone(frame)
	a := netip.MustParseAddr(dst).As4()
	copy(b[14+16:], a[:])
	return b
}

// TestReplayFeatures replays a small hand-built capture and checks every
// count of the ticks' Features: ports (packets and wire bytes), lengths
// by class and bucket, destinations. A ban drops the second tick's
// traffic of one source: it is counted all the same.
func TestReplayFeatures(t *testing.T) {
	a, b := "192.0.2.10", "192.0.2.20"
	x, y := "198.51.100.1", "198.51.100.2"
	udpA := withDst(udpFrom(t, a, 53), x)                                                                                  // IP length 38, 60 on the wire
	synB := withDst(synFrom(t, b), y)                                                                                      // 40, 60
	bigA := withDst(frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(a, layers.IPProtocolUDP), udp(123), payload(1500)), x) // 1528, 1542
	frag := ip4(a, layers.IPProtocolUDP)
	frag.FragOffset = 185
	laterA := withDst(frameOf(paddedEth(layers.EthernetTypeIPv4), frag, payload(100)), y) // 120, 134: no ports
	file := pcapFile(1,
		rec{ts: at(0), data: udpA},
		rec{ts: at(10 * time.Millisecond), data: udpA, origLen: 1000},
		rec{ts: at(20 * time.Millisecond), data: synB},
		rec{ts: at(30 * time.Millisecond), data: arpFrame(t)},
		rec{ts: at(40 * time.Millisecond), data: bigA},
		rec{ts: at(50 * time.Millisecond), data: laterA},
		rec{ts: at(60 * time.Millisecond), data: synB},
		rec{ts: at(70 * time.Millisecond), data: udpA},
		// Tick 1: a is banned.
		rec{ts: at(1100 * time.Millisecond), data: udpA},
		rec{ts: at(1200 * time.Millisecond), data: synB},
	)
	dr := &dropAt{a: addr(a), from: at(2 * time.Second)}
	r := replayOf(t, ReplayOptions{Dropper: dr}, file)
	fs := featuresOf(t, r)
	if len(fs) != 2 {
		t.Fatalf("%d ticks, want 2", len(fs))
	}

	type pc = detector.PortCount
	wantPorts := []map[[2]int]detector.PortCount{
		portMap([]pc{
			{Kind: detector.UDPSrcPort, Port: 53, Packets: 3, Bytes: 60 + 1000 + 60},
			{Kind: detector.UDPDstPort, Port: 9, Packets: 4, Bytes: 60 + 1000 + 60 + 1542},
			{Kind: detector.UDPSrcPort, Port: 123, Packets: 1, Bytes: 1542},
			{Kind: detector.TCPSrcPort, Port: 40000, Packets: 2, Bytes: 120},
			{Kind: detector.TCPDstPort, Port: 80, Packets: 2, Bytes: 120},
		}),
		portMap([]pc{
			{Kind: detector.UDPSrcPort, Port: 53, Packets: 1, Bytes: 60},
			{Kind: detector.UDPDstPort, Port: 9, Packets: 1, Bytes: 60},
			{Kind: detector.TCPSrcPort, Port: 40000, Packets: 1, Bytes: 60},
			{Kind: detector.TCPDstPort, Port: 80, Packets: 1, Bytes: 60},
		}),
	}
	var wantLen [2][detector.NumClasses][detector.NumLengthBuckets]uint64
	wantLen[0][detector.ClassUDP][0] = 3  // 38
	wantLen[0][detector.ClassUDP][23] = 1 // 1528
	wantLen[0][detector.ClassUDP][1] = 1  // 120
	wantLen[0][detector.ClassSYN][0] = 2  // 40
	wantLen[1][detector.ClassUDP][0] = 1
	wantLen[1][detector.ClassSYN][0] = 1
	wantDsts := [][]detector.DstCount{
		{{Addr: addr(x), Packets: 4}, {Addr: addr(y), Packets: 3}},
		// Ties go by address.
		{{Addr: addr(x), Packets: 1}, {Addr: addr(y), Packets: 1}},
	}
	for i, f := range fs {
		if got := portMap(f.Ports); !reflect.DeepEqual(got, wantPorts[i]) {
			t.Errorf("tick %d ports:\n got %v\nwant %v", i, got, wantPorts[i])
		}
		if f.Lengths != wantLen[i] {
			t.Errorf("tick %d lengths:\n got %v\nwant %v", i, f.Lengths, wantLen[i])
		}
		if !slices.Equal(f.Dsts, wantDsts[i]) || f.DstsOther != 0 {
			t.Errorf("tick %d destinations %v + %d other, want %v", i, f.Dsts, f.DstsOther, wantDsts[i])
		}
	}
}

// TestFeaturesDsts counts more destinations than a tick names: the
// busiest MaxTickDsts, by packets then address, and the rest summed.
func TestFeaturesDsts(t *testing.T) {
	agg := newAggregator(time.Second, time.Minute, time.Minute)
	const n = MaxTickDsts + 10
	dst := func(i int) detector.Addr { return addr(fmt.Sprintf("198.51.100.%d", i)) }
	var want []detector.DstCount
	var other uint64
	for tick := range 3 { // the tables are reused from tick to tick
		agg.begin(at(time.Duration(tick) * time.Second))
		want, other = want[:0], 0
		// Destination i gets 1 + i/2 packets (pairs tie), interleaved
		// so that the last-destination shortcut misses as often as it
		// hits.
		for round := range 1 + (n-1)/2 {
			for i := n - 1; i >= 0; i-- {
				if round < 1+i/2 {
					p := Packet{PacketMeta: detector.PacketMeta{Src: addr(tSrc4), Dst: dst(i), Proto: 47, Length: 100, Fragment: detector.FragNone},
						Class: detector.ClassOther, OK: true}
					agg.add(&p, 114, &agg.cur.Start)
					agg.add(&p, 114, &agg.cur.Start) // twice: the shortcut's hit
				}
			}
		}
		for i := n - 1; i >= 0; i -= 2 { // by packets, then address
			for _, j := range []int{i - 1, i} {
				if j >= 0 {
					want = append(want, detector.DstCount{Addr: dst(j), Packets: 2 * uint64(1+j/2)})
				}
			}
		}
		for _, d := range want[MaxTickDsts:] {
			other += d.Packets
		}
		want = want[:MaxTickDsts]
		tk := agg.close()
		if !slices.Equal(tk.Features.Dsts, want) || tk.Features.DstsOther != other {
			t.Fatalf("tick %d: destinations\n got %v + %d\nwant %v + %d", tick, tk.Features.Dsts, tk.Features.DstsOther, want, other)
		}
		if len(tk.Features.Ports) != 0 {
			t.Errorf("ports of packets with no transport header: %v", tk.Features.Ports)
		}
	}
}
