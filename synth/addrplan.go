package synth

import (
	"math/rand/v2"
	"net/netip"
)

// Address plan (see doc.go for the table). Everything IPv4 is inside the
// benchmarking range 198.18.0.0/15 and everything IPv6 inside the
// documentation range 2001:db8::/32, so a capture can never name a real host.
const (
	// Background and flash-crowd IPv4 clients: 198.18.x.y, x in
	// [benignLoX, benignHiX], y in 1..254.
	benignLoX = 16
	benignHiX = 239
	// Reflectors: 198.19.x.y, x in [reflectLoX, 255], at most
	// reflectorsPer24 per /24.
	reflectLoX      = 16
	reflectorsPer24 = 10
	// Carpet-bombing sources: 198.19.7.0/24, 198.19.8.0/24, 198.19.9.0/24.
	carpetFirstX = 7
	carpetNets   = 3
)

// Fixed addresses and prefixes of the plan. They are functions rather than
// package variables so that no package state can be modified.
func victimAddr4() netip.Addr    { return netip.AddrFrom4(victim4()) }
func victimAddr6() netip.Addr    { return netip.AddrFrom16(victim6()) }
func singleAttacker() netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 1, 1}) }

// rotationPrefix is 2001:db8:bad:1::/64.
func rotationPrefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad, 0, 1}), 64)
}

// benchmarking4 is 198.18.0.0/15, the only IPv4 space used.
func benchmarking4() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, 0}), 15)
}

// documentation6 is 2001:db8::/32, the only IPv6 space used.
func documentation6() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8}), 32)
}

// heavyAddr returns the i-th heavy client, 198.18.250.(i+1).
func heavyAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 250, byte(i + 1)}) }

// resolverAddr returns the i-th resolver, 198.18.1.(53+i).
func resolverAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 1, byte(53 + i)}) }

// ntpServerAddr returns the i-th NTP server, 198.18.1.(123+i).
func ntpServerAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 1, byte(123 + i)}) }

// set15 is a bitmap over 198.18.0.0/15: membership checks for spoofed
// sources cost a shift and a mask instead of a map lookup.
type set15 [1 << 17 / 64]uint64

// index returns a's offset in 198.18.0.0/15 and whether it is inside.
func index15(a netip.Addr) (uint32, bool) {
	if !a.Is4() {
		return 0, false
	}
	b := a.As4()
	if b[0] != 198 || b[1]&^1 != 18 {
		return 0, false
	}
	return uint32(b[1]&1)<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}

func addr15(i uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 | byte(i>>16&1), byte(i >> 8), byte(i)})
}

func (s *set15) add(a netip.Addr) {
	if i, ok := index15(a); ok {
		s[i/64] |= 1 << (i % 64)
	}
}

func (s *set15) has(a netip.Addr) bool {
	i, ok := index15(a)
	return ok && s[i/64]&(1<<(i%64)) != 0
}

func (s *set15) hasIndex(i uint32) bool { return s[i/64]&(1<<(i%64)) != 0 }

// drawBenign4 draws n new client addresses from the benign IPv4 pool, none of
// them already in used, and adds them to used.
func drawBenign4(r *rand.Rand, n int, used *set15) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		a := netip.AddrFrom4([4]byte{198, 18, byte(between(r, benignLoX, benignHiX)), byte(between(r, 1, 254))})
		if used.has(a) {
			continue
		}
		used.add(a)
		out = append(out, a)
	}
	return out
}

// drawBenign6 draws n new IPv6 client addresses, each in its own /64 of
// 2001:db8:1000::/36 with a random interface identifier, none in used.
func drawBenign6(r *rand.Rand, n int, used map[netip.Prefix]bool) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		net := r.Uint32()
		b[4] = 0x10 | byte(net>>24)&0x0f
		b[5], b[6], b[7] = byte(net>>16), byte(net>>8), byte(net)
		iid := r.Uint64() | 1<<56 // never the all-zero (subnet-router anycast) id
		for i := range 8 {
			b[8+i] = byte(iid >> (56 - 8*i))
		}
		a := netip.AddrFrom16(b)
		p := netip.PrefixFrom(a, 64).Masked()
		if used[p] {
			continue
		}
		used[p] = true
		out = append(out, a)
	}
	return out
}

