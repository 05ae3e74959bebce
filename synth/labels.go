package synth

import (
	"net/netip"
	"slices"
	"time"
)

// Kind is the kind of an attack in Labels.
type Kind string

const (
	KindSingleSource Kind = "single-source"
	KindSpoofed      Kind = "spoofed"
	KindReflection   Kind = "reflection"
	KindCarpet       Kind = "carpet"
	KindIPv6Rotation Kind = "ipv6-rotation"
	KindPulse        Kind = "pulse"
	KindBotnet       Kind = "botnet"
)

// Window is a time interval [Start, End).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Contains reports whether t is in [Start, End).
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// Attack is the ground truth for one attack window.
type Attack struct {
	Kind Kind `json:"kind"`
	Window
	// Protocol is the detector class name of the attack packets: "syn",
	// "tcp", "udp", "icmp" or "other".
	Protocol string `json:"protocol"`
	// Sources lists the attacking addresses, sorted, where they are a finite
	// set (single-source, pulse, reflection, carpet, botnet); empty for
	// spoofed and ipv6-rotation.
	Sources []netip.Addr `json:"sources,omitempty"`
	// Prefixes are the narrowest prefixes covering the attack: the /32 of
	// a single source, the /24s of reflectors and carpet sources, the /24s
	// and /64s of bots, the /64 of the rotation. Those of reflection-mix
	// and udp-botnet hold benign clients too, and those of different
	// reflection-mix services overlap: Sources, not Prefixes, say which
	// attack a listed source belongs to. For spoofed it is 198.18.0.0/15, the range the forged
	// addresses are drawn from, which also holds every benign IPv4 source:
	// a detector must never ban it.
	Prefixes []netip.Prefix `json:"prefixes"`
	// UDPSrcPort is the common UDP source port (reflection only).
	UDPSrcPort uint16 `json:"udp_src_port,omitempty"`
	// Service names the reflected protocol in reflection-mix: dns, ntp,
	// memcached, cldap or ssdp.
	Service string `json:"service,omitempty"`
	// DstPort is the common destination port of the Protocol (udp-botnet,
	// spoofed-syn-served).
	DstPort uint16 `json:"dst_port,omitempty"`
	// IPLen bounds the IP total length of the attack packets (IPv6:
	// payload length plus 40), as a FlowSpec length component counts it.
	// Set by the signature scenarios only.
	IPLen *LenRange `json:"ip_len,omitempty"`
	// PPS is the nominal aggregate packet rate, SourcePPS the nominal mean
	// rate of one source (0 when sources change per packet).
	PPS       float64 `json:"pps"`
	SourcePPS float64 `json:"source_pps,omitempty"`
	// Packets is the number of packets of this attack in the capture.
	Packets uint64 `json:"packets"`
}

// Labels is the ground truth of one capture, written next to it as JSON.
type Labels struct {
	Scenario Scenario `json:"scenario"`
	Seed     int64    `json:"seed"`
	Scale    float64  `json:"scale"`
	// WarmUp and FloodScale are set when the options overrode them.
	WarmUp     string  `json:"warm_up,omitempty"`
	FloodScale float64 `json:"flood_scale,omitempty"`
	// Start and End bound the capture: every packet time t has
	// Start <= t < End.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// TickHint is the tick length the rates are designed around.
	TickHint string `json:"tick_hint"`
	// Packets is the number of packets in the capture.
	Packets uint64 `json:"packets"`
	// Victims are the destinations of all traffic (IPv4 and IPv6).
	Victims []netip.Addr `json:"victims"`
	// Attacks lists the attack windows; empty for benign and flash-crowd.
	Attacks []Attack `json:"attacks"`
	// FlashCrowd is the window of the flash crowd, nil in other scenarios.
	FlashCrowd *Window `json:"flash_crowd"`
	// BenignSourcesCount is len(BenignSources).
	BenignSourcesCount int `json:"benign_sources_count"`
	// BenignPrefixes are the /24s (IPv4) and /64s (IPv6) holding a benign
	// source, sorted.
	BenignPrefixes []netip.Prefix `json:"benign_prefixes"`
	// HeavyClients send 300-500 pps each for the whole capture (a
	// carrier-grade NAT and the like): legitimate but far above ordinary
	// clients.
	HeavyClients []netip.Addr `json:"heavy_clients"`
	// Resolvers send DNS responses (UDP from port 53) at a low rate.
	Resolvers []netip.Addr `json:"resolvers"`
	// Services are the benign sources a signature scenario adds to the
	// background, sending on the ports its attacks use: NTP servers in
	// reflection-mix, QUIC visitors in udp-botnet. Empty elsewhere.
	// BenignServices adds the resolvers.
	Services []Service `json:"services,omitempty"`
	// BenignSources is every source address of background and flash-crowd
	// traffic (including heavy clients and resolvers), sorted. Every one of
	// them sends at least one packet, and no attack uses any of them.
	BenignSources []netip.Addr `json:"benign_sources"`
}

