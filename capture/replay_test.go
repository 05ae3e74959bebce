package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/detector"
)

// tickView is a tick reduced to what the tests compare, copied out of the
// producer's storage.
type tickView struct {
	start   time.Duration // from t0
	sources []detector.Source
	total   detector.Counters
	unp     uint64
	prob    uint64 // ProbationPackets
}

func collect(t *testing.T, r *Replay) ([]tickView, error) {
	t.Helper()
	var out []tickView
	for {
		tk, err := r.Next()
		if err != nil {
			return out, err
		}
		if tk.Length != r.opt.Tick {
			t.Fatalf("tick length %v", tk.Length)
		}
		out = append(out, tickView{
			start:   tk.Start.Sub(t0),
			sources: append([]detector.Source(nil), tk.Sources...),
			total:   tk.Total,
			unp:     tk.UnparsedPackets,
			prob:    tk.ProbationPackets,
		})
	}
}

func replayOf(t *testing.T, opt ReplayOptions, files ...[]byte) *Replay {
	t.Helper()
	if opt.AdmitAfter == 0 {
		// These tests count a few packets per source; admission has
		// tests of its own (TestReplayAdmission).
		opt.AdmitAfter = 1
	}
	var paths []string
	dir := t.TempDir()
	for i, f := range files {
		p := filepath.Join(dir, string(rune('a'+i))+".pcap")
		if err := os.WriteFile(p, f, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	r, err := NewReplay(paths, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Frames used by the replay tests, all 60 bytes on the wire or more.
func synFrom(tb testing.TB, src string) []byte {
	tb.Helper()
	return frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(src, layers.IPProtocolTCP), tcp(true, false))
}

func udpFrom(tb testing.TB, src string, port uint16) []byte {
	tb.Helper()
	return frameOf(paddedEth(layers.EthernetTypeIPv4), ip4(src, layers.IPProtocolUDP), udp(port), payload(10))
}

func arpFrame(tb testing.TB) []byte {
	tb.Helper()
	return frameOf(paddedEth(layers.EthernetTypeARP), arpRequest(tSrc4))
}

func TestReplayTicks(t *testing.T) {
	a, b := "192.0.2.10", "192.0.2.20"
	file := pcapFile(1,
		rec{ts: at(100 * time.Millisecond), data: synFrom(t, a), origLen: 1000},
		rec{ts: at(500 * time.Millisecond), data: synFrom(t, a)},
		rec{ts: at(600 * time.Millisecond), data: arpFrame(t)},
		rec{ts: at(1200 * time.Millisecond), data: udpFrom(t, b, 53)},
		rec{ts: at(1300 * time.Millisecond), data: udpFrom(t, a, 123)},
		rec{ts: at(1400 * time.Millisecond), data: udpFrom(t, a, 1900)},
		rec{ts: at(4100 * time.Millisecond), data: synFrom(t, b)}, // after two empty ticks
	)
	r := replayOf(t, ReplayOptions{}, file)
	ticks, err := collect(t, r)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	starts := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}
	if len(ticks) != len(starts) {
		t.Fatalf("%d ticks, want %d: %+v", len(ticks), len(starts), ticks)
	}
	for i, tk := range ticks {
		if tk.start != starts[i] {
			t.Errorf("tick %d starts at %v, want %v", i, tk.start, starts[i])
		}
	}
	synLen := uint64(len(synFrom(t, a)))
	udpLen := uint64(len(udpFrom(t, a, 1)))

	t0s := ticks[0]
	if len(t0s.sources) != 1 || t0s.sources[0].Addr != addr(a) ||
		t0s.sources[0].Packets[detector.ClassSYN] != 2 || t0s.sources[0].Bytes[detector.ClassSYN] != 1000+synLen {
		t.Errorf("tick 0 sources: %+v", t0s.sources)
	}
	if t0s.unp != 1 || t0s.total.Packets[detector.ClassSYN] != 2 {
		t.Errorf("tick 0: unparsed %d, total %+v", t0s.unp, t0s.total)
	}
	t1 := ticks[1]
	// Sources in order of first appearance, last UDP port kept.
	if len(t1.sources) != 2 || t1.sources[0].Addr != addr(b) || t1.sources[1].Addr != addr(a) ||
		t1.sources[0].UDPSrcPort != 53 || t1.sources[1].UDPSrcPort != 1900 ||
		t1.sources[1].Packets[detector.ClassUDP] != 2 || t1.sources[1].Bytes[detector.ClassUDP] != 2*udpLen {
		t.Errorf("tick 1 sources: %+v", t1.sources)
	}
	if t1.total.Packets[detector.ClassUDP] != 3 || t1.total.TotalBytes() != 3*udpLen {
		t.Errorf("tick 1 total: %+v", t1.total)
	}
	for _, i := range []int{2, 3} {
		if len(ticks[i].sources) != 0 || ticks[i].total != (detector.Counters{}) || ticks[i].unp != 0 {
			t.Errorf("tick %d not empty: %+v", i, ticks[i])
		}
	}
	st := r.Stats()
	want := ReplayStats{Files: 1, Packets: 7, Bytes: 1000 + synLen + uint64(len(arpFrame(t))) + 3*udpLen + synLen,
		Undecodable: 1, UndecodableBytes: uint64(len(arpFrame(t))), Ticks: 5, EmptyTicks: 2}
	if st.UndecodableByLinkType[LinkTypeEthernet] != 1 {
		t.Errorf("undecodable by link type: %v", st.UndecodableByLinkType)
	}
	st.UndecodableByLinkType = nil
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stats\n got %+v\nwant %+v", st, want)
	}
	if done, total := r.Progress(); done != int64(len(file)) || total != int64(len(file)) {
		t.Errorf("progress %d/%d, want %d", done, total, len(file))
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the end: %v", err)
	}
}

func TestReplayClock(t *testing.T) {
	s := "192.0.2.1"
	cases := []struct {
		name      string
		opt       ReplayOptions
		times     []time.Duration
		starts    []time.Duration // tick starts
		counts    []uint64        // packets per tick
		jumps     uint64
		backwards uint64
	}{
		{
			name:   "alignment-to-tick",
			opt:    ReplayOptions{Tick: 250 * time.Millisecond},
			times:  []time.Duration{1100 * time.Millisecond, 1240 * time.Millisecond, 1260 * time.Millisecond},
			starts: []time.Duration{1000 * time.Millisecond, 1250 * time.Millisecond},
			counts: []uint64{2, 1},
		},
		{
			name:   "gap-within-max",
			opt:    ReplayOptions{MaxGap: 3 * time.Second},
			times:  []time.Duration{0, 4 * time.Second},
			starts: []time.Duration{0, 1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second},
			counts: []uint64{1, 0, 0, 0, 1},
		},
		{
			name:   "gap-beyond-max",
			opt:    ReplayOptions{MaxGap: 3 * time.Second},
			times:  []time.Duration{0, 100*time.Second + 500*time.Millisecond, 101 * time.Second},
			starts: []time.Duration{0, 1 * time.Second, 2 * time.Second, 3 * time.Second, 100 * time.Second, 101 * time.Second},
			counts: []uint64{1, 0, 0, 0, 1, 1},
			jumps:  1,
		},
		{
			name:      "backwards-within-tolerance",
			opt:       ReplayOptions{},
			times:     []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 1200 * time.Millisecond, 900 * time.Millisecond, 1600 * time.Millisecond},
			starts:    []time.Duration{0, time.Second},
			counts:    []uint64{1, 4},
			backwards: 2,
		},
		{
			name:   "backwards-beyond-tolerance",
			opt:    ReplayOptions{BackwardsTolerance: 5 * time.Second},
			times:  []time.Duration{100 * time.Second, 100*time.Second + 1, 10 * time.Second, 11 * time.Second},
			starts: []time.Duration{100 * time.Second, 10 * time.Second, 11 * time.Second},
			counts: []uint64{2, 1, 1},
			jumps:  1,
		},
		{
			name: "absurd-future-and-back",
			opt:  ReplayOptions{MaxGap: 2 * time.Second},
			// pcapng files with timestamps near 2^64 microseconds exist.
			times:  []time.Duration{0, 1<<63 - 1, 0},
			starts: []time.Duration{0, time.Second, 2 * time.Second, (1<<63 - 1) / time.Second * time.Second, 0},
			counts: []uint64{1, 0, 0, 1, 1},
			jumps:  2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var recs []rec
			for _, d := range tc.times {
				recs = append(recs, rec{ts: at(d), data: synFrom(t, s)})
			}
			// Nanosecond pcapng keeps the timestamps exact.
			w := newNG(binary.LittleEndian)
			w.idb(1, 0, w.opt(ngOptTSResol, []byte{9}))
			for _, r := range recs {
				w.epb(r, 1e9)
			}
			r := replayOf(t, tc.opt, w.bytes())
			ticks, err := collect(t, r)
			if err != io.EOF {
				t.Fatal(err)
			}
			var starts []time.Duration
			var counts []uint64
			for _, tk := range ticks {
				starts = append(starts, tk.start)
				counts = append(counts, tk.total.TotalPackets())
			}
			if !equal(starts, tc.starts) || !equal(counts, tc.counts) {
				t.Errorf("ticks at %v with %v packets, want %v with %v", starts, counts, tc.starts, tc.counts)
			}
			st := r.Stats()
			if st.ClockJumps != tc.jumps || st.BackwardsTimestamps != tc.backwards {
				t.Errorf("jumps %d backwards %d, want %d %d", st.ClockJumps, st.BackwardsTimestamps, tc.jumps, tc.backwards)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// dropAt bans one address from a given time on; it has no signature
// rules.
type dropAt struct {
	a     detector.Addr
	from  time.Time
	calls int
}

func (d *dropAt) Banned(a detector.Addr, at time.Time) bool {
	d.calls++
	return a == d.a && !at.Before(d.from)
}

func (d *dropAt) HasSignatures() bool { return false }

func (d *dropAt) Dropped(*detector.PacketMeta, time.Time) bool {
	panic("Dropped called with no signature rules")
}

func TestReplayDropper(t *testing.T) {
	a, b := "192.0.2.10", "192.0.2.20"
	file := pcapFile(1,
		rec{ts: at(100 * time.Millisecond), data: synFrom(t, a)},
		rec{ts: at(200 * time.Millisecond), data: synFrom(t, b)},
		rec{ts: at(1100 * time.Millisecond), data: synFrom(t, a)},
		rec{ts: at(1200 * time.Millisecond), data: udpFrom(t, a, 53)},
		rec{ts: at(1300 * time.Millisecond), data: synFrom(t, b)},
	)
	dr := &dropAt{a: addr(a), from: at(2 * time.Second)} // banned for the second tick (end 2 s)
	r := replayOf(t, ReplayOptions{Dropper: dr}, file)
	ticks, err := collect(t, r)
	if err != io.EOF || len(ticks) != 2 {
		t.Fatalf("%d ticks, %v", len(ticks), err)
	}
	if ticks[0].total.DroppedPackets != 0 || ticks[0].sources[0].DroppedPackets != 0 {
		t.Errorf("tick 0 dropped: %+v", ticks[0])
	}
	sa, sb := ticks[1].sources[0], ticks[1].sources[1]
	if sa.DroppedPackets != 2 || sa.DroppedBytes != sa.TotalBytes() || sb.DroppedPackets != 0 {
		t.Errorf("tick 1 sources: %+v", ticks[1].sources)
	}
	if ticks[1].total.DroppedPackets != 2 || ticks[1].total.DroppedBytes != sa.TotalBytes() {
		t.Errorf("tick 1 total: %+v", ticks[1].total)
	}
	if dr.calls != 4 { // once per source per tick
		t.Errorf("Banned called %d times, want 4", dr.calls)
	}
}

func TestReplayFiles(t *testing.T) {
	a := "192.0.2.10"
	first := pcapFile(1,
		rec{ts: at(100 * time.Millisecond), data: synFrom(t, a)},
		rec{ts: at(1500 * time.Millisecond), data: synFrom(t, a)},
	)
	second := ngFile(binary.LittleEndian, []rec{
		{ts: at(1700 * time.Millisecond), data: synFrom(t, a)},
		{ts: at(2100 * time.Millisecond), data: synFrom(t, a)},
	})

	t.Run("ticks-continue-across-files", func(t *testing.T) {
		r := replayOf(t, ReplayOptions{}, first, gzipBytes(t, second))
		ticks, err := collect(t, r)
		if err != io.EOF {
			t.Fatal(err)
		}
		var counts []uint64
		for _, tk := range ticks {
			counts = append(counts, tk.total.TotalPackets())
		}
		if !equal(counts, []uint64{1, 2, 1}) || r.Stats().Files != 2 {
			t.Errorf("packets per tick %v, files %d; want [1 2 1], 2", counts, r.Stats().Files)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		p := writeTemp(t, "first.pcap", first)
		r, err := NewReplay([]string{p, StdinPath}, ReplayOptions{Stdin: bytes.NewReader(second)})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ticks, err := collect(t, r)
		if err != io.EOF || len(ticks) != 3 {
			t.Fatalf("%d ticks, %v", len(ticks), err)
		}
		if _, total := r.Progress(); total != -1 {
			t.Errorf("total %d with stdin, want -1", total)
		}
	})
	t.Run("damage-after-ticks", func(t *testing.T) {
		// The damaged file's packets come out, the partial tick too, then
		// the error; the third file is never opened.
		damaged := second[:len(second)-7]
		r := replayOf(t, ReplayOptions{}, first, damaged, first)
		ticks, err := collect(t, r)
		var re *ReadError
		if !errors.As(err, &re) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasSuffix(re.Path, "b.pcap") {
			t.Fatalf("error %v", err)
		}
		var n uint64
		for _, tk := range ticks {
			n += tk.total.TotalPackets()
		}
		if n != 3 || r.Stats().Files != 2 {
			t.Errorf("%d packets from %d files before the error, want 3 from 2", n, r.Stats().Files)
		}
		if _, err2 := r.Next(); err2 != err {
			t.Errorf("after the error: %v", err2)
		}
	})
	t.Run("bad-second-file", func(t *testing.T) {
		r := replayOf(t, ReplayOptions{}, first, []byte("not a capture at all"))
		ticks, err := collect(t, r)
		if !errors.Is(err, ErrNotCapture) || len(ticks) != 2 {
			t.Fatalf("%d ticks then %v", len(ticks), err)
		}
	})
	t.Run("empty-files", func(t *testing.T) {
		r := replayOf(t, ReplayOptions{}, nil, pcapFile(1))
		if tk, err := r.Next(); err != io.EOF {
			t.Fatalf("%+v, %v; want io.EOF", tk, err)
		}
	})
}

func TestNewReplayOptions(t *testing.T) {
	p := writeTemp(t, "x.pcap", pcapFile(1))
	cases := []struct {
		name  string
		paths []string
		opt   ReplayOptions
		msg   string
	}{
		{"no-paths", nil, ReplayOptions{}, "no capture files"},
		{"tick-too-short", []string{p}, ReplayOptions{Tick: 50 * time.Millisecond}, "shorter than the minimum 100ms"},
		{"tick-negative", []string{p}, ReplayOptions{Tick: -time.Second}, "shorter than the minimum"},
		{"max-gap-below-tick", []string{p}, ReplayOptions{Tick: 2 * time.Second, MaxGap: time.Second}, "max gap"},
		{"max-gap-negative", []string{p}, ReplayOptions{MaxGap: -time.Second}, "max gap"},
		{"tolerance-negative", []string{p}, ReplayOptions{BackwardsTolerance: -1}, "negative backwards tolerance"},
		{"stdin-without-reader", []string{"-"}, ReplayOptions{}, "no standard input reader"},
		{"stdin-twice", []string{"-", "-"}, ReplayOptions{Stdin: strings.NewReader("")}, "more than once"},
		{"missing-file", []string{p, p + ".nope"}, ReplayOptions{}, "x.pcap.nope"},
		{"directory", []string{filepath.Dir(p)}, ReplayOptions{}, "is a directory"},
		{"first-file-bad", []string{writeTemp(t, "y.txt", []byte("hello, world"))}, ReplayOptions{}, "not a pcap or pcapng file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewReplay(tc.paths, tc.opt)
			if err == nil {
				r.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q, want it to contain %q", err, tc.msg)
			}
		})
	}
	if r, err := NewReplay([]string{p}, ReplayOptions{Tick: MinTick}); err != nil {
		t.Errorf("minimum tick refused: %v", err)
	} else {
		r.Close()
	}
}
