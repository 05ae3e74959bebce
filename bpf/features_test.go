package bpf

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/floodguard/floodguard/detector"
)

func readFeatures(t *testing.T, r *FeatureReader) detector.Features {
	t.Helper()
	var f detector.Features
	if err := r.Read(&f); err != nil {
		t.Fatal(err)
	}
	return f
}

// portsOf indexes the port counts of f.
func portsOf(t *testing.T, f detector.Features) map[[2]int]detector.PortCount {
	t.Helper()
	out := map[[2]int]detector.PortCount{}
	for _, p := range f.Ports {
		k := [2]int{int(p.Kind), int(p.Port)}
		if _, dup := out[k]; dup {
			t.Fatalf("%v %d listed twice", p.Kind, p.Port)
		}
		out[k] = p
	}
	return out
}

// TestFeatures checks the per-read counts by port, by class and length
// bucket, and by destination, dropped frames included.
func TestFeatures(t *testing.T) {
	x := loadTest(t, Options{})
	// One CPU: the destination sample is the last frame's of each CPU.
	onCPU(t, 0, func() { testFeatures(t, x) })
}

func testFeatures(t *testing.T, x *XDP) {
	r := x.NewFeatureReader()
	if f := readFeatures(t, r); len(f.Ports) != 0 || f.DstsOther != 0 || len(f.Dsts) != 0 {
		t.Fatalf("fresh program: %+v", f)
	}

	u4 := udp4.frame()                                                        // 198.19.0.10, sport 53 dport 4444, IP length 128
	u6 := with(udp6, func(p *pkt) { p.payload = 1600 }).frame()               // IP length 1648: the last bucket
	syn := tcp4.frame()                                                       // sport 40000 dport 80, IP length 40
	later := with(udp4, func(p *pkt) { p.frag = detector.FragLater }).frame() // no ports
	icmp := with(udp6, func(p *pkt) { p.proto = 58; p.payload = 8 }).frame()  // no ports, IP length 48
	dropped := with(udp4, func(p *pkt) { p.src = "198.18.0.66"; p.sport = 123 }).frame()
	addRules(t, x, "198.18.0.66/32")
	send := func(f []byte, n int) {
		for range n {
			run(t, x, f)
		}
	}
	send(u4, 3)
	send(u6, 2)
	send(syn, 4)
	send(later, 1)
	send(icmp, 5)
	send(dropped, 2)

	f := readFeatures(t, r)
	ports := portsOf(t, f)
	for _, w := range []detector.PortCount{
		{Kind: detector.UDPSrcPort, Port: 53, Packets: 3, Bytes: 3 * uint64(len(u4))},
		{Kind: detector.UDPDstPort, Port: 4444, Packets: 5, Bytes: 3*uint64(len(u4)) + 2*uint64(len(dropped))},
		{Kind: detector.UDPSrcPort, Port: 123, Packets: 4, Bytes: 2*uint64(len(u6)) + 2*uint64(len(dropped))},
		{Kind: detector.UDPDstPort, Port: 5555, Packets: 2, Bytes: 2 * uint64(len(u6))},
		{Kind: detector.TCPSrcPort, Port: 40000, Packets: 4, Bytes: 4 * uint64(len(syn))},
		{Kind: detector.TCPDstPort, Port: 80, Packets: 4, Bytes: 4 * uint64(len(syn))},
	} {
		if g := ports[[2]int{int(w.Kind), int(w.Port)}]; g != w {
			t.Errorf("%v %d: %+v, want %+v", w.Kind, w.Port, g, w)
		}
	}
	if len(ports) != 6 {
		t.Errorf("ports %+v, want 6 entries", f.Ports)
	}
	var wantLen [detector.NumClasses][detector.NumLengthBuckets]uint64
	wantLen[detector.ClassUDP][detector.LengthBucket(128)] = 3 + 2 // u4, dropped
	wantLen[detector.ClassUDP][detector.NumLengthBuckets-1] = 2    // u6
	wantLen[detector.ClassSYN][0] = 4
	wantLen[detector.ClassUDP][detector.LengthBucket(uint16(len(later)-14))] += 1
	wantLen[detector.ClassICMP][0] = 5
	if f.Lengths != wantLen {
		t.Errorf("lengths %v, want %v", f.Lengths, wantLen)
	}
	// No destination had a slot yet: all in the others, and the sampled
	// ones get slots for the next read.
	if len(f.Dsts) != 0 || f.DstsOther != 17 {
		t.Errorf("first read: dsts %v, other %d; want none and 17", f.Dsts, f.DstsOther)
	}

	// Nothing new: nothing read.
	if f := readFeatures(t, r); len(f.Ports) != 0 || f.DstsOther != 0 || len(f.Dsts) != 0 || f.Lengths != ([detector.NumClasses][detector.NumLengthBuckets]uint64{}) {
		t.Errorf("idle read: %+v", f)
	}

	// The last destination sampled (the dropped frames') has a slot now.
	send(icmp, 3)
	send(u4, 1)
	f = readFeatures(t, r)
	if len(f.Dsts) != 1 || f.Dsts[0] != (detector.DstCount{Addr: addr(udp4.dst), Packets: 1}) || f.DstsOther != 3 {
		t.Errorf("second read: dsts %v, other %d; want %s ×1, 3 others", f.Dsts, f.DstsOther, udp4.dst)
	}
	send(u4, 2)
	send(u6, 1)
	f = readFeatures(t, r)
	want := []detector.DstCount{{Addr: addr(udp4.dst), Packets: 2}, {Addr: addr(udp6.dst), Packets: 1}}
	if !slices.Equal(f.Dsts, want) || f.DstsOther != 0 {
		t.Errorf("third read: dsts %v, other %d; want %v, none other", f.Dsts, f.DstsOther, want)
	}
	if p := portsOf(t, f); len(p) != 4 || p[[2]int{int(detector.UDPSrcPort), 53}].Packets != 2 {
		t.Errorf("third read ports %+v", f.Ports)
	}
}

