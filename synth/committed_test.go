package synth

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// committedOptions are the options of the captures under testdata/synth
// (see its README and the Makefile's testdata target).
func committedOptions() Options {
	return Options{Seed: 1, Scale: 0.01, WarmUp: 12 * time.Second, FloodScale: 0.06, HeavyClients: 1}
}

// TestCommittedCapturesReproduce writes every scenario that has a capture
// under testdata/synth with the committed options and compares it, and its
// labels, byte for byte with the committed files: a change to the
// generator must not silently change what the golden replays were made
// from.
func TestCommittedCapturesReproduce(t *testing.T) {
	dir := filepath.Join("..", "testdata", "synth")
	found := 0
	for _, s := range append(Scenarios(), SignatureScenarios()...) {
		gz, err := os.ReadFile(filepath.Join(dir, string(s)+".pcap.gz"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		found++
		t.Run(string(s), func(t *testing.T) {
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err != nil {
				t.Fatal(err)
			}
			want, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			got, l := write(t, s, committedOptions())
			if !bytes.Equal(got, want) {
				t.Errorf("capture differs from testdata/synth/%s.pcap.gz (%d bytes, committed %d)", s, len(got), len(want))
			}
			wantLabels, err := os.ReadFile(filepath.Join(dir, string(s)+".labels.json"))
			if err != nil {
				t.Fatal(err)
			}
			gotLabels, err := json.MarshalIndent(l, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(gotLabels, '\n'), wantLabels) {
				t.Errorf("labels differ from testdata/synth/%s.labels.json", s)
			}
		})
	}
	if found < len(Scenarios()) {
		t.Errorf("%d committed captures, want at least %d", found, len(Scenarios()))
	}
}

// TestSignatureCommittedSize: with the committed options, reflection-mix
// and udp-botnet compress to at most 1.2 MB each, while their UDP traffic
// stays a flood (at least 2000 pps in every tick of the attack).
func TestSignatureCommittedSize(t *testing.T) {
	const maxGzip = 1_200_000
	for _, s := range []Scenario{ReflectionMix, UDPBotnet} {
		t.Run(string(s), func(t *testing.T) {
			b, l := write(t, s, committedOptions())
			var z bytes.Buffer
			zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := zw.Write(b); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d packets, %d bytes, %d gzipped, attacks: %v", s, l.Packets, len(b), z.Len(), summary(l))
			if z.Len() > maxGzip {
				t.Errorf("%s gzips to %d bytes, want at most %d", s, z.Len(), maxGzip)
			}
			// UDP packets per tick during the attack.
			c := load(t, s, committedOptions())
			udp := map[int]int{}
			for i := range c.pkts {
				if c.pkts[i].class == "udp" {
					udp[c.pkts[i].tick()]++
				}
			}
			for _, tick := range fullTicks(l, l.Attacks[0].Window) {
				if udp[tick] < 2000 {
					t.Errorf("tick %d: %d UDP packets, want a flood of at least 2000", tick, udp[tick])
				}
			}
		})
	}
}

// summary shortens labels for a log line.
func summary(l Labels) []string {
	var out []string
	for _, a := range l.Attacks {
		out = append(out, fmt.Sprintf("%s %s: %d sources, %.0f pps", a.Kind, a.Service, len(a.Sources), a.PPS))
	}
	return out
}
