package synth

import (
	"math/rand/v2"
	"net/netip"
)

// Benign traffic: ordinary clients, heavy clients behind a carrier-grade NAT,
// DNS resolvers answering the victim, and flash-crowd visitors. They all run
// the same client model with different parameters.

// minClientGap is the smallest gap between two packets of an ordinary client.
// Over 100 ms it guarantees at most 10 packets in any 1 s tick, so a detector
// test can treat ">10 pps from one source" as misbehaviour.
const minClientGap = 105 * millisecond

// sessionMix gives the cumulative percentage of new sessions that are HTTPS,
// HTTP, DNS queries and pings (the last entry is 100).
type sessionMix [4]int

var (
	_ source = (*client)(nil)
	_ source = (*resolver)(nil)
)

func mixOrdinary() sessionMix { return sessionMix{70, 82, 94, 100} }
func mixWeb() sessionMix      { return sessionMix{85, 100, 100, 100} }
func mixHeavy() sessionMix    { return sessionMix{80, 95, 100, 100} }

type sessionKind uint8

const (
	sessIdle sessionKind = iota
	sessTCP
	sessDNS
	sessPing
)

// flow is one session of a client, advanced by one packet at a time. Only the
// client-to-victim direction is generated: the capture point is the victim's
// ingress.
type flow struct {
	kind         sessionKind
	step         int // TCP: 0 SYN, 1 handshake ACK, 2 data, 3 FIN, 4 last ACK
	left         int // data segments, queries or echo requests still to send
	sport, dport uint16
	seq, ack     uint32
	win          uint16
	echoSeq      uint16
}

// client is a benign host doing TCP sessions with handshakes, DNS-like
// queries and the odd ping.
type client struct {
	rng     *rand.Rand
	hdr     ipHdr
	flows   []flow // concurrent sessions; more than one only for NAT gateways
	mix     sessionMix
	meanGap float64 // ns
	steady  bool    // heavy clients: gap uniform in [0.5, 1.5) x mean, no floor
	sessLen float64 // mean data segments per TCP session
	tsval   uint32
	pingLen int
}

// newClient makes a client at rate pps with the given number of concurrent
// flows. The OS-like details (initial TTL, ping size) come from r.
func newClient(r *rand.Rand, src netip.Addr, pps float64, flows int, mix sessionMix) *client {
	c := &client{
		rng:     r,
		hdr:     ipHdr{src: src, id: uint16(r.Uint32()), flow: r.Uint32() & 0xfffff},
		flows:   make([]flow, flows),
		mix:     mix,
		meanGap: 1e9 / pps,
		sessLen: 12,
		tsval:   r.Uint32(),
		pingLen: 56,
	}
	// Unix-like hosts start at TTL 64, Windows at 128; 6-24 hops away.
	hops := uint8(between(r, 6, 24))
	if r.IntN(3) == 0 {
		c.hdr.ttl = 128 - hops
		c.pingLen = 32
	} else {
		c.hdr.ttl = 64 - hops
	}
	return c
}

// firstAt returns a start time within one mean gap after t, so clients do
// not all send their first packet at the same instant.
func (c *client) firstAt(t int64) int64 { return t + int64(c.rng.Float64()*c.meanGap) }

func (c *client) emit(t int64, f *frame) int64 {
	fl := &c.flows[0]
	if len(c.flows) > 1 {
		fl = &c.flows[c.rng.IntN(len(c.flows))]
	}
	if fl.kind == sessIdle {
		c.start(fl)
	}
	c.send(fl, f)
	c.hdr.id++
	c.tsval += uint32(c.meanGap / 1e6) // a 1 kHz TCP timestamp clock
	return t + c.gap()
}

func (c *client) gap() int64 {
	if c.steady {
		return int64(c.meanGap * (0.5 + c.rng.Float64()))
	}
	// Bursty around the mean (mean of 0.2 + 0.8 Exp(1) is 1) with a floor.
	return max(int64(c.meanGap*(0.2+0.8*c.rng.ExpFloat64())), minClientGap)
}

