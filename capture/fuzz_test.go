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
// detection, the pcap reader, the pcapng framer and pcapgo, the decoder,
// the tick logic and a simulated plane with signature rules. It must not
// panic or loop, every packet read must be in exactly one tick and have
// one verdict, and the features must add up to the counters.
func FuzzReplay(f *testing.F) {
	for _, seed := range fuzzReplaySeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		const maxGap = 5 * time.Second
		plane := NewSimulatedPlane()
		for _, r := range []detector.SignatureRule{
			{Match: detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 53, Hi: 53}}, RatePPS: 10},
			{Match: detector.Match{Proto: protoTCP, TCPFlags: tcpFlagSYN, TCPFlagsMask: tcpFlagSYN | tcpFlagACK}, RatePPS: 25},
			{Match: detector.Match{Fragment: detector.FragLater}},
		} {
			r.Expires = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := plane.InstallSignature(r); err != nil {
				t.Fatal(err)
			}
		}
		var verdicts bytes.Buffer
		r, err := NewReplay([]string{StdinPath}, ReplayOptions{Stdin: bytes.NewReader(file), MaxGap: maxGap, Dropper: plane, Verdicts: &verdicts})
		if err != nil {
			return
		}
		defer r.Close()
		var counted, dropped uint64
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
			dropped += tk.Total.DroppedPackets
			checkFeatures(t, tk)
			// Each packet can open at most one tick after maxGap/tick
			// empty ones.
			if limit := (r.Stats().Packets + 1) * (uint64(maxGap/time.Second) + 2); uint64(ticks) > limit {
				t.Fatalf("%d ticks for %d packets", ticks, r.Stats().Packets)
			}
		}
		st := r.Stats()
		if counted != st.Packets {
			t.Fatalf("ticks hold %d packets, %d read", counted, st.Packets)
		}
		v := verdicts.Bytes()
		if uint64(len(v)) != st.Packets || uint64(bytes.Count(v, []byte("D"))) != dropped ||
			uint64(bytes.Count(v, []byte("U"))) != st.Undecodable {
			t.Fatalf("%d verdicts (%d D, %d U) for %d packets, %d dropped, %d undecodable",
				len(v), bytes.Count(v, []byte("D")), bytes.Count(v, []byte("U")), st.Packets, dropped, st.Undecodable)
		}
	})
}

// checkFeatures checks that a tick's features add up to its counters:
// every decodable packet in one length bucket and under one destination,
// source and destination ports counted alike, for TCP and UDP packets
// only.
func checkFeatures(t *testing.T, tk *detector.Tick) {
	t.Helper()
	f := &tk.Features
	total := tk.Total.TotalPackets()
	var lengths, dsts uint64
	for c := range f.Lengths {
		var n uint64
		for _, v := range f.Lengths[c] {
			n += v
		}
		if n != tk.Total.Packets[c] {
			t.Fatalf("class %s: %d packets by length, %d counted", detector.Class(c), n, tk.Total.Packets[c])
		}
		lengths += n
	}
	for i, d := range f.Dsts {
		dsts += d.Packets
		if i > 0 && d.Packets > f.Dsts[i-1].Packets {
			t.Fatalf("destinations out of order: %v", f.Dsts)
		}
	}
	if len(f.Dsts) > MaxTickDsts || dsts+f.DstsOther != total || lengths != total {
		t.Fatalf("%d packets: %d by length, %d destinations with %d + %d other", total, lengths, len(f.Dsts), dsts, f.DstsOther)
	}
	var byKind [detector.NumPortKinds]uint64
	for _, p := range f.Ports {
		byKind[p.Kind] += p.Packets
	}
	if byKind[detector.UDPSrcPort] != byKind[detector.UDPDstPort] || byKind[detector.TCPSrcPort] != byKind[detector.TCPDstPort] ||
		byKind[detector.UDPSrcPort] > tk.Total.Packets[detector.ClassUDP] ||
		byKind[detector.TCPSrcPort] > tk.Total.Packets[detector.ClassSYN]+tk.Total.Packets[detector.ClassTCP] {
		t.Fatalf("ports %v for totals %+v", byKind, tk.Total)
	}
}