// TestFeatureDsts sends to many destinations: the counts by destination
// and the others always add up to every frame; busy destinations get slots
// (at most FeatureDsts), idle ones give theirs up.
func TestFeatureDsts(t *testing.T) {
	x := loadTest(t, Options{})
	onCPU(t, 0, func() { testFeatureDsts(t, x) })
}

func testFeatureDsts(t *testing.T, x *XDP) {
	r := x.NewFeatureReader()
	frames := make([][]byte, 300)
	for i := range frames {
		frames[i] = with(udp4, func(p *pkt) { p.dst = fmt.Sprintf("198.19.%d.%d", i/250, i%250) }).frame()
	}
	busy := with(udp4, func(p *pkt) { p.dst = "198.19.200.1" }).frame()
	tracked := map[detector.Addr]bool{}
	for round := range 40 {
		// The busy destination last in the round: sampled in the first,
		// then the last of the others is.
		n := uint64(20)
		for range 19 {
			run(t, x, busy)
		}
		for i := round * 7 % 300; i < 300; i += 13 {
			run(t, x, frames[i])
			n++
		}
		run(t, x, busy)
		f := readFeatures(t, r)
		sum := f.DstsOther
		for _, d := range f.Dsts {
			sum += d.Packets
			tracked[d.Addr] = true
		}
		if sum != n || len(f.Dsts) > FeatureDsts {
			t.Fatalf("round %d: %d destinations and %d others sum to %d, sent %d", round, len(f.Dsts), f.DstsOther, sum, n)
		}
		if round > 3 && (len(f.Dsts) == 0 || f.Dsts[0] != (detector.DstCount{Addr: addr("198.19.200.1"), Packets: 20})) {
			t.Errorf("round %d: the busy destination is not first: %v", round, f.Dsts[:min(3, len(f.Dsts))])
		}
	}
	// One sample per CPU and read: at most one new destination a round.
	if len(tracked) < 20 {
		t.Errorf("only %d destinations ever had a slot", len(tracked))
	}
	// The slots of the two hashes, as Go computes them, are those the
	// program counts in.
	for s, a := range r.owners {
		if a == (detector.Addr{}) {
			continue
		}
		if s1, s2 := dstSlots(a); s != s1 && s != s2 {
			t.Errorf("%v in slot %d, not one of its own (%d, %d)", a, s, s1, s2)
		}
	}
}

