package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestReplayCLIMatchesGolden: `floodguard replay -o jsonl --page` prints
// exactly the golden events, pages and summary (testdata/golden, written
// by the replay package's TestGolden), interleaved per tick, so the
// committed files are what a user at the repository root sees.
func TestReplayCLIMatchesGolden(t *testing.T) {
	t.Chdir("../..")
	for _, tc := range []struct{ name, capture, config string }{
		{"synth/udp-reflection", "testdata/synth/udp-reflection.pcap.gz", "testdata/synth/floodguard.yaml"},
		{"synth/single-source", "testdata/synth/single-source.pcap.gz", "testdata/synth/floodguard.yaml"},
		{"real/pcpp__three_http_streams-mid-packet-truncated-by-corpus", "testdata/real/pcpp__three_http_streams-mid-packet-truncated-by-corpus.pcap", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"replay", "-o", "jsonl", "--page"}
			if tc.config != "" {
				args = append(args, "-config", tc.config)
			}
			var stdout, stderr bytes.Buffer
			code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, append(args, tc.capture))
			wantCode := 0
			if strings.Contains(tc.name, "truncated") {
				wantCode = 1 // the capture's error is the expected output
			}
			if code != wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, wantCode, stderr.String())
			}
			var events, pages, summary bytes.Buffer
			for _, line := range strings.SplitAfter(stdout.String(), "\n") {
				if line == "" {
					continue
				}
				var rec struct {
					Event string `json:"event"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				switch rec.Event {
				case "page":
					pages.WriteString(line)
				case "summary":
					summary.WriteString(line)
				default:
					events.WriteString(line)
				}
			}
			for suffix, got := range map[string]*bytes.Buffer{".events.jsonl": &events, ".pages.jsonl": &pages, ".summary.json": &summary} {
				want, err := os.ReadFile("testdata/golden/" + tc.name + suffix)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Errorf("%s%s: the CLI printed\n%.600s\nthe golden file holds\n%.600s", tc.name, suffix, got.String(), want)
				}
			}
		})
	}
}
