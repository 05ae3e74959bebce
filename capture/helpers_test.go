package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/vectors"
)

// Addresses from the documentation ranges.
const (
	tSrc4  = "192.0.2.1"
	tSrc4b = "192.0.2.2"
	tSrc6  = "2001:db8::1"
)

func addr(s string) detector.Addr { return detector.AddrFrom(netip.MustParseAddr(s)) }

// Frames: built with internal/vectors, the one frame builder of the tests,
// which the vector table and bpf/'s tests use too. paddedEth pads a frame
// to 60 bytes as a NIC delivers it; eth does not, for bare headers.
var (
	frameOf    = vectors.Frame
	eth        = vectors.Eth
	paddedEth  = vectors.PaddedEth
	ip4        = vectors.IPv4
	ip6        = vectors.IPv6
	udp        = vectors.UDP
	tcp        = vectors.TCP
	payload    = vectors.Payload
	ext6       = vectors.IPv6Ext
	frag6      = vectors.IPv6Frag
	vlan       = vectors.VLAN
	arpRequest = vectors.ARP
	sllHeader  = vectors.LinuxSLL
	sll2Header = vectors.LinuxSLL2
)

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// rec is one packet for the file builders.
type rec struct {
	ts      time.Time
	data    []byte
	origLen int // 0: len(data)
	iface   int // pcapng interface
}

// pcapFile builds a classic little-endian microsecond pcap.
func pcapFile(lt uint32, recs ...rec) []byte {
	var b bytes.Buffer
	h := make([]byte, 24)
	binary.LittleEndian.PutUint32(h[0:4], pcapMagicMicroLE)
	binary.LittleEndian.PutUint16(h[4:6], 2)
	binary.LittleEndian.PutUint16(h[6:8], 4)
	binary.LittleEndian.PutUint32(h[16:20], 65535)
	binary.LittleEndian.PutUint32(h[20:24], lt)
	b.Write(h)
	for _, r := range recs {
		b.Write(pcapRecord(binary.LittleEndian, r, 1e3))
	}
	return b.Bytes()
}

// pcapRecord encodes one record; div converts nanoseconds to the file's
// fraction unit (1e3 for microseconds, 1 for nanoseconds).
func pcapRecord(bo binary.ByteOrder, r rec, div int64) []byte {
	h := make([]byte, 16)
	orig := r.origLen
	if orig == 0 {
		orig = len(r.data)
	}
	bo.PutUint32(h[0:4], uint32(r.ts.Unix()))
	bo.PutUint32(h[4:8], uint32(int64(r.ts.Nanosecond())/div))
	bo.PutUint32(h[8:12], uint32(len(r.data)))
	bo.PutUint32(h[12:16], uint32(orig))
	return cat(h, r.data)
}

// ngWriter builds pcapng files block by block.
type ngWriter struct {
	bo  binary.ByteOrder
	buf bytes.Buffer
}

func newNG(bo binary.ByteOrder) *ngWriter {
	w := &ngWriter{bo: bo}
	w.shb()
	return w
}

// block appends a block of type typ with body (padded to 4 bytes).
func (w *ngWriter) block(typ uint32, body []byte) *ngWriter {
	body = pad4(body)
	total := uint32(12 + len(body))
	h := make([]byte, 8)
	w.bo.PutUint32(h[0:4], typ)
	w.bo.PutUint32(h[4:8], total)
	t := make([]byte, 4)
	w.bo.PutUint32(t, total)
	w.buf.Write(cat(h, body, t))
	return w
}

func (w *ngWriter) shb() *ngWriter {
	body := make([]byte, 16)
	w.bo.PutUint32(body[0:4], ngByteOrderMagic)
	w.bo.PutUint16(body[4:6], 1)
	w.bo.PutUint16(body[6:8], 0)
	binary.LittleEndian.PutUint64(body[8:16], ^uint64(0))
	return w.block(ngBlockSHB, body)
}

// idb appends an interface; opts are raw option bytes (already encoded).
func (w *ngWriter) idb(lt uint16, snap uint32, opts ...[]byte) *ngWriter {
	body := make([]byte, 8)
	w.bo.PutUint16(body[0:2], lt)
	w.bo.PutUint32(body[4:8], snap)
	for _, o := range opts {
		body = append(body, o...)
	}
	if len(opts) > 0 {
		body = append(body, 0, 0, 0, 0) // opt_endofopt
	}
	return w.block(ngBlockIDB, body)
}

// opt encodes one option with padding.
func (w *ngWriter) opt(code uint16, val []byte) []byte {
	h := make([]byte, 4)
	w.bo.PutUint16(h[0:2], code)
	w.bo.PutUint16(h[2:4], uint16(len(val)))
	return pad4(cat(h, val))
}

// epb appends an enhanced packet with a timestamp in units per second.
func (w *ngWriter) epb(r rec, unitsPerSec uint64) *ngWriter {
	body := make([]byte, 20)
	w.bo.PutUint32(body[0:4], uint32(r.iface))
	ts := uint64(r.ts.Unix())*unitsPerSec + uint64(r.ts.Nanosecond())*unitsPerSec/1e9
	w.bo.PutUint32(body[4:8], uint32(ts>>32))
	w.bo.PutUint32(body[8:12], uint32(ts))
	orig := r.origLen
	if orig == 0 {
		orig = len(r.data)
	}
	w.bo.PutUint32(body[12:16], uint32(len(r.data)))
	w.bo.PutUint32(body[16:20], uint32(orig))
	return w.block(ngBlockEPB, cat(body, r.data))
}

func (w *ngWriter) bytes() []byte { return slices.Clone(w.buf.Bytes()) }

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

// writeTemp writes b to a file in a fresh temp dir and returns its path.
func writeTemp(tb testing.TB, name string, b []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// readAll reads every packet from r, copying the data.
func readAll(r *Reader) ([]Record, error) {
	var out []Record
	for {
		rec, err := r.ReadPacket()
		if err != nil {
			return out, err
		}
		rec.Data = slices.Clone(rec.Data)
		out = append(out, rec)
	}
}

// t0 is a whole second, so ticks of 1 s start at t0.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }
