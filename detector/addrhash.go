package detector

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// AddrHash is a keyed hash for tables of addresses. The addresses are
// chosen by whoever sends the traffic, and with a fixed hash a flood could
// pick addresses that all collide; each table draws its own random key.
// The key changes only where addresses sit in a table, never a decision.
type AddrHash struct{ k0, k1 uint64 }

// NewAddrHash returns a hash with a random key.
func NewAddrHash() AddrHash { return AddrHash{rand.Uint64(), rand.Uint64()} }

// Words hashes the address whose little-endian 64-bit words are lo and hi:
// one 64×64→128-bit multiply of the keyed halves, folded (wyhash's mixing
// step).
func (h AddrHash) Words(lo, hi uint64) uint64 {
	x, y := bits.Mul64(lo^h.k0, hi^h.k1)
	return x ^ y
}

// Sum hashes a.
func (h AddrHash) Sum(a *Addr) uint64 {
	return h.Words(binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:]))
}
