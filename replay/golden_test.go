package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/config"
	"github.com/floodguard/floodguard/internal/golden"
	"github.com/floodguard/floodguard/paging"
	"github.com/floodguard/floodguard/replay"
	"github.com/floodguard/floodguard/synth"
)

// goldenCase is one committed capture and the config it is replayed with.
type goldenCase struct {
	name    string // golden file stem: testdata/golden/<name>.*
	capture string // relative to the repository root
	config  string // "" for the defaults
}

// goldenCases lists every capture under testdata/synth and testdata/real.
func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	var cases []goldenCase
	for _, dir := range []string{"synth", "real"} {
		cfg := ""
		if dir == "synth" {
			cfg = "testdata/synth/floodguard.yaml"
		}
		files, err := os.ReadDir(filepath.Join("testdata", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			n := f.Name()
			if strings.HasSuffix(n, ".json") || strings.HasSuffix(n, ".yaml") {
				continue
			}
			stem := strings.TrimSuffix(strings.TrimSuffix(n, ".gz"), filepath.Ext(strings.TrimSuffix(n, ".gz")))
			cases = append(cases, goldenCase{name: dir + "/" + stem, capture: "testdata/" + dir + "/" + n, config: cfg})
		}
	}
	if len(cases) < 20 {
		t.Fatalf("found %d captures under testdata/synth and testdata/real, want at least 20", len(cases))
	}
	return cases
}

// goldenRun is what the golden files hold of one replay, encoded as
// `floodguard replay -o jsonl --page` prints it.
type goldenRun struct {
	events, pages, summary bytes.Buffer
	bans                   []detector.Event
}

func runGolden(t *testing.T, c goldenCase) *goldenRun {
	t.Helper()
	file, err := config.Load(c.config)
	if err != nil {
		t.Fatal(err)
	}
	g := &goldenRun{}
	pages := json.NewEncoder(&g.pages)
	rp, err := replay.New(replay.Options{
		Files: []string{c.capture}, Config: file, Page: true,
		OnPage: func(pg *paging.Page) error {
			return pages.Encode(struct {
				Event string `json:"event"`
				paging.Page
			}{"page", *pg})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	events := json.NewEncoder(&g.events)
	sum, runErr := rp.Run(context.Background(), detector.ObserverFunc(func(_ *detector.Tick, evs []detector.Event) error {
		for i := range evs {
			if evs[i].Kind == detector.Ban {
				g.bans = append(g.bans, evs[i])
			}
			if err := events.Encode(evs[i]); err != nil {
				return err
			}
		}
		return nil
	}))
	if (runErr != nil) != (sum.Error != "") {
		t.Errorf("Run returned %v with summary error %q", runErr, sum.Error)
	}
	if err := json.NewEncoder(&g.summary).Encode(struct {
		Event string `json:"event"`
		replay.Summary
	}{"summary", sum}); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGolden replays every committed capture and compares its events,
// pages and summary with testdata/golden; `go test ./replay/ -update`
// rewrites them. A truncated capture's error is part of its summary.
func TestGolden(t *testing.T) {
	t.Chdir("..") // paths in pages read as a user at the repository root types them
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			g := runGolden(t, c)
			golden.Check(t, "testdata/golden/"+c.name+".events.jsonl", g.events.Bytes())
			golden.Check(t, "testdata/golden/"+c.name+".pages.jsonl", g.pages.Bytes())
			golden.Check(t, "testdata/golden/"+c.name+".summary.json", g.summary.Bytes())
			if strings.HasPrefix(c.name, "synth/") {
				checkLabels(t, c, g)
			}
		})
	}
}

// checkLabels holds a synthesized capture's bans to its ground truth:
// no ban covers a benign source, and every attack that a source or prefix
// ban can stop (not the spoofed flood) is banned.
func checkLabels(t *testing.T, c goldenCase, g *goldenRun) {
	t.Helper()
	stem := strings.TrimSuffix(c.capture, ".pcap.gz")
	data, err := os.ReadFile(stem + ".labels.json")
	if err != nil {
		t.Fatal(err)
	}
	var l synth.Labels
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatalf("%s.labels.json: %v", stem, err)
	}
	for _, ev := range g.bans {
		if ev.Scope == detector.ScopeSignature {
			continue // held to the labels packet by packet in TestSignatureVerdicts
		}
		p, err := netip.ParsePrefix(ev.Target)
		if err != nil {
			t.Fatalf("ban target %q: %v", ev.Target, err)
		}
		if l.BenignOverlaps(p) {
			t.Errorf("ban of %s covers benign traffic", p)
		}
	}
	for _, a := range l.Attacks {
		if a.Kind == synth.KindSpoofed {
			continue
		}
		if len(g.bans) == 0 {
			t.Errorf("attack %s (%s) not banned at all", a.Kind, fmt.Sprint(a.Prefixes))
		}
	}
}
