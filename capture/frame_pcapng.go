package capture

import (
	"encoding/binary"
	"io"
	"slices"
)

// maxBlockLen bounds any pcapng block. Packet blocks are bounded more
// tightly by maxCaptureLen; this limit is for the rest (name resolution,
// decryption secrets, comments), which pcapgo skips but we still buffer.
const maxBlockLen = 16 << 20

// pcapng block types (pcapng spec section 11.1).
const (
	ngBlockIDB = 0x00000001 // interface description
	ngBlockPB  = 0x00000002 // packet (obsolete)
	ngBlockSPB = 0x00000003 // simple packet
	ngBlockISB = 0x00000005 // interface statistics
	ngBlockEPB = 0x00000006 // enhanced packet
	ngBlockSHB = 0x0a0d0d0a // section header, the same in both byte orders

	ngByteOrderMagic = 0x1a2b3c4d
)

// IDB option codes that pcapgo interprets in a way that can fail.
const (
	ngOptEndOfOpt = 0
	ngOptTSResol  = 9
	ngOptTSOffset = 14
)

// ngFramer sits between the file and pcapgo.NgReader. It reads whole
// blocks, checks them, and passes them on (with one field rewritten),
// because pcapgo v1.1.19 trusts the file:
//   - an if_tsresol of 10^-20 or smaller, or 2^-64 or smaller, makes its
//     time scale zero and it divides by zero (panic) when reading the IDB;
//     a zero-length if_tsresol makes it read a stale byte instead;
//   - a block length under its fixed part, or options running past the
//     block, underflow its uint32 remaining-length and it then discards up
//     to 4 GB, ending in a silent io.EOF: a corrupt file would look complete;
//   - a truncated block also ends in plain io.EOF, with no offset;
//   - it allocates max(caplen, IDB snaplen) bytes for the packet buffer, so
//     an IDB snaplen of 4 GB allocates 4 GB (we rewrite the snaplen in the
//     IDB to at most maxCaptureLen);
//   - a Simple Packet Block whose length exceeds its block makes it read
//     into the next block;
//   - it truncates link types to 8 bits (layers.LinkType is a uint8), so
//     we keep each interface's link type and queue the link type of every
//     packet block we pass on, in order, for the Reader to take as pcapgo
//     returns the packets.
//
// Unknown block types (0x80000001 local blocks, Decryption Secrets Blocks,
// Name Resolution Blocks) are passed through; pcapgo skips them by length,
// which we have checked.
type ngFramer struct {
	src         io.Reader
	off         int64 // stream offset of the next byte to read from src
	bigEndian   bool
	inSection   bool
	ifaces      []LinkType // link types of the current section's IDBs
	firstIfSnap uint32     // rewritten snaplen of interface 0 (for SPBs)
	queue       []LinkType // link types of packet blocks passed on, not yet taken
	queueHead   int

	last int64 // offset of the record or block read last

	buf []byte
	pos int
	err error
}

func newNgFramer(src io.Reader) *ngFramer { return &ngFramer{src: src} }

// Read hands out one whole checked block at a time.
func (f *ngFramer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for f.pos == len(f.buf) {
		if f.err != nil {
			return 0, f.err
		}
		if err := f.nextBlock(); err != nil {
			f.err = err
			f.buf, f.pos = f.buf[:0], 0
			return 0, err
		}
	}
	n := copy(p, f.buf[f.pos:])
	f.pos += n
	return n, nil
}

