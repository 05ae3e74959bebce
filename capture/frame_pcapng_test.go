package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
)

// TestPcapNG covers what the corpus has (unknown local blocks, decryption
// secrets, many interfaces, mixed link types, nanosecond and binary
// resolutions) and what pcapgo v1.1.19 gets wrong on its own.
func TestPcapNG(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	ethFrame := frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false))
	sll2Frame := cat(sll2Header(0x0800), frameOf(ip4(tSrc4b, layers.IPProtocolUDP), udp(53)))
	p := func(d time.Duration, data []byte, iface int) rec { return rec{ts: at(d), data: data, iface: iface} }

	t.Run("mixed-link-types-and-resolutions", func(t *testing.T) {
		w := newNG(le)
		w.idb(1, 0) // default microseconds
		w.block(0x80000001, []byte("local block, skipped"))
		w.block(0x0000000a, make([]byte, 40))                     // decryption secrets block
		w.idb(276, 65535, w.opt(ngOptTSResol, []byte{0x80 | 10})) // SLL2, 2^-10 s
		w.epb(p(time.Second, ethFrame, 0), 1e6)
		w.epb(p(2*time.Second, sll2Frame, 1), 1024)
		w.idb(101, 0, w.opt(ngOptTSResol, []byte{9})) // an interface added mid-section
		w.epb(p(3*time.Second+1, ethFrame[14:], 2), 1e9)
		got, err := readAll(mustReader(t, w.bytes()))
		if err != io.EOF || len(got) != 3 {
			t.Fatalf("%d packets, %v", len(got), err)
		}
		want := []struct {
			lt LinkType
			ts time.Time
		}{{LinkTypeEthernet, at(time.Second)}, {LinkTypeLinuxSLL2, at(2 * time.Second)}, {LinkTypeRaw, at(3*time.Second + 1)}}
		for i, g := range got {
			if g.LinkType != want[i].lt || !g.Info.Timestamp.Equal(want[i].ts) {
				t.Errorf("packet %d: %v at %v, want %v at %v", i, g.LinkType, g.Info.Timestamp, want[i].lt, want[i].ts)
			}
		}
	})
	t.Run("many-interfaces", func(t *testing.T) {
		w := newNG(le)
		for i := range 95 {
			w.idb(uint16(i%2), 0, w.opt(ngOptTSResol, []byte{byte(3 + i%7)}))
		}
		w.epb(rec{ts: at(0), data: ethFrame, iface: 81}, 1e6) // odd index: Ethernet, resolution 10^-7
		got, err := readAll(mustReader(t, w.bytes()))
		if err != io.EOF || len(got) != 1 || got[0].LinkType != LinkTypeEthernet || got[0].Info.InterfaceIndex != 81 {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("sections-of-both-byte-orders", func(t *testing.T) {
		a := newNG(le)
		a.idb(1, 0).epb(p(0, ethFrame, 0), 1e6)
		b := newNG(be)
		b.idb(276, 0).epb(p(time.Second, sll2Frame, 0), 1e6)
		got, err := readAll(mustReader(t, cat(a.bytes(), b.bytes())))
		if err != io.EOF || len(got) != 2 || got[0].LinkType != LinkTypeEthernet || got[1].LinkType != LinkTypeLinuxSLL2 {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("simple-and-obsolete-packet-blocks", func(t *testing.T) {
		w := newNG(le)
		w.idb(1, 0)
		spb := make([]byte, 4)
		le.PutUint32(spb, uint32(len(ethFrame)))
		w.block(ngBlockSPB, cat(spb, ethFrame))
		pb := make([]byte, 20)
		le.PutUint16(pb[0:2], 0)
		le.PutUint32(pb[12:16], uint32(len(ethFrame)))
		le.PutUint32(pb[16:20], uint32(len(ethFrame)))
		w.block(ngBlockPB, cat(pb, ethFrame))
		got, err := readAll(mustReader(t, w.bytes()))
		if err != io.EOF || len(got) != 2 || !bytes.Equal(got[0].Data, ethFrame) || !bytes.Equal(got[1].Data, ethFrame) {
			t.Fatalf("%+v, %v", got, err)
		}
	})
	t.Run("huge-idb-snaplen", func(t *testing.T) {
		// pcapgo would allocate the snaplen (4 GB) for its packet buffer.
		w := newNG(le)
		w.idb(1, 0xffffffff).epb(p(0, ethFrame, 0), 1e6)
		got, err := readAll(mustReader(t, w.bytes()))
		if err != io.EOF || len(got) != 1 {
			t.Fatalf("%+v, %v", got, err)
		}
	})
}

// TestPcapNGDamage checks that a damaged pcapng file gives the packets
// before the damage, then a ReadError at the damaged block, never a panic,
// a silent early io.EOF or a huge allocation.
func TestPcapNGDamage(t *testing.T) {
	le := binary.LittleEndian
	frame := frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false))
	good := func() *ngWriter {
		w := newNG(le)
		w.idb(1, 0)
		w.epb(rec{ts: at(0), data: frame}, 1e6)
		return w
	}
	goodLen := len(good().bytes())
	setU32 := func(b []byte, off int, v uint32) []byte { le.PutUint32(b[off:], v); return b }
	epbAt := func(w *ngWriter) []byte { // a second EPB, to be damaged at goodLen
		return w.epb(rec{ts: at(time.Second), data: frame}, 1e6).bytes()
	}
	cases := []struct {
		name    string
		file    []byte
		wantErr error
		off     int // offset of the damaged block; -1: goodLen, after one packet
	}{
		{"truncated-block", func() []byte { b := epbAt(good()); return b[:len(b)-5] }(), io.ErrUnexpectedEOF, -1},
		{"truncated-block-header", func() []byte { b := epbAt(good()); return b[:goodLen+6] }(), io.ErrUnexpectedEOF, -1},
		{"length-below-12", setU32(epbAt(good()), goodLen+4, 8), ErrCorrupt, -1},
		{"length-not-multiple-of-4", setU32(epbAt(good()), goodLen+4, 61), ErrCorrupt, -1},
		{"length-absurd", setU32(epbAt(good()), goodLen+4, 0xfffffff0), ErrCorrupt, -1},
		{"trailer-mismatch", func() []byte { b := epbAt(good()); return setU32(b, len(b)-4, 12) }(), ErrCorrupt, -1},
		{"epb-unknown-interface", setU32(epbAt(good()), goodLen+8, 1), ErrCorrupt, -1},
		{"epb-caplen-past-block", setU32(epbAt(good()), goodLen+20, 1000), ErrCorrupt, -1},
		{"epb-too-short", good().block(ngBlockEPB, make([]byte, 8)).bytes(), ErrCorrupt, -1},
		{"spb-length-past-block", func() []byte {
			w := good()
			spb := make([]byte, 8)
			le.PutUint32(spb, 5000)
			return w.block(ngBlockSPB, spb).bytes()
		}(), ErrCorrupt, -1},
		{"isb-interface-0", good().block(ngBlockISB, make([]byte, 12)).bytes(), nil, 0}, // a valid ISB
		{"isb-bad-interface", func() []byte {
			body := make([]byte, 12)
			le.PutUint32(body, 7)
			return good().block(ngBlockISB, body).bytes()
		}(), ErrCorrupt, -1},
		{"idb-tsresol-1e-64", func() []byte { w := good(); return w.idb(1, 0, w.opt(ngOptTSResol, []byte{64})).bytes() }(), ErrCorrupt, -1},
		{"idb-tsresol-2e-127", func() []byte { w := good(); return w.idb(1, 0, w.opt(ngOptTSResol, []byte{0xff})).bytes() }(), ErrCorrupt, -1},
		{"idb-tsresol-empty", func() []byte { w := good(); return w.idb(1, 0, w.opt(ngOptTSResol, nil)).bytes() }(), ErrCorrupt, -1},
		{"idb-tsoffset-short", func() []byte { w := good(); return w.idb(1, 0, w.opt(ngOptTSOffset, []byte{1, 2})).bytes() }(), ErrCorrupt, -1},
		{"idb-option-past-block", func() []byte {
			w := good()
			o := w.opt(2, []byte("eth0"))
			le.PutUint16(o[2:4], 200)
			return w.idb(1, 0, o).bytes()
		}(), ErrCorrupt, -1},
		{"idb-endofopt-with-length", func() []byte {
			w := good()
			o := w.opt(0, []byte{1, 2, 3, 4})
			return w.idb(1, 0, o).bytes()
		}(), ErrCorrupt, -1},
		{"shb-bad-byte-order", func() []byte { b := epbAt(good()); return setU32(b, 8, 0x11223344) }(), ErrCorrupt, 0},
		{"shb-version-2", func() []byte { b := good().bytes(); le.PutUint16(b[12:14], 2); return b }(), ErrCorrupt, 0},
		{"packet-before-interface", func() []byte {
			w := newNG(le)
			return w.epb(rec{ts: at(0), data: frame}, 1e6).bytes()
		}(), ErrCorrupt, 28},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReader("x.pcapng", bytes.NewReader(tc.file))
			var got []Record
			if err == nil {
				got, err = readAll(r)
			}
			if tc.wantErr == nil {
				if err != io.EOF {
					t.Fatalf("%v, want io.EOF", err)
				}
				return
			}
			var re *ReadError
			if !errors.As(err, &re) || !errors.Is(err, tc.wantErr) || re.Path != "x.pcapng" {
				t.Fatalf("error %v, want a ReadError wrapping %v", err, tc.wantErr)
			}
			wantOff, wantPackets := tc.off, 0
			if wantOff < 0 {
				wantOff, wantPackets = goodLen, 1
			}
			if re.Offset != int64(wantOff) || len(got) != wantPackets {
				t.Errorf("%d packets then an error at byte %d, want %d then byte %d", len(got), re.Offset, wantPackets, wantOff)
			}
		})
	}
}
