package detector

import "encoding/binary"

// keyState is what the detector remembers about one source or prefix. It is
// kept small (48 bytes) because there may be millions of sources.
type keyState struct {
	pps, bps ewma
	// lastTick is the engine tick in which the key was last seen.
	lastTick uint32
	// samples counts ticks the key was seen in, saturating.
	samples uint16
	// over counts consecutive ticks over threshold; calm consecutive ticks
	// below the exit level while anomalous.
	over, calm uint8
	flags      keyFlags
}

type keyFlags uint8

const (
	// flagAnomalous: an attack by this key is under way (attack_start sent).
	flagAnomalous keyFlags = 1 << iota
	// flagBanned: a detector ban for exactly this key is active.
	flagBanned
	// flagLive: the slot is in use (free slots have it clear).
	flagLive
	// flagListed: the key is on the engine's list of keys followed even
	// in ticks it is absent from.
	flagListed
	// flagNoBan: a ban was refused because the key is allowlisted; do
	// not retry in this attack.
	flagNoBan
)

// established is how many ticks a key must have been seen in before its own
// baseline is trusted over the population prior.
const established = 3

// table maps keys to dense state slots. Freed slots are reused, so in steady
// state it allocates nothing.
type table[K comparable] struct {
	index  map[K]int32
	keys   []K
	states []keyState
	free   []int32
	sweep  int // next slot the incremental idle sweep looks at
}

func newTable[K comparable]() table[K] {
	return table[K]{index: make(map[K]int32)}
}

func (t *table[K]) len() int { return len(t.index) }

// get returns the state of k, or nil.
func (t *table[K]) get(k K) *keyState {
	if i, ok := t.index[k]; ok {
		return &t.states[i]
	}
	return nil
}

// add creates a zero state for k (which must be absent).
func (t *table[K]) add(k K, tick uint32) *keyState {
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.keys[i] = k
	} else {
		i = int32(len(t.states))
		t.keys = append(t.keys, k)
		t.states = append(t.states, keyState{})
	}
	t.index[k] = i
	t.states[i] = keyState{lastTick: tick, flags: flagLive}
	return &t.states[i]
}

// expire looks at up to n slots from where the last call stopped and frees
// keys unseen for longer than their timeout. Anomalous and banned keys are
// kept: the detector must remember who it is fighting.
func (t *table[K]) expire(now uint32, n int, idle, probation uint32) {
	for ; n > 0 && len(t.states) > 0; n-- {
		if t.sweep >= len(t.states) {
			t.sweep = 0
		}
		i := t.sweep
		t.sweep++
		s := &t.states[i]
		if s.flags&flagLive == 0 || s.flags&(flagAnomalous|flagBanned) != 0 {
			continue
		}
		limit := idle
		if s.samples < established {
			limit = probation
		}
		if now-s.lastTick > limit {
			delete(t.index, t.keys[i])
			var zero K
			t.keys[i] = zero
			*s = keyState{}
			t.free = append(t.free, int32(i))
		}
	}
}

// seenOnce remembers approximately which addresses were seen before, in a
// direct-mapped table of 32-bit tags: one slot per hash, overwritten on a
// collision. A false "seen" only lets a source be tracked one tick early; a
// false "not seen" one tick late.
type seenOnce struct {
	tags  []uint32
	shift uint
}

func newSeenOnce(bits uint) seenOnce {
	return seenOnce{tags: make([]uint32, 1<<bits), shift: 64 - bits}
}

// testAndSet reports whether a was seen before and records it.
func (f *seenOnce) testAndSet(a Addr) bool {
	lo := binary.LittleEndian.Uint64(a[:8])
	hi := binary.LittleEndian.Uint64(a[8:])
	// Multiplicative hashing: the high bits of the product depend on every
	// bit of the input (IPv4 addresses differ only in the top bytes of hi).
	h := hi*0x9e3779b97f4a7c15 ^ lo*0xc2b2ae3d27d4eb4f
	t := (h ^ h>>29) * 0xbf58476d1ce4e5b9
	i, tag := h>>f.shift, uint32(t>>32)|1
	if f.tags[i] == tag {
		return true
	}
	f.tags[i] = tag
	return false
}
