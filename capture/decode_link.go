package capture

import (
	"encoding/binary"
	"errors"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Why a frame stopped decoding. Preallocated so that malformed frames cost
// no allocation either; only tests look at which one it was.
var (
	errShort      = errors.New("header cut short by the capture")
	errNotIP      = errors.New("not an IP frame")
	errTooDeep    = errors.New("too many VLAN tags")
	errBadVersion = errors.New("IP version does not match the header type")
	errBadIHL     = errors.New("IPv4 header length below 20 bytes")
)

// EtherTypes and VLAN TPIDs.
const (
	etherTypeIPv4   = 0x0800
	etherTypeIPv6   = 0x86dd
	etherTypePPPoE  = 0x8864 // PPPoE session stage
	tpid8021Q       = 0x8100
	tpid8021AD      = 0x88a8
	tpidQinQLegacy  = 0x9100
	pppProtoIPv4    = 0x0021
	pppProtoIPv6    = 0x0057
	pppoeSessionHdr = 0x11 // version 1, type 1
)

// BSD address families for IPv6 (AF_INET is 2 everywhere).
const (
	afInet         = 2
	afInet6Linux   = 10
	afInet6NetBSD  = 24 // also OpenBSD
	afInet6FreeBSD = 28
	afInet6Darwin  = 30
)

// layerOut is what every layer hands the parser: the next layer type and
// the bytes it starts at.
type layerOut struct {
	next    gopacket.LayerType
	payload []byte
}

func (l *layerOut) NextLayerType() gopacket.LayerType { return l.next }
func (l *layerOut) LayerPayload() []byte              { return l.payload }

// etherType follows an EtherType through up to MaxVLANTags VLAN tags in
// rest and sets the next layer.
func (l *layerOut) etherType(etype uint16, rest []byte) error {
	for tags := 0; etype == tpid8021Q || etype == tpid8021AD || etype == tpidQinQLegacy; tags++ {
		if tags == MaxVLANTags {
			return errTooDeep
		}
		if len(rest) < 4 {
			return errShort
		}
		etype = binary.BigEndian.Uint16(rest[2:4])
		rest = rest[4:]
	}
	switch etype {
	case etherTypeIPv4:
		l.next = layers.LayerTypeIPv4
	case etherTypeIPv6:
		l.next = layers.LayerTypeIPv6
	case etherTypePPPoE:
		l.next = layers.LayerTypePPPoE
	default:
		return errNotIP
	}
	l.payload = rest
	return nil
}

// family sets the next layer from a BSD address family.
func (l *layerOut) family(af uint32, rest []byte) error {
	switch af {
	case afInet:
		l.next = layers.LayerTypeIPv4
	case afInet6Linux, afInet6NetBSD, afInet6FreeBSD, afInet6Darwin:
		l.next = layers.LayerTypeIPv6
	default:
		return errNotIP
	}
	l.payload = rest
	return nil
}

// ethernetLayer is the 14-byte Ethernet II header plus VLAN tags.
type ethernetLayer struct{ layerOut }

func (l *ethernetLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeEthernet }

func (l *ethernetLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 14 {
		return errShort
	}
	return l.etherType(binary.BigEndian.Uint16(data[12:14]), data[14:])
}

// sllLayer is the 16-byte Linux cooked header (LINKTYPE_LINUX_SLL).
type sllLayer struct{ layerOut }

func (l *sllLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeLinuxSLL }

func (l *sllLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 16 {
		return errShort
	}
	return l.etherType(binary.BigEndian.Uint16(data[14:16]), data[16:])
}

// sll2Layer is the 20-byte Linux cooked v2 header (LINKTYPE_LINUX_SLL2),
// which gopacket v1.1.19 lacks.
type sll2Layer struct{ layerOut }

func (l *sll2Layer) CanDecode() gopacket.LayerClass { return layerTypeSLL2 }

func (l *sll2Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return errShort
	}
	return l.etherType(binary.BigEndian.Uint16(data[0:2]), data[20:])
}

// nullLayer is the BSD loopback header (LINKTYPE_NULL): a 4-byte address
// family in the capturing host's byte order.
type nullLayer struct{ layerOut }

func (l *nullLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeLoopback }

func (l *nullLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		return errShort
	}
	af := binary.LittleEndian.Uint32(data[0:4])
	if af > 0xffff { // written by a big-endian host
		af = binary.BigEndian.Uint32(data[0:4])
	}
	return l.family(af, data[4:])
}

// loopLayer is LINKTYPE_LOOP (OpenBSD): the family in network order.
type loopLayer struct{ layerOut }

func (l *loopLayer) CanDecode() gopacket.LayerClass { return layerTypeLoop }

func (l *loopLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		return errShort
	}
	return l.family(binary.BigEndian.Uint32(data[0:4]), data[4:])
}

// rawIPLayer has no bytes of its own: it picks IPv4 or IPv6 from the
// version nibble, since raw link types are not to be trusted (a file with
// LINKTYPE_IPV4 may well hold IPv6).
type rawIPLayer struct{ layerOut }

func (l *rawIPLayer) CanDecode() gopacket.LayerClass { return layerTypeRawIP }

func (l *rawIPLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) == 0 {
		return errShort
	}
	switch data[0] >> 4 {
	case 4:
		l.next = layers.LayerTypeIPv4
	case 6:
		l.next = layers.LayerTypeIPv6
	default:
		return errNotIP
	}
	l.payload = data
	return nil
}

// pppoeLayer is a PPPoE session header followed by the PPP protocol field.
type pppoeLayer struct{ layerOut }

func (l *pppoeLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypePPPoE }

func (l *pppoeLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errShort
	}
	if data[0] != pppoeSessionHdr || data[1] != 0 {
		return errNotIP
	}
	switch binary.BigEndian.Uint16(data[6:8]) {
	case pppProtoIPv4:
		l.next = layers.LayerTypeIPv4
	case pppProtoIPv6:
		l.next = layers.LayerTypeIPv6
	default:
		return errNotIP
	}
	l.payload = data[8:]
	return nil
}
