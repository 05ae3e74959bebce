package synth

import (
	"fmt"
	"math"
	"time"
)

// Scenario names a synthetic capture: the benign background plus at most one
// event. The names are also the file names WriteFiles uses.
type Scenario string

const (
	Benign        Scenario = "benign"         // background only
	FlashCrowd    Scenario = "flash-crowd"    // legitimate surge, not an attack
	SingleSource  Scenario = "single-source"  // one IPv4 source, UDP, 20 000 pps
	SpoofedSYN    Scenario = "spoofed-syn"    // SYN flood, random source per packet
	UDPReflection Scenario = "udp-reflection" // ~1500 reflectors from port 53
	Carpet        Scenario = "carpet"         // ~600 sources in three /24s
	IPv6Rotation  Scenario = "ipv6-rotation"  // one /64, interface id rotating
	Pulsing       Scenario = "pulsing"        // 5 s on, 10 s off, UDP
	// The signature scenarios: floods no list of sources or prefixes can
	// name, beside benign traffic on the same ports.
	ReflectionMix    Scenario = "reflection-mix"     // DNS, NTP, memcached, CLDAP, SSDP reflectors
	UDPBotnet        Scenario = "udp-botnet"         // ~30 000 bots at ~1 pps to UDP 443, beside QUIC
	SpoofedSYNServed Scenario = "spoofed-syn-served" // real-looking spoofed SYNs to 443
	// Bench is exactly Options.Packets packets of background plus a
	// single-source UDP flood and a spoofed SYN flood, for throughput
	// benchmarks. It has no warm-up and is not in Scenarios.
	Bench Scenario = "bench"
)

// Scenarios returns the source and prefix detection scenarios (all but
// Bench and the signature scenarios) in a fixed order.
func Scenarios() []Scenario {
	return []Scenario{Benign, FlashCrowd, SingleSource, SpoofedSYN, UDPReflection, Carpet, IPv6Rotation, Pulsing}
}

// SignatureScenarios returns the scenarios of issue #13 in a fixed order:
// floods that only a signature rule (protocol, ports, lengths) can stop, or,
// in SpoofedSYNServed, that not even a signature can separate from the
// server's own traffic. They are kept out of Scenarios so that tests
// replaying every detection scenario opt in to them.
func SignatureScenarios() []Scenario {
	return []Scenario{ReflectionMix, UDPBotnet, SpoofedSYNServed}
}

func (s Scenario) valid() bool {
	switch s {
	case Benign, FlashCrowd, SingleSource, SpoofedSYN, UDPReflection, Carpet, IPv6Rotation, Pulsing, Bench,
		ReflectionMix, UDPBotnet, SpoofedSYNServed:
		return true
	}
	return false
}

const (
	// DefaultSnapLen keeps every header of every frame (Ethernet + IPv6 +
	// TCP with options is 94 bytes) but not the zero payload, so a scale-1
	// reflection capture is hundreds of megabytes instead of gigabytes. The
	// pcap original length still records the full wire size.
	DefaultSnapLen = 128
	// MaxSnapLen keeps whole frames.
	MaxSnapLen = 65535
	// DefaultBenchPackets is the size of the Bench capture.
	DefaultBenchPackets = 1_000_000
	// maxScale bounds Scale so address pools cannot run dry.
	maxScale = 4
)

// DefaultSnapLen must keep every header a frame builder writes; this fails to
// compile otherwise.
const _ = uint(DefaultSnapLen - maxHeaderLen)

// DefaultStart is the capture start when Options.Start is zero.
func DefaultStart() time.Time { return time.Date(2024, 11, 5, 18, 0, 0, 0, time.UTC) }

