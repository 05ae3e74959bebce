package bpf

import (
	"testing"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/vectors"
)

// parseCases are the shared frame vectors (internal/vectors): the replay
// decoder's tests run the very same table.
func parseCases() []vectors.Vector { return vectors.All() }

// TestParse runs every frame shape through the program with
// BPF_PROG_TEST_RUN and checks the action, the global counters and the
// per-source entry.
func TestParse(t *testing.T) {
	x := loadTest(t, Options{})
	reader := x.NewSourceReader()
	var sources []Source
	for _, tc := range parseCases() {
		frame := tc.Frame
		before := readStats(t, x)
		if got := run(t, x, frame); got != xdpPass {
			t.Errorf("%s: action %d, want pass", tc.Name, got)
		}
		delta := diffStats(readStats(t, x), before)
		n := uint64(len(frame))

		var err error
		if sources, err = reader.AppendSources(sources[:0]); err != nil {
			t.Fatal(err)
		}
		if tc.Src == "" {
			want := Stats{UnparsedPackets: 1, UnparsedBytes: n}
			if delta != want {
				t.Errorf("%s: stats delta %+v, want %+v", tc.Name, delta, want)
			}
			if len(sources) != 0 {
				t.Errorf("%s: counted under sources %v", tc.Name, sources)
			}
			continue
		}
		var want Stats
		want.Packets[tc.Class], want.Bytes[tc.Class] = 1, n
		if delta != want {
			t.Errorf("%s: stats delta %+v, want %+v", tc.Name, delta, want)
		}
		if len(sources) != 1 || sources[0].Addr != addr(tc.Src) {
			t.Errorf("%s: sources %v, want only %s", tc.Name, sources, tc.Src)
		} else {
			s := sources[0]
			var wc detector.Counters
			wc.Packets[tc.Class], wc.Bytes[tc.Class] = 1, n
			if s.Counters != wc || s.UDPSrcPort != tc.UDPPort || s.LastSeenNs == 0 {
				t.Errorf("%s: source %+v, want counters %+v udp port %d", tc.Name, s, wc, tc.UDPPort)
			}
		}
		// Start the next case from an empty per-source map.
		if n, err := x.DeleteSources([]detector.Addr{addr(tc.Src)}); n != 1 || err != nil {
			t.Fatalf("%s: delete source: %d, %v", tc.Name, n, err)
		}
	}
}

// diffStats returns a - b field by field.
func diffStats(a, b Stats) Stats {
	for c := range NumClasses {
		a.Packets[c] -= b.Packets[c]
		a.Bytes[c] -= b.Bytes[c]
		a.DroppedClassPackets[c] -= b.DroppedClassPackets[c]
		a.DroppedClassBytes[c] -= b.DroppedClassBytes[c]
	}
	a.DroppedPackets -= b.DroppedPackets
	a.DroppedBytes -= b.DroppedBytes
	a.UnparsedPackets -= b.UnparsedPackets
	a.UnparsedBytes -= b.UnparsedBytes
	a.SourceInsertFailures -= b.SourceInsertFailures
	return a
}

// maxLinearFrame is a frame size BPF_PROG_TEST_RUN keeps linear (4 KiB
// pages, 256 bytes of headroom, skb_shared_info tailroom).
const maxLinearFrame = 3000

// FuzzParse feeds arbitrary frames to the program: it must pass every one
// (no rules are installed) and count it exactly once, as unparsed or under
// a class.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add(tc.Frame)
	}
	x := loadTest(f, Options{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > maxLinearFrame {
			// BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet
			// header and puts bytes past a page (minus head- and
			// tailroom) in fragments, beyond data_end.
			return
		}
		before := readStats(t, x)
		if got := run(t, x, frame); got != xdpPass {
			t.Fatalf("action %d, want pass", got)
		}
		d := diffStats(readStats(t, x), before)
		var pkts, bytes uint64
		for c := range NumClasses {
			pkts += d.Packets[c]
			bytes += d.Bytes[c]
		}
		pkts += d.UnparsedPackets
		bytes += d.UnparsedBytes
		if pkts != 1 || bytes != uint64(len(frame)) {
			t.Fatalf("counted %d frames, %d bytes; want 1, %d: %+v", pkts, bytes, len(frame), d)
		}
	})
}
