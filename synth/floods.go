package synth

import (
	"math/rand/v2"
	"net/netip"
)

// floodKind selects what a flood sends.
type floodKind uint8

const (
	// floodUDP: small UDP datagrams with random ports from one source.
	floodUDP floodKind = iota
	// floodSYN: bare SYNs (no options, as flood tools send them) from one
	// source.
	floodSYN
	// floodSpoofedSYN: bare SYNs, each from a new random source.
	floodSpoofedSYN
	// floodReflected: large UDP datagrams from one service port.
	floodReflected
	// floodRotatingV6: UDP from a /64 whose interface id changes every ~50
	// packets.
	floodRotatingV6
	// floodBot: small UDP datagrams from one source to one destination
	// port (fl.port), from random source ports.
	floodBot
	// floodServedSYN: SYNs each from a new random source, to port 443,
	// shaped like the benign clients' SYNs (same options, length and
	// window), so that no signature separates the two.
	floodServedSYN
)

var _ source = (*flood)(nil)

// flood is one attacking source (or, for spoofed and rotating floods, one
// attack tool). Packets are a Poisson process at the flood's rate, optionally
// gated by an on/off pulse.
type flood struct {
	kind    floodKind
	rng     *rand.Rand
	hdr     ipHdr
	meanGap float64 // ns
	// (*counts)[label] (plus the pulse number for pulses) counts this
	// flood's packets. It points at the job's counters, which grow as
	// attacks are labelled.
	counts *[]uint64
	label  int
	pulse  pulse
	// payload range of UDP datagrams
	payMin, payMax int
	port           uint16 // floodReflected: the service (source) port; floodBot: the destination port
	avoid          *set15 // floodSpoofedSYN: addresses never used as sources
	left           int    // floodRotatingV6: packets until the next interface id
	// steady makes the gaps uniform in [0.5, 1.5) mean gaps instead of
	// exponential, and the first packet due within one mean gap: a source
	// at 1 pps then surely sends in a 10 s window.
	steady bool
}

// pulse gates a flood: on for on ns of every period ns from origin. A zero
// period means always on.
type pulse struct{ origin, on, period int64 }

func newFlood(kind floodKind, r *rand.Rand, hdr ipHdr, pps float64, counts *[]uint64, label int) *flood {
	return &flood{kind: kind, rng: r, hdr: hdr, meanGap: 1e9 / pps, counts: counts, label: label}
}

// firstAt returns the time of the first packet of a flood starting at t.
func (fl *flood) firstAt(t int64) int64 {
	if fl.steady {
		return t + int64(fl.rng.Float64()*fl.meanGap)
	}
	return t + int64(fl.rng.ExpFloat64()*fl.meanGap)
}

func (fl *flood) emit(t int64, f *frame) int64 {
	r := fl.rng
	label := fl.label
	if p := fl.pulse; p.period > 0 {
		label += int((t - p.origin) / p.period)
	}
	(*fl.counts)[label]++
	switch fl.kind {
	case floodUDP:
		f.udp(&fl.hdr, anyHighPort(r), anyHighPort(r), between(r, fl.payMin, fl.payMax))
	case floodSYN:
		f.tcp(&fl.hdr, &tcpSeg{sport: anyHighPort(r), dport: 443, seq: r.Uint32(), flags: flagSYN, win: 64240})
	case floodSpoofedSYN:
		fl.hdr.src = fl.spoofedSource()
		fl.hdr.ttl = uint8(between(r, 32, 255))
		fl.hdr.id = uint16(r.Uint32())
		dport := uint16(443)
		if r.IntN(4) == 0 {
			dport = 80
		}
		f.tcp(&fl.hdr, &tcpSeg{sport: anyHighPort(r), dport: dport, seq: r.Uint32(), flags: flagSYN, win: uint16(between(r, 512, 65535))})
	case floodReflected:
		f.udp(&fl.hdr, fl.port, anyHighPort(r), between(r, fl.payMin, fl.payMax))
	case floodRotatingV6:
		if fl.left == 0 {
			fl.hdr.src = rotatedAddr(r.Uint64())
			fl.left = between(r, 30, 70)
		}
		fl.left--
		f.udp(&fl.hdr, anyHighPort(r), anyHighPort(r), between(r, fl.payMin, fl.payMax))
	case floodBot:
		f.udp(&fl.hdr, anyHighPort(r), fl.port, between(r, fl.payMin, fl.payMax))
	case floodServedSYN:
		fl.servedSYN(f)
	}
	fl.hdr.id++
	var next int64
	if fl.steady {
		next = t + int64(fl.meanGap*(0.5+r.Float64()))
	} else {
		next = t + int64(r.ExpFloat64()*fl.meanGap)
	}
	if p := fl.pulse; p.period > 0 && (next-p.origin)%p.period >= p.on {
		// Off phase: the process resumes at the next period's start.
		next = p.origin + ((next-p.origin)/p.period+1)*p.period + int64(r.ExpFloat64()*fl.meanGap)
	}
	return next
}

// spoofedSource draws a random address of 198.18.0.0/15 outside the
// victim's /24 and outside fl.avoid (every benign source).
func (fl *flood) spoofedSource() netip.Addr {
	for {
		i := fl.rng.Uint32() & (1<<17 - 1)
		if i>>8 == 0 || fl.avoid.hasIndex(i) {
			continue
		}
		return addr15(i)
	}
}

// servedSYN builds a SYN to port 443 from a new forged source, with what a
// real stack sends: DF, the MSS/SACK/timestamp/window-scale options of the
// benign clients' SYNs and their 64240 window, a Linux or Windows TTL.
// Only the addresses, IP ids, TTLs, ports, sequence numbers and timestamps
// differ, and none of them is a signature component.
func (fl *flood) servedSYN(f *frame) {
	r := fl.rng
	fl.hdr.src = fl.spoofedSource()
	fl.hdr.id = uint16(r.Uint32())
	fl.hdr.df = true
	fl.hdr.ttl = uint8(64 - between(r, 6, 24))
	if r.IntN(3) == 0 {
		fl.hdr.ttl += 64
	}
	f.tcp(&fl.hdr, &tcpSeg{sport: ephemeralPort(r), dport: 443, seq: r.Uint32(), flags: flagSYN, win: 64240, opts: optsSYN, tsval: r.Uint32()})
}
