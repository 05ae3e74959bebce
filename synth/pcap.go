package synth

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The classic pcap format is small enough to write by hand, which keeps the
// hot loop free of allocations and of time.Time conversions (pcapgo.Writer
// takes a gopacket.CaptureInfo per packet). The output is what pcapgo.Writer
// writes for LinkTypeEthernet: little-endian, microsecond timestamps; the
// tests read it back with pcapgo.NewReader.
const (
	pcapMagicMicro   = 0xa1b2c3d4
	pcapLinkEthernet = 1
	pcapRecordLen    = 16
)

// pcapWriter writes a classic pcap stream. Errors are sticky: after the first
// one every write returns it.
type pcapWriter struct {
	w    io.Writer
	snap int
	rec  [pcapRecordLen]byte
	err  error
}

func newPcapWriter(w io.Writer, snap int) (*pcapWriter, error) {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:4], pcapMagicMicro)
	binary.LittleEndian.PutUint16(h[4:6], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:8], 4)
	binary.LittleEndian.PutUint32(h[16:20], uint32(snap))
	binary.LittleEndian.PutUint32(h[20:24], pcapLinkEthernet)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("write pcap file header: %w", err)
	}
	return &pcapWriter{w: w, snap: snap}, nil
}

// write writes one record. unixNanos is the packet time; frame is the whole
// frame, of which at most snap bytes are kept (the original length records
// the rest).
func (p *pcapWriter) write(unixNanos int64, frame []byte) error {
	if p.err != nil {
		return p.err
	}
	us := unixNanos / 1000
	keep := frame[:min(len(frame), p.snap)]
	binary.LittleEndian.PutUint32(p.rec[0:4], uint32(us/1e6))
	binary.LittleEndian.PutUint32(p.rec[4:8], uint32(us%1e6))
	binary.LittleEndian.PutUint32(p.rec[8:12], uint32(len(keep)))
	binary.LittleEndian.PutUint32(p.rec[12:16], uint32(len(frame)))
	if _, err := p.w.Write(p.rec[:]); err != nil {
		p.err = fmt.Errorf("write pcap record header: %w", err)
		return p.err
	}
	if _, err := p.w.Write(keep); err != nil {
		p.err = fmt.Errorf("write pcap record data: %w", err)
	}
	return p.err
}
