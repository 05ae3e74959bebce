package paging

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/floodguard/floodguard/detector"
)

// upstreamEngine is a fakeEngine that also tells what is announced upstream.
type upstreamEngine struct {
	*fakeEngine
	announced int
}

func (u *upstreamEngine) AnnouncedUpstream() int { return u.announced }

// TestPageSaysAnnouncedUpstream: with an engine view that knows the
// upstream announcements, the trigger says how many rules went upstream;
// one made after the trigger is material news for an update; without the
// view pages never mention it.
func TestPageSaysAnnouncedUpstream(t *testing.T) {
	src := "198.19.0.7"
	flood := func(evs ...detector.Event) step {
		return step{pps: 21000, dropped: 20000, class: detector.ClassUDP, bans: 1, evs: evs}
	}
	start := []detector.Event{ev(detector.AttackStart, detector.ScopeSource, src, ""), ev(detector.Ban, detector.ScopeSource, src+"/32", "")}
	for _, tc := range []struct {
		name      string
		at        int // tick from which the rule is announced (-1: no view)
		trigger   string
		updateWhy string
	}{
		{"announced with the ban", 5, "; announced upstream: 1 rule", ""},
		{"announced later", 8, "", "announced upstream"},
		{"no upstream view", -1, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var steps []step
			steps = append(steps, quiet(5)...)
			steps = append(steps, flood(start...))
			for range 30 {
				steps = append(steps, flood())
			}
			tr := NewTracker(testConfig(), "web1", "")
			fe := &fakeEngine{baseline: 1000, threshold: 10000, attacks: map[string]bool{}}
			var eng EngineView = fe
			ue := &upstreamEngine{fakeEngine: fe}
			if tc.at >= 0 {
				eng = ue
			}
			var pages []Page
			for i, s := range steps {
				fe.bans = nil
				if s.bans > 0 {
					fe.bans = []detector.ActiveBan{{Rule: detector.Rule{Prefix: netip.MustParsePrefix(src + "/32")}}}
				}
				fe.step(s.evs)
				if tc.at >= 0 && i >= tc.at {
					ue.announced = 1
				}
				pages = append(pages, tr.Observe(tickAt(i, s), s.evs, eng)...)
			}
			if len(pages) == 0 || pages[0].Action != Trigger {
				t.Fatalf("pages: %s", actions(pages))
			}
			trig := pages[0].Incident.Summary
			if tc.trigger != "" && !strings.Contains(trig, tc.trigger) {
				t.Errorf("trigger summary %q lacks %q", trig, tc.trigger)
			}
			if tc.trigger == "" && strings.Contains(trig, "upstream") {
				t.Errorf("trigger summary %q mentions upstream", trig)
			}
			var update *Page
			for i := range pages[1:] {
				if pages[1+i].Action == Update {
					update = &pages[1+i]
					break
				}
			}
			switch {
			case tc.updateWhy == "" && update != nil:
				t.Errorf("unexpected update: %s: %s", update.Why, update.Incident.Summary)
			case tc.updateWhy != "" && update == nil:
				t.Errorf("no update page: %s", actions(pages))
			case tc.updateWhy != "":
				if !strings.Contains(update.Why, tc.updateWhy) || !strings.Contains(update.Incident.Summary, "; announced upstream: 1 rule") {
					t.Errorf("update %q: %q, want it to say the rule went upstream", update.Why, update.Incident.Summary)
				}
				if update.Incident.AnnouncedUpstream != 1 {
					t.Errorf("update: announced_upstream %d, want 1", update.Incident.AnnouncedUpstream)
				}
			}
		})
	}
}
