package paging

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// fakeEngine is the engine view the tracker reads.
type fakeEngine struct {
	attacks   map[string]bool // from the events, as the engine keeps them
	bans      []detector.ActiveBan
	sigs      []detector.ActiveSignature
	baseline  float64
	threshold float64
	dryRun    bool
}

func (f *fakeEngine) Bans() []detector.ActiveBan { return f.bans }
func (f *fakeEngine) Signatures() []detector.ActiveSignature {
	return f.sigs
}
func (f *fakeEngine) Attacks() []detector.Attack {
	var out []detector.Attack
	for a := range f.attacks {
		// The key stands in for the target; the tracker only tells
		// attacks apart.
		out = append(out, detector.Attack{Scope: detector.ScopeAggregate, Class: a})
	}
	return out
}

// step applies a tick's events to the attacks in progress.
func (f *fakeEngine) step(evs []detector.Event) {
	for _, ev := range evs {
		key := ev.Scope.String() + " " + ev.Target + " " + ev.Class
		switch ev.Kind {
		case detector.AttackStart:
			f.attacks[key] = true
		case detector.AttackEnd:
			delete(f.attacks, key)
		}
	}
}
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
	eng := &fakeEngine{baseline: 1000, threshold: 10000, attacks: map[string]bool{}}
	var pages []Page
	for i, s := range steps {
		eng.bans = nil
		for b := range s.bans {
			eng.bans = append(eng.bans, detector.ActiveBan{Rule: detector.Rule{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(b)}), 32)}})
		}
		eng.step(s.evs)
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
		{Kind: detector.AttackStart, Scope: detector.ScopeAggregate, Target: "*", Class: "syn", Unexplained: true,
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

// An incident open when the daemon stops is restored by the next run and
// resolved under the same key, its page sequence continuing.
func TestTrackerStateSurvivesRestart(t *testing.T) {
	cfg := testConfig()
	eng := &fakeEngine{baseline: 1000, threshold: 10000, attacks: map[string]bool{}}
	tr := NewTracker(cfg, "web1", "")
	start := []detector.Event{ev(detector.AttackStart, detector.ScopeSource, "198.19.0.7", "")}
	eng.step(start)
	pages := tr.Observe(tickAt(0, step{pps: 21000, class: detector.ClassUDP}), start, eng)
	if len(pages) != 1 || pages[0].Action != Trigger {
		t.Fatalf("pages %s", actions(pages))
	}
	data, err := tr.MarshalState()
	if err != nil || data == nil {
		t.Fatalf("state %q, %v", data, err)
	}

	// The next run: the attack ended while it was down (no attack_end
	// event ever seen), the engine has nothing in progress.
	tr2 := NewTracker(cfg, "web1", "")
	now := tickAt(5, step{}).End()
	if err := tr2.RestoreState(data, now, time.Hour); err != nil {
		t.Fatal(err)
	}
	idle := &fakeEngine{baseline: 1000, threshold: 10000, attacks: map[string]bool{}}
	var got []Page
	for i := 5; i < 60; i++ {
		got = append(got, tr2.Observe(tickAt(i, step{pps: 1000, class: detector.ClassTCP}), nil, idle)...)
	}
	if len(got) != 1 || got[0].Action != Resolve || got[0].Incident.Key != pages[0].Incident.Key || got[0].Seq != 2 {
		t.Fatalf("after restart: %s %+v", actions(got), got)
	}
	if st, _ := tr2.MarshalState(); st != nil {
		t.Errorf("state after the resolve: %s", st)
	}
	for _, bad := range []struct {
		host string
		age  time.Duration
	}{{"web2", time.Hour}, {"web1", time.Second}} {
		if err := NewTracker(cfg, bad.host, "").RestoreState(data, now.Add(time.Minute), bad.age); err == nil {
			t.Errorf("restored on %s after %s", bad.host, bad.age)
		}
	}
}

// TestTrackerInvariants drives the tracker with random attacks, bans and
// traffic (fixed seeds) and checks what every on-call tool relies on: an
// incident's pages start with its trigger, count up by one, end with its
// resolve and nothing after it, one incident at a time, and updates at
// most one per update interval.
func TestTrackerInvariants(t *testing.T) {
	kinds := map[Action]int{}
	defer func() {
		if kinds[Trigger] == 0 || kinds[Update] == 0 || kinds[Resolve] == 0 {
			t.Errorf("pages by action %v: the runs do not exercise the tracker", kinds)
		}
	}()
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		cfg := testConfig()
		tr := NewTracker(cfg, "web1", "")
		eng := &fakeEngine{baseline: 1000, threshold: 10000, attacks: map[string]bool{}}
		targets := []string{"198.19.0.1", "198.19.0.2", "198.19.7.0/24"}
		var pages []Page
		for i := range 2000 {
			var evs []detector.Event
			if i%300 >= 180 { // a calm stretch: every attack ends
				for key := range eng.attacks {
					parts := strings.SplitN(key, " ", 3)
					scope := map[string]detector.Scope{"source": detector.ScopeSource, "prefix": detector.ScopePrefix, "aggregate": detector.ScopeAggregate}[parts[0]]
					evs = append(evs, ev(detector.AttackEnd, scope, parts[1], parts[2]))
				}
			} else if rng.IntN(25) == 0 {
				tg := targets[rng.IntN(len(targets))]
				scope := detector.ScopeSource
				if strings.Contains(tg, "/") {
					scope = detector.ScopePrefix
				}
				kind := detector.AttackStart
				key := scope.String() + " " + tg + " "
				if eng.attacks[key] {
					kind = detector.AttackEnd
				}
				evs = append(evs, ev(kind, scope, tg, ""))
				if kind == detector.AttackStart && rng.IntN(2) == 0 {
					p := tg
					if !strings.Contains(p, "/") {
						p += "/32"
					}
					evs = append(evs, ev(detector.Ban, scope, p, ""))
				}
			}
			if i%300 < 180 && rng.IntN(40) == 0 {
				c := []string{"udp", "syn", "tcp", "all"}[rng.IntN(4)]
				key := "aggregate * " + c
				kind := detector.AttackStart
				if eng.attacks[key] {
					kind = detector.AttackEnd
				}
				evs = append(evs, ev(kind, detector.ScopeAggregate, "*", c))
			}
			eng.step(evs)
			pps := uint64(1000)
			if len(eng.attacks) > 0 {
				pps = uint64(5000 + rng.IntN(100000))
			}
			pages = append(pages, tr.Observe(tickAt(i, step{pps: pps, dropped: pps / uint64(1+rng.IntN(3)), class: detector.ClassUDP}), evs, eng)...)
		}
		pages = append(pages, tr.Finish()...)
		for _, p := range pages {
			kinds[p.Action]++
		}
		open := ""
		seq := 0
		var lastUpdate time.Time
		for _, p := range pages {
			switch {
			case p.Action == Trigger:
				if open != "" {
					t.Fatalf("seed %d: trigger of %s while %s is open", seed, p.Incident.Key, open)
				}
				open, seq, lastUpdate = p.Incident.Key, 0, p.Time
			case p.Incident.Key != open:
				t.Fatalf("seed %d: %s page of %s, open is %q", seed, p.Action, p.Incident.Key, open)
			case p.Action == Update:
				if p.Time.Sub(lastUpdate) < cfg.UpdateInterval.D() {
					t.Fatalf("seed %d: update %s after the last page", seed, p.Time.Sub(lastUpdate))
				}
				lastUpdate = p.Time
			}
			if p.Seq != seq+1 {
				t.Fatalf("seed %d: %s page %d after %d", seed, p.Action, p.Seq, seq)
			}
			seq = p.Seq
			if p.Action == Resolve {
				open = ""
			}
		}
	}
}