// nextBlock reads, checks and possibly rewrites the next block into f.buf.
func (f *ngFramer) nextBlock() error {
	start := f.off
	f.last = start
	f.pos = 0
	f.buf = slices.Grow(f.buf[:0], 12)[:8]
	n, err := io.ReadFull(f.src, f.buf)
	f.off += int64(n)
	if err != nil {
		if n == 0 && err == io.EOF {
			return io.EOF
		}
		return truncated(start, err)
	}
	typ := binary.LittleEndian.Uint32(f.buf[0:4]) // SHB type reads alike both ways
	if typ == ngBlockSHB {
		f.buf = f.buf[:12]
		n, err := io.ReadFull(f.src, f.buf[8:12])
		f.off += int64(n)
		if err != nil {
			return truncated(start, err)
		}
		switch {
		case binary.LittleEndian.Uint32(f.buf[8:12]) == ngByteOrderMagic:
			f.bigEndian = false
		case binary.BigEndian.Uint32(f.buf[8:12]) == ngByteOrderMagic:
			f.bigEndian = true
		default:
			return corruptf(start, "bad pcapng byte-order magic % x", f.buf[8:12])
		}
		f.inSection, f.ifaces = true, f.ifaces[:0]
	} else {
		if !f.inSection {
			return corruptf(start, "pcapng block type %#x before any section header", typ)
		}
		typ = f.u32(f.buf[0:4])
	}
	// At least the header read so far and the trailing length; a
	// multiple of 4 as the spec requires.
	total := f.u32(f.buf[4:8])
	if int(total) < len(f.buf)+4 || total%4 != 0 || total > maxBlockLen {
		return corruptf(start, "pcapng block type %#x has impossible length %d", typ, total)
	}
	for len(f.buf) < int(total) {
		// Read in bounded steps so that a length claimed by a short or
		// damaged file does not allocate the whole claim up front.
		step := min(int(total)-len(f.buf), 64<<10)
		f.buf = slices.Grow(f.buf, step)
		m, err := io.ReadFull(f.src, f.buf[len(f.buf):len(f.buf)+step])
		f.buf = f.buf[:len(f.buf)+m]
		f.off += int64(m)
		if err != nil {
			return truncated(start, err)
		}
	}
	b := f.buf
	if trailer := f.u32(b[total-4:]); trailer != total {
		return corruptf(start, "pcapng block type %#x: trailing length %d differs from %d", typ, trailer, total)
	}
	return f.check(start, typ, b)
}

// check validates the block types that pcapgo parses.
func (f *ngFramer) check(start int64, typ uint32, b []byte) error {
	body := b[:len(b)-4] // without the trailing length
	switch typ {
	case ngBlockSHB:
		if len(b) < 28 {
			return corruptf(start, "pcapng section header block too short (%d bytes)", len(b))
		}
		if major, minor := f.u16(b[12:14]), f.u16(b[14:16]); major != 1 || minor != 0 {
			return corruptf(start, "unsupported pcapng version %d.%d", major, minor)
		}
		return f.checkOptions(start, body[24:], nil)
	case ngBlockIDB:
		if len(b) < 20 {
			return corruptf(start, "pcapng interface block too short (%d bytes)", len(b))
		}
		if err := f.checkOptions(start, body[16:], checkIDBOption); err != nil {
			return err
		}
		snap := f.u32(b[12:16])
		if snap == 0 || snap > maxCaptureLen {
			snap = maxCaptureLen
			f.put32(b[12:16], snap)
		}
		if len(f.ifaces) == 0 {
			f.firstIfSnap = snap
		}
		f.ifaces = append(f.ifaces, LinkType(f.u16(b[8:10])))
	case ngBlockEPB, ngBlockPB:
		if len(b) < 32 {
			return corruptf(start, "pcapng packet block too short (%d bytes)", len(b))
		}
		iface := f.u32(b[8:12])
		if typ == ngBlockPB {
			iface = uint32(f.u16(b[8:10]))
		}
		if iface >= uint32(len(f.ifaces)) {
			return corruptf(start, "pcapng packet on interface %d but the section has %d interfaces", iface, len(f.ifaces))
		}
		caplen := f.u32(b[20:24])
		if caplen > maxCaptureLen || caplen > uint32(len(b)-32) {
			return corruptf(start, "pcapng packet captured length %d does not fit its %d-byte block", caplen, len(b))
		}
		f.push(f.ifaces[iface])
	case ngBlockSPB:
		if len(b) < 16 {
			return corruptf(start, "pcapng simple packet block too short (%d bytes)", len(b))
		}
		if len(f.ifaces) == 0 {
			return corruptf(start, "pcapng simple packet block before any interface")
		}
		// pcapgo takes the captured length as min(original length,
		// interface 0 snaplen), as the spec says; it must be in the block.
		caplen := min(f.u32(b[8:12]), f.firstIfSnap)
		if caplen > uint32(len(b)-16) {
			return corruptf(start, "pcapng simple packet length %d does not fit its %d-byte block", caplen, len(b))
		}
		f.push(f.ifaces[0])
	case ngBlockISB:
		if len(b) < 24 {
			return corruptf(start, "pcapng statistics block too short (%d bytes)", len(b))
		}
		if iface := f.u32(b[8:12]); iface >= uint32(len(f.ifaces)) {
			return corruptf(start, "pcapng statistics for interface %d but the section has %d interfaces", iface, len(f.ifaces))
		}
		return f.checkOptions(start, body[20:], nil)
	}
	return nil
}

