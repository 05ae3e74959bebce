package synth

import (
	"math/rand/v2"
	"net/netip"
)

// Benign services of the signature scenarios: traffic on the very ports a
// signature rule against the scenario's flood would name, present from the
// capture start. A rule must spare it, by length or by exempting sources.

var _ source = (*ntpServer)(nil)

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

// ipLen returns the IP total length of a UDP datagram with payload bytes
// from a's family.
func ipLen(a netip.Addr, payload int) uint16 {
	if a.Is6() {
		return uint16(ipv6HeaderLen + udpHeaderLen + payload)
	}
	return uint16(ipv4HeaderLen + udpHeaderLen + payload)
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
