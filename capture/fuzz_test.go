package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// FuzzDecode feeds arbitrary frames of arbitrary link types to the
// decoder. It must not panic, and what it returns must be consistent.
func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases(f) {
		f.Add(uint16(tc.lt), tc.frame)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, lt uint16, frame []byte) {
		p := d.Decode(LinkType(lt), frame)
		if !p.OK && p != (Packet{}) {
			t.Fatalf("undecodable with fields set: %+v", p)
		}
		if p.Class >= detector.NumClasses {
			t.Fatalf("class %d", p.Class)
		}
		if (p.SrcPort != 0 || p.DstPort != 0 || p.TCPFlags != 0) && !p.L4 {
			t.Fatalf("ports or flags without a transport header: %+v", p)
		}
		if p.TCPFlags != 0 && p.Proto != protoTCP {
			t.Fatalf("TCP flags of a %d packet: %+v", p.Proto, p)
		}
		if p.L4 && (p.Fragment == detector.FragLater || p.Class != detector.ClassTCP && p.Class != detector.ClassSYN && p.Class != detector.ClassUDP) {
			t.Fatalf("L4 set for %v, fragment %v", p.Class, p.Fragment)
		}
		if p.OK && p.Fragment > detector.FragLater {
			t.Fatalf("fragment %d", p.Fragment)
		}
		if again := d.Decode(LinkType(lt), frame); again != p {
			t.Fatalf("decoding twice: %+v then %+v", p, again)
		}
	})
}

// fuzzReplaySeeds are small whole files: every container and a few
// damaged ones.
func fuzzReplaySeeds(tb testing.TB) [][]byte {
	le, be := binary.LittleEndian, binary.BigEndian
	recs := samplePackets(tb)
	syn := frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(tSrc4, layers.IPProtocolTCP), tcp(true, false))
	mixed := newNG(le)
	mixed.idb(1, 0).idb(276, 0, mixed.opt(ngOptTSResol, []byte{0x80 | 20}))
	mixed.block(0x80000001, []byte{1, 2, 3, 4})
	mixed.epb(rec{ts: at(0), data: syn}, 1e6)
	mixed.epb(rec{ts: at(time.Hour), data: cat(sll2Header(0x0800), syn[14:]), iface: 1}, 1<<20)
	pcap := classicPcap(le, false, 1, 65535, recs)
	return [][]byte{
		pcap,
		classicPcap(be, true, 113, 0, []rec{{ts: at(0), data: cat(sllHeader(0x0800), syn[14:])}}),
		ngFile(le, recs),
		ngFile(be, recs),
		mixed.bytes(),
		gzipBytes(tb, pcap),
		pcap[:len(pcap)-3],
		nil,
		{0x28, 0xb5, 0x2f, 0xfd},
	}
}

// FuzzReplay feeds arbitrary files through the whole replay: format
// detection, the pcap reader, the pcapng framer and pcapgo, the decoder
// and the tick logic. It must not panic or loop, and every packet read must
// be in exactly one tick.
func FuzzReplay(f *testing.F) {
	for _, seed := range fuzzReplaySeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		const maxGap = 5 * time.Second
		r, err := NewReplay([]string{StdinPath}, ReplayOptions{Stdin: bytes.NewReader(file), MaxGap: maxGap})
		if err != nil {
			return
		}
		defer r.Close()
		var counted uint64
		ticks := 0
		for {
			tk, err := r.Next()
			if err != nil {
				var re *ReadError
				if err != io.EOF && !errors.As(err, &re) {
					t.Fatalf("error %v is neither io.EOF nor a *ReadError", err)
				}
				break
			}
			ticks++
			counted += tk.Total.TotalPackets() + tk.UnparsedPackets
			// Each packet can open at most one tick after maxGap/tick
			// empty ones.
			if limit := (r.Stats().Packets + 1) * (uint64(maxGap/time.Second) + 2); uint64(ticks) > limit {
				t.Fatalf("%d ticks for %d packets", ticks, r.Stats().Packets)
			}
		}
		if st := r.Stats(); counted != st.Packets {
			t.Fatalf("ticks hold %d packets, %d read", counted, st.Packets)
		}
	})
}
