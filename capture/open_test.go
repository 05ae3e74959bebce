package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// samplePackets are three frames with distinct sizes and times, used to
// check that every container format yields the same records.
func samplePackets(tb testing.TB) []rec {
	tb.Helper()
	return []rec{
		{ts: at(1500 * time.Millisecond), data: frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false))},
		{ts: at(1501*time.Millisecond + 7*time.Microsecond), data: frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolUDP), udp(53), payload(30)), origLen: 1514},
		{ts: at(3 * time.Second), data: frameOf(paddedEth(layers.EthernetTypeIPv6), ip6(tSrc6, layers.IPProtocolTCP), tcp(true, true))},
	}
}

// classicPcap builds a pcap in any of the four magic variants.
func classicPcap(bo binary.ByteOrder, nano bool, lt uint32, snap uint32, recs []rec) []byte {
	h := make([]byte, 24)
	magic, div := uint32(0xa1b2c3d4), int64(1e3)
	if nano {
		magic, div = 0xa1b23c4d, 1
	}
	bo.PutUint32(h[0:4], magic)
	bo.PutUint16(h[4:6], 2)
	bo.PutUint16(h[6:8], 4)
	bo.PutUint32(h[16:20], snap)
	bo.PutUint32(h[20:24], lt)
	out := h
	for _, r := range recs {
		out = append(out, pcapRecord(bo, r, div)...)
	}
	return out
}

func ngFile(bo binary.ByteOrder, recs []rec) []byte {
	w := newNG(bo)
	w.idb(1, 0, w.opt(ngOptTSResol, []byte{9})) // nanoseconds
	for _, r := range recs {
		w.epb(r, 1e9)
	}
	return w.bytes()
}

func TestOpenFormats(t *testing.T) {
	recs := samplePackets(t)
	le, be := binary.LittleEndian, binary.BigEndian
	cases := []struct {
		name   string
		file   []byte
		format Format
		nano   bool
	}{
		{"pcap-us-le", classicPcap(le, false, 1, 65535, recs), FormatPcap, false},
		{"pcap-us-be", classicPcap(be, false, 1, 65535, recs), FormatPcap, false},
		{"pcap-ns-le", classicPcap(le, true, 1, 65535, recs), FormatPcap, true},
		{"pcap-ns-be", classicPcap(be, true, 1, 65535, recs), FormatPcap, true},
		{"pcapng-le", ngFile(le, recs), FormatPcapNG, true},
		{"pcapng-be", ngFile(be, recs), FormatPcapNG, true},
	}
	for _, tc := range cases {
		for _, gz := range []bool{false, true} {
			name, file := tc.name, tc.file
			if gz {
				name, file = name+".gz", gzipBytes(t, file)
			}
			t.Run(name, func(t *testing.T) {
				r, err := NewReader(name, bytes.NewReader(file))
				if err != nil {
					t.Fatal(err)
				}
				if r.Format() != tc.format || r.Gzipped() != gz {
					t.Errorf("format %v gzipped %v, want %v %v", r.Format(), r.Gzipped(), tc.format, gz)
				}
				got, err := readAll(r)
				if err != io.EOF {
					t.Fatalf("end: %v, want io.EOF", err)
				}
				if len(got) != len(recs) {
					t.Fatalf("%d packets, want %d", len(got), len(recs))
				}
				for i, g := range got {
					w := recs[i]
					wantTS := w.ts
					if !tc.nano {
						wantTS = wantTS.Truncate(time.Microsecond)
					}
					wantLen := w.origLen
					if wantLen == 0 {
						wantLen = len(w.data)
					}
					if !g.Info.Timestamp.Equal(wantTS) || !bytes.Equal(g.Data, w.data) ||
						g.Info.Length != wantLen || g.Info.CaptureLength != len(w.data) || g.LinkType != LinkTypeEthernet {
						t.Errorf("packet %d: %v len %d/%d lt %v, want %v len %d/%d", i, g.Info.Timestamp,
							g.Info.CaptureLength, g.Info.Length, g.LinkType, wantTS, len(w.data), wantLen)
					}
				}
				if r.BytesRead() != int64(len(file)) {
					t.Errorf("BytesRead %d, want %d", r.BytesRead(), len(file))
				}
			})
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	pcap := classicPcap(binary.LittleEndian, false, 1, 65535, samplePackets(t))
	cases := []struct {
		name    string
		file    []byte
		wantErr error
		msg     string
	}{
		{"text", []byte("45 61 1f 8b: not a capture\n"), ErrNotCapture, "not a pcap or pcapng file (magic 34 35 20 36)"},
		{"snoop", []byte("snoop\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x04"), ErrNotCapture, "magic 73 6e 6f 6f"},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x24, 0, 0, 0}, ErrZstd, "zstd-compressed capture not supported (decompress it first, e.g. zstd -d)"},
		{"zstd-in-gzip", gzipBytes(t, []byte{0x28, 0xb5, 0x2f, 0xfd, 0x24}), ErrZstd, "inside gzip"},
		{"text-in-gzip", gzipBytes(t, []byte("hello world")), ErrNotCapture, "inside gzip (magic 68 65 6c 6c)"},
		{"gzip-in-gzip", gzipBytes(t, gzipBytes(t, pcap)), ErrNotCapture, "gzip inside gzip"},
		{"three-bytes", []byte{0xd4, 0xc3, 0xb2}, ErrNotCapture, "only 3 bytes"},
		{"modified-pcap-magic", append([]byte{0x34, 0xcd, 0xb2, 0xa1}, pcap[4:]...), ErrNotCapture, "magic 34 cd b2 a1"},
		{"pcap-header-cut", pcap[:20], io.ErrUnexpectedEOF, "read x at byte 0: unexpected EOF"},
		{"pcap-version-3", func() []byte { b := bytes.Clone(pcap); b[4] = 3; return b }(), ErrCorrupt, "unsupported pcap version 3.4"},
		{"pcapng-shb-cut", ngFile(binary.LittleEndian, nil)[:20], io.ErrUnexpectedEOF, "read x at byte 0: unexpected EOF"},
		{"gzip-cut-in-header", gzipBytes(t, pcap)[:5], io.ErrUnexpectedEOF, "gzip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader("x", bytes.NewReader(tc.file))
			if err == nil {
				t.Fatalf("opened as %v, want an error", r.Format())
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "x") && !strings.HasPrefix(err.Error(), "read x") {
				t.Errorf("error %q, want %v containing %q and naming x", err, tc.wantErr, tc.msg)
			}
		})
	}
}

