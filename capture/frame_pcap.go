package capture

import (
	"encoding/binary"
	"io"
	"slices"
)

// maxCaptureLen is the largest captured length of one packet we accept, in
// both formats. It is libpcap's MAXIMUM_SNAPLEN (and Wireshark's standard
// maximum): tcpdump and capinfos refuse longer records as corrupt, and a
// record claiming gigabytes must not make us allocate them. Linux BIG TCP
// frames (about 80 KB in the corpus) fit.
const maxCaptureLen = 262144

const (
	pcapFileHeaderLen   = 24
	pcapRecordHeaderLen = 16
)

// Classic pcap magics as read little-endian from the first four bytes.
const (
	pcapMagicMicroLE = 0xa1b2c3d4 // file written little-endian, microseconds
	pcapMagicMicroBE = 0xd4c3b2a1
	pcapMagicNanoLE  = 0xa1b23c4d
	pcapMagicNanoBE  = 0x4d3cb2a1
)

// libpcap's handling of the caplen/len fields by file version (sf-pcap.c):
// files before 2.3 wrote them in the other order, 2.3 files may have either.
const (
	lengthsInOrder = iota
	lengthsSwapped
	lengthsMaybeSwapped
)

// pcapFramer sits between the file and pcapgo.Reader. It reads whole
// records, checks them, and hands pcapgo a normalised stream, because
// pcapgo v1.1.19 alone:
//   - rejects a record whose caplen exceeds the header's snaplen, which
//     tcpdump and capinfos accept (the header we pass on carries
//     snaplen = maxCaptureLen instead, and we refuse records above that);
//   - rejects any version but 2.4, and so does not apply libpcap's rule that
//     files before 2.3 have caplen and len swapped (we swap them and present
//     2.4);
//   - rejects caplen > len, which libpcap accepts (we raise len to caplen);
//   - overflows uint32 when a microsecond field is >= 4.29e6 (we carry
//     whole seconds out of the fraction, as tcpdump displays it);
//   - truncates the link type to 8 bits (layers.LinkType is a uint8), so
//     we keep it ourselves, masked with LT_LINKTYPE as libpcap does;
//   - reports a short read without its offset.
//
// Because the framer only ever passes on whole records, pcapgo sees either
// whole records, a clean io.EOF at a record boundary, or our offsetError.
type pcapFramer struct {
	src       io.Reader
	off       int64 // stream offset of the next byte to read from src
	bigEndian bool
	lengths   int
	fracLimit uint32   // 1e6 for microsecond files, 1e9 for nanosecond files
	linkType  LinkType // from the file header, FCS bits masked off

	last int64 // offset of the record or block read last

	buf []byte // the current record (or the file header), rewritten
	pos int    // next byte of buf to hand out
	err error  // sticky: once the stream failed it stays failed
}

// newPcapFramer reads and checks the global header from src.
func newPcapFramer(src io.Reader) (*pcapFramer, error) {
	f := &pcapFramer{src: src}
	var h [pcapFileHeaderLen]byte
	if _, err := io.ReadFull(src, h[:]); err != nil {
		return nil, truncated(0, err)
	}
	f.off = pcapFileHeaderLen
	switch binary.LittleEndian.Uint32(h[0:4]) {
	case pcapMagicMicroLE:
		f.fracLimit = 1e6
	case pcapMagicMicroBE:
		f.bigEndian, f.fracLimit = true, 1e6
	case pcapMagicNanoLE:
		f.fracLimit = 1e9
	case pcapMagicNanoBE:
		f.bigEndian, f.fracLimit = true, 1e9
	default:
		return nil, corruptf(0, "bad pcap magic % x", h[0:4])
	}
	major, minor := f.u16(h[4:6]), f.u16(h[6:8])
	switch {
	case major == 2 && minor < 3:
		f.lengths = lengthsSwapped
	case major == 2 && minor == 3:
		f.lengths = lengthsMaybeSwapped
	case major == 2 && minor == 4:
		f.lengths = lengthsInOrder
	case major == 543 && minor == 0: // DG/UX tcpdump, accepted by libpcap
		f.lengths = lengthsSwapped
	default:
		return nil, corruptf(0, "unsupported pcap version %d.%d", major, minor)
	}
	// LT_LINKTYPE: the upper 6 bits carry the FCS length and flags.
	f.linkType = linkTypeInvalid
	if lt := f.u32(h[20:24]) & 0x03ffffff; lt < uint32(linkTypeInvalid) {
		f.linkType = LinkType(lt)
	}
	f.put16(h[4:6], 2)
	f.put16(h[6:8], 4)
	f.put32(h[16:20], maxCaptureLen)
	f.buf = append(f.buf[:0], h[:]...)
	return f, nil
}

