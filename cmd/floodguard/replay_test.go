package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/corpus"
	"github.com/floodguard/floodguard/synth"
)

// jsonEvent is one line of `replay --format jsonl`, decoded as a consumer
// would.
type jsonEvent struct {
	TS          time.Time `json:"ts"`
	Event       string    `json:"event"`
	Scope       string    `json:"scope"`
	Target      string    `json:"target"`
	PPS         float64   `json:"pps"`
	BPS         float64   `json:"bps"`
	BaselinePPS float64   `json:"baseline_pps"`
	Reason      string    `json:"reason"`
	Class       string    `json:"class"`
	// summary fields
	Packets        uint64 `json:"packets"`
	DroppedPackets uint64 `json:"dropped_packets"`
	Undecodable    uint64 `json:"undecodable"`
	Ticks          uint64 `json:"ticks"`
	Error          string `json:"error"`
	// page fields
	Time     time.Time `json:"time"`
	Action   string    `json:"action"`
	Why      string    `json:"why"`
	Incident struct {
		Key      string `json:"key"`
		Kind     string `json:"kind"`
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
	} `json:"incident"`
}

// replayJSONL runs the replay subcommand in-process and decodes its output.
func replayJSONL(t *testing.T, args ...string) ([]jsonEvent, int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, append([]string{"replay", "-o", "jsonl"}, args...))
	var evs []jsonEvent
	for i, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var ev jsonEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("output line %d is not JSON: %v: %s", i+1, err, line)
		}
		evs = append(evs, ev)
	}
	return evs, code, stderr.String()
}

// scenarioRun is one synthesized scenario replayed.
type scenarioRun struct {
	labels synth.Labels
	events []jsonEvent
	pages  []jsonEvent // what the daemon would have paged (--page)
	sum    jsonEvent
}

