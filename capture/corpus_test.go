package capture

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/corpus"
)

// Where the broken corpus files are damaged: from the MANIFEST notes for
// the corpus-made cuts, and from the record header for the nDPI fuzz file
// (24-byte file header, 16-byte record header, 197 bytes once version 2.0's
// swapped lengths are undone, then 2 bytes of the next header).
var corpusDamageOffset = map[string]int64{
	"variety/pcpp__three_http_streams-mid-packet-truncated-by-corpus.pcap":        1650,
	"variety/pcpp__three_http_streams-mid-record-header-truncated-by-corpus.pcap": 3983 - 8,
	"variety/pcpp__many_interfaces-1-mid-block-truncated-by-corpus.pcapng":        6312,
	"variety/ndpi__fuzz-2021-10-13.pcap":                                          24 + 16 + 197,
}

// corpusUndecodable is how many packets of a file have no readable IP
// source, for files that test a decoding rule. The reasons are in the
// MANIFEST notes; tcpdump agrees on each.
var corpusUndecodable = map[string]uint64{
	"variety/tcpdump__LINKTYPE_IPV4_invalid.pcap":     0, // IPv6 under LINKTYPE_IPV4: version nibble wins
	"variety/tcpdump__LINKTYPE_IPV4.pcap":             0,
	"variety/tcpdump__LINKTYPE_IPV6.pcap":             0,
	"variety/tcpdump__LINKTYPE_RAW_ipv4.pcap":         0,
	"variety/tcpdump__LINKTYPE_RAW_ipv6.pcap":         0,
	"variety/pcpp__sll2.pcap":                         0,
	"variety/tcpdump__tcp-handshake-nano.pcap":        0, // SLL
	"variety/pcpp__pcapng-example.pcapng":             0, // Ethernet and SLL interfaces
	"variety/pcpp__many_interfaces-1.pcapng":          0, // Ethernet and NULL interfaces
	"variety/pcpp__null_loopback.pcap":                1, // one record with family 0x0008000f
	"variety/pcpp__NullLoopback.pcap":                 1,
	"variety/pcpp__one_http_stream_rst.pcap":          0, // double 802.1Q + PPPoE
	"variety/tcpdump__802.1ad_QinQ.pcap":              2, // ARP inside QinQ
	"variety/pcpp__EthDot3.pcap":                      1, // 802.3 + LLC (STP)
	"variety/tcpdump__bigtcp-ipv4.pcap":               0,
	"variety/tcpdump__bigtcp-ipv6-hbh.pcap":           0,
	"variety/tcpdump__nflog.pcap":                     4, // NFLOG is not read
	"variety/tcpdump__unsupported-link-type-160.pcap": 1,
	"variety/tcpdump__ieee802.11_htc.pcap":            1,
	"benign/ndpi__dns.pcap":                           0, // 2 of 5 in double 802.1Q + PPPoE
	"attacks/stopddos__pkt.TCP.synflood.spoofed.pcap": 0,
}

// corpusClasses checks per-class totals against the MANIFEST notes of the
// attack captures that state them exactly.
var corpusClasses = map[string]struct {
	packets [detector.NumClasses]uint64
	sources int // distinct source addresses over the whole file
}{
	// "37841 pure SYNs from 37623 distinct src IPs"
	"attacks/stopddos__pkt.TCP.synflood.spoofed.pcap": {[detector.NumClasses]uint64{detector.ClassSYN: 37841}, 37623},
	// "9639 SYN+ECE+CWR ... (+239 RST)"
	"attacks/stopddos__pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng": {[detector.NumClasses]uint64{detector.ClassSYN: 9639, detector.ClassTCP: 239}, -1},
	// "1994 SYNs ... + 12 SYN-ACK, 5 RST-ACK replies"
	"attacks/ndpi__synscan.pcap": {[detector.NumClasses]uint64{detector.ClassSYN: 1994, detector.ClassTCP: 17}, -1},
	// "542 SYN-ACK + 354 SYN from 60 src IPs"
	"attacks/stopddos__amp.TCP.syn.optionallyACK.optionallysamePort.pcapng": {[detector.NumClasses]uint64{detector.ClassSYN: 354, detector.ClassTCP: 542}, -1},
	// "3984 pkts from 2767 reflectors"
	"attacks/stopddos__amp.UDP.isakmp.pcap": {[detector.NumClasses]uint64{detector.ClassUDP: 3984}, 2767},
}

// corpusResult is what reading one file gave.
type corpusResult struct {
	packets     int
	classes     [detector.NumClasses]uint64
	undecodable uint64
	sources     map[detector.Addr]bool
	err         error
}

// replayFile replays paths and sums its ticks.
func replayFile(t *testing.T, paths []string, opt ReplayOptions) (corpusResult, []detector.Tick) {
	t.Helper()
	// Every source from its first packet: the manifest counts distinct
	// sources in the capture, which the decoder must find.
	opt.AdmitAfter = 1
	r, err := NewReplay(paths, opt)
	if err != nil {
		return corpusResult{err: err}, nil
	}
	defer r.Close()
	res := corpusResult{sources: make(map[detector.Addr]bool)}
	var ticks []detector.Tick
	for {
		tk, err := r.Next()
		if err != nil {
			res.err = err
			break
		}
		cp := *tk
		cp.Sources = append([]detector.Source(nil), tk.Sources...)
		ticks = append(ticks, cp)
		for c, n := range tk.Total.Packets {
			res.classes[c] += n
			res.packets += int(n)
		}
		res.packets += int(tk.UnparsedPackets)
		res.undecodable += tk.UnparsedPackets
		for _, s := range tk.Sources {
			res.sources[s.Addr] = true
		}
	}
	if st := r.Stats(); st.Packets != uint64(res.packets) || st.Undecodable != res.undecodable {
		t.Errorf("stats count %d packets (%d undecodable), ticks hold %d (%d)", st.Packets, st.Undecodable, res.packets, res.undecodable)
	}
	return res, ticks
}

func TestCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	rows := corpus.Manifest(t, dir)
	for _, row := range rows {
		t.Run(row.Path, func(t *testing.T) {
			path := filepath.Join(dir, row.Path)
			if row.Refused {
				r, err := Open(path, nil)
				if err == nil {
					r.Close()
					t.Fatalf("opened as %v; MANIFEST says it must be refused", r.Format())
				}
				want := ErrNotCapture
				if strings.HasPrefix(row.Format, "zstd") {
					want = ErrZstd
				}
				if !errors.Is(err, want) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %q, want %v naming the file", err, want)
				}
				return
			}
			// The reader alone.
			r, err := Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := readAll(r)
			r.Close()
			checkEnd(t, row, path, len(recs), err, false)

			// The whole replay path, decoding included.
			res, _ := replayFile(t, []string{path}, ReplayOptions{})
			checkEnd(t, row, path, res.packets, res.err, false)
			if want, ok := corpusUndecodable[row.Path]; ok && res.undecodable != want {
				t.Errorf("%d undecodable packets, want %d", res.undecodable, want)
			}
			if want, ok := corpusClasses[row.Path]; ok {
				if res.classes != want.packets {
					t.Errorf("packets per class %v, want %v", res.classes, want.packets)
				}
				if want.sources >= 0 && len(res.sources) != want.sources {
					t.Errorf("%d distinct sources, want %d", len(res.sources), want.sources)
				}
			}

			// The same file gzipped reads the same.
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			gz := writeTemp(t, filepath.Base(path)+".gz", gzipBytes(t, raw))
			gres, _ := replayFile(t, []string{gz}, ReplayOptions{})
			checkEnd(t, row, gz, gres.packets, gres.err, true)
			if gres.classes != res.classes || gres.undecodable != res.undecodable {
				t.Errorf("gzip: classes %v undecodable %d, plain %v %d", gres.classes, gres.undecodable, res.classes, res.undecodable)
			}
		})
	}
}

// checkEnd compares a read of n packets ending in err with the manifest.
func checkEnd(t *testing.T, row corpus.Row, path string, n int, err error, gzipped bool) {
	t.Helper()
	if n != row.Packets {
		t.Errorf("%s: %d packets, MANIFEST says %d", path, n, row.Packets)
	}
	if !row.Broken {
		if err != io.EOF {
			t.Errorf("%s: ended with %v, want a clean io.EOF", path, err)
		}
		return
	}
	var re *ReadError
	if !errors.As(err, &re) {
		t.Fatalf("%s: ended with %v, want a *ReadError", path, err)
	}
	if re.Path != path || re.Decompressed != gzipped || !strings.Contains(err.Error(), path+" at byte ") {
		t.Errorf("%s: error %q does not name the file and offset", path, err)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("%s: error %v, want truncation (unexpected EOF)", path, err)
	}
	if want, ok := corpusDamageOffset[row.Path]; ok && re.Offset != want {
		t.Errorf("%s: damage reported at byte %d, want %d", path, re.Offset, want)
	}
}

// TestCorpusStdinAndSplit replays corpus files through standard input, and
// one file cut into two: the two halves must give the very same ticks as
// the whole, since ticks run on across files.
func TestCorpusStdinAndSplit(t *testing.T) {
	dir := corpus.Dir(t)
	whole := filepath.Join(dir, "attacks", "stopddos__pkt.TCP.synflood.spoofed.pcap")
	want, wantTicks := replayFile(t, []string{whole}, ReplayOptions{})
	if want.err != io.EOF || want.packets != 37841 {
		t.Fatalf("whole file: %d packets, %v", want.packets, want.err)
	}

	f, err := os.Open(whole)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := replayFile(t, []string{StdinPath}, ReplayOptions{Stdin: bufio.NewReader(f)})
	if got.err != io.EOF || got.packets != want.packets || got.classes != want.classes {
		t.Errorf("stdin: %d packets %v, %v", got.packets, got.classes, got.err)
	}

	// Split after packet 20000, in the middle of a tick.
	r, err := Open(whole, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readAll(r)
	r.Close()
	if err != io.EOF {
		t.Fatal(err)
	}
	var halves [2][]rec
	for i, rc := range recs {
		h := 0
		if i >= 20000 {
			h = 1
		}
		halves[h] = append(halves[h], rec{ts: rc.Info.Timestamp, data: rc.Data, origLen: rc.Info.Length})
	}
	a := writeTemp(t, "first.pcap", pcapFile(1, halves[0]...))
	b := writeTemp(t, "second.pcap", pcapFile(1, halves[1]...))
	split, splitTicks := replayFile(t, []string{a, b}, ReplayOptions{})
	if split.err != io.EOF || len(splitTicks) != len(wantTicks) {
		t.Fatalf("split: %d ticks, %v; whole: %d ticks", len(splitTicks), split.err, len(wantTicks))
	}
	for i := range wantTicks {
		w, g := wantTicks[i], splitTicks[i]
		if !w.Start.Equal(g.Start) || w.Total != g.Total || len(w.Sources) != len(g.Sources) {
			t.Errorf("tick %d: split %v %+v %d sources, whole %v %+v %d sources", i,
				g.Start, g.Total, len(g.Sources), w.Start, w.Total, len(w.Sources))
		}
	}
}
