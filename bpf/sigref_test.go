package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// Signature test helpers: a frame builder from the fields a signature rule
// sees, and the Go reference of the program's decision (detector.Match
// plus the semantics of DESIGN.md, "Signature rules"), which the tests
// compare the program against.

// pkt describes a test frame by what a signature rule can see of it.
type pkt struct {
	src, dst     string
	proto        uint8 // 6, 17, 1, 58 or any other
	sport, dport uint16
	flags        uint8 // TCP flags byte
	payload      int   // bytes after the transport header
	frag         detector.Fragment
	vlan         bool // behind an 802.1Q tag
}

func (p pkt) v6() bool { return netip.MustParseAddr(p.src).Is6() }

// frame builds the Ethernet frame of p.
func (p pkt) frame() []byte {
	var ls []gopacket.SerializableLayer
	et := layers.EthernetTypeIPv4
	if p.v6() {
		et = layers.EthernetTypeIPv6
	}
	if p.vlan {
		ls = append(ls, eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 7, Type: et})
	} else {
		ls = append(ls, eth(et))
	}
	proto := layers.IPProtocol(p.proto)
	if p.v6() {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
			SrcIP: net.ParseIP(p.src), DstIP: net.ParseIP(p.dst)}
		ls = append(ls, ip)
		if p.frag != detector.FragNone && p.frag != detector.FragAny {
			ip.NextHeader = layers.IPProtocolIPv6Fragment
			off := uint16(0)
			if p.frag == detector.FragLater {
				off = 100
			}
			ls = append(ls, gopacket.Payload(vecFrag(proto, off, p.frag == detector.FragFirst)))
		}
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto,
			SrcIP: net.ParseIP(p.src).To4(), DstIP: net.ParseIP(p.dst).To4()}
		switch p.frag {
		case detector.FragFirst:
			ip.Flags = layers.IPv4MoreFragments
		case detector.FragLater:
			ip.FragOffset = 100
		}
		ls = append(ls, ip)
	}
	if p.frag != detector.FragLater {
		switch p.proto {
		case 6:
			f := p.flags
			ls = append(ls, &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Window: 1024,
				FIN: f&0x01 != 0, SYN: f&0x02 != 0, RST: f&0x04 != 0, PSH: f&0x08 != 0,
				ACK: f&0x10 != 0, URG: f&0x20 != 0, ECE: f&0x40 != 0, CWR: f&0x80 != 0})
		case 17:
			ls = append(ls, &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)})
		}
	}
	ls = append(ls, gopacket.Payload(make([]byte, p.payload)))
	return frameOf(ls...)
}

// vecFrag is an IPv6 fragment header (internal/vectors.IPv6Frag).
func vecFrag(next layers.IPProtocol, offset uint16, more bool) []byte {
	fo := offset << 3
	if more {
		fo |= 1
	}
	return []byte{byte(next), 0, byte(fo >> 8), byte(fo), 0, 0, 0x12, 0x34}
}

// meta is what detector.PacketMeta the frame of p must yield; the length
// is read back from the frame's IP header, which defines it.
func (p pkt) meta(frame []byte) detector.PacketMeta {
	m := detector.PacketMeta{
		Src: addr(p.src), Dst: addr(p.dst), Proto: p.proto, Fragment: p.frag,
	}
	if m.Fragment == detector.FragAny {
		m.Fragment = detector.FragNone
	}
	ip := frame[14:]
	if p.vlan {
		ip = frame[18:]
	}
	if p.v6() {
		m.Length = binary.BigEndian.Uint16(ip[4:6]) + 40
	} else {
		m.Length = binary.BigEndian.Uint16(ip[2:4])
	}
	if (p.proto == 6 || p.proto == 17) && m.Fragment != detector.FragLater {
		m.L4, m.SrcPort, m.DstPort = true, p.sport, p.dport
		if p.proto == 6 {
			m.TCPFlags = p.flags
		}
	}
	return m
}

// refRule is a rule in the reference model, with its rate limiter.
type refRule struct {
	r              detector.SignatureRule
	expired        bool
	window, count  uint64
	hits, dropped  uint64
	hitB, droppedB uint64
}

// refPlane is the reference: the rules by slot and the exempt sources.
type refPlane struct {
	rules  map[int]*refRule
	exempt map[detector.Addr]bool
}