// Read hands out the rewritten header, then one whole record at a time.
func (f *pcapFramer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for f.pos == len(f.buf) {
		if f.err != nil {
			return 0, f.err
		}
		if err := f.nextRecord(); err != nil {
			f.err = err
			f.buf, f.pos = f.buf[:0], 0
			return 0, err
		}
	}
	n := copy(p, f.buf[f.pos:])
	f.pos += n
	return n, nil
}

// nextRecord reads, checks and rewrites the next record into f.buf.
func (f *pcapFramer) nextRecord() error {
	start := f.off
	f.last = start
	f.buf = slices.Grow(f.buf[:0], pcapRecordHeaderLen)[:pcapRecordHeaderLen]
	f.pos = 0
	h := f.buf
	n, err := io.ReadFull(f.src, h)
	f.off += int64(n)
	if err != nil {
		if n == 0 && err == io.EOF {
			return io.EOF
		}
		return truncated(start, err)
	}
	sec, frac := f.u32(h[0:4]), f.u32(h[4:8])
	caplen, origlen := f.u32(h[8:12]), f.u32(h[12:16])
	if f.lengths == lengthsSwapped || (f.lengths == lengthsMaybeSwapped && caplen > origlen) {
		caplen, origlen = origlen, caplen
	}
	if caplen > maxCaptureLen {
		return corruptf(start, "record captured length %d exceeds the maximum %d", caplen, maxCaptureLen)
	}
	if origlen < caplen {
		origlen = caplen
	}
	if frac >= f.fracLimit && sec <= ^uint32(0)-frac/f.fracLimit {
		sec += frac / f.fracLimit
		frac %= f.fracLimit
	}
	f.put32(h[0:4], sec)
	f.put32(h[4:8], frac)
	f.put32(h[8:12], caplen)
	f.put32(h[12:16], origlen)

	total := pcapRecordHeaderLen + int(caplen)
	f.buf = slices.Grow(f.buf, int(caplen))[:total]
	n, err = io.ReadFull(f.src, f.buf[pcapRecordHeaderLen:])
	f.off += int64(n)
	if err != nil {
		return truncated(start, err)
	}
	return nil
}

// truncated turns a failed read inside a record or block into an
// offsetError at its start: running out of data there is truncation, and
// any other error (gzip checksum, I/O) is kept as it is.
func truncated(start int64, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return &offsetError{off: start, err: err}
}

func (f *pcapFramer) u16(b []byte) uint16 {
	if f.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (f *pcapFramer) u32(b []byte) uint32 {
	if f.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (f *pcapFramer) put16(b []byte, v uint16) {
	if f.bigEndian {
		binary.BigEndian.PutUint16(b, v)
	} else {
		binary.LittleEndian.PutUint16(b, v)
	}
}

func (f *pcapFramer) put32(b []byte, v uint32) {
	if f.bigEndian {
		binary.BigEndian.PutUint32(b, v)
	} else {
		binary.LittleEndian.PutUint32(b, v)
	}
}

// offset returns the stream offset of the record or block read last, the
// one a failure is reported at.
func (f *pcapFramer) offset() int64 { return f.last }