func TestOpenEmpty(t *testing.T) {
	for name, file := range map[string][]byte{
		"zero-bytes":        nil,
		"pcap-header-only":  classicPcap(binary.LittleEndian, false, 1, 65535, nil),
		"pcapng-header":     ngFile(binary.LittleEndian, nil),
		"gzip-of-nothing":   gzipBytes(t, nil),
		"gzip-pcap-header":  gzipBytes(t, classicPcap(binary.BigEndian, true, 1, 65535, nil)),
		"pcapng-shb-only":   newNG(binary.BigEndian).bytes(),
		"gzip-pcapng-empty": gzipBytes(t, ngFile(binary.BigEndian, nil)),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := NewReader(name, bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // and it stays at the end
				if _, err := r.ReadPacket(); err != io.EOF {
					t.Fatalf("ReadPacket: %v, want io.EOF", err)
				}
			}
		})
	}
}

func TestOpenPath(t *testing.T) {
	file := classicPcap(binary.LittleEndian, false, 1, 65535, samplePackets(t))
	path := writeTemp(t, "a.cap", file)
	r, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(r); len(got) != 3 || err != io.EOF {
		t.Errorf("%d packets, %v", len(got), err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}

	r, err = Open(StdinPath, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != "stdin" {
		t.Errorf("name %q", r.Name())
	}
	if got, err := readAll(r); len(got) != 3 || err != io.EOF {
		t.Errorf("stdin: %d packets, %v", len(got), err)
	}
	if _, err := Open(StdinPath, nil); err == nil {
		t.Error("stdin without a reader opened")
	}
	if _, err := Open(path+".missing", nil); err == nil || !strings.Contains(err.Error(), "a.cap.missing") {
		t.Errorf("missing file: %v", err)
	}
}

// TestPcapQuirks checks what the pcap reader accepts or fixes that pcapgo
// alone gets wrong.
func TestPcapQuirks(t *testing.T) {
	le := binary.LittleEndian
	frame := frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false), payload(100))
	one := []rec{{ts: at(0), data: frame}}

	t.Run("caplen-above-snaplen", func(t *testing.T) {
		// tcpdump and capinfos read it; pcapgo alone refuses it.
		got, err := readAll(mustReader(t, classicPcap(le, false, 1, 64, one)))
		if err != io.EOF || len(got) != 1 || len(got[0].Data) != len(frame) {
			t.Fatalf("%d packets, %v", len(got), err)
		}
	})
	t.Run("caplen-above-origlen", func(t *testing.T) {
		f := classicPcap(le, false, 1, 65535, []rec{{ts: at(0), data: frame, origLen: 60}})
		got, err := readAll(mustReader(t, f))
		if err != io.EOF || len(got) != 1 || got[0].Info.Length != len(frame) {
			t.Fatalf("%d packets, %v", len(got), err)
		}
	})
	t.Run("caplen-absurd", func(t *testing.T) {
		f := classicPcap(le, false, 1, 65535, append(one, one...))
		le.PutUint32(f[24+16+len(frame)+8:], 1<<30)
		got, err := readAll(mustReader(t, f))
		var re *ReadError
		if len(got) != 1 || !errors.As(err, &re) || !errors.Is(err, ErrCorrupt) || re.Offset != int64(24+16+len(frame)) {
			t.Fatalf("%d packets, %v", len(got), err)
		}
	})
	t.Run("version-2.0-swapped-lengths", func(t *testing.T) {
		f := classicPcap(le, false, 1, 0, []rec{{ts: at(0), data: frame, origLen: 524501}})
		le.PutUint16(f[6:8], 0)
		le.PutUint32(f[24+8:], 524501) // caplen and len written the other way round
		le.PutUint32(f[24+12:], uint32(len(frame)))
		got, err := readAll(mustReader(t, f))
		if err != io.EOF || len(got) != 1 || got[0].Info.Length != 524501 || len(got[0].Data) != len(frame) {
			t.Fatalf("%d packets, %v", len(got), err)
		}
	})
	t.Run("version-2.3-maybe-swapped", func(t *testing.T) {
		f := classicPcap(le, false, 1, 0, []rec{{ts: at(0), data: frame, origLen: 3000}, {ts: at(0), data: frame, origLen: 3000}})
		le.PutUint16(f[6:8], 3)
		le.PutUint32(f[24+8:], 3000) // first record swapped, second not
		le.PutUint32(f[24+12:], uint32(len(frame)))
		got, err := readAll(mustReader(t, f))
		if err != io.EOF || len(got) != 2 || got[0].Info.Length != 3000 || got[1].Info.Length != 3000 {
			t.Fatalf("%d packets, %v", len(got), err)
		}
	})
	t.Run("microseconds-overflowing", func(t *testing.T) {
		f := classicPcap(le, false, 1, 65535, one)
		le.PutUint32(f[24+4:], 2147483648) // as in tcpdump's timestamp_invalid_micro.pcap
		got, err := readAll(mustReader(t, f))
		want := t0.Add(2147*time.Second + 483648*time.Microsecond)
		if err != io.EOF || len(got) != 1 || !got[0].Info.Timestamp.Equal(want) {
			t.Fatalf("%v, %v; want %v", got, err, want)
		}
	})
	t.Run("linktype-fcs-bits-and-sll2", func(t *testing.T) {
		for lt, want := range map[uint32]LinkType{
			0x30000001: LinkTypeEthernet,  // FCS length bits set
			0x40000000: LinkTypeNull,      // as in nDPI's fuzz-2021-10-13.pcap
			276:        LinkTypeLinuxSLL2, // pcapgo alone reads 20
			0x00010001: linkTypeInvalid,
		} {
			got, err := readAll(mustReader(t, classicPcap(le, false, lt, 65535, one)))
			if err != io.EOF || len(got) != 1 || got[0].LinkType != want {
				t.Errorf("link type field %#x: %v, %v; want %v", lt, got, err, want)
			}
		}
	})
	t.Run("truncated-data", func(t *testing.T) {
		f := classicPcap(le, false, 1, 65535, append(one, one...))
		got, err := readAll(mustReader(t, f[:len(f)-10]))
		var re *ReadError
		if len(got) != 1 || !errors.As(err, &re) || !errors.Is(err, io.ErrUnexpectedEOF) || re.Offset != int64(24+16+len(frame)) {
			t.Fatalf("%d packets, %v", len(got), err)
		}
		if want := fmt.Sprintf("read x at byte %d: unexpected EOF", 24+16+len(frame)); err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
	t.Run("truncated-in-gzip", func(t *testing.T) {
		f := classicPcap(le, false, 1, 65535, append(one, one...))
		got, err := readAll(mustReader(t, gzipBytes(t, f[:len(f)-10])))
		want := fmt.Sprintf("read x at byte %d of the decompressed stream: unexpected EOF", 24+16+len(frame))
		if len(got) != 1 || err == nil || err.Error() != want {
			t.Fatalf("%d packets, %v; want %q", len(got), err, want)
		}
	})
	t.Run("gzip-stream-cut", func(t *testing.T) {
		f := classicPcap(le, false, 1, 65535, append(one, one...))
		gz := gzipBytes(t, f)
		_, err := readAll(mustReader(t, gz[:len(gz)-4]))
		var re *ReadError
		if !errors.As(err, &re) || !re.Decompressed {
			t.Fatalf("%v, want a ReadError in the decompressed stream", err)
		}
	})
}

// TestPcapLargeRecords checks records larger than the reader's buffer,
// which are copied rather than returned in place, between small ones, and
// a file cut inside one.
func TestPcapLargeRecords(t *testing.T) {
	le := binary.LittleEndian
	var recs []rec
	for i, n := range []int{60, 70000, 100, maxCaptureLen, 65536 - pcapRecordHeaderLen, 65536, 1514} {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		recs = append(recs, rec{ts: at(time.Duration(i) * time.Millisecond), data: b})
	}
	f := classicPcap(le, true, 1, 65535, recs)
	check := func(t *testing.T, got []Record, n int) {
		t.Helper()
		if len(got) != n {
			t.Fatalf("%d records, want %d", len(got), n)
		}
		for i, g := range got {
			if !bytes.Equal(g.Data, recs[i].data) || g.Info.CaptureLength != len(recs[i].data) || !g.Info.Timestamp.Equal(recs[i].ts) {
				t.Errorf("record %d: %d bytes at %v, want %d at %v", i, len(g.Data), g.Info.Timestamp, len(recs[i].data), recs[i].ts)
			}
		}
	}
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("whole/gzip=%v", gz), func(t *testing.T) {
			in := f
			if gz {
				in = gzipBytes(t, f)
			}
			got, err := readAll(mustReader(t, in))
			if err != io.EOF {
				t.Fatal(err)
			}
			check(t, got, len(recs))
		})
	}
	// Cut inside the maxCaptureLen record (the fourth).
	start := 24
	for _, r := range recs[:3] {
		start += pcapRecordHeaderLen + len(r.data)
	}
	for _, cut := range []int{start + 10, start + pcapRecordHeaderLen + 5, start + pcapRecordHeaderLen + maxCaptureLen - 1} {
		got, err := readAll(mustReader(t, f[:cut]))
		var re *ReadError
		if !errors.As(err, &re) || !errors.Is(err, io.ErrUnexpectedEOF) || re.Offset != int64(start) {
			t.Errorf("cut at %d: %v, want unexpected EOF at byte %d", cut, err, start)
		}
		check(t, got, 3)
	}
}