// checkOptions walks an option list the way pcapgo reads it: it stops at
// opt_endofopt or at the end of the block, and every option with its
// padding must fit. check, if not nil, vets each option's value.
func (f *ngFramer) checkOptions(start int64, opts []byte, check func(code uint16, val []byte) error) error {
	for len(opts) > 0 {
		if len(opts) < 4 {
			return corruptf(start, "pcapng option header cut by the end of its block")
		}
		code, n := f.u16(opts[0:2]), int(f.u16(opts[2:4]))
		if code == ngOptEndOfOpt {
			if n != 0 {
				return corruptf(start, "pcapng opt_endofopt with length %d", n)
			}
			return nil
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(opts) {
			return corruptf(start, "pcapng option %d of length %d runs past its block", code, n)
		}
		if check != nil {
			if err := check(code, opts[4:4+n]); err != nil {
				return &offsetError{off: start, err: err}
			}
		}
		opts = opts[4+padded:]
	}
	return nil
}

// checkIDBOption rejects the interface options pcapgo would misuse.
func checkIDBOption(code uint16, val []byte) error {
	switch code {
	case ngOptTSResol:
		if len(val) != 1 {
			return fmtCorrupt("pcapng if_tsresol of length %d", len(val))
		}
		// pcapgo computes the units per second in a uint64: 10^19 and
		// 2^63 are the largest that fit.
		exp, binaryBase := val[0]&0x7f, val[0]&0x80 != 0
		if (binaryBase && exp > 63) || (!binaryBase && exp > 19) {
			return fmtCorrupt("pcapng if_tsresol %#x out of range", val[0])
		}
	case ngOptTSOffset:
		if len(val) != 8 {
			return fmtCorrupt("pcapng if_tsoffset of length %d", len(val))
		}
	}
	return nil
}

// push queues the link type of a packet block being passed on.
func (f *ngFramer) push(lt LinkType) {
	if f.queueHead == len(f.queue) {
		f.queue, f.queueHead = f.queue[:0], 0
	}
	f.queue = append(f.queue, lt)
}

// pop takes the link type of the oldest packet block passed on: the one
// pcapgo has just returned, since it returns every packet block in order.
func (f *ngFramer) pop() LinkType {
	if f.queueHead == len(f.queue) {
		return linkTypeInvalid // cannot happen while pcapgo returns each block once
	}
	lt := f.queue[f.queueHead]
	f.queueHead++
	return lt
}

func (f *ngFramer) u16(b []byte) uint16 {
	if f.bigEndian {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (f *ngFramer) u32(b []byte) uint32 {
	if f.bigEndian {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (f *ngFramer) put32(b []byte, v uint32) {
	if f.bigEndian {
		binary.BigEndian.PutUint32(b, v)
	} else {
		binary.LittleEndian.PutUint32(b, v)
	}
}

// offset returns the stream offset of the record or block read last, the
// one a failure is reported at.
func (f *ngFramer) offset() int64 { return f.last }
