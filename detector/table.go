package detector

import (
	"encoding/binary"
	"math/bits"
)

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
	// flagTripLevel: the source has a trip level of its own (trip.go).
	flagTripLevel
)

// established is how many ticks a key must have been seen in before its own
// baseline is trusted over the population prior.
const established = 3

// slotArena holds a table's slots densely: keyState for the prefixes, a
// sourceRec (address and state together) for the sources. Freed slots are
// reused (last freed first), so in steady state it allocates nothing, and
// the idle sweep walks the slots in order.
type slotArena[T any] struct {
	slots []T
	free  []int32
	sweep int // next slot the incremental idle sweep looks at
}

// alloc stores v in a free slot, or a new one, and returns the slot and
// whether it is new (appended) rather than reused.
func (a *slotArena[T]) alloc(v T) (i int32, appended bool) {
	if n := len(a.free); n > 0 {
		i = a.free[n-1]
		a.free = a.free[:n-1]
		a.slots[i] = v
		return i, false
	}
	a.slots = append(a.slots, v)
	return int32(len(a.slots) - 1), true
}

// expire looks at up to n slots from where the last call stopped and frees
// those whose state (state returns a slot's) keyState.expired says to,
// calling forget for each before its slot is cleared.
func (a *slotArena[T]) expire(n int, now, idle, probation uint32, state func(*T) *keyState, forget func(i int32)) {
	for ; n > 0 && len(a.slots) > 0; n-- {
		if a.sweep >= len(a.slots) {
			a.sweep = 0
		}
		i := a.sweep
		a.sweep++
		if state(&a.slots[i]).expired(now, idle, probation) {
			forget(int32(i))
			var zero T
			a.slots[i] = zero
			a.free = append(a.free, int32(i))
		}
	}
}

// expired reports whether the idle sweep frees a key: live, unseen for
// longer than its timeout, and neither anomalous nor banned (the detector
// must remember who it is fighting).
func (s *keyState) expired(now, idle, probation uint32) bool {
	if s.flags&flagLive == 0 || s.flags&(flagAnomalous|flagBanned) != 0 {
		return false
	}
	limit := idle
	if s.samples < established {
		limit = probation
	}
	return now-s.lastTick > limit
}

// table maps keys to dense state slots. It serves the prefixes, which are
// few and looked up once per tick each; the sources, looked up once per
// source per tick, have sourceTable.
type table[K comparable] struct {
	slotArena[keyState]
	index map[K]int32
	keys  []K
}

func newTable[K comparable]() table[K] {
	return table[K]{index: make(map[K]int32)}
}

func (t *table[K]) len() int { return len(t.index) }

// get returns the state of k, or nil.
func (t *table[K]) get(k K) *keyState {
	if i, ok := t.index[k]; ok {
		return &t.slots[i]
	}
	return nil
}

// add creates a zero state for k (which must be absent).
func (t *table[K]) add(k K, tick uint32) *keyState {
	i, appended := t.alloc(keyState{lastTick: tick, flags: flagLive})
	if appended {
		t.keys = append(t.keys, k)
	} else {
		t.keys[i] = k
	}
	t.index[k] = i
	return &t.slots[i]
}

// expire frees idle keys; see slotArena.expire.
func (t *table[K]) expire(now uint32, n int, idle, probation uint32) {
	t.slotArena.expire(n, now, idle, probation, func(s *keyState) *keyState { return s }, func(i int32) {
		delete(t.index, t.keys[i])
		var zero K
		t.keys[i] = zero
	})
}

// sourceTable is table[Addr] laid out for millions of sources looked up
// once each per tick. A slot holds the address next to its state (64 bytes,
// one cache line), and the hash index holds only a hash tag and the slot,
// 8 bytes an entry: a lookup reads one index line and the slot's line,
// which the caller reads anyway. The built-in map costs several cache
// misses at a million keys and twice the memory.
type sourceTable struct {
	recs slotArena[sourceRec]
	// index is open-addressed with linear probing; its length is a power
	// of two.
	index []indexEnt
	shift uint // 64 - log2(len(index)): a hash's top bits pick its home
	n     int
	key   AddrHash
}

type sourceRec struct {
	keyState
	addr Addr
}

type indexEnt struct {
	tag  uint32 // the hash's low bits
	slot uint32 // the slot + 1; 0 marks an empty entry
}

func newSourceTable() sourceTable {
	t := sourceTable{key: NewAddrHash()}
	t.resize(1024)
	return t
}