// Options tune a capture. The zero value gives the default capture for seed 0.
type Options struct {
	// Seed selects the random streams; equal options give identical bytes.
	Seed int64
	// Scale shrinks (or grows) the capture: 1 (or 0) is the default size.
	// Durations scale but the warm-up before an event stays at least 60 s
	// and event windows at least 10 s; numbers of sources scale; per-source
	// rates and the rates of one-source floods do not, since they are what
	// a detector judges. At most 4.
	Scale float64
	// Start is the time of the capture start (default DefaultStart). It is
	// truncated to the microsecond, the pcap resolution.
	Start time.Time
	// SnapLen is the most bytes of a frame kept in the capture (default
	// DefaultSnapLen; MaxSnapLen keeps whole frames).
	SnapLen int
	// Packets is the exact number of packets of the Bench scenario (default
	// DefaultBenchPackets). Other scenarios ignore it.
	Packets int
	// WarmUp, if set, is the background before the event instead of what
	// Scale gives (at least 10 s): for small captures replayed with a
	// short detector warm-up, such as the committed testdata.
	WarmUp time.Duration
	// FloodScale multiplies the rates of the one-tool floods
	// (single-source, pulsing, spoofed, spoofed-syn-served, IPv6 rotation),
	// in (0, 1]; 0 means 1. In reflection-mix and udp-botnet it multiplies
	// the numbers of reflectors and bots instead (with Scale, keeping their
	// floors), since their per-source rates are what a detector judges.
	// udp-reflection and carpet ignore it. With Scale it makes captures
	// small enough to commit.
	FloodScale float64
	// HeavyClients, if set, is the number of heavy benign clients (300-500
	// pps each) instead of what Scale gives (at least 2); they are most
	// of the background's packets.
	HeavyClients int
	// ReflectionPort is the UDP source port of the reflectors in
	// UDPReflection (default 53, DNS; e.g. 123 for NTP, 11211 for
	// memcached).
	ReflectionPort uint16
	// BotnetPort is the UDP destination port of the botnet in UDPBotnet
	// (default 443, where the QUIC visitors go; e.g. 27015 for a game
	// server).
	BotnetPort uint16
}

// normalize fills defaults and checks ranges.
func (o Options) normalize() (Options, error) {
	switch {
	case o.Scale == 0:
		o.Scale = 1
	case !(o.Scale > 0 && o.Scale <= maxScale):
		return o, fmt.Errorf("scale %v out of range (0, %d]", o.Scale, maxScale)
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart()
	}
	o.Start = o.Start.UTC().Truncate(time.Microsecond)
	// Classic pcap stores unsigned 32-bit seconds; leave a day of room for
	// the capture itself.
	if y := o.Start.Year(); y < 1970 || y > 2105 {
		return o, fmt.Errorf("start %v outside the pcap time range (1970-2105)", o.Start)
	}
	switch {
	case o.SnapLen == 0:
		o.SnapLen = DefaultSnapLen
	case o.SnapLen < minFrameLen || o.SnapLen > MaxSnapLen:
		return o, fmt.Errorf("snap length %d out of range [%d, %d]", o.SnapLen, minFrameLen, MaxSnapLen)
	}
	switch {
	case o.Packets == 0:
		o.Packets = DefaultBenchPackets
	case o.Packets < 0:
		return o, fmt.Errorf("negative packet count %d", o.Packets)
	}
	if o.ReflectionPort == 0 {
		o.ReflectionPort = 53
	}
	if o.BotnetPort == 0 {
		o.BotnetPort = 443
	}
	if o.HeavyClients < 0 || o.HeavyClients > heavyClients*maxScale {
		return o, fmt.Errorf("heavy clients %d out of range [0, %d]", o.HeavyClients, heavyClients*maxScale)
	}
	if o.WarmUp != 0 && o.WarmUp < 10*time.Second {
		return o, fmt.Errorf("warm-up %v is shorter than 10s", o.WarmUp)
	}
	switch {
	case o.FloodScale == 0:
		o.FloodScale = 1
	case !(o.FloodScale > 0 && o.FloodScale <= 1):
		return o, fmt.Errorf("flood scale %v out of range (0, 1]", o.FloodScale)
	}
	return o, nil
}

// count scales a default number of sources, keeping at least floor.
func (o Options) count(base, floor int) int {
	return max(floor, int(math.Round(float64(base)*o.Scale)))
}

// floodCount scales the number of sources of a many-source flood by Scale
// and FloodScale, keeping at least floor.
func (o Options) floodCount(base, floor int) int {
	return max(floor, int(math.Round(float64(base)*o.Scale*o.FloodScale)))
}

// timeline is the shape of a capture, in ns from its start.
type timeline struct {
	warm   int64 // background only, before the event: the detector's warm-up
	window int64 // the event
	tail   int64 // background only, after the event: recovery
}

func (o Options) timeline() timeline {
	scaled := func(d int64) int64 { return int64(math.Round(float64(d) * o.Scale)) }
	warm := max(60*second, scaled(90*second))
	if o.WarmUp > 0 {
		warm = int64(o.WarmUp)
	}
	return timeline{
		warm:   warm,
		window: max(10*second, scaled(30*second)),
		tail:   max(10*second, scaled(30*second)),
	}
}

// floodPPS is the rate of a one-tool flood: base times FloodScale.
func (o Options) floodPPS(base float64) float64 { return base * o.FloodScale }

// Pulse pattern of the Pulsing scenario. The pattern itself does not scale
// (it is what is being detected); the number of cycles does.
const (
	pulseOn     = 5 * second
	pulsePeriod = 15 * second
	pulseCycles = 5
)

func (o Options) pulseCycles() int { return o.count(pulseCycles, 2) }
