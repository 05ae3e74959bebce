package capture

import (
	"encoding/binary"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// tcpLayer reads only the ports and flags of a TCP header. It needs the
// 20-byte fixed header (as a C parser checking sizeof(struct tcphdr)
// would) and does not trust or use the data offset.
type tcpLayer struct {
	layerOut
	srcPort, dstPort uint16
	flags            uint8
}

func (l *tcpLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeTCP }

func (l *tcpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	l.next, l.payload = gopacket.LayerTypeZero, nil
	if len(data) < 20 {
		return errShort
	}
	// A data offset under 5 words is no TCP header: like the XDP program,
	// trust none of its flags (the segment still counts as class tcp).
	if data[12]>>4 < 5 {
		return errShort
	}
	l.srcPort, l.dstPort = binary.BigEndian.Uint16(data[0:2]), binary.BigEndian.Uint16(data[2:4])
	l.flags = data[13]
	return nil
}

// udpLayer reads only the ports of a UDP header.
type udpLayer struct {
	layerOut
	srcPort, dstPort uint16
}

func (l *udpLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeUDP }

func (l *udpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	l.next, l.payload = gopacket.LayerTypeZero, nil
	if len(data) < 8 {
		return errShort
	}
	l.srcPort, l.dstPort = binary.BigEndian.Uint16(data[0:2]), binary.BigEndian.Uint16(data[2:4])
	return nil
}