func replayScenario(t *testing.T, dir string, s synth.Scenario, seed int64) scenarioRun {
	t.Helper()
	pcap, labelsPath, err := synth.WriteFiles(dir, s, synth.Options{Seed: seed, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	var r scenarioRun
	data, err := os.ReadFile(labelsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &r.labels); err != nil {
		t.Fatal(err)
	}
	evs, code, stderr := replayJSONL(t, "--page", pcap)
	if code != 0 {
		t.Fatalf("replay %s: exit %d: %s", s, code, stderr)
	}
	if len(evs) == 0 || evs[len(evs)-1].Event != "summary" {
		t.Fatalf("replay %s: no summary line last", s)
	}
	r.sum = evs[len(evs)-1]
	for _, e := range evs[:len(evs)-1] {
		if e.Event == "page" {
			r.pages = append(r.pages, e)
		} else {
			r.events = append(r.events, e)
		}
	}
	if r.sum.Packets != r.labels.Packets {
		t.Errorf("summary packets %d, labels say %d", r.sum.Packets, r.labels.Packets)
	}
	return r
}

func (r scenarioRun) find(event, scope string) []jsonEvent {
	var out []jsonEvent
	for _, e := range r.events {
		if e.Event == event && (scope == "" || e.Scope == scope) {
			out = append(out, e)
		}
	}
	return out
}

// TestReplayScenarios replays every synthesized scenario and checks the
// detector's output against the scenario's labels.
func TestReplayScenarios(t *testing.T) {
	const tick = time.Second
	for _, seed := range synthSeeds(t) {
		dir := t.TempDir()
		for _, s := range synth.Scenarios() {
			t.Run(fmt.Sprintf("%s/seed=%d", s, seed), func(t *testing.T) {
				r := replayScenario(t, dir, s, seed)
				// No ban ever touches a benign source.
				for _, b := range r.find("ban", "") {
					if b.Scope == "signature" {
						continue // held to the labels packet by packet in replay.TestSignatureVerdicts
					}
					p, err := netip.ParsePrefix(b.Target)
					if err != nil {
						t.Fatalf("ban target %q is not a CIDR", b.Target)
					}
					if r.labels.BenignOverlaps(p) {
						t.Errorf("ban of %s hits benign traffic: %s", b.Target, b.Reason)
					}
				}
				for _, kind := range []string{"attack_start", "ban", "unban", "attack_end"} {
					t.Logf("%s: %d %s events", s, len(r.find(kind, "")), kind)
				}
				// Every attack is detected within 2 ticks of its start.
				for _, a := range r.labels.Attacks {
					deadline := a.Start.Add(2 * tick)
					found := false
					for _, e := range r.find("attack_start", "") {
						if !e.TS.Before(a.Start) && !e.TS.After(deadline) {
							found = true
						}
					}
					if !found {
						t.Errorf("%s attack at %s not detected by %s", a.Kind, a.Start.Format(time.TimeOnly), deadline.Format(time.TimeOnly))
					}
				}
				checkPages(t, s, r)
				switch s {
				case synth.Benign, synth.FlashCrowd:
					if n := len(r.find("attack_start", "source")) + len(r.find("attack_start", "prefix")); n > 0 {
						t.Errorf("%d source or prefix alarms in %s traffic: %v", n, s, r.events)
					}
					if n := len(r.find("ban", "")); n > 0 {
						t.Errorf("%d bans in %s traffic", n, s)
					}
					if s == synth.Benign && len(r.events) > 0 {
						t.Errorf("events in benign traffic: %v", r.events)
					}
				case synth.SingleSource, synth.Pulsing:
					a := r.labels.Attacks[0]
					want := a.Sources[0].String() + "/32"
					banned := false
					for _, b := range r.find("ban", "source") {
						if b.Target == want && !b.TS.After(a.Start.Add(2*tick)) {
							banned = true
						}
					}
					if !banned {
						t.Errorf("%s not banned within 2 ticks of %s", want, a.Start.Format(time.TimeOnly))
					}
					if r.sum.DroppedPackets < a.Packets/2 {
						t.Errorf("dropped %d packets of a %d-packet flood", r.sum.DroppedPackets, a.Packets)
					}
				case synth.SpoofedSYN:
					if n := len(r.find("ban", "")); n > 0 {
						t.Errorf("%d useless bans against spoofed sources", n)
					}
					if len(r.find("attack_start", "aggregate")) == 0 {
						t.Errorf("spoofed flood not reported as an aggregate attack")
					}
				case synth.UDPReflection:
					// One signature rule drops every reflector, even the
					// slow ones no source ban would name.
					a := r.labels.Attacks[0]
					want := fmt.Sprintf("udp sport %d → ", a.UDPSrcPort)
					sig := r.find("ban", "signature")
					if len(sig) == 0 || !strings.HasPrefix(sig[0].Target, want) || sig[0].TS.After(a.Start.Add(2*tick)) {
						t.Errorf("signature bans %v, want one for %q within 2 ticks", sig, want)
					}
					if n := len(r.find("ban", "source")); n > 0 {
						t.Errorf("%d reflector source bans beside the signature rule", n)
					}
					named := false
					for _, e := range r.find("attack_start", "aggregate") {
						named = named || strings.Contains(e.Reason, fmt.Sprintf("udp source port %d", a.UDPSrcPort))
					}
					if !named {
						t.Errorf("reflection port %d not named in the aggregate attack", a.UDPSrcPort)
					}
				case synth.Carpet, synth.IPv6Rotation:
					a := r.labels.Attacks[0]
					got := map[string]bool{}
					for _, b := range r.find("ban", "prefix") {
						got[b.Target] = true
					}
					for _, p := range a.Prefixes {
						if !got[p.String()] {
							t.Errorf("prefix %s not banned; prefix bans %v", p, got)
						}
					}
				}
			})
		}
	}
}

// checkPages checks the incidents a replay pages: none for benign traffic
// or a flash crowd, else one incident, paged within 2 ticks of the attack,
// resolved once, and a pulsing flood with a few updates, not one a wave.
func checkPages(t *testing.T, s synth.Scenario, r scenarioRun) {
	t.Helper()
	for _, p := range r.pages {
		t.Logf("page %s %s (%s): %s", p.Action, p.Time.Format(time.TimeOnly), p.Why, p.Incident.Summary)
	}
	if s == synth.Benign || s == synth.FlashCrowd {
		if len(r.pages) > 0 {
			t.Errorf("%d pages for %s traffic", len(r.pages), s)
		}
		return
	}
	if len(r.pages) < 2 {
		t.Fatalf("%d pages, want a trigger and a resolve", len(r.pages))
	}
	first, last := r.pages[0], r.pages[len(r.pages)-1]
	if first.Action != "trigger" || last.Action != "resolve" {
		t.Errorf("pages run %s ... %s", first.Action, last.Action)
	}
	if start := r.labels.Attacks[0].Start; first.Time.After(start.Add(2 * time.Second)) {
		t.Errorf("paged at %s for an attack at %s", first.Time.Format(time.TimeOnly), start.Format(time.TimeOnly))
	}
	updates := 0
	for _, p := range r.pages {
		if p.Incident.Key != first.Incident.Key {
			t.Errorf("two incidents: %s and %s", first.Incident.Key, p.Incident.Key)
		}
		if p.Action == "update" {
			updates++
		}
	}
	if updates > 4 {
		t.Errorf("%d updates for one attack", updates)
	}
	wantKind := map[synth.Scenario]string{
		synth.SingleSource: "single source", synth.Pulsing: "single source", synth.SpoofedSYN: "spoofed sources",
		synth.UDPReflection: "reflection on UDP port", synth.Carpet: "carpet from prefixes", synth.IPv6Rotation: "carpet from prefixes",
	}[s]
	if !strings.HasPrefix(first.Incident.Kind, wantKind) {
		t.Errorf("incident kind %q, want %q", first.Incident.Kind, wantKind)
	}
}

// synthSeeds returns the seeds the scenario tests use: 7, or the
// comma-separated list in FLOODGUARD_SYNTH_SEEDS (to soak the detector
// against many traffic draws).
func synthSeeds(t *testing.T) []int64 {
	v := os.Getenv("FLOODGUARD_SYNTH_SEEDS")
	if v == "" {
		return []int64{7}
	}
	var seeds []int64
	for _, f := range strings.Split(v, ",") {
		var n int64
		if _, err := fmt.Sscan(f, &n); err != nil {
			t.Fatalf("FLOODGUARD_SYNTH_SEEDS: %q is not a number", f)
		}
		seeds = append(seeds, n)
	}
	return seeds
}

// TestReplayCorpus replays every capture of the shared corpus: none may
// panic; broken ones must fail with an error naming the file.
func TestReplayCorpus(t *testing.T) {
	root := corpus.Dir(t)
	rows := corpus.Manifest(t, root)
	for _, row := range rows {
		t.Run(row.Path, func(t *testing.T) {
			path := filepath.Join(root, row.Path)
			evs, code, stderr := replayJSONL(t, path)
			if row.Broken || row.Refused {
				if code != 1 || !strings.Contains(stderr, filepath.Base(row.Path)) {
					t.Fatalf("exit %d, stderr %q: want exit 1 and an error naming the file", code, stderr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			sum := evs[len(evs)-1]
			if sum.Packets != uint64(row.Packets) {
				t.Errorf("summary packets %d, manifest %d", sum.Packets, row.Packets)
			}
		})
	}
}
