package capture

import (
	"github.com/floodguard/floodguard/detector"
)

// srcIndex maps the source addresses of the open tick to their index in
// the aggregator's source slice. It replaces a map[detector.Addr]int32,
// which cost two lookups for every new source (a miss, then the insert),
// each with its hash of the 16-byte key, and a clear of the whole map at
// every tick, and a spoofed flood brings tens of thousands of new sources
// per tick. Here:
//   - one probe sequence finds a source or the slot to insert it in;
//   - a slot is 8 bytes (generation, 16 bits of hash, index): 512 KiB for
//     32k sources. Slots holding the 16-byte key were three times larger
//     and, for the cache misses that added, slower than the map. The key
//     is compared in the Source itself, which a hit goes on to update
//     anyway; the hash bits make a comparison with another source's Source
//     (a cache miss) rare;
//   - a slot is empty unless it carries the current generation: starting a
//     tick is one increment, not a clear (except once every 65,535 ticks);
//   - the hash is one 64×64→128-bit multiply of the two halves of the
//     address, each mixed with a random key first (the core of wyhash), so
//     spoofed sources cannot be chosen to collide without knowing the keys.
//
// It is linear probing at a load of at most one half; the table doubles
// when a tick brings more sources, and keeps its size for later ticks, as
// a cleared map would. An index takes 32 bits: a tick with 2^32 sources
// would need 480 GiB for its Sources. Measured on the 1M-packet bench
// capture (about 20,000 sources per tick, half of them new), interleaved
// with the map it replaced: the replay source 13-17% faster, the whole
// replay path 2-5%.
type srcIndex struct {
	slots []uint64 // gen<<48 | tag<<32 | index; length a power of two
	shift uint     // 64 - log2(len(slots)): the hash's top bits index
	gen   uint64   // generation of the open tick, 1 to 65535
	key   detector.AddrHash
	// The empty slot the last lookup that missed stopped at, and the
	// generation and tag to store there.
	free    uint64
	freeTag uint64
}

const srcIndexMinSlots = 1 << 10

func newSrcIndex() srcIndex {
	return srcIndex{
		slots: make([]uint64, srcIndexMinSlots),
		shift: 64 - 10,
		gen:   1,
		key:   detector.NewAddrHash(),
	}
}

// reset empties the table for a new tick.
func (t *srcIndex) reset() {
	t.gen++
	if t.gen == 1<<16 { // wrapped: slots of generation 0 would count
		clear(t.slots)
		t.gen = 1
	}
}

// hash returns the slot to start probing at and the tag for a.
func (t *srcIndex) hash(a *detector.Addr) (slot, tag uint64) {
	h := t.key.Sum(a)
	return h >> t.shift, h & 0xffff
}

// lookup returns the index of a's Source in srcs. If a has none yet, it
// returns false and the slot where insert puts it: the caller either
// appends a's Source to srcs and calls insert, before any other lookup,
// or leaves a out of the tick (a source on probation).
func (t *srcIndex) lookup(a *detector.Addr, srcs []detector.Source) (idx int, found bool) {
	if 2*(len(srcs)+1) > len(t.slots) {
		t.grow(srcs)
	}
	i, tag := t.hash(a)
	want := t.gen<<48 | tag<<32
	mask := uint64(len(t.slots) - 1)
	for ; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s>>48 != t.gen {
			t.free = i
			t.freeTag = want
			return len(srcs), false
		}
		if s&^0xffffffff == want {
			if j := int(uint32(s)); srcs[j].Addr == *a {
				return j, true
			}
		}
	}
}

// insert records that the source the last lookup missed is srcs[idx].
func (t *srcIndex) insert(idx int) { t.slots[t.free] = t.freeTag | uint64(idx) }

// grow doubles the table and indexes srcs again, in the current generation.
func (t *srcIndex) grow(srcs []detector.Source) {
	t.slots = make([]uint64, 2*len(t.slots))
	t.shift--
	mask := uint64(len(t.slots) - 1)
	for n := range srcs {
		i, tag := t.hash(&srcs[n].Addr)
		for t.slots[i]>>48 == t.gen {
			i = (i + 1) & mask
		}
		t.slots[i] = t.gen<<48 | tag<<32 | uint64(n)
	}
}