// TestFeaturePortsTouched checks that only touched blocks are read, that a
// block touched again after its bit was taken is read, and that a second
// reader's first read still sees every count.
func TestFeaturePortsTouched(t *testing.T) {
	x := loadTest(t, Options{})
	r := x.NewFeatureReader()
	readFeatures(t, r)
	for port := range uint16(3) {
		run(t, x, with(udp4, func(p *pkt) { p.sport = 20000 + port*64 }).frame())
	}
	words := 0
	for i := range r.touched {
		if r.touched[i] != 0 {
			words++
		}
	}
	// udp sport blocks 312..314 (one word) and the udp dport 4444 block.
	if words != 2 {
		t.Errorf("%d touched words, want 2", words)
	}
	f := readFeatures(t, r)
	if len(f.Ports) != 4 {
		t.Errorf("ports %+v, want 3 sources and one destination", f.Ports)
	}
	run(t, x, udp4.frame())
	r2 := x.NewFeatureReader()
	if f := readFeatures(t, r2); len(portsOf(t, f)) != 5 {
		t.Errorf("a new reader's first read: %+v, want every port since load", f.Ports)
	}
}

// TestFeaturePortsSummed counts ports on two CPUs: the summer adds their
// copies, in the first and the last block too (udp sport 0, tcp dport
// 65535: the ends of its loops), and a read after a quiet interval sees
// nothing, one after more frames only those.
func TestFeaturePortsSummed(t *testing.T) {
	x := loadTest(t, Options{})
	if x.ncpu < 2 || runtime.NumCPU() < 2 {
		skipOrFail(t, "needs 2 CPUs: %d possible, %d usable", x.ncpu, runtime.NumCPU())
	}
	r := x.NewFeatureReader()
	readFeatures(t, r)
	low := with(udp4, func(p *pkt) { p.sport = 0 }).frame()
	high := with(tcp4, func(p *pkt) { p.dport = 65535 }).frame()
	send := func(cpu int, f []byte, n int) {
		onCPU(t, cpu, func() {
			for range n {
				run(t, x, f)
			}
		})
	}
	send(0, low, 3)
	send(1, low, 2)
	send(1, high, 4)
	ports := portsOf(t, readFeatures(t, r))
	for _, c := range []struct {
		kind    detector.PortKind
		port    int
		packets uint64
		frame   []byte
	}{
		{detector.UDPSrcPort, 0, 5, low},
		{detector.UDPDstPort, 4444, 5, low},
		{detector.TCPSrcPort, 40000, 4, high},
		{detector.TCPDstPort, 65535, 4, high},
	} {
		got := ports[[2]int{int(c.kind), c.port}]
		if got.Packets != c.packets || got.Bytes != c.packets*uint64(len(c.frame)) {
			t.Errorf("%v %d: %+v, want %d packets of %d bytes", c.kind, c.port, got, c.packets, len(c.frame))
		}
	}
	if len(ports) != 4 {
		t.Errorf("%d ports counted, want 4: %+v", len(ports), ports)
	}
	if f := readFeatures(t, r); len(f.Ports) != 0 {
		t.Errorf("quiet interval: %+v", f.Ports)
	}
	send(0, high, 1)
	if ports := portsOf(t, readFeatures(t, r)); len(ports) != 2 || ports[[2]int{int(detector.TCPDstPort), 65535}].Packets != 1 {
		t.Errorf("after one more frame: %+v", ports)
	}
}

// BenchmarkFeatureRead: one read with traffic on one port since the last,
// the live source's steady state. Figures in DESIGN.md, "Features".
func BenchmarkFeatureRead(b *testing.B) {
	x := loadTest(b, Options{MaxSources: 1024})
	r := x.NewFeatureReader()
	var f detector.Features
	frame := udp4.frame()
	for b.Loop() {
		b.StopTimer()
		run(b, x, frame)
		b.StartTimer()
		if err := r.Read(&f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFeatureReadEveryBlock: a read that sums every block of port
// counters, as a flood from random ports makes every read (and a reader's
// first read).
func BenchmarkFeatureReadEveryBlock(b *testing.B) {
	x := loadTest(b, Options{MaxSources: 1024})
	r := x.NewFeatureReader()
	var f detector.Features
	for b.Loop() {
		r.primed = false
		if err := r.Read(&f); err != nil {
			b.Fatal(err)
		}
	}
}
