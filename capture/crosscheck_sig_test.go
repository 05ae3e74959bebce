package capture

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/vectors"
)

// xdpDrop is the action the program returns for a dropped frame.
const xdpDrop = 1

// TestXDPAndReplayAgreeOnSignatures installs one signature rule at a time,
// for every match component and both families, in the real XDP program and
// in the replay's simulated plane, and sends every shared vector through
// both: each frame must be dropped by both or by neither. An exempt
// source passes in both.
func TestXDPAndReplayAgreeOnSignatures(t *testing.T) {
	x := loadXDP(t, 1)
	plane := NewSimulatedPlane()
	dec := NewDecoder()
	p := netip.MustParsePrefix
	rules := []detector.Match{
		{Proto: 17},
		{Proto: 6},
		{Proto: 1},
		{Proto: 58},
		{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}},
		{Proto: 17, DstPort: detector.Range{Lo: 1, Hi: 1024}},
		{Proto: 6, DstPort: detector.Range{Lo: 80, Hi: 80}},
		{Proto: 6, SrcPort: detector.Range{Lo: 1024, Hi: 65535}},
		{Proto: 6, TCPFlags: 0x02, TCPFlagsMask: 0x12},
		{Proto: 6, TCPFlags: 0x10, TCPFlagsMask: 0x10},
		{Length: detector.Range{Lo: 0, Hi: 100}},
		{Length: detector.Range{Lo: 101, Hi: 65535}},
		{Proto: 17, Length: detector.Range{Lo: 28, Hi: 60}},
		{Fragment: detector.FragNone},
		{Fragment: detector.FragFirst},
		{Fragment: detector.FragLater},
		{Src: p("198.18.0.0/16")},
		{Dst: p("198.18.0.0/15")},
		{Src: p("2001:db8::/32")},
		{Dst: p("2001:db8::/32"), Proto: 17},
		{Proto: 17, Src: p("198.18.0.0/15"), DstPort: detector.Range{Lo: 1, Hi: 65535}},
	}
	at := time.Now()
	vs := vectors.All()
	drops := 0
	for _, m := range rules {
		r := detector.SignatureRule{Match: m, TTL: time.Hour, Expires: at.Add(time.Hour)}
		if err := x.InstallSignature(r); err != nil {
			t.Fatalf("%s: kernel: %v", m.String(), err)
		}
		if err := plane.InstallSignature(r); err != nil {
			t.Fatalf("%s: replay: %v", m.String(), err)
		}
		for _, v := range vs {
			ret, err := x.Program().Run(&ebpf.RunOptions{Data: v.Frame})
			if err != nil {
				t.Fatalf("%s: run: %v", v.Name, err)
			}
			pkt := dec.Decode(LinkTypeEthernet, v.Frame)
			replayDrop := pkt.OK && plane.Dropped(&pkt.PacketMeta, at)
			if (ret == xdpDrop) != replayDrop {
				t.Errorf("rule %q, vector %s: XDP action %d, replay drops: %v (replay sees %+v)", m.String(), v.Name, ret, replayDrop, pkt.PacketMeta)
			}
			if replayDrop {
				drops++
			}
		}
		if err := x.RemoveSignature(m); err != nil {
			t.Fatal(err)
		}
		if err := plane.RemoveSignature(m); err != nil {
			t.Fatal(err)
		}
	}
	if drops < len(rules) {
		t.Fatalf("the rules dropped only %d vector frames in all: the table exercises too little", drops)
	}

	// Exemption: a source that a drop rule matches passes when exempt,
	// in both planes alike.
	m := detector.Match{Proto: 17}
	r := detector.SignatureRule{Match: m, TTL: time.Hour, Expires: at.Add(time.Hour)}
	for _, plane2 := range []detector.SignatureEnforcer{x, plane} {
		if err := plane2.InstallSignature(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range vs {
		pkt := dec.Decode(LinkTypeEthernet, v.Frame)
		if !pkt.OK || pkt.Proto != 17 {
			continue
		}
		for _, plane2 := range []detector.SignatureEnforcer{x, plane} {
			if err := plane2.SetExempt([]detector.Addr{pkt.Src}); err != nil {
				t.Fatal(err)
			}
		}
		ret, err := x.Program().Run(&ebpf.RunOptions{Data: v.Frame})
		if err != nil {
			t.Fatal(err)
		}
		if ret == xdpDrop || plane.Dropped(&pkt.PacketMeta, at) {
			t.Errorf("%s: exempt source dropped: XDP action %d, replay %v", v.Name, ret, plane.Dropped(&pkt.PacketMeta, at))
		}
	}
}
