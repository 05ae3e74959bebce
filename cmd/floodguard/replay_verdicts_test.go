package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayVerdicts: `replay --verdicts FILE` writes one byte per packet,
// and its D, P and U add up to the summary's dropped, passed and
// undecodable packets, on committed captures with bans, with undecodable
// frames, over several files and up to a capture's damage.
func TestReplayVerdicts(t *testing.T) {
	t.Chdir("../..")
	for _, tc := range []struct {
		name   string
		config string
		files  []string
		code   int
		// what the capture must exercise
		dropped, undecodable bool
	}{
		{"bans", "testdata/synth/floodguard.yaml", []string{"testdata/synth/single-source.pcap.gz"}, 0, true, false},
		{"undecodable", "", []string{"testdata/real/stopddos__amp.TCP.reflection.SYNACK.pcap"}, 0, false, true},
		{"two-files", "testdata/synth/floodguard.yaml", []string{"testdata/real/stopddos__amp.TCP.reflection.SYNACK.pcap", "testdata/synth/udp-reflection.pcap.gz"}, 0, true, true},
		{"truncated", "", []string{"testdata/real/pcpp__three_http_streams-mid-packet-truncated-by-corpus.pcap"}, 1, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verdicts")
			args := []string{"-verdicts", path}
			if tc.config != "" {
				args = append(args, "-config", tc.config)
			}
			evs, code, stderr := replayJSONL(t, append(args, tc.files...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, stderr)
			}
			sum := evs[len(evs)-1]
			if sum.Event != "summary" {
				t.Fatalf("last line %+v, not the summary", sum)
			}
			v, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d, p, u := uint64(bytes.Count(v, []byte("D"))), uint64(bytes.Count(v, []byte("P"))), uint64(bytes.Count(v, []byte("U")))
			if uint64(len(v)) != sum.Packets || d+p+u != sum.Packets {
				t.Errorf("%d verdicts (%d D, %d P, %d U) for %d packets", len(v), d, p, u, sum.Packets)
			}
			if d != sum.DroppedPackets || u != sum.Undecodable || p != sum.Packets-sum.DroppedPackets-sum.Undecodable {
				t.Errorf("%d D %d P %d U; summary: %d packets, %d dropped, %d undecodable", d, p, u, sum.Packets, sum.DroppedPackets, sum.Undecodable)
			}
			if tc.dropped != (d > 0) || tc.undecodable != (u > 0) {
				t.Errorf("%s: %d dropped, %d undecodable: the capture no longer exercises it", tc.name, d, u)
			}
		})
	}
}

// TestReplayVerdictsErrors: standard output is not a verdicts file; a
// file that cannot be created or written fails the replay, naming it.
func TestReplayVerdictsErrors(t *testing.T) {
	t.Chdir("../..")
	const capture = "testdata/real/tcpdump__pptp.pcap"
	_, code, stderr := replayJSONL(t, "-verdicts", "-", capture)
	if code != 2 || !strings.Contains(stderr, "--verdicts -") {
		t.Errorf("--verdicts -: exit %d, stderr %q: want a usage error", code, stderr)
	}
	missing := filepath.Join(t.TempDir(), "no-such-dir", "verdicts")
	if _, code, stderr = replayJSONL(t, "-verdicts", missing, capture); code != 1 || !strings.Contains(stderr, missing) {
		t.Errorf("--verdicts %s: exit %d, stderr %q: want an error naming the file", missing, code, stderr)
	}
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full to fail writes: %v", err)
	}
	evs, code, stderr := replayJSONL(t, "-verdicts", "/dev/full", capture)
	if code != 1 || !strings.Contains(stderr, "/dev/full") || !strings.Contains(stderr, "verdicts") {
		t.Errorf("--verdicts /dev/full: exit %d, stderr %q: want an error naming the file", code, stderr)
	}
	if len(evs) == 0 || !strings.Contains(evs[len(evs)-1].Error, "/dev/full") {
		t.Errorf("the summary does not carry the error: %+v", evs)
	}
}
