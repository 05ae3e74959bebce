package capture

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// TestReplaySignatures replays through a SimulatedPlane holding a ban and
// signature rules, changed between ticks as the detector changes them:
// bans come first and hide their packets from the signature rules;
// signature drops count per packet in the tick's and the source's
// dropped counters; the verdicts follow the packets in capture order.
func TestReplaySignatures(t *testing.T) {
	a, b, c := "192.0.2.10", "192.0.2.20", "192.0.2.30"
	ntpA, ntpB, synC := udpFrom(t, a, 123), udpFrom(t, b, 123), synFrom(t, c)
	file := pcapFile(1,
		// Tick 0.
		rec{ts: at(0), data: ntpA},
		rec{ts: at(0), data: ntpB},
		rec{ts: at(10 * time.Millisecond), data: ntpA},
		rec{ts: at(30 * time.Millisecond), data: ntpB},
		rec{ts: at(40 * time.Millisecond), data: arpFrame(t)},
		rec{ts: at(60 * time.Millisecond), data: ntpB},
		rec{ts: at(70 * time.Millisecond), data: synC},
		rec{ts: at(150 * time.Millisecond), data: ntpB}, // the next window
		// Tick 1: the NTP rule removed, a TCP rule installed.
		rec{ts: at(1000 * time.Millisecond), data: ntpB},
		rec{ts: at(1010 * time.Millisecond), data: ntpB},
		rec{ts: at(1020 * time.Millisecond), data: synC},
		rec{ts: at(1030 * time.Millisecond), data: ntpA},
	)
	plane := NewSimulatedPlane()
	if err := plane.Ban(detector.Rule{Prefix: netip.MustParsePrefix(a + "/32"), Expires: at(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ntp := detector.Match{Proto: protoUDP, SrcPort: detector.Range{Lo: 123, Hi: 123}}
	mustInstall(t, plane, detector.SignatureRule{Match: ntp, RatePPS: 10, Expires: at(time.Hour)})
	var verdicts bytes.Buffer
	r := replayOf(t, ReplayOptions{Dropper: plane, Verdicts: &verdicts}, file)

	tk, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	udpLen, synLen := uint64(len(ntpA)), uint64(len(synC))
	dropped := map[detector.Addr][2]uint64{}
	for _, s := range tk.Sources {
		dropped[s.Addr] = [2]uint64{s.DroppedPackets, s.DroppedBytes}
	}
	if want := map[detector.Addr][2]uint64{addr(a): {2, 2 * udpLen}, addr(b): {2, 2 * udpLen}, addr(c): {}}; !mapsEqual(dropped, want) {
		t.Errorf("tick 0 dropped per source %v, want %v", dropped, want)
	}
	if tk.Total.DroppedPackets != 4 || tk.Total.DroppedBytes != 4*udpLen || tk.Total.TotalPackets() != 7 {
		t.Errorf("tick 0 total %+v", tk.Total)
	}
	if hits, _ := plane.SignatureHits(ntp); hits != 4 {
		t.Errorf("%d hits, want 4: b's packets only", hits)
	}

	// Between ticks, as the detector would.
	if err := plane.RemoveSignature(ntp); err != nil {
		t.Fatal(err)
	}
	mustInstall(t, plane, detector.SignatureRule{Match: detector.Match{Proto: protoTCP}, Expires: at(time.Hour)})
	tk, err = r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if tk.Total.DroppedPackets != 2 || tk.Total.DroppedBytes != udpLen+synLen {
		t.Errorf("tick 1 total %+v", tk.Total)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if got, want := verdicts.String(), "DPDDUDPP"+"PPDD"; got != want {
		t.Errorf("verdicts %q, want %q", got, want)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestReplayVerdicts: one verdict per packet, counting as the replay
// counts (undecodable, dropped, the rest passed), across ticks and
// files, with and without a Dropper.
func TestReplayVerdicts(t *testing.T) {
	recs := append(samplePackets(t), rec{ts: at(3500 * time.Millisecond), data: arpFrame(t)})
	file := pcapFile(1, recs...)
	for _, tc := range []struct {
		name string
		ban  bool
	}{{"no-dropper", false}, {"ban", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var opt ReplayOptions
			var buf bytes.Buffer
			opt.Verdicts = &buf
			if tc.ban {
				plane := NewSimulatedPlane()
				if err := plane.Ban(detector.Rule{Prefix: netip.MustParsePrefix(tSrc4 + "/32"), Expires: at(24 * time.Hour)}); err != nil {
					t.Fatal(err)
				}
				opt.Dropper = plane
			}
			r := replayOf(t, opt, file, file)
			var droppedPkts uint64
			for {
				tk, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				droppedPkts += tk.Total.DroppedPackets
			}
			st := r.Stats()
			v := buf.String()
			if uint64(len(v)) != st.Packets || uint64(strings.Count(v, "U")) != st.Undecodable ||
				uint64(strings.Count(v, "D")) != droppedPkts || strings.Trim(v, "DPU") != "" {
				t.Errorf("verdicts %q for %d packets, %d undecodable, %d dropped", v, st.Packets, st.Undecodable, droppedPkts)
			}
			if tc.ban != (droppedPkts > 0) || st.Undecodable == 0 {
				t.Errorf("the sample exercises too little: %d dropped, %d undecodable", droppedPkts, st.Undecodable)
			}
		})
	}
}

// failWriter fails every write.
type failWriter struct{}

var errDiskFull = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

// TestReplayVerdictsWriteError: a verdict that cannot be written ends the
// replay with the error, after the tick it was written in (here, when the
// buffer is flushed at the end of the captures).
func TestReplayVerdictsWriteError(t *testing.T) {
	r := replayOf(t, ReplayOptions{Verdicts: failWriter{}}, pcapFile(1, samplePackets(t)...))
	var err error
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "verdicts") {
		t.Errorf("error %v, want the write error, naming the verdicts", err)
	}
	if _, again := r.Next(); again != err {
		t.Errorf("then %v", again)
	}
}
