package synth

import (
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Default sizes at Scale 1.
const (
	benignClients4   = 2000
	benignClients6   = 200
	heavyClients     = 5
	resolvers        = 2
	flashClients     = 3000
	reflectors       = 1500
	carpetPerNet     = 200
	singleSourcePPS  = 20000
	spoofedPPS       = 30000
	rotationPPS      = 20000
	carpetSourcePPS  = 100
	benchAttackStart = 5 * second
)

// job is a scenario assembled and ready to write: its sources are scheduled
// and its labels filled except for what is only known after writing (packet
// counts, and the end of Bench).
type job struct {
	opt    Options
	sched  schedule
	labels Labels
	// counts[i] counts the packets of labels.Attacks[i].
	counts []uint64
	limit  uint64 // stop after this many packets (Bench); 0 = no limit
	end    int64  // capture end in ns, forever for Bench
	used4  set15  // benign IPv4 sources, for spoofed floods to avoid
	used6  map[netip.Prefix]bool
	benign []netip.Addr
}

func newJob(s Scenario, o Options) (*job, error) {
	if !s.valid() {
		return nil, fmt.Errorf("unknown scenario %q", s)
	}
	tl := o.timeline()
	j := &job{opt: o, used6: map[netip.Prefix]bool{}}
	j.end = tl.warm + tl.window + tl.tail
	switch s {
	case Pulsing:
		j.end = tl.warm + int64(o.pulseCycles()-1)*pulsePeriod + pulseOn + tl.tail
	case Bench:
		j.end = forever
		j.limit = uint64(o.Packets)
	}
	var warm string
	if o.WarmUp > 0 {
		warm = o.WarmUp.String()
	}
	var fs float64
	if o.FloodScale != 1 {
		fs = o.FloodScale
	}
	j.labels = Labels{
		WarmUp:     warm,
		FloodScale: fs,
		Scenario:   s,
		Seed:       o.Seed,
		Scale:      o.Scale,
		Start:      o.Start,
		End:        j.at(j.end),
		TickHint:   "1s",
		Victims:    []netip.Addr{victimAddr4(), victimAddr6()},
		Attacks:    []Attack{},
	}

	// Background first, so its sources get the lowest schedule ids and keep
	// their order whatever the event adds.
	j.addBackground()
	ev, evEnd := tl.warm, tl.warm+tl.window
	switch s {
	case FlashCrowd:
		j.addFlashCrowd(ev, evEnd)
	case SingleSource:
		j.addSingleSource(ev, evEnd, pulse{}, 1)
	case SpoofedSYN:
		j.addSpoofed(ev, evEnd, o.floodPPS(spoofedPPS))
	case UDPReflection:
		j.addReflection(ev, evEnd)
	case Carpet:
		j.addCarpet(ev, evEnd)
	case IPv6Rotation:
		j.addRotation(ev, evEnd)
	case Pulsing:
		n := o.pulseCycles()
		j.addSingleSource(ev, ev+int64(n-1)*pulsePeriod+pulseOn, pulse{origin: ev, on: pulseOn, period: pulsePeriod}, n)
	case ReflectionMix:
		j.addNTPServers()
		j.addReflectionMix(ev, evEnd)
	case UDPBotnet:
		j.addQUICVisitors()
		j.addBotnet(ev, evEnd)
	case SpoofedSYNServed:
		j.addServedSYN(ev, evEnd, o.floodPPS(spoofedPPS))
	case Bench:
		j.addSingleSource(benchAttackStart, forever, pulse{}, 1)
		j.addSpoofed(benchAttackStart, forever, o.floodPPS(singleSourcePPS))
	}

	j.labels.BenignSources = sortAddrs(j.benign)
	j.labels.BenignSourcesCount = len(j.labels.BenignSources)
	j.labels.BenignPrefixes = coveringPrefixes(j.labels.BenignSources)
	return j, nil
}

// at converts a time in ns from the capture start to wall-clock time.
func (j *job) at(t int64) time.Time {
	if t == forever {
		return time.Time{}
	}
	return j.opt.Start.Add(time.Duration(t))
}

// attack appends an attack label and returns its index.
func (j *job) attack(a Attack) int {
	j.labels.Attacks = append(j.labels.Attacks, a)
	j.counts = append(j.counts, 0)
	return len(j.labels.Attacks) - 1
}

// addBackground adds resolvers, heavy clients and ordinary IPv4 and IPv6
// clients, all running for the whole capture.
func (j *job) addBackground() {
	o := j.opt
	for i := range resolvers {
		r := newRand(o.Seed, streamResolver, i)
		a := resolverAddr(i)
		j.used4.add(a)
		j.benign = append(j.benign, a)
		j.labels.Resolvers = append(j.labels.Resolvers, a)
		s := &resolver{rng: r, hdr: ipHdr{src: a, ttl: 60, id: uint16(r.Uint32())}, meanGap: 1e9 / uniform(r, 1, 3)}
		j.sched.add(int64(r.Float64()*s.meanGap), j.end, s)
	}
	heavy := o.count(heavyClients, 2)
	if o.HeavyClients > 0 {
		heavy = o.HeavyClients
	}
	for i := range heavy {
		r := newRand(o.Seed, streamHeavy, i)
		a := heavyAddr(i)
		j.used4.add(a)
		j.benign = append(j.benign, a)
		j.labels.HeavyClients = append(j.labels.HeavyClients, a)
		c := newClient(r, a, uniform(r, 300, 500), 16, mixHeavy())
		c.steady, c.sessLen = true, 40
		j.sched.add(c.firstAt(0), j.end, c)
	}
	addrs := drawBenign4(newRand(o.Seed, streamPlanBenign4, 0), o.count(benignClients4, 20), &j.used4)
	j.addClients(addrs, streamClient4)
	addrs = drawBenign6(newRand(o.Seed, streamPlanBenign6, 0), o.count(benignClients6, 5), j.used6)
	j.addClients(addrs, streamClient6)
}

// addClients adds ordinary clients at 0.5-5 pps, log-uniform: most are slow,
// a few busy.
func (j *job) addClients(addrs []netip.Addr, s stream) {
	for i, a := range addrs {
		r := newRand(j.opt.Seed, s, i)
		pps := 0.5 * math.Pow(10, r.Float64())
		c := newClient(r, a, pps, 1, mixOrdinary())
		j.sched.add(c.firstAt(0), j.end, c)
	}
	j.benign = append(j.benign, addrs...)
}

// addFlashCrowd adds brand-new web clients (10% IPv6) at 2-10 pps each,
// arriving over the first seconds of [start, end) and browsing until end.
func (j *job) addFlashCrowd(start, end int64) {
	o := j.opt
	n := o.count(flashClients, 50)
	plan := newRand(o.Seed, streamPlanFlash, 0)
	addrs := drawBenign4(plan, n-n/10, &j.used4)
	addrs = append(addrs, drawBenign6(plan, n/10, j.used6)...)
	ramp := min(5*second, (end-start)/3)
	for i, a := range addrs {
		r := newRand(o.Seed, streamFlash, i)
		c := newClient(r, a, uniform(r, 2, 10), 1, mixWeb())
		j.sched.add(start+r.Int64N(ramp), end, c)
	}
	j.benign = append(j.benign, addrs...)
	j.labels.FlashCrowd = &Window{Start: j.at(start), End: j.at(end)}
}

// addSingleSource adds the UDP flood of 198.19.1.1, continuous (cycles 1) or
// pulsed, with one label per pulse.
func (j *job) addSingleSource(start, end int64, p pulse, cycles int) {
	a := singleAttacker()
	kind, on, period := KindSingleSource, end-start, int64(0)
	if p.period > 0 {
		kind, on, period = KindPulse, p.on, p.period
	}
	pps := j.opt.floodPPS(singleSourcePPS)
	first := len(j.labels.Attacks)
	for k := range cycles {
		s := start + int64(k)*period
		j.attack(Attack{
			Kind: kind, Window: Window{Start: j.at(s), End: j.at(min(s+on, end))}, Protocol: "udp",
			Sources: []netip.Addr{a}, Prefixes: []netip.Prefix{netip.PrefixFrom(a, 32)},
			PPS: pps, SourcePPS: pps,
		})
	}
	fl := newFlood(floodUDP, newRand(j.opt.Seed, streamFlood, 0), ipHdr{src: a, ttl: 57}, pps, &j.counts, first)
	fl.payMin, fl.payMax = 18, 64 // 60-106 byte frames
	fl.pulse = p
	j.sched.add(fl.firstAt(start), end, fl)
}

// addSpoofed adds a SYN flood from random addresses of 198.18.0.0/15 that
// are not benign sources.
func (j *job) addSpoofed(start, end int64, pps float64) {
	l := j.attack(Attack{
		Kind: KindSpoofed, Window: Window{Start: j.at(start), End: j.at(end)}, Protocol: "syn",
		Prefixes: []netip.Prefix{benchmarking4()}, PPS: pps,
	})
	fl := newFlood(floodSpoofedSYN, newRand(j.opt.Seed, streamFlood, 1), ipHdr{}, pps, &j.counts, l)
	fl.avoid = &j.used4
	j.sched.add(fl.firstAt(start), end, fl)
}

// addReflection adds reflectors answering forged requests: each sends large
// UDP datagrams from the service port at 40-60 pps.
func (j *job) addReflection(start, end int64) {
	o := j.opt
	addrs := drawReflectors(newRand(o.Seed, streamPlanReflectors, 0), o.count(reflectors, 50))
	floods := make([]*flood, len(addrs))
	total := 0.0
	for i, a := range addrs {
		r := newRand(o.Seed, streamReflector, i)
		pps := uniform(r, 40, 60)
		total += pps
		fl := newFlood(floodReflected, r, ipHdr{src: a, ttl: uint8(between(r, 40, 60)), id: uint16(r.Uint32())}, pps, &j.counts, 0)
		fl.port = o.ReflectionPort
		fl.payMin, fl.payMax = 1200-42, 1400-42 // 1200-1400 byte frames
		floods[i] = fl
	}
	l := j.attack(Attack{
		Kind: KindReflection, Window: Window{Start: j.at(start), End: j.at(end)}, Protocol: "udp",
		Sources: sortAddrs(append([]netip.Addr(nil), addrs...)), Prefixes: coveringPrefixes(addrs),
		UDPSrcPort: o.ReflectionPort, PPS: math.Round(total), SourcePPS: 50,
	})
	for _, fl := range floods {
		fl.label = l
		j.sched.add(fl.firstAt(start), end, fl)
	}
}

// addCarpet adds ~100 pps sources spread over three /24s: UDP from the first
// two, bare SYNs from the third. Each protocol gets its own label.
func (j *job) addCarpet(start, end int64) {
	o := j.opt
	nets := drawCarpet(newRand(o.Seed, streamPlanCarpet, 0), o.count(carpetPerNet, 10))
	w := Window{Start: j.at(start), End: j.at(end)}
	groups := []struct {
		proto string
		kind  floodKind
		nets  []int
	}{{"udp", floodUDP, []int{0, 1}}, {"syn", floodSYN, []int{2}}}
	idx := 0
	for _, g := range groups {
		var srcs []netip.Addr
		var prefixes []netip.Prefix
		for _, n := range g.nets {
			srcs = append(srcs, nets[n]...)
			prefixes = append(prefixes, carpetPrefix(n))
		}
		l := j.attack(Attack{
			Kind: KindCarpet, Window: w, Protocol: g.proto,
			Sources: sortAddrs(append([]netip.Addr(nil), srcs...)), Prefixes: prefixes,
			PPS: float64(len(srcs) * carpetSourcePPS), SourcePPS: carpetSourcePPS,
		})
		for _, a := range srcs {
			r := newRand(o.Seed, streamCarpet, idx)
			idx++
			fl := newFlood(g.kind, r, ipHdr{src: a, ttl: uint8(between(r, 45, 60)), id: uint16(r.Uint32())}, uniform(r, 90, 110), &j.counts, l)
			fl.payMin, fl.payMax = 18, 470 // 60-512 byte frames
			j.sched.add(fl.firstAt(start), end, fl)
		}
	}
}

// addRotation adds the IPv6 UDP flood from 2001:db8:bad:1::/64 whose
// interface id changes every 30-70 packets.
func (j *job) addRotation(start, end int64) {
	pps := j.opt.floodPPS(rotationPPS)
	l := j.attack(Attack{
		Kind: KindIPv6Rotation, Window: Window{Start: j.at(start), End: j.at(end)}, Protocol: "udp",
		Prefixes: []netip.Prefix{rotationPrefix()}, PPS: pps,
	})
	fl := newFlood(floodRotatingV6, newRand(j.opt.Seed, streamFlood, 2), ipHdr{ttl: 52}, pps, &j.counts, l)
	fl.payMin, fl.payMax = 10, 200 // 72-262 byte frames
	j.sched.add(fl.firstAt(start), end, fl)
}