func (t *sourceTable) len() int { return t.n }

func (t *sourceTable) hash(a Addr) uint64 { return t.key.Sum(&a) }

// get returns the state of a, or nil.
func (t *sourceTable) get(a Addr) *keyState {
	if i := t.find(a, t.hash(a)); i >= 0 {
		return &t.recs.slots[i].keyState
	}
	return nil
}

// lookup returns the state of a, or nil, and a's hash for addHashed.
func (t *sourceTable) lookup(a Addr) (*keyState, uint64) {
	h := t.hash(a)
	if i := t.find(a, h); i >= 0 {
		return &t.recs.slots[i].keyState, h
	}
	return nil, h
}

// find returns the slot of a, whose hash is h, or -1.
func (t *sourceTable) find(a Addr, h uint64) int32 {
	idx := t.index
	mask := len(idx) - 1
	tag := uint32(h)
	for i := int(h>>t.shift) & mask; ; i = (i + 1) & mask {
		e := idx[i]
		if e.slot == 0 {
			return -1
		}
		if e.tag == tag && t.recs.slots[e.slot-1].addr == a {
			return int32(e.slot - 1)
		}
	}
}

// add creates a zero state for a (which must be absent).
func (t *sourceTable) add(a Addr, tick uint32) *keyState {
	return t.addHashed(a, t.hash(a), tick)
}

// addHashed is add with a's hash already computed.
func (t *sourceTable) addHashed(a Addr, h uint64, tick uint32) *keyState {
	i, _ := t.recs.alloc(sourceRec{keyState: keyState{lastTick: tick, flags: flagLive}, addr: a})
	// Grow at 3/4 full: linear probing degrades quickly beyond.
	if 4*(t.n+1) > 3*len(t.index) {
		t.resize(2 * len(t.index))
	}
	t.put(h, uint32(i)+1)
	t.n++
	return &t.recs.slots[i].keyState
}

func (t *sourceTable) put(h uint64, slot1 uint32) {
	idx := t.index
	mask := len(idx) - 1
	i := int(h>>t.shift) & mask
	for idx[i].slot != 0 {
		i = (i + 1) & mask
	}
	idx[i] = indexEnt{tag: uint32(h), slot: slot1}
}

func (t *sourceTable) resize(n int) {
	old := t.index
	t.index = make([]indexEnt, n)
	t.shift = uint(64 - bits.TrailingZeros(uint(n)))
	for _, e := range old {
		if e.slot != 0 {
			t.put(t.hash(t.recs.slots[e.slot-1].addr), e.slot)
		}
	}
}

// home returns the index entry an address's probe starts at.
func (t *sourceTable) home(a Addr) int {
	return int(t.hash(a)>>t.shift) & (len(t.index) - 1)
}

// unindex removes slot, holding a, from the index. Linear probing needs no
// tombstones: the entries after the hole that may sit in it move back.
func (t *sourceTable) unindex(a Addr, slot int32) {
	idx := t.index
	mask := len(idx) - 1
	i := t.home(a)
	for idx[i].slot != uint32(slot)+1 {
		if idx[i].slot == 0 {
			return
		}
		i = (i + 1) & mask
	}
	t.n--
	for j := i; ; {
		idx[i] = indexEnt{}
		for {
			j = (j + 1) & mask
			if idx[j].slot == 0 {
				return
			}
			// The entry at j may fill the hole at i unless its home lies
			// cyclically in (i, j].
			if (j-t.home(t.recs.slots[idx[j].slot-1].addr))&mask >= (j-i)&mask {
				break
			}
		}
		idx[i] = idx[j]
		i = j
	}
}

// expire frees idle sources; see slotArena.expire. Those with a trip
// level of their own leave trip's book too.
func (t *sourceTable) expire(now uint32, n int, idle, probation uint32, trip *tripBook) {
	t.recs.expire(n, now, idle, probation, func(r *sourceRec) *keyState { return &r.keyState }, func(i int32) {
		r := &t.recs.slots[i]
		if r.flags&flagTripLevel != 0 {
			trip.forget(r.addr)
		}
		t.unindex(r.addr, i)
	})
}

// all calls f for every source and its state, in no particular order.
func (t *sourceTable) all(f func(a Addr, s *keyState)) {
	for _, e := range t.index {
		if e.slot != 0 {
			r := &t.recs.slots[e.slot-1]
			f(r.addr, &r.keyState)
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
