package paging

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// fakeEngine is the engine view the tracker reads.
type fakeEngine struct {
	bans      []detector.ActiveBan
	baseline  float64
	threshold float64
	dryRun    bool
}

func (f *fakeEngine) Bans() []detector.ActiveBan { return f.bans }
func (f *fakeEngine) Baselines() []detector.Baseline {
	return []detector.Baseline{{Class: "all", MeanPPS: f.baseline, ThresholdPPS: f.threshold, Learnt: true}}
}
func (f *fakeEngine) Config() detector.Config {
	c := detector.DefaultConfig()
	c.Bans.DryRun = f.dryRun
	return c
}

var t0 = time.Date(2026, 11, 3, 20, 0, 0, 0, time.UTC)

// step is one tick of a scripted run: its traffic and events.
type step struct {
	pps, dropped uint64
	class        detector.Class
	evs          []detector.Event
	bans         int // active source bans after the tick
}

func tickAt(i int, s step) *detector.Tick {
	t := &detector.Tick{Start: t0.Add(time.Duration(i) * time.Second), Length: time.Second}
	t.Total.Packets[s.class] = s.pps
	t.Total.Bytes[s.class] = s.pps * 100
	t.Total.DroppedPackets = s.dropped
	return t
}

func ev(kind detector.EventKind, scope detector.Scope, target, class string) detector.Event {
	e := detector.Event{Kind: kind, Scope: scope, Target: target, Class: class}
	if kind == detector.Ban || kind == detector.Unban {
		e.Prefix = netip.MustParsePrefix(target)
	}
	return e
}

// run feeds steps through a tracker and returns its pages.
func run(t *testing.T, cfg Config, steps []step) []Page {
	t.Helper()
	tr := NewTracker(cfg, "web1", "")
	eng := &fakeEngine{baseline: 1000, threshold: 10000}
	var pages []Page
	for i, s := range steps {
		eng.bans = nil
		for b := range s.bans {
			eng.bans = append(eng.bans, detector.ActiveBan{Rule: detector.Rule{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(b)}), 32)}})
		}
		pages = append(pages, tr.Observe(tickAt(i, s), s.evs, eng)...)
	}
	return append(pages, tr.Finish()...)
}

func quiet(n int) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = step{pps: 1000, class: detector.ClassTCP}
	}
	return out
}

func actions(pages []Page) string {
	var b []string
	for _, p := range pages {
		b = append(b, string(p.Action)+"("+p.Why+")")
	}
	return strings.Join(b, " ")
}

func testConfig() Config {
	c := DefaultConfig()
	c.QuietPeriod = detector.Duration(30 * time.Second)
	c.UpdateInterval = detector.Duration(20 * time.Second)
	return c
}

func TestSingleSourceIncident(t *testing.T) {
	src := "198.19.0.7"
	var steps []step
	steps = append(steps, quiet(5)...)
	steps = append(steps, step{pps: 21000, class: detector.ClassUDP, bans: 1, evs: []detector.Event{
		ev(detector.AttackStart, detector.ScopeSource, src, ""), ev(detector.Ban, detector.ScopeSource, src+"/32", ""),
	}})
	for range 10 {
		steps = append(steps, step{pps: 21000, dropped: 20000, class: detector.ClassUDP, bans: 1})
	}
	steps = append(steps, step{pps: 21000, dropped: 20000, class: detector.ClassUDP, bans: 1,
		evs: []detector.Event{ev(detector.AttackEnd, detector.ScopeSource, src, "")}})
	steps = append(steps, quiet(40)...)

	pages := run(t, testConfig(), steps)
	if got := actions(pages); got != "trigger(opened) resolve(no attack for 30s)" {
		t.Fatalf("pages: %s", got)
	}
	trig, res := pages[0], pages[1]
	if trig.Incident.Key != "web1/20261103T200006Z" || res.Incident.Key != trig.Incident.Key {
		t.Errorf("keys %q %q", trig.Incident.Key, res.Incident.Key)
	}
	if trig.ID == res.ID || trig.Seq != 1 || res.Seq != 2 {
		t.Errorf("ids %q/%d %q/%d", trig.ID, trig.Seq, res.ID, res.Seq)
	}
	if trig.Incident.Kind != "single source" || trig.Incident.BannedSources != 1 || trig.Incident.Severity != SeverityWarning {
		t.Errorf("trigger incident %+v", trig.Incident)
	}
	for _, want := range []string{"single source", "web1", "udp", "21.0 kpps", "1.0 kpps", "1 sources", src} {
		if !strings.Contains(trig.Incident.Summary, want) {
			t.Errorf("summary %q lacks %q", trig.Incident.Summary, want)
		}
	}
	if !strings.HasPrefix(res.Incident.Summary, "RESOLVED") || res.Incident.Resolved.IsZero() {
		t.Errorf("resolve %+v", res.Incident)
	}
}