// TestPcapMatchesPcapgo checks that, on files pcapgo reads correctly
// (version 2.4, lengths in order, within the snaplen), the pcap reader
// returns exactly what pcapgo's ZeroCopyReadPacketData returned before the
// reader replaced it: the same data and the same CaptureInfo.
func TestPcapMatchesPcapgo(t *testing.T) {
	recs := samplePackets(t)
	recs = append(recs, rec{ts: time.Unix(1<<32-1, 999999000).UTC(), data: recs[0].data, origLen: 9000})
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, nano := range []bool{false, true} {
			f := classicPcap(bo, nano, 1, 65535, recs)
			pg, err := pcapgo.NewReader(bytes.NewReader(f))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(mustReader(t, f))
			if err != io.EOF || len(got) != len(recs) {
				t.Fatalf("%v nano=%v: %d records, %v", bo, nano, len(got), err)
			}
			for i, g := range got {
				data, ci, err := pg.ZeroCopyReadPacketData()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(g.Data, data) || !reflect.DeepEqual(g.Info, ci) || g.LinkType != LinkTypeEthernet {
					t.Errorf("%v nano=%v record %d: %+v, pcapgo %+v", bo, nano, i, g.Info, ci)
				}
			}
		}
	}
}

func mustReader(tb testing.TB, file []byte) *Reader {
	tb.Helper()
	r, err := NewReader("x", bytes.NewReader(file))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
