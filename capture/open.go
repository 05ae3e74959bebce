package capture

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/gopacket"
	"github.com/google/gopacket/pcapgo"
)

// StdinPath is the path that means "read the caller's standard input".
const StdinPath = "-"

// stdinName is how standard input is named in errors.
const stdinName = "stdin"

// Format is a capture file format, detected from magic bytes.
type Format uint8

const (
	// FormatEmpty is a zero-byte input: a clean end with no packets.
	FormatEmpty Format = iota
	// FormatPcap is classic libpcap (any of the four magics).
	FormatPcap
	// FormatPcapNG is pcapng.
	FormatPcapNG
)

func (f Format) String() string {
	switch f {
	case FormatEmpty:
		return "empty"
	case FormatPcap:
		return "pcap"
	case FormatPcapNG:
		return "pcapng"
	}
	return "unknown"
}

// Magic bytes as they appear at the start of a file.
var (
	magicGzip   = [2]byte{0x1f, 0x8b}
	magicZstd   = [4]byte{0x28, 0xb5, 0x2f, 0xfd}
	magicPcapNG = [4]byte{0x0a, 0x0d, 0x0d, 0x0a}
)

// Record is one packet as read from a capture file. Data is owned by the
// Reader and valid only until the next ReadPacket.
type Record struct {
	Data     []byte
	Info     gopacket.CaptureInfo
	LinkType LinkType
}

// Reader reads packets from one pcap or pcapng file, possibly gzipped. It
// detects the format from magic bytes, never from the file name.
type Reader struct {
	name    string
	closer  io.Closer // the file, if Open opened it
	raw     *countingReader
	format  Format
	gzipped bool
	pcap    *pcapReader
	ng      *pcapgo.NgReader
	ngFr    *ngFramer
	framer  interface{ offset() int64 }
	err     error // sticky
}

// Open opens the capture at path. StdinPath ("-") reads stdin, which the
// caller passes in (it must not be nil then). A zero-byte input and a file
// with headers but no packets both read as a clean io.EOF. Unknown formats
// are refused with an error wrapping ErrNotCapture or ErrZstd; a header cut
// short is a *ReadError.
func Open(path string, stdin io.Reader) (*Reader, error) {
	if path == StdinPath {
		if stdin == nil {
			return nil, errors.New("open stdin: no standard input reader given")
		}
		return NewReader(stdinName, stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	r, err := NewReader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads a capture from src; name is used in errors. The caller
// keeps ownership of src (Close does not close it).
func NewReader(name string, src io.Reader) (*Reader, error) {
	r := &Reader{name: name, raw: &countingReader{r: src}}
	br := bufio.NewReaderSize(r.raw, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, &ReadError{Path: name, Offset: 0, Err: err}
	}
	if len(magic) >= 2 && [2]byte(magic[:2]) == magicGzip {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &ReadError{Path: name, Offset: 0, Err: fmt.Errorf("gzip header: %w", err)}
		}
		r.gzipped = true
		br = bufio.NewReaderSize(gz, 64<<10)
		magic, err = br.Peek(4)
		if err != nil && err != io.EOF {
			return nil, &ReadError{Path: name, Offset: 0, Decompressed: true, Err: err}
		}
		if len(magic) >= 2 && [2]byte(magic[:2]) == magicGzip {
			return nil, fmt.Errorf("%s: %w (gzip inside gzip)", name, ErrNotCapture)
		}
	}
	if err := r.detect(br, magic); err != nil {
		return nil, err
	}
	return r, nil
}

// detect chooses the reader from the first bytes of the (decompressed)
// stream.
func (r *Reader) detect(br *bufio.Reader, magic []byte) error {
	inside := ""
	if r.gzipped {
		inside = " inside gzip"
	}
	if len(magic) == 0 {
		r.format = FormatEmpty
		return nil
	}
	if len(magic) < 4 {
		return fmt.Errorf("%s: %w%s (only %d bytes: % x)", r.name, ErrNotCapture, inside, len(magic), magic)
	}
	m4 := [4]byte(magic)
	switch {
	case m4 == magicZstd:
		return fmt.Errorf("%s: %w%s (decompress it first, e.g. zstd -d)", r.name, ErrZstd, inside)
	case m4 == magicPcapNG:
		fr := newNgFramer(br)
		ng, err := pcapgo.NewNgReader(fr, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return r.wrap(err, fr.offset())
		}
		r.format, r.ng, r.ngFr, r.framer = FormatPcapNG, ng, fr, fr
		return nil
	}
	switch le := uint32(m4[0]) | uint32(m4[1])<<8 | uint32(m4[2])<<16 | uint32(m4[3])<<24; le {
	case pcapMagicMicroLE, pcapMagicMicroBE, pcapMagicNanoLE, pcapMagicNanoBE:
		pr, err := newPcapReader(br)
		if err != nil {
			return r.wrap(err, 0)
		}
		r.format, r.pcap, r.framer = FormatPcap, pr, pr
		return nil
	}
	return fmt.Errorf("%s: %w%s (magic % x)", r.name, ErrNotCapture, inside, magic)
}

// ReadPacket returns the next packet, io.EOF after the last one, or a
// *ReadError naming the file and the offset of the damaged record. Packets
// before the damage are all returned first. The returned Data is reused by
// the next call.
func (r *Reader) ReadPacket() (Record, error) {
	var rec Record
	if err := r.read(&rec); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// read is ReadPacket filling in the caller's Record, which the replay
// keeps from packet to packet: a Record is over 100 bytes, and copying it
// out of ReadPacket and readRecord cost 8% of the replay source's time. On
// error rec is left unspecified.
func (r *Reader) read(rec *Record) error {
	if r.err != nil {
		return r.err
	}
	var err error
	switch r.format {
	case FormatPcap:
		err = r.pcap.next(rec)
	case FormatPcapNG:
		var (
			data []byte
			ci   gopacket.CaptureInfo
		)
		data, ci, err = r.ng.ZeroCopyReadPacketData()
		if err == nil {
			// Not ci.AncillaryData: pcapgo truncated it to 8 bits.
			ci.AncillaryData = nil
			*rec = Record{Data: data, Info: ci, LinkType: r.ngFr.pop()}
		}
	default:
		return io.EOF
	}
	if err != nil {
		r.err = r.wrap(err, r.framer.offset())
		return r.err
	}
	return nil
}

// wrap names the file in err. An offsetError carries its own offset; any
// other error (which pcapgo's pcapng reader should no longer produce once
// the framer has checked the stream) is placed at fallback, the current
// record or block.
func (r *Reader) wrap(err error, fallback int64) error {
	if err == io.EOF {
		return io.EOF
	}
	var oe *offsetError
	if errors.As(err, &oe) {
		return &ReadError{Path: r.name, Offset: oe.off, Decompressed: r.gzipped, Err: oe.err}
	}
	return &ReadError{Path: r.name, Offset: fallback, Decompressed: r.gzipped, Err: err}
}

// Name returns the file name used in errors ("stdin" for standard input).
func (r *Reader) Name() string { return r.name }

// Format returns the detected format.
func (r *Reader) Format() Format { return r.format }

// Gzipped reports whether the file was gzip-compressed.
func (r *Reader) Gzipped() bool { return r.gzipped }

// BytesRead returns how many bytes have been read from the file itself
// (compressed bytes for gzip), for progress reporting. It runs ahead of the
// packets returned by up to a buffer's worth.
func (r *Reader) BytesRead() int64 { return r.raw.n }

// Close closes the file if Open opened it.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
