package synth

import (
	"math/rand/v2"
	"net/netip"
)

// Benign services of the signature scenarios: traffic on the very ports a
// signature rule against the scenario's flood would name, present from the
// capture start. A rule must spare it, by length or by exempting sources.

var (
	_ source = (*ntpServer)(nil)
	_ source = (*quicClient)(nil)
)

// NTP servers the victim synchronises with (reflection-mix).
const (
	ntpServers = 4
	ntpPayload = 48 // a mode 4 (server) packet: 76 bytes of IPv4
)

// ntpServer answers the victim's polls: UDP from port 123 to port 123, one
// packet every 1-4 s. Real clients poll every 64 s or more; these poll in
// burst mode so that the servers show up in a short capture's warm-up.
type ntpServer struct {
	rng     *rand.Rand
	hdr     ipHdr
	meanGap float64
}

func (s *ntpServer) emit(t int64, f *frame) int64 {
	f.udp(&s.hdr, 123, 123, ntpPayload)
	s.hdr.id++
	return t + max(int64(s.meanGap*(0.2+0.8*s.rng.ExpFloat64())), minClientGap)
}

// QUIC visitors (udp-botnet): HTTP/3 clients of the victim on UDP 443.
const (
	quicVisitors      = 500
	quicVisitorsFloor = 20
	// UDP payload sizes. Initial packets are padded to at least 1200 bytes
	// (RFC 9000, 14.1); later packets are either short ACKs or data. The
	// gap between 39 and 200 bytes is where the botnet's datagrams are, so
	// that an IP length range can tell them apart (see botPayMin).
	quicInitialMin = 1200
	quicInitialMax = 1350
	quicAckMin     = 20
	quicAckMax     = 39
	quicDataMin    = 200
	quicDataMax    = 1350
)

// quicClient runs QUIC connections to UDP 443, one at a time: one or two
// Initial packets, then a run of ACK and data packets from the same source
// port, at 1-5 pps with the ordinary clients' bursty gaps.
type quicClient struct {
	rng      *rand.Rand
	hdr      ipHdr
	meanGap  float64
	sport    uint16
	initials int // Initial packets still to send in this connection
	left     int // later packets still to send in this connection
}

func newQUICClient(r *rand.Rand, src netip.Addr) *quicClient {
	c := &quicClient{
		rng:     r,
		hdr:     ipHdr{src: src, id: uint16(r.Uint32()), flow: r.Uint32() & 0xfffff, df: true},
		meanGap: 1e9 / uniform(r, 1, 5),
	}
	c.hdr.ttl = uint8(64 - between(r, 6, 24))
	if r.IntN(3) == 0 {
		c.hdr.ttl += 64
	}
	return c
}

func (c *quicClient) firstAt(t int64) int64 { return t + int64(c.rng.Float64()*c.meanGap) }

func (c *quicClient) emit(t int64, f *frame) int64 {
	r := c.rng
	if c.initials == 0 && c.left == 0 {
		c.sport = ephemeralPort(r)
		c.initials = 1 + r.IntN(2)
		c.left = 2 + min(int(r.ExpFloat64()*20), 300)
	}
	var pay int
	switch {
	case c.initials > 0:
		pay = between(r, quicInitialMin, quicInitialMax)
		c.initials--
	case r.IntN(100) < 65:
		pay = between(r, quicAckMin, quicAckMax)
		c.left--
	default:
		pay = between(r, quicDataMin, quicDataMax)
		c.left--
	}
	f.udp(&c.hdr, c.sport, 443, pay)
	c.hdr.id++
	return t + max(int64(c.meanGap*(0.2+0.8*r.ExpFloat64())), minClientGap)
}

// ipLen returns the IP total length of a UDP datagram with payload bytes
// from a's family.
func ipLen(a netip.Addr, payload int) uint16 {
	if a.Is6() {
		return uint16(ipv6HeaderLen + udpHeaderLen + payload)
	}
	return uint16(ipv4HeaderLen + udpHeaderLen + payload)
}

// udpLens returns the IP length range of UDP payloads [lo, hi] over the
// address families of addrs.
func udpLens(addrs []netip.Addr, lo, hi int) LenRange {
	r := LenRange{Min: 0xffff}
	for _, a := range addrs {
		r.Min = min(r.Min, ipLen(a, lo))
		r.Max = max(r.Max, ipLen(a, hi))
	}
	return r
}

// addNTPServers adds the victim's NTP servers, 198.18.1.123 and up.
func (j *job) addNTPServers() {
	o := j.opt
	var addrs []netip.Addr
	for i := range ntpServers {
		r := newRand(o.Seed, streamNTPServer, i)
		a := ntpServerAddr(i)
		j.used4.add(a)
		addrs = append(addrs, a)
		s := &ntpServer{rng: r, hdr: ipHdr{src: a, ttl: uint8(64 - between(r, 4, 16)), id: uint16(r.Uint32())}, meanGap: 1e9 / uniform(r, 0.25, 1)}
		j.sched.add(int64(r.Float64()*s.meanGap), j.end, s)
	}
	j.benign = append(j.benign, addrs...)
	n := ipLen(addrs[0], ntpPayload)
	j.labels.Services = append(j.labels.Services, Service{
		Name: "ntp", Protocol: "udp", SrcPort: 123, IPLens: []LenRange{{n, n}}, Sources: addrs,
	})
}

// addQUICVisitors adds the QUIC clients (10% IPv6), drawn from the benign
// client pools like the flash crowd's visitors.
func (j *job) addQUICVisitors() {
	o := j.opt
	n := o.count(quicVisitors, quicVisitorsFloor)
	plan := newRand(o.Seed, streamPlanQUIC, 0)
	addrs := drawBenign4(plan, n-n/10, &j.used4)
	addrs = append(addrs, drawBenign6(plan, n/10, j.used6)...)
	for i, a := range addrs {
		c := newQUICClient(newRand(o.Seed, streamQUIC, i), a)
		j.sched.add(c.firstAt(0), j.end, c)
	}
	j.benign = append(j.benign, addrs...)
	j.labels.Services = append(j.labels.Services, Service{
		Name: "quic", Protocol: "udp", DstPort: 443,
		IPLens: []LenRange{
			udpLens(addrs, quicAckMin, quicAckMax),
			udpLens(addrs, quicDataMin, max(quicDataMax, quicInitialMax)),
		},
		Sources: sortAddrs(append([]netip.Addr(nil), addrs...)),
	})
}
