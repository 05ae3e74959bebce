package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/floodguard/floodguard/capture"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/config"
	"github.com/floodguard/floodguard/replay"
	"github.com/floodguard/floodguard/synth"
)

// TestSignatureVerdicts holds the signature scenarios to their labels
// packet by packet, through --verdicts: from the first tick after the
// first signature rule, at least 90% of the attack's packets are dropped,
// and no packet of a benign source is dropped at any time. The spoofed SYN
// flood to the served port gets no rule and loses nothing.
func TestSignatureVerdicts(t *testing.T) {
	t.Chdir("..")
	for _, tc := range []struct {
		scenario string
		wantRule bool
	}{
		{"udp-reflection", true},
		{"reflection-mix", true},
		{"udp-botnet", true},
		{"spoofed-syn-served", false},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			capPath := "testdata/synth/" + tc.scenario + ".pcap.gz"
			var l synth.Labels
			data, err := os.ReadFile("testdata/synth/" + tc.scenario + ".labels.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &l); err != nil {
				t.Fatal(err)
			}
			file, err := config.Load("testdata/synth/floodguard.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var verdicts bytes.Buffer
			rp, err := replay.New(replay.Options{Files: []string{capPath}, Config: file, Verdicts: &verdicts})
			if err != nil {
				t.Fatal(err)
			}
			defer rp.Close()
			var detected time.Time
			var rules []string
			_, err = rp.Run(context.Background(), detector.ObserverFunc(func(tk *detector.Tick, evs []detector.Event) error {
				for _, ev := range evs {
					if ev.Kind == detector.Ban && ev.Scope == detector.ScopeSignature {
						rules = append(rules, ev.Target)
						if detected.IsZero() {
							detected = tk.End()
						}
					}
				}
				return nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantRule != (len(rules) > 0) {
				t.Fatalf("signature rules %q, want some: %v", rules, tc.wantRule)
			}
			v := verdicts.Bytes()
			var attack, attackDropped, benignDropped, n int
			rd, err := capture.Open(capPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			dec := capture.NewDecoder()
			for ; ; n++ {
				rec, err := rd.ReadPacket()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if n >= len(v) {
					t.Fatalf("%d verdicts for more packets", len(v))
				}
				p := dec.Decode(rec.LinkType, rec.Data)
				src := p.Src.Netip()
				switch {
				case l.IsBenign(src):
					if v[n] == 'D' {
						benignDropped++
						if benignDropped <= 3 {
							t.Errorf("packet %d from benign %s dropped", n, src)
						}
					}
				case l.IsAttacker(src) && !detected.IsZero() && !rec.Info.Timestamp.Before(detected):
					attack++
					if v[n] == 'D' {
						attackDropped++
					}
				}
			}
			if n != len(v) {
				t.Fatalf("%d packets, %d verdicts", n, len(v))
			}
			if benignDropped > 0 {
				t.Errorf("%d benign packets dropped", benignDropped)
			}
			if tc.wantRule {
				share := float64(attackDropped) / float64(max(attack, 1))
				t.Logf("rules %q: %d of %d attack packets after detection dropped (%.1f%%)", rules, attackDropped, attack, 100*share)
				if attack == 0 || share < 0.9 {
					t.Errorf("%d of %d attack packets dropped after detection (%.1f%%), want at least 90%%", attackDropped, attack, 100*share)
				}
			} else if bytes.IndexByte(v, 'D') >= 0 {
				t.Errorf("%d packets dropped with no rule", bytes.Count(v, []byte("D")))
			}
		})
	}
}
