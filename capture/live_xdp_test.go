package capture

import (
	"context"
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/vectors"
)

// liveFrame is a frame of a known source and class, for the live source's
// tests against the real program.
type liveFrame struct {
	src   string // "" for a frame without an IP source
	class detector.Class
	port  uint16 // UDP source port, 0 if none
	frame []byte
}

func liveUDP(src string, port uint16) liveFrame {
	var ip gopacket.SerializableLayer = vectors.IPv4(src, layers.IPProtocolUDP)
	et := layers.EthernetTypeIPv4
	if netip.MustParseAddr(src).Is6() {
		ip, et = vectors.IPv6(src, layers.IPProtocolUDP), layers.EthernetTypeIPv6
	}
	return liveFrame{src, detector.ClassUDP, port, vectors.Frame(vectors.Eth(et), ip, vectors.UDP(port), gopacket.Payload(make([]byte, 30)))}
}

func liveSYN(src string) liveFrame {
	return liveFrame{src, detector.ClassSYN, 0, vectors.Frame(vectors.Eth(layers.EthernetTypeIPv4), vectors.IPv4(src, layers.IPProtocolTCP), vectors.TCP(true, false))}
}

func liveICMP6(src string) liveFrame {
	return liveFrame{src, detector.ClassICMP, 0, vectors.Frame(vectors.Eth(layers.EthernetTypeIPv6), vectors.IPv6(src, layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, gopacket.Payload(make([]byte, 12)))}
}

// unparsedFrame has no IP source: counted only as unparsed.
var unparsedFrame = liveFrame{frame: vectors.Frame(vectors.Eth(0x88b5), gopacket.Payload(make([]byte, 46)))}

// sent is what a batch of frames must add to the counters.
type sent struct {
	sources             map[detector.Addr]detector.Source
	total               detector.Counters
	unparsed, unparsedB uint64
}

// sendBatch runs n copies of each frame through the program and returns
// what it sent.
func sendBatch(t *testing.T, x *bpf.XDP, batch map[*liveFrame]int) sent {
	t.Helper()
	s := sent{sources: map[detector.Addr]detector.Source{}}
	for f, n := range batch {
		for range n {
			runXDP(t, x, f.src, f.frame)
		}
		size := uint64(len(f.frame))
		if f.src == "" {
			s.unparsed += uint64(n)
			s.unparsedB += uint64(n) * size
			continue
		}
		a := detector.AddrFrom(netip.MustParseAddr(f.src))
		src := s.sources[a]
		src.Addr = a
		src.Packets[f.class] += uint64(n)
		src.Bytes[f.class] += uint64(n) * size
		if f.port != 0 {
			src.UDPSrcPort = f.port
		}
		s.sources[a] = src
		s.total.Packets[f.class] += uint64(n)
		s.total.Bytes[f.class] += uint64(n) * size
	}
	return s
}

// checkTick compares a tick with what was sent: the same sources with the
// same counters and ports, the same totals and unparsed counts.
func checkTick(t *testing.T, what string, tk *detector.Tick, want sent) {
	t.Helper()
	got := bySource(tk)
	if len(got) != len(tk.Sources) {
		t.Errorf("%s: a source appears twice in %+v", what, tk.Sources)
	}
	for a, w := range want.sources {
		if g, ok := got[a]; !ok {
			t.Errorf("%s: %s missing from the tick", what, a)
		} else if g != w {
			t.Errorf("%s: %s is %+v, want %+v", what, a, g, w)
		}
	}
	for a, g := range got {
		if _, ok := want.sources[a]; !ok {
			t.Errorf("%s: %s not sent, in the tick as %+v", what, a, g)
		}
	}
	if tk.Total != want.total || tk.UnparsedPackets != want.unparsed || tk.UnparsedBytes != want.unparsedB || tk.SourcesLost != 0 {
		t.Errorf("%s: totals %+v, unparsed %d/%d B, lost %d; want %+v, %d/%d B, 0",
			what, tk.Total, tk.UnparsedPackets, tk.UnparsedBytes, tk.SourcesLost, want.total, want.unparsed, want.unparsedB)
	}
}

// takeHook runs a function between the live source's read of the map and
// its take of the idle sources: the frames it sends arrive in that window.
type takeHook struct {
	LiveMaps
	before func()
}

func (h *takeHook) TakeSources(keys []detector.Addr, dst []bpf.Source) ([]bpf.Source, error) {
	if h.before != nil {
		h.before()
	}
	return h.LiveMaps.TakeSources(keys, dst)
}

// TestLiveWithXDP reads the real program's maps with the live source: each
// tick holds exactly what was sent since the previous one, and evicting
// idle sources (BPF_MAP_LOOKUP_AND_DELETE_ELEM) loses no frame, not even
// one counted between the read and the delete.
func TestLiveWithXDP(t *testing.T) {
	x := loadXDP(t, 1)
	const idle = 10 * time.Second
	// The program stamps sources with the real CLOCK_MONOTONIC; the live
	// source's clock runs ahead by skew to make them look idle.
	var skew uint64
	hook := &takeHook{LiveMaps: LiveMapsOf(x)}
	live, err := NewLive(context.Background(), hook, LiveOptions{
		Tick: time.Second, IdleTimeout: idle,
		Monotonic: func() (uint64, error) {
			now, err := bpf.MonotonicNow()
			return now + skew, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	collect := func() *detector.Tick {
		t.Helper()
		tk, err := live.Collect(now)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
		return tk
	}

	a, b := liveUDP("198.18.0.10", 53), liveSYN("198.18.1.20")
	c, d := liveICMP6("2001:db8::30"), liveUDP("2001:db8::31", 123)

	// Counted before the live source started (an adopted program): the
	// priming read takes it as history.
	sendBatch(t, x, map[*liveFrame]int{&a: 100, &unparsedFrame: 1})
	if tk := collect(); len(tk.Sources) != 0 || tk.Total != (detector.Counters{}) || tk.UnparsedPackets != 0 {
		t.Fatalf("priming read yielded %+v", tk)
	}

	want := sendBatch(t, x, map[*liveFrame]int{&a: 7, &b: 3, &c: 5, &unparsedFrame: 2})
	checkTick(t, "first batch", collect(), want)

	// Only what is new since the previous read.
	want = sendBatch(t, x, map[*liveFrame]int{&a: 2, &d: 1})
	checkTick(t, "second batch", collect(), want)
	checkTick(t, "quiet tick", collect(), sent{})
	// The map remembers a's last UDP port; a tick in which a sent no UDP
	// reports none, as replay would.
	aSYN := liveSYN("198.18.0.10")
	want = sendBatch(t, x, map[*liveFrame]int{&aSYN: 2})
	checkTick(t, "no UDP this tick", collect(), want)

	// Every source goes idle by the live source's clock. Frames counted
	// before the read and frames counted between the read and the take
	// both land in the evicting tick's sources; then the map is empty.
	want = sendBatch(t, x, map[*liveFrame]int{&b: 4})
	var late sent
	hook.before = func() { late = sendBatch(t, x, map[*liveFrame]int{&a: 3, &d: 2}) }
	skew = uint64(idle + time.Second)
	tk := collect()
	hook.before = nil
	maps.Copy(want.sources, late.sources)
	// The global counters were read before the late frames: they are in
	// the next tick's totals.
	checkTick(t, "evicting tick", tk, want)
	if st := live.Stats(); st.Evicted != 4 {
		t.Errorf("evicted %d sources, want 4", st.Evicted)
	}
	left, err := x.NewSourceReader().AppendSources(nil)
	if err != nil || len(left) != 0 {
		t.Fatalf("after eviction the map holds %+v (%v)", left, err)
	}
	checkTick(t, "after eviction", collect(), sent{total: late.total})

	// A returning source starts a new entry, counted from zero.
	skew = 0
	want = sendBatch(t, x, map[*liveFrame]int{&a: 2})
	checkTick(t, "returning source", collect(), want)
}

// TestLiveFeaturesWithXDP checks that the live source's ticks carry the
// program's features: ports, length buckets and destinations of exactly
// the frames sent in the tick.
func TestLiveFeaturesWithXDP(t *testing.T) {
	x := loadXDP(t, 1)
	live, err := NewLive(context.Background(), LiveMapsOf(x), LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	a, b := liveUDP("198.18.0.10", 53), liveSYN("198.18.1.20")
	sendBatch(t, x, map[*liveFrame]int{&a: 5}) // history
	if _, err := live.Collect(now); err != nil {
		t.Fatal(err)
	}
	sendBatch(t, x, map[*liveFrame]int{&a: 7, &b: 3})
	tk, err := live.Collect(now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	f := tk.Features
	want := map[detector.PortCount]bool{
		{Kind: detector.UDPSrcPort, Port: 53, Packets: 7, Bytes: 7 * uint64(len(a.frame))}:    true,
		{Kind: detector.UDPDstPort, Port: 9, Packets: 7, Bytes: 7 * uint64(len(a.frame))}:     true,
		{Kind: detector.TCPSrcPort, Port: 40000, Packets: 3, Bytes: 3 * uint64(len(b.frame))}: true,
		{Kind: detector.TCPDstPort, Port: 80, Packets: 3, Bytes: 3 * uint64(len(b.frame))}:    true,
	}
	if len(f.Ports) != len(want) {
		t.Errorf("ports %+v, want %v", f.Ports, want)
	}
	for _, p := range f.Ports {
		if !want[p] {
			t.Errorf("port %+v not sent", p)
		}
	}
	var lengths, dsts uint64
	for c := range f.Lengths {
		for _, n := range f.Lengths[c] {
			lengths += n
		}
	}
	dsts = f.DstsOther
	for _, d := range f.Dsts {
		dsts += d.Packets
	}
	if lengths != 10 || dsts != 10 || f.Lengths[detector.ClassSYN][0] != 3 {
		t.Errorf("lengths %v (sum %d), destinations %v + %d others; want 10 frames, 3 SYNs of 40 bytes", f.Lengths, lengths, f.Dsts, f.DstsOther)
	}
}
