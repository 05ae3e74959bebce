package capture

import (
	"bytes"
	"slices"

	"github.com/floodguard/floodguard/detector"
)

// MaxTickDsts is how many destinations a replay tick's Features name, the
// busiest first; the packets to the others are summed in DstsOther.
const MaxTickDsts = 64

// featureCounter counts a tick's Features by port and by destination
// (the aggregator counts the lengths straight into the tick). Like the
// source index it allocates nothing per packet once its storage has grown
// to the largest tick, and starting a tick costs what the last one
// touched, not the size of its tables.
type featureCounter struct {
	// portIdx holds, per kind and port, 1 + the index of its PortCount in
	// ports, or 0: 1 MiB, of which a tick touches the pages of the ports
	// it saw. A map would cost a hash and a probe per port per packet.
	portIdx *[detector.NumPortKinds][1 << 16]uint32
	ports   []detector.PortCount
	dsts    dstTable
}

func newFeatureCounter() featureCounter {
	return featureCounter{portIdx: new([detector.NumPortKinds][1 << 16]uint32), dsts: newDstTable()}
}

// reset empties the counts for a new tick.
func (f *featureCounter) reset() {
	for i := range f.ports {
		f.portIdx[f.ports[i].Kind][f.ports[i].Port] = 0
	}
	f.ports = f.ports[:0]
	f.dsts.reset()
}

// add counts one decoded packet of wire length wire: its ports when the
// transport header was read (then it is TCP or UDP), and its destination.
func (f *featureCounter) add(p *detector.PacketMeta, wire uint64) {
	if p.L4 {
		k := detector.UDPSrcPort
		if p.Proto == protoTCP {
			k = detector.TCPSrcPort
		}
		f.port(k, p.SrcPort, wire)
		f.port(k+1, p.DstPort, wire) // the kind's destination port
	}
	f.dsts.count(&p.Dst)
}

func (f *featureCounter) port(k detector.PortKind, port uint16, wire uint64) {
	i := f.portIdx[k][port]
	if i == 0 {
		f.ports = append(f.ports, detector.PortCount{Kind: k, Port: port})
		i = uint32(len(f.ports))
		f.portIdx[k][port] = i
	}
	pc := &f.ports[i-1]
	pc.Packets++
	pc.Bytes += wire
}

// finish writes the ports and destinations into ft. The ports stay in
// the order the tick first saw them; they and the destinations alias the
// counter's storage, valid until reset.
func (f *featureCounter) finish(ft *detector.Features) {
	ft.Ports = f.ports
	ft.Dsts, ft.DstsOther = f.dsts.top(MaxTickDsts)
}

// dstTable counts packets per destination address within a tick: an
// open-addressing table like srcIndex (see there), its slots holding the
// generation and the index of the destination's DstCount. A link's
// packets go to few destinations, so a small cache, by the address's
// last byte, is checked before hashing.
type dstTable struct {
	slots []uint64 // gen<<32 | index; length a power of two
	shift uint     // 64 - log2(len(slots))
	gen   uint64   // generation of the open tick, 1 to 2^32-1
	key   detector.AddrHash
	ents  []detector.DstCount
	// recent[a[15]%len] is 1 + the index in ents of a destination
	// counted recently with that last byte, or 0.
	recent [16]uint32
}

const dstTableMinSlots = 1 << 8

func newDstTable() dstTable {
	return dstTable{
		slots: make([]uint64, dstTableMinSlots),
		shift: 64 - 8,
		gen:   1,
		key:   detector.NewAddrHash(),
	}
}

func (t *dstTable) reset() {
	t.ents = t.ents[:0]
	t.recent = [len(t.recent)]uint32{}
	t.gen++
	if t.gen == 1<<32 {
		clear(t.slots)
		t.gen = 1
	}
}

// count adds a packet to a.
func (t *dstTable) count(a *detector.Addr) {
	r := &t.recent[a[15]%uint8(len(t.recent))]
	if i := *r; i != 0 && t.ents[i-1].Addr == *a {
		t.ents[i-1].Packets++
		return
	}
	if 2*(len(t.ents)+1) > len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.key.Sum(a) >> t.shift; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s>>32 != t.gen {
			t.slots[i] = t.gen<<32 | uint64(len(t.ents))
			t.ents = append(t.ents, detector.DstCount{Addr: *a, Packets: 1})
			*r = uint32(len(t.ents))
			return
		}
		if j := uint32(s); t.ents[j].Addr == *a {
			t.ents[j].Packets++
			*r = j + 1
			return
		}
	}
}

// grow doubles the table and indexes the destinations again.
func (t *dstTable) grow() {
	t.slots = make([]uint64, 2*len(t.slots))
	t.shift--
	mask := uint64(len(t.slots) - 1)
	for n := range t.ents {
		i := t.key.Sum(&t.ents[n].Addr) >> t.shift
		for t.slots[i]>>32 == t.gen {
			i = (i + 1) & mask
		}
		t.slots[i] = t.gen<<32 | uint64(n)
	}
}

// top returns the n busiest destinations, by packets then address, and
// the packets to the others. It reorders the table's entries, so nothing
// may be counted after it until reset.
func (t *dstTable) top(n int) ([]detector.DstCount, uint64) {
	slices.SortFunc(t.ents, func(a, b detector.DstCount) int {
		if a.Packets != b.Packets {
			if a.Packets > b.Packets {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.Addr[:], b.Addr[:])
	})
	if len(t.ents) <= n {
		return t.ents, 0
	}
	var other uint64
	for _, d := range t.ents[n:] {
		other += d.Packets
	}
	return t.ents[:n], other
}