// TestSignatureIncident: a flood dropped by a signature rule is paged as
// such, naming the rule, and the rule counts as mitigation.
func TestSignatureIncident(t *testing.T) {
	rule := "udp sport 123 → 198.18.0.10"
	tr := NewTracker(testConfig(), "web1", "")
	eng := &fakeEngine{baseline: 1000, threshold: 10000, attacks: map[string]bool{}}
	var pages []Page
	for i, s := range quiet(5) {
		pages = append(pages, tr.Observe(tickAt(i, s), nil, eng)...)
	}
	start := ev(detector.AttackStart, detector.ScopeAggregate, "*", "udp")
	ban := detector.Event{Kind: detector.Ban, Scope: detector.ScopeSignature, Target: rule, Time: t0.Add(6 * time.Second)}
	eng.step([]detector.Event{start})
	eng.sigs = []detector.ActiveSignature{{SignatureRule: detector.SignatureRule{Match: detector.Match{Proto: 17}}}}
	pages = append(pages, tr.Observe(tickAt(5, step{pps: 25000, dropped: 24000, class: detector.ClassUDP}), []detector.Event{start, ban}, eng)...)
	if len(pages) != 1 {
		t.Fatalf("pages: %s", actions(pages))
	}
	inc := pages[0].Incident
	if inc.Kind != "matched by signature "+rule || len(inc.SignatureRules) != 1 || !inc.BansHolding {
		t.Errorf("incident %+v", inc)
	}
	if !strings.Contains(inc.Summary, "signature rules: udp") {
		t.Errorf("summary %q does not name the rule", inc.Summary)
	}
}
