package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// Addresses from the documentation ranges.
var (
	tSrc4  = netip.MustParseAddr("192.0.2.1")
	tSrc4b = netip.MustParseAddr("192.0.2.2")
	tDst4  = netip.MustParseAddr("198.51.100.1")
	tSrc6  = netip.MustParseAddr("2001:db8::1")
	tDst6  = netip.MustParseAddr("2001:db8::2")
	tMAC1  = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	tMAC2  = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

func addr(a netip.Addr) detector.Addr { return detector.AddrFrom(a) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// serialize builds a frame from gopacket layers, fixing lengths but not
// checksums (the decoder reads none).
func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return slices.Clone(buf.Bytes())
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: tMAC1, DstMAC: tMAC2, EthernetType: t}
}

func ip4(src netip.Addr, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: tDst4.AsSlice()}
}

func ip6(src netip.Addr, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: src.AsSlice(), DstIP: tDst6.AsSlice()}
}

func tcpSYN() *layers.TCP { return &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Window: 1024} }

func tcpSYNACK() *layers.TCP {
	return &layers.TCP{SrcPort: 80, DstPort: 40000, SYN: true, ACK: true, Window: 1024}
}

func udp(sport uint16) *layers.UDP { return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 9999} }

func payload(n int) gopacket.Payload { return gopacket.Payload(make([]byte, n)) }

// ext6 builds an IPv6 extension header (hop-by-hop, routing or destination
// options form) of 8*(units+1) bytes.
func ext6(next layers.IPProtocol, units int) gopacket.Payload {
	b := make([]byte, 8*(units+1))
	b[0], b[1] = byte(next), byte(units)
	return b
}

// frag6 builds an IPv6 fragment header; offset is in 8-byte units.
func frag6(next layers.IPProtocol, offset uint16, more bool) gopacket.Payload {
	b := make([]byte, 8)
	b[0] = byte(next)
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:4], v)
	binary.BigEndian.PutUint32(b[4:8], 0x12345678)
	return b
}

// ah6 builds an authentication header of (plen+2)*4 bytes.
func ah6(next layers.IPProtocol, plen int) gopacket.Payload {
	b := make([]byte, (plen+2)*4)
	b[0], b[1] = byte(next), byte(plen)
	return b
}

// vlan builds one raw 802.1Q-style tag with the given TPID already in the
// preceding EtherType: 2 bytes TCI, 2 bytes next EtherType.
func vlanTag(vid uint16, next uint16) gopacket.Payload {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b[0:2], vid)
	binary.BigEndian.PutUint16(b[2:4], next)
	return b
}

// sllHeader is a 16-byte Linux cooked header for protocol proto.
func sllHeader(proto uint16) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b[0:2], 0) // packet to us
	binary.BigEndian.PutUint16(b[2:4], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(b[4:6], 6) // address length
	copy(b[6:12], tMAC1)                  // address
	binary.BigEndian.PutUint16(b[14:16], proto)
	return b
}

// sll2Header is a 20-byte Linux cooked v2 header for protocol proto.
func sll2Header(proto uint16) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:2], proto)
	binary.BigEndian.PutUint32(b[4:8], 2) // interface index
	binary.BigEndian.PutUint16(b[8:10], 1)
	b[10], b[11] = 0, 6
	copy(b[12:18], tMAC1)
	return b
}

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