// decide applies the semantics to one frame of size bytes seen in the rate
// limiter's window and returns whether it is dropped.
func (rp *refPlane) decide(m *detector.PacketMeta, size, window uint64) bool {
	var matched []*refRule
	anyDrop := false
	for _, r := range rp.rules {
		if !r.expired && r.r.Match.Matches(m) {
			matched = append(matched, r)
			anyDrop = anyDrop || r.r.RatePPS == 0
		}
	}
	if len(matched) == 0 || rp.exempt[m.Src] {
		return false
	}
	drop := false
	for _, r := range matched {
		r.hits++
		r.hitB += size
		if anyDrop {
			if r.r.RatePPS == 0 {
				r.dropped++
				r.droppedB += size
				drop = true
			}
			continue
		}
		if r.window != window {
			r.window, r.count = window, 0
		}
		r.count++
		if r.count > allowance(r.r.RatePPS) {
			r.dropped++
			r.droppedB += size
			drop = true
		}
	}
	return drop
}

// statusBySlot indexes Signatures().
func statusBySlot(t testing.TB, x *XDP) map[int]SignatureStatus {
	t.Helper()
	sigs, err := x.Signatures()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]SignatureStatus{}
	for _, s := range sigs {
		out[s.Slot] = s
	}
	return out
}

// TestSignatureReference runs random rules (drop and rate-limit) and random
// packets through the program and through the Go reference, comparing
// every verdict and, after each packet, every rule's counters.
func TestSignatureReference(t *testing.T) {
	x := loadTest(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	srcs := []string{"198.18.0.1", "198.18.0.2", "198.18.7.7", "2001:db8::1", "2001:db8:0:1::9"}
	dsts := []string{"198.19.0.10", "198.19.0.11", "198.19.9.1", "2001:db8:ffff::10", "2001:db8:fffe::1"}
	protos := []uint8{6, 17, 17, 1, 58, 47}
	ports := []uint16{53, 80, 123, 443, 11211, 40000}
	randPkt := func() pkt {
		p := pkt{proto: protos[rng.IntN(len(protos))], sport: ports[rng.IntN(len(ports))], dport: ports[rng.IntN(len(ports))],
			flags: uint8(rng.IntN(256)), payload: rng.IntN(1600), frag: detector.Fragment(rng.IntN(4)), vlan: rng.IntN(4) == 0}
		v6 := rng.IntN(2) == 0
		for {
			p.src, p.dst = srcs[rng.IntN(len(srcs))], dsts[rng.IntN(len(dsts))]
			if netip.MustParseAddr(p.src).Is6() == v6 && netip.MustParseAddr(p.dst).Is6() == v6 {
				return p
			}
		}
	}
	randMatch := func() detector.Match {
		for {
			var m detector.Match
			p := randPkt()
			if rng.IntN(3) == 0 {
				m.Src = netip.PrefixFrom(netip.MustParseAddr(p.src), []int{8, 16, 24, 32}[rng.IntN(4)]*(1+btoi(p.v6())*3)).Masked()
			}
			if rng.IntN(3) == 0 {
				m.Dst = netip.PrefixFrom(netip.MustParseAddr(p.dst), []int{16, 30, 32}[rng.IntN(3)]*(1+btoi(p.v6())*3)).Masked()
			}
			if rng.IntN(2) == 0 {
				m.Proto = p.proto
			}
			if m.Proto == 6 || m.Proto == 17 {
				if rng.IntN(2) == 0 {
					lo := ports[rng.IntN(len(ports))]
					m.SrcPort = detector.Range{Lo: lo, Hi: lo + uint16(rng.IntN(3))*100}
				}
				if rng.IntN(2) == 0 {
					lo := ports[rng.IntN(len(ports))]
					m.DstPort = detector.Range{Lo: lo, Hi: lo + uint16(rng.IntN(2))*1000}
				}
				if m.Proto == 6 && rng.IntN(2) == 0 {
					m.TCPFlagsMask = uint8(rng.IntN(256))
					m.TCPFlags = uint8(rng.IntN(256)) & m.TCPFlagsMask
				}
			}
			if rng.IntN(3) == 0 {
				lo := uint16(rng.IntN(1500))
				m.Length = detector.Range{Lo: lo, Hi: lo + uint16(rng.IntN(800))}
			}
			if rng.IntN(3) == 0 {
				m.Fragment = detector.Fragment(rng.IntN(4))
			}
			if m.Validate() == nil {
				return m
			}
		}
	}

	ref := refPlane{rules: map[int]*refRule{}, exempt: map[detector.Addr]bool{addr("198.18.7.7"): true}}
	if err := x.SetExempt([]detector.Addr{addr("198.18.7.7")}); err != nil {
		t.Fatal(err)
	}
	matched, limited := 0, uint64(0)
	for round := range 4 {
		// A fresh set of rules each round: remove the old ones.
		for _, r := range ref.rules {
			if r.r.RatePPS > 0 {
				limited += r.dropped
			}
			if err := x.RemoveSignature(r.r.Match); err != nil {
				t.Fatal(err)
			}
		}
		clear(ref.rules)
		for range 24 {
			r := detector.SignatureRule{Match: randMatch(), TTL: time.Hour}
			if rng.IntN(3) == 0 {
				r.RatePPS = uint64(10 + rng.IntN(40)) // allowance 1..5
			}
			if err := x.InstallSignature(r); errors.Is(err, ErrSignaturesFull) {
				continue // more portless rules than slots: leave it out
			} else if err != nil {
				t.Fatal(err)
			}
			r.Match = normalizeMatch(r.Match)
			slot := x.findSignature(&r.Match)
			if _, dup := ref.rules[slot]; !dup {
				ref.rules[slot] = &refRule{r: r}
			} else {
				ref.rules[slot].r = r // the same match again: renewed
			}
		}
		// One expired rule.
		for slot, r := range ref.rules {
			x.sigSlot(slot).ExpiresNs = 1
			r.expired = true
			break
		}
		for i := range 600 {
			p := randPkt()
			f := p.frame()
			meta := p.meta(f)
			// The rate limiters' state before the packet, from the kernel:
			// the reference cannot know which window the program's clock
			// put the packet in otherwise.
			for slot, r := range ref.rules {
				r.window, r.count = x.sigSlot(slot).Window, x.sigSlot(slot).Count
			}
			before, err := MonotonicNow()
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, x, f)
			after, err := MonotonicNow()
			if err != nil {
				t.Fatal(err)
			}
			want := ref.decide(&meta, uint64(len(f)), before/sigWindowNs)
			if before/sigWindowNs != after/sigWindowNs {
				// Straddled a window boundary: resynchronize the counters
				// and skip the check.
				for slot, r := range ref.rules {
					s := statusBySlot(t, x)[slot]
					r.hits, r.hitB, r.dropped, r.droppedB = s.HitPackets, s.HitBytes, s.DroppedPackets, s.DroppedBytes
				}
				continue
			}
			if (got == xdpDrop) != want {
				t.Fatalf("round %d packet %d %+v: action %d, reference drop %v; rules %v", round, i, meta, got, want, ruleList(ref))
			}
			if want || got == xdpDrop {
				matched++
			}
			sigs := statusBySlot(t, x)
			for slot, r := range ref.rules {
				s := sigs[slot]
				if s.HitPackets != r.hits || s.HitBytes != r.hitB || s.DroppedPackets != r.dropped || s.DroppedBytes != r.droppedB {
					t.Fatalf("round %d packet %d %+v: rule %d (%s) counters %d/%d hits, %d/%d dropped; reference %d/%d, %d/%d",
						round, i, meta, slot, &r.r.Match, s.HitPackets, s.HitBytes, s.DroppedPackets, s.DroppedBytes, r.hits, r.hitB, r.dropped, r.droppedB)
				}
			}
		}
	}
	if matched < 100 || limited < 10 {
		t.Errorf("only %d drops, %d by rate limits: the random rules exercise too little", matched, limited)
	}
	t.Logf("%d frames dropped, %d drops by rate-limit rules", matched, limited)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ruleList(rp refPlane) []string {
	var out []string
	for slot, r := range rp.rules {
		out = append(out, fmt.Sprintf("%d:%s rate %d expired %v", slot, &r.r.Match, r.r.RatePPS, r.expired))
	}
	return out
}
