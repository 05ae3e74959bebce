package capture

import (
	"encoding/binary"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// IPv6 extension header numbers walked by ipv6Layer.
const (
	ext6HopByHop = 0
	ext6Routing  = 43
	ext6Fragment = 44
	ext6AH       = 51
	ext6DestOpts = 60
)

// transport returns the layer to decode after IP: only TCP and UDP, and
// only when the transport header is in this packet (first fragment).
// Tunnels are not followed, so the source stays the outer one.
func transport(proto uint8, first bool) gopacket.LayerType {
	if first {
		switch proto {
		case protoTCP:
			return layers.LayerTypeTCP
		case protoUDP:
			return layers.LayerTypeUDP
		}
	}
	return gopacket.LayerTypeZero
}

// ipv4Layer reads the IPv4 header (rules in Decoder.Decode).
type ipv4Layer struct {
	layerOut
	src, dst [4]byte
	proto    uint8
	frag     detector.Fragment
	length   uint16 // the total length field, as read
}

func (l *ipv4Layer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv4 }

func (l *ipv4Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return errShort
	}
	if data[0]>>4 != 4 {
		return errBadVersion
	}
	ihl := int(data[0]&0x0f) * 4
	if ihl < 20 {
		return errBadIHL
	}
	if ihl > len(data) {
		return errShort
	}
	l.src, l.dst = [4]byte(data[12:16]), [4]byte(data[16:20])
	l.proto = data[9]
	// The total length is reported, never used as a bound: like the XDP
	// program, only the frame bounds the headers, so understating it
	// hides no SYN.
	l.length = binary.BigEndian.Uint16(data[2:4])
	fo := binary.BigEndian.Uint16(data[6:8])
	switch {
	case fo&0x1fff != 0:
		l.frag = detector.FragLater
	case fo&0x2000 != 0: // more fragments
		l.frag = detector.FragFirst
	default:
		l.frag = detector.FragNone
	}
	l.next, l.payload = transport(l.proto, l.frag != detector.FragLater), data[ihl:]
	return nil
}

// ipv6Layer reads the IPv6 header and walks the extension headers (rules
// in Decoder.Decode).
type ipv6Layer struct {
	layerOut
	src, dst detector.Addr
	proto    uint8 // transport protocol, or the extension header we stopped at
	frag     detector.Fragment
	length   uint16 // payload length + 40, at most 65535
}

func (l *ipv6Layer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6 }

func (l *ipv6Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 40 {
		return errShort
	}
	if data[0]>>4 != 6 {
		return errBadVersion
	}
	l.src, l.dst = detector.Addr(data[8:24]), detector.Addr(data[24:40])
	// As for IPv4, the payload length bounds nothing (the frame does); it
	// is only reported, plus the fixed header, saturated: FlowSpec's
	// length component has 16 bits.
	l.length = uint16(min(int(binary.BigEndian.Uint16(data[4:6]))+40, 0xffff))
	end := len(data)
	proto, off, frag := data[6], 40, detector.FragNone
walk:
	for n := 0; ; n++ {
		var hlen int
		if n == MaxIPv6ExtHeaders {
			// Checked before the header is read, so that a fragment
			// header past the bound does not end the walk with its
			// payload's protocol: an extension header left in proto
			// is ClassOther, as in the XDP program.
			break walk
		}
		switch proto {
		case ext6HopByHop, ext6Routing, ext6DestOpts:
			if off+2 > end {
				break walk
			}
			hlen = (int(data[off+1]) + 1) * 8
		case ext6AH:
			if off+2 > end {
				break walk
			}
			hlen = (int(data[off+1]) + 2) * 4
		case ext6Fragment:
			if off+8 > end {
				break walk
			}
			hlen = 8
			fo := binary.BigEndian.Uint16(data[off+2 : off+4])
			if fo>>3 != 0 {
				// Later fragments carry no transport header; the
				// fragment header names the protocol.
				frag = detector.FragLater
				proto, off = data[off], off+hlen
				break walk
			}
			// Offset 0: a first fragment if more follow, else an
			// atomic fragment (RFC 6946), a whole packet.
			frag = detector.FragNone
			if fo&1 != 0 {
				frag = detector.FragFirst
			}
		default:
			break walk // a transport or other final protocol
		}
		if off+hlen > end {
			break walk // proto stays an extension header: ClassOther
		}
		proto, off = data[off], off+hlen
	}
	l.proto, l.frag = proto, frag
	l.next, l.payload = transport(proto, frag != detector.FragLater), nil
	if end > off {
		l.payload = data[off:end]
	}
	return nil
}