// start opens a new session on fl.
func (c *client) start(fl *flow) {
	r := c.rng
	*fl = flow{sport: ephemeralPort(r)}
	switch p := r.IntN(100); {
	case p < c.mix[1]:
		fl.kind = sessTCP
		fl.dport = 443
		if p >= c.mix[0] {
			fl.dport = 80
		}
		fl.seq, fl.ack = r.Uint32(), r.Uint32()
		fl.win = uint16(between(r, 500, 65535))
		// Most sessions are short page loads, a few are long downloads.
		fl.left = 1 + min(int(r.ExpFloat64()*c.sessLen), 400)
	case p < c.mix[2]:
		fl.kind = sessDNS
		fl.dport = 53
		fl.left = between(r, 1, 3)
	default:
		fl.kind = sessPing
		fl.sport = uint16(r.Uint32()) // the echo identifier
		fl.left = between(r, 1, 4)
	}
}

// send builds fl's next packet and advances it.
func (c *client) send(fl *flow, f *frame) {
	r := c.rng
	switch fl.kind {
	case sessDNS:
		c.hdr.df = false
		f.udp(&c.hdr, fl.sport, fl.dport, between(r, 17, 90))
		if fl.left--; fl.left == 0 {
			fl.kind = sessIdle
		}
	case sessPing:
		c.hdr.df = false
		fl.echoSeq++
		f.echo(&c.hdr, fl.sport, fl.echoSeq, c.pingLen)
		if fl.left--; fl.left == 0 {
			fl.kind = sessIdle
		}
	case sessTCP:
		c.hdr.df = true
		c.tcpStep(fl, f)
	}
}

func (c *client) tcpStep(fl *flow, f *frame) {
	r := c.rng
	s := tcpSeg{sport: fl.sport, dport: fl.dport, seq: fl.seq, ack: fl.ack, win: fl.win, opts: optsTS, tsval: c.tsval}
	switch {
	case fl.step == 0:
		s.flags, s.ack, s.opts, s.win = flagSYN, 0, optsSYN, 64240
		fl.seq++
		fl.ack++ // the SYN-ACK's SYN
		fl.step = 1
	case fl.step == 1:
		s.flags = flagACK
		fl.step = 2
	case fl.step == 2 && fl.left > 0:
		s.flags = flagACK
		if r.IntN(100) < 35 {
			// A request or upload segment.
			s.flags |= flagPSH
			s.payload = between(r, 40, 900)
			if r.IntN(20) == 0 {
				s.payload = 1448 - 20 // a full segment (MSS minus options)
			}
			fl.seq += uint32(s.payload)
		} else {
			// Acknowledging the server's response data.
			fl.ack += uint32(1448 * between(r, 1, 8))
		}
		fl.left--
	case fl.step == 2:
		s.flags = flagFIN | flagACK
		fl.seq++
		fl.step = 3
	default:
		fl.ack++ // the server's FIN
		s.ack = fl.ack
		s.flags = flagACK
		fl.kind = sessIdle
	}
	f.tcp(&c.hdr, &s)
}

// resolver is a DNS resolver answering the victim's own lookups: UDP from
// source port 53 at a low rate. It is benign traffic that a naive "port 53
// means reflection" rule would wrongly block.
type resolver struct {
	rng     *rand.Rand
	hdr     ipHdr
	meanGap float64
}

// Payload sizes of resolver answers: under 512 bytes of IP, as answers to
// ordinary lookups are.
const (
	resolverPayMin = 40
	resolverPayMax = 480
)

func (s *resolver) emit(t int64, f *frame) int64 {
	r := s.rng
	f.udp(&s.hdr, 53, ephemeralPort(r), between(r, resolverPayMin, resolverPayMax))
	s.hdr.id++
	return t + max(int64(s.meanGap*(0.2+0.8*r.ExpFloat64())), minClientGap)
}
