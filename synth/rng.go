package synth

import "math/rand/v2"

// stream names an independent random stream. Every traffic source and every
// address-plan step draws from its own stream, so for a given seed the
// background is byte-for-byte the same in every scenario (an attack's draws
// cannot shift it) and addresses do not depend on packet order.
type stream uint64

const (
	streamPlanBenign4 stream = iota + 1
	streamPlanBenign6
	streamPlanFlash
	streamPlanReflectors
	streamPlanCarpet
	streamClient4
	streamClient6
	streamHeavy
	streamResolver
	streamFlash
	streamFlood
	streamReflector
	streamCarpet
	// Added for the signature scenarios; appended so that the streams
	// above, and every existing capture, stay the same.
	streamNTPServer
	streamPlanMix
	streamMixReflector
	streamPlanQUIC
	streamQUIC
	streamPlanBots
	streamBot
)

// newRand returns the PCG stream for role s and index idx under seed.
func newRand(seed int64, s stream, idx int) *rand.Rand {
	k := uint64(seed)
	return rand.New(rand.NewPCG(splitmix64(k), splitmix64(k^splitmix64(uint64(s)<<32|uint64(uint32(idx))))))
}

// splitmix64 spreads nearby inputs (seeds 1, 2, 3; stream indexes) over the
// whole PCG state space.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// between returns a uniform integer in [lo, hi].
func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// uniform returns a uniform float in [lo, hi).
func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// ephemeralPort returns a port from the Linux default ephemeral range.
func ephemeralPort(r *rand.Rand) uint16 { return uint16(between(r, 32768, 60999)) }

// anyHighPort returns a port above the well-known range, as flood tools pick.
func anyHighPort(r *rand.Rand) uint16 { return uint16(between(r, 1024, 65535)) }
