package synth

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
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
	return Options{Seed: 1, Scale: 0.01, WarmUp: 15 * time.Second, FloodScale: 0.08, HeavyClients: 1}
}

// TestCommittedCapturesReproduce writes every scenario that has a capture
// under testdata/synth with the committed options and compares it, and its
// labels, byte for byte with the committed files: a change to the
// generator must not silently change what the golden replays were made
// from.
func TestCommittedCapturesReproduce(t *testing.T) {
	dir := filepath.Join("..", "testdata", "synth")
	found := 0
	for _, s := range Scenarios() {
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