// Service is a group of benign sources of one service, and the ports and IP
// lengths they send with: what a signature rule on those ports must spare.
type Service struct {
	Name     string `json:"name"`     // dns, ntp, quic
	Protocol string `json:"protocol"` // detector class name: "udp"
	// SrcPort (servers answering the victim) or DstPort (clients of the
	// victim) is the port every packet of the service uses.
	SrcPort uint16 `json:"src_port,omitempty"`
	DstPort uint16 `json:"dst_port,omitempty"`
	// IPLens are the ranges of IP total length (as in Attack) the
	// service's packets fall in, ascending and disjoint: a length range
	// between them spares the service.
	IPLens []LenRange `json:"ip_lens"`
	// Sources are the service's addresses, sorted; all are also in
	// BenignSources and all send from the capture start.
	Sources []netip.Addr `json:"sources"`
}

// LenRange is an inclusive range of IP total lengths.
type LenRange struct {
	Min uint16 `json:"min"`
	Max uint16 `json:"max"`
}

// Contains reports whether n is in the range.
func (r LenRange) Contains(n uint16) bool { return n >= r.Min && n <= r.Max }

// BenignServices returns the benign services of the capture: the DNS
// resolvers every capture has, then Services.
func (l Labels) BenignServices() []Service {
	dns := Service{
		Name: "dns", Protocol: "udp", SrcPort: 53,
		IPLens:  []LenRange{{ipv4HeaderLen + udpHeaderLen + resolverPayMin, ipv4HeaderLen + udpHeaderLen + resolverPayMax}},
		Sources: l.Resolvers,
	}
	return append([]Service{dns}, l.Services...)
}

// IsBenign reports whether a (IPv4, IPv4-mapped or IPv6) is a benign source.
func (l Labels) IsBenign(a netip.Addr) bool {
	_, ok := slices.BinarySearchFunc(l.BenignSources, a.Unmap(), netip.Addr.Compare)
	return ok
}

// IsAttacker reports whether a is an attack source: listed in an attack's
// Sources, or inside one of its Prefixes and neither benign nor a victim
// (which covers the forged addresses of spoofed floods and the rotating IPv6
// addresses).
func (l Labels) IsAttacker(a netip.Addr) bool {
	a = a.Unmap()
	if slices.Contains(l.Victims, a) {
		return false
	}
	for _, at := range l.Attacks {
		if _, ok := slices.BinarySearchFunc(at.Sources, a, netip.Addr.Compare); ok {
			return true
		}
		for _, p := range at.Prefixes {
			if p.Contains(a) && !l.IsBenign(a) {
				return true
			}
		}
	}
	return false
}

// BenignOverlaps reports whether p contains a benign source, i.e. whether a
// ban of p would hit legitimate traffic. IPv4-mapped prefixes (as the
// detector stores IPv4) are understood.
func (l Labels) BenignOverlaps(p netip.Prefix) bool {
	p = unmapPrefix(p).Masked()
	if !p.IsValid() {
		return false
	}
	// Sorted addresses inside one prefix are contiguous, starting at the
	// first one not below the prefix's base address.
	i, _ := slices.BinarySearchFunc(l.BenignSources, p.Addr(), netip.Addr.Compare)
	return i < len(l.BenignSources) && p.Contains(l.BenignSources[i])
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96).
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// sortAddrs sorts and deduplicates addresses in place.
func sortAddrs(a []netip.Addr) []netip.Addr {
	slices.SortFunc(a, netip.Addr.Compare)
	return slices.Compact(a)
}

// coveringPrefixes returns the sorted distinct /24s (IPv4) and /64s (IPv6)
// of addrs.
func coveringPrefixes(addrs []netip.Addr) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		bits := 24
		if a.Is6() {
			bits = 64
		}
		out = append(out, netip.PrefixFrom(a, bits).Masked())
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