// drawReflectors places n reflectors in 198.19.16.0-198.19.255.255 with at
// most reflectorsPer24 in any /24, the way open resolvers are scattered over
// many networks. n is capped at the capacity of the range.
func drawReflectors(r *rand.Rand, n int) []netip.Addr {
	var slots []byte // one entry per free place: the /24's third octet
	for x := reflectLoX; x <= 255; x++ {
		for range reflectorsPer24 {
			slots = append(slots, byte(x))
		}
	}
	r.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	slots = slots[:min(n, len(slots))]
	var taken [256][256]bool
	out := make([]netip.Addr, 0, len(slots))
	for _, x := range slots {
		y := between(r, 1, 254)
		for taken[x][y] {
			y = between(r, 1, 254)
		}
		taken[x][y] = true
		out = append(out, netip.AddrFrom4([4]byte{198, 19, x, byte(y)}))
	}
	return out
}

// drawCarpet picks perNet distinct hosts in each carpet /24 and returns them
// per /24.
func drawCarpet(r *rand.Rand, perNet int) [][]netip.Addr {
	perNet = min(perNet, 254)
	out := make([][]netip.Addr, carpetNets)
	for i := range out {
		x := byte(carpetFirstX + i)
		for _, h := range r.Perm(254)[:perNet] {
			out[i] = append(out[i], netip.AddrFrom4([4]byte{198, 19, x, byte(h + 1)}))
		}
	}
	return out
}

// carpetPrefix returns the i-th carpet /24.
func carpetPrefix(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(carpetFirstX + i), 0}), 24)
}

// rotatedAddr returns an address in the rotation /64 with interface id iid.
func rotatedAddr(iid uint64) netip.Addr {
	b := rotationPrefix().Addr().As16()
	for i := range 8 {
		b[8+i] = byte(iid >> (56 - 8*i))
	}
	return netip.AddrFrom16(b)
}

// drawScattered4 draws n new addresses spread over the benign client /24s
// (198.18.16.0-198.18.239.255) and the reflector range
// (198.19.16.0-198.19.255.255), none of them already in used, and adds them
// to used: sources as scattered over the Internet as open reflectors and
// infected hosts are, sharing /24s with the benign clients so that no
// prefix ban can stop them without hitting visitors. n is capped at half the
// free addresses, which keeps the draw quick.
func drawScattered4(r *rand.Rand, n int, used *set15) []netip.Addr {
	const nets4 = benignHiX - benignLoX + 1 + 256 - reflectLoX
	free := nets4 * 254
	for x := range 256 {
		for _, hi := range []byte{18, 19} {
			for y := 1; y <= 254; y++ {
				a := netip.AddrFrom4([4]byte{198, hi, byte(x), byte(y)})
				if scatteredNet(a) && used.has(a) {
					free--
				}
			}
		}
	}
	n = min(n, free/2)
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		k := r.IntN(nets4)
		x, hi := byte(benignLoX+k), byte(18)
		if k > benignHiX-benignLoX {
			x, hi = byte(reflectLoX+k-(benignHiX-benignLoX+1)), 19
		}
		a := netip.AddrFrom4([4]byte{198, hi, x, byte(between(r, 1, 254))})
		if used.has(a) {
			continue
		}
		used.add(a)
		out = append(out, a)
	}
	return out
}

// scatteredNet reports whether a is in a /24 drawScattered4 draws from.
func scatteredNet(a netip.Addr) bool {
	b := a.As4()
	return b[1] == 18 && b[2] >= benignLoX && b[2] <= benignHiX || b[1] == 19 && b[2] >= reflectLoX
}