// A pulsing flood: attacks every 15 s within the quiet period are waves of
// one incident, and updates are folded to at most one per update interval.
func TestPulsingFloodIsOneIncident(t *testing.T) {
	var steps []step
	steps = append(steps, quiet(3)...)
	for wave := range 8 {
		steps = append(steps, step{pps: 30000, class: detector.ClassUDP, evs: []detector.Event{
			ev(detector.AttackStart, detector.ScopeAggregate, "*", "udp")}})
		steps = append(steps, step{pps: 30000, class: detector.ClassUDP})
		steps = append(steps, step{pps: 1000, class: detector.ClassTCP, evs: []detector.Event{
			ev(detector.AttackEnd, detector.ScopeAggregate, "*", "udp")}})
		steps = append(steps, quiet(12)...)
		_ = wave
	}
	steps = append(steps, quiet(40)...)
	pages := run(t, testConfig(), steps)
	if pages[0].Action != Trigger || pages[len(pages)-1].Action != Resolve {
		t.Fatalf("pages: %s", actions(pages))
	}
	keys := map[string]bool{}
	updates := 0
	for _, p := range pages {
		keys[p.Incident.Key] = true
		if p.Action == Update {
			updates++
			if !strings.Contains(p.Why, "new wave") {
				t.Errorf("update for %q", p.Why)
			}
		}
	}
	if len(keys) != 1 {
		t.Errorf("%d incidents, want 1: %s", len(keys), actions(pages))
	}
	// 8 waves over ~120 s with a 20 s update interval: a handful of
	// updates, not one per wave.
	if updates == 0 || updates > 6 {
		t.Errorf("%d updates: %s", updates, actions(pages))
	}
	if last := pages[len(pages)-1].Incident; last.Waves != 8 {
		t.Errorf("waves %d", last.Waves)
	}
}

func TestFlashCrowdIsNotPaged(t *testing.T) {
	steps := append(quiet(3), step{pps: 14000, class: detector.ClassTCP, evs: []detector.Event{
		ev(detector.AttackStart, detector.ScopeAggregate, "*", "tcp"),
		ev(detector.AttackStart, detector.ScopeAggregate, "*", "all")}})
	for range 20 {
		steps = append(steps, step{pps: 14000, class: detector.ClassTCP})
	}
	steps = append(steps, step{pps: 1000, class: detector.ClassTCP, evs: []detector.Event{
		ev(detector.AttackEnd, detector.ScopeAggregate, "*", "tcp"),
		ev(detector.AttackEnd, detector.ScopeAggregate, "*", "all")}})
	steps = append(steps, quiet(40)...)
	if pages := run(t, testConfig(), steps); len(pages) != 0 {
		t.Fatalf("flash crowd paged: %s", actions(pages))
	}
	cfg := testConfig()
	cfg.PageFlashCrowds = true
	if pages := run(t, cfg, steps); actions(pages) != "trigger(opened) update(flood not mitigated (nothing to ban); severity raised to error) resolve(no attack for 30s)" {
		t.Fatalf("with page_flash_crowds: %s", actions(pages))
	}
}

// A flood that nothing contains (spoofed: nothing to ban) is news after the
// holding grace, and raises the severity per the default rules.
func TestUnmitigatedFloodRaisesSeverity(t *testing.T) {
	steps := append(quiet(3), step{pps: 200000, class: detector.ClassSYN, evs: []detector.Event{
		{Kind: detector.AttackStart, Scope: detector.ScopeAggregate, Target: "*", Class: "syn",
			Reason: "no small set of out-of-band sources explains it: spoofed sources or a flash crowd; nothing banned"}}})
	for range 40 {
		steps = append(steps, step{pps: 200000, class: detector.ClassSYN})
	}
	pages := run(t, testConfig(), steps)
	if len(pages) != 2 || pages[0].Action != Trigger || pages[1].Action != Update {
		t.Fatalf("pages: %s", actions(pages))
	}
	if pages[0].Incident.Kind != "spoofed sources" || pages[0].Incident.Severity != SeverityWarning {
		t.Errorf("trigger %+v", pages[0].Incident)
	}
	u := pages[1]
	if u.Incident.Severity != SeverityCritical || !strings.Contains(u.Why, "not mitigated") || !strings.Contains(u.Why, "severity raised to critical") {
		t.Errorf("update %q severity %s", u.Why, u.Incident.Severity)
	}
}

func TestReflectionPort(t *testing.T) {
	for reason, want := range map[string]int{
		"udp 80k pps over ...; reflection from udp source port 53 (DNS) carries 97% of the excess": 53,
		"reflection from udp source port 11211":                                                    11211,
		"nothing here":                                                                             0,
	} {
		if got := reflectionPort(reason); got != want {
			t.Errorf("%q: %d, want %d", reason, got, want)
		}
	}
}
