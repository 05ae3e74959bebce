package synth

import (
	"math"
	"net/netip"
)

// The signature scenarios (issue #13): floods whose sources are too many,
// too slow and too scattered to ban, but whose packets share a protocol, a
// port and a length range that a signature rule can name, beside benign
// traffic on the same port that the rule must spare.

// reflectedService is one kind of reflector in reflection-mix.
type reflectedService struct {
	name         string
	port         uint16 // UDP source port
	base, floor  int    // reflectors at Scale 1, and at least
	ppsLo, ppsHi float64
	lenLo, lenHi int  // IP total length of the responses
	late         bool // joins in the middle of the event window
}

// mixServices are the reflectors of reflection-mix. DNS answers are all
// longer than the resolvers' (at most 508 bytes) and NTP monlist answers
// (468 bytes) than the NTP servers' (76), so a length range spares the
// benign servers on both ports. Floors: ~2150 pps for the whole window and
// ~2350 pps from its middle, a flood still when Scale and FloodScale are
// tiny, and small enough to commit.
func mixServices() []reflectedService {
	return []reflectedService{
		{name: "dns", port: 53, base: 3000, floor: 100, ppsLo: 8, ppsHi: 16, lenLo: 540, lenHi: 1500},
		{name: "ntp", port: 123, base: 300, floor: 10, ppsLo: 60, ppsHi: 100, lenLo: 468, lenHi: 468},
		{name: "memcached", port: 11211, base: 100, floor: 5, ppsLo: 20, ppsHi: 40, lenLo: 1380, lenHi: 1420},
		{name: "cldap", port: 389, base: 400, floor: 10, ppsLo: 5, ppsHi: 15, lenLo: 1000, lenHi: 1500, late: true},
		{name: "ssdp", port: 1900, base: 1000, floor: 25, ppsLo: 2, ppsHi: 6, lenLo: 280, lenHi: 400, late: true},
	}
}

// Botnet of udp-botnet.
const (
	botnetBots  = 30000
	botnetFloor = 2100 // ~2100 pps: still a flood at the smallest scale
	// maxBots4 caps the IPv4 bots (at most half of drawScattered4's range
	// is ever drawn); beyond it, at large Scale, the rest are IPv6.
	maxBots4 = 50000
	// Bot datagrams: 60-120 bytes of payload (88-148 bytes of IPv4,
	// 108-168 of IPv6), in the gap of the QUIC visitors' lengths.
	botPayMin = 60
	botPayMax = 120
)

// addReflectionMix adds the reflectors of every mixServices kind, scattered
// over the benign and reflector ranges, each service one labelled attack.
// DNS, NTP and memcached run for the whole window; CLDAP and SSDP join at
// its middle (on a whole second), as attackers add vectors.
func (j *job) addReflectionMix(start, end int64) {
	o := j.opt
	svcs := mixServices()
	total := 0
	for _, s := range svcs {
		total += o.floodCount(s.base, s.floor)
	}
	addrs := drawScattered4(newRand(o.Seed, streamPlanMix, 0), total, &j.used4)
	mid := start + (end-start)/2/second*second
	idx := 0
	for _, s := range svcs {
		n := min(o.floodCount(s.base, s.floor), len(addrs))
		srcs := addrs[:n]
		addrs = addrs[n:]
		from := start
		if s.late {
			from = mid
		}
		floods := make([]*flood, n)
		pps := 0.0
		for i, a := range srcs {
			r := newRand(o.Seed, streamMixReflector, idx)
			idx++
			rate := uniform(r, s.ppsLo, s.ppsHi)
			pps += rate
			fl := newFlood(floodReflected, r, ipHdr{src: a, ttl: uint8(between(r, 40, 60)), id: uint16(r.Uint32())}, rate, &j.counts, 0)
			fl.port, fl.steady = s.port, true
			fl.payMin, fl.payMax = s.lenLo-ipv4HeaderLen-udpHeaderLen, s.lenHi-ipv4HeaderLen-udpHeaderLen
			floods[i] = fl
		}
		l := j.attack(Attack{
			Kind: KindReflection, Window: Window{Start: j.at(from), End: j.at(end)}, Protocol: "udp",
			Sources: sortAddrs(append([]netip.Addr(nil), srcs...)), Prefixes: coveringPrefixes(srcs),
			UDPSrcPort: s.port, Service: s.name, IPLen: &LenRange{uint16(s.lenLo), uint16(s.lenHi)},
			PPS: math.Round(pps), SourcePPS: (s.ppsLo + s.ppsHi) / 2,
		})
		for _, fl := range floods {
			fl.label = l
			j.sched.add(fl.firstAt(from), end, fl)
		}
	}
}

// addBotnet adds bots sending small UDP datagrams to Options.BotnetPort at
// 0.5-1.5 pps each, as quiet as ordinary clients: 90% IPv4 scattered over
// the benign and reflector ranges, 10% IPv6 in /64s of the benign IPv6
// clients' /36.
func (j *job) addBotnet(start, end int64) {
	o := j.opt
	n := o.floodCount(botnetBots, botnetFloor)
	plan := newRand(o.Seed, streamPlanBots, 0)
	addrs := drawScattered4(plan, min(n-n/10, maxBots4), &j.used4)
	addrs = append(addrs, drawBenign6(plan, n-len(addrs), j.used6)...)
	floods := make([]*flood, len(addrs))
	pps := 0.0
	for i, a := range addrs {
		r := newRand(o.Seed, streamBot, i)
		rate := uniform(r, 0.5, 1.5)
		pps += rate
		hdr := ipHdr{src: a, ttl: uint8(64 - between(r, 6, 24)), id: uint16(r.Uint32()), flow: r.Uint32() & 0xfffff}
		fl := newFlood(floodBot, r, hdr, rate, &j.counts, 0)
		fl.port, fl.steady = o.BotnetPort, true
		fl.payMin, fl.payMax = botPayMin, botPayMax
		floods[i] = fl
	}
	lens := udpLens(addrs, botPayMin, botPayMax)
	l := j.attack(Attack{
		Kind: KindBotnet, Window: Window{Start: j.at(start), End: j.at(end)}, Protocol: "udp",
		Sources: sortAddrs(append([]netip.Addr(nil), addrs...)), Prefixes: coveringPrefixes(addrs),
		DstPort: o.BotnetPort, IPLen: &lens, PPS: math.Round(pps), SourcePPS: 1,
	})
	for _, fl := range floods {
		fl.label = l
		j.sched.add(fl.firstAt(start), end, fl)
	}
}

// addServedSYN adds a SYN flood to port 443 from random addresses of
// 198.18.0.0/15 that are not benign sources, each SYN shaped like a benign
// client's (see flood.servedSYN): nothing but the sources tells them apart,
// and the sources are forged.
func (j *job) addServedSYN(start, end int64, pps float64) {
	const synLen = ipv4HeaderLen + tcpHeaderLen + 20 // optsSYN
	l := j.attack(Attack{
		Kind: KindSpoofed, Window: Window{Start: j.at(start), End: j.at(end)}, Protocol: "syn",
		Prefixes: []netip.Prefix{benchmarking4()}, DstPort: 443, IPLen: &LenRange{synLen, synLen}, PPS: pps,
	})
	fl := newFlood(floodServedSYN, newRand(j.opt.Seed, streamFlood, 3), ipHdr{}, pps, &j.counts, l)
	fl.avoid = &j.used4
	j.sched.add(fl.firstAt(start), end, fl)
}
