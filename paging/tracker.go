package paging

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// EngineView is what the tracker reads of the detector after a tick: the
// attacks in progress, the active bans and the aggregate baselines.
// *detector.Engine has it.
type EngineView interface {
	Attacks() []detector.Attack
	Bans() []detector.ActiveBan
	Signatures() []detector.ActiveSignature
	Baselines() []detector.Baseline
	Config() detector.Config
}

// UpstreamView is optional on an EngineView: a view that has it (the
// daemon's, with an upstream section) tells how many routes are announced
// upstream over BGP now, dry-run ones excluded. Pages then say so.
type UpstreamView interface {
	AnnouncedUpstream() int
}

// Tracker turns ticks and detector events into incident pages. It is pure
// and deterministic: times are the ticks' end times, so a replay of a
// capture pages exactly as the live daemon would have, at packet time.
// One goroutine only.
type Tracker struct {
	cfg    Config
	host   string
	replay string // capture name(s) when replaying, else ""
	inc    *incidentState
}

// incidentState is an open incident and what decides its next page.
type incidentState struct {
	Incident
	seq        int
	active     map[string]bool // attacks in progress (the engine's Attacks)
	classes    map[string]bool // aggregate classes in progress
	banned     bool            // a ban was issued during the incident
	paged      bool            // the trigger was sent
	quietSince time.Time       // when the last attack ended; zero while one runs
	lastPage   time.Time
	pending    []string // material changes waiting for the update interval
	overSince  time.Time
	notHolding bool // a "bans not holding" update was made
	top        map[string]float64
	kinds      kindNotes
}

// kindNotes gathers what the incident's events said about the flood.
type kindNotes struct {
	sources, prefixes map[string]bool // attacked or banned
	reflectionPort    int
	spoofed           bool
	signature         string // the first signature rule's target
}

// NewTracker returns a tracker for host; replay names the capture when the
// tracker runs under `floodguard replay` (it goes into every incident).
func NewTracker(cfg Config, host, replay string) *Tracker {
	return &Tracker{cfg: cfg, host: host, replay: replay}
}

// Open returns the open incident, if any.
func (tr *Tracker) Open() (Incident, bool) {
	if tr.inc == nil {
		return Incident{}, false
	}
	return tr.inc.Incident, true
}

// Observe takes one tick with the events the detector decided for it and
// returns the pages to send, in order.
func (tr *Tracker) Observe(t *detector.Tick, evs []detector.Event, eng EngineView) []Page {
	now := t.End()
	var pages []Page
	inc := tr.inc
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case detector.AttackStart:
			if inc == nil {
				inc = tr.open(now)
			} else if len(inc.active) == 0 && !inc.quietSince.IsZero() {
				inc.Waves++
				inc.quietSince = time.Time{}
				inc.pending = append(inc.pending, fmt.Sprintf("new wave (%d)", inc.Waves))
			}
			if ev.Scope == detector.ScopeAggregate {
				inc.classes[ev.Class] = true
			}
			inc.note(ev)
		case detector.AttackEnd:
			if inc != nil && ev.Scope == detector.ScopeAggregate {
				delete(inc.classes, ev.Class)
			}
		case detector.Ban:
			if inc != nil {
				inc.banned = true
				inc.note(ev)
			}
		}
	}
	if inc == nil {
		return nil
	}
	// What is in progress is the engine's word, not a count of start and
	// end events: it holds across a daemon restart (both are restored
	// from their snapshots) and whatever events a restart lost.
	clear(inc.active)
	for _, a := range eng.Attacks() {
		inc.active[a.String()] = true
	}
	tr.measure(t, eng)
	if len(inc.active) == 0 && inc.quietSince.IsZero() {
		inc.quietSince = now
	}
	if !inc.paged {
		if len(inc.active) == 0 {
			tr.inc = nil // a flash crowd that ended unpaged
			return nil
		}
		if inc.looksLikeFlashCrowd() && !tr.cfg.PageFlashCrowds {
			// Not paged: many ordinary clients completing TCP handshakes.
			// It becomes an incident if bans or another class join in.
			return nil
		}
		inc.paged = true
		pages = append(pages, tr.page(Trigger, now, "opened"))
		inc.pending = nil
		return pages
	}
	if !inc.quietSince.IsZero() && now.Sub(inc.quietSince) >= tr.cfg.QuietPeriod.D() {
		inc.Resolved = now
		inc.Attacks = nil
		pages = append(pages, tr.page(Resolve, now, fmt.Sprintf("no attack for %s", tr.cfg.QuietPeriod.D())))
		tr.inc = nil
		return pages
	}
	if len(inc.pending) > 0 && now.Sub(inc.lastPage) >= tr.cfg.UpdateInterval.D() {
		pages = append(pages, tr.page(Update, now, strings.Join(inc.pending, "; ")))
		inc.pending = nil
	}
	return pages
}

func (tr *Tracker) open(now time.Time) *incidentState {
	inc := &incidentState{
		Incident: Incident{
			Key:    tr.host + "/" + now.UTC().Format("20060102T150405Z"),
			Host:   tr.host,
			Opened: now,
			Waves:  1,
			Replay: tr.replay,
		},
		active:  map[string]bool{},
		classes: map[string]bool{},
		top:     map[string]float64{},
		kinds:   kindNotes{sources: map[string]bool{}, prefixes: map[string]bool{}},
	}
	tr.inc = inc
	return inc
}

// note takes what an attack or ban event says about the flood.
func (inc *incidentState) note(ev *detector.Event) {
	switch {
	case ev.Scope == detector.ScopeSignature:
		if inc.kinds.signature == "" {
			inc.kinds.signature = ev.Target
		}
	case ev.Kind == detector.Ban && ev.Prefix.IsValid() && !ev.Prefix.IsSingleIP():
		inc.kinds.prefixes[ev.Prefix.String()] = true
	case ev.Kind == detector.Ban && ev.Prefix.IsValid():
		inc.kinds.sources[ev.Prefix.Addr().String()] = true
	case ev.Scope == detector.ScopeSource:
		inc.kinds.sources[ev.Target] = true
		inc.top[ev.Target] = max(inc.top[ev.Target], ev.PPS)
	case ev.Scope == detector.ScopePrefix:
		inc.kinds.prefixes[ev.Target] = true
		inc.top[ev.Target] = max(inc.top[ev.Target], ev.PPS)
	case ev.Scope == detector.ScopeAggregate:
		if ev.ReflectionPort > 0 {
			inc.kinds.reflectionPort = int(ev.ReflectionPort)
		}
		if ev.Unexplained {
			inc.kinds.spoofed = true
		}
		for _, c := range ev.Contributors {
			if c.Share >= 0.05 { // not the long tail of a spoofed flood
				inc.top[c.Target] = max(inc.top[c.Target], c.PPS)
			}
		}
	}
}

// looksLikeFlashCrowd: only aggregate attacks, on established TCP alone
// (completed handshakes, not a SYN flood), and nothing banned. The detector
// reports it (an aggregate attack_start is right: the load is real), but
// nobody is paged for a crowd of real visitors.
func (inc *incidentState) looksLikeFlashCrowd() bool {
	if inc.banned || len(inc.kinds.sources) > 0 || len(inc.kinds.prefixes) > 0 || len(inc.classes) == 0 {
		return false
	}
	for c := range inc.classes {
		if c != "tcp" && c != "all" {
			return false
		}
	}
	return inc.classes["tcp"]
}

// measure updates the incident's numbers from the tick and the engine.
func (tr *Tracker) measure(t *detector.Tick, eng EngineView) {
	inc := tr.inc
	secs := t.Length.Seconds()
	if secs <= 0 {
		secs = 1
	}
	totP, totB := float64(t.Total.TotalPackets()), float64(t.Total.TotalBytes())
	pps, bps := totP/secs, totB*8/secs
	dropP := float64(min(t.Total.DroppedPackets, t.Total.TotalPackets())) / secs
	if pps >= inc.PeakPPS {
		inc.Protocols = protocols(t) // the flood's make-up at its peak
	}
	inc.PeakPPS = max(inc.PeakPPS, pps)
	inc.PeakBPS = max(inc.PeakBPS, bps)
	inc.DroppedPPS = dropP
	inc.DroppedShare = 0
	if pps > 0 {
		inc.DroppedShare = dropP / pps
	}
	var threshold float64
	if bl := eng.Baselines(); len(bl) > 0 {
		inc.BaselinePPS = bl[0].MeanPPS
		threshold = bl[0].ThresholdPPS
	}
	inc.BannedSources, inc.BannedPrefixes = 0, 0
	for _, b := range eng.Bans() {
		if b.Prefix.IsSingleIP() {
			inc.BannedSources++
		} else {
			inc.BannedPrefixes++
		}
	}
	inc.SignatureRules = inc.SignatureRules[:0]
	for _, s := range eng.Signatures() {
		inc.SignatureRules = append(inc.SignatureRules, s.Match.String())
	}
	if len(inc.SignatureRules) == 0 {
		inc.SignatureRules = nil
	}
	inc.DryRun = eng.Config().Bans.DryRun
	if uv, ok := eng.(UpstreamView); ok {
		n := uv.AnnouncedUpstream()
		if n > 0 && inc.AnnouncedUpstream == 0 && inc.paged {
			inc.pending = append(inc.pending, "announced upstream")
		}
		inc.AnnouncedUpstream = n
	}
	inc.Attacks = slices.Sorted(maps.Keys(inc.active))
	// Holding: what still passes is under the detector's own aggregate
	// threshold. Not holding for HoldingGrace while an attack runs is
	// material news.
	passed := pps - dropP
	if len(inc.active) > 0 && threshold > 0 && passed > threshold {
		if inc.overSince.IsZero() {
			inc.overSince = t.End()
		}
	} else {
		inc.overSince = time.Time{}
		if inc.notHolding {
			inc.notHolding = false
			if len(inc.active) > 0 { // (an ending attack says so by itself)
				inc.pending = append(inc.pending, "contained again")
			}
		}
	}
	over := !inc.overSince.IsZero() && t.End().Sub(inc.overSince) >= tr.cfg.HoldingGrace.D()
	// "Holding" means contained: what passes is back under the threshold,
	// or not over it for longer than the grace (bans take a tick or two).
	inc.BansHolding = !over
	if over && !inc.notHolding && inc.paged {
		inc.notHolding = true
		if inc.BannedSources+inc.BannedPrefixes+len(inc.SignatureRules) > 0 {
			inc.pending = append(inc.pending, "bans not holding")
		} else {
			inc.pending = append(inc.pending, "flood not mitigated (nothing to ban)")
		}
	}
	sev := tr.severity(&inc.Incident)
	if inc.paged && sev.Rank() > inc.Severity.Rank() {
		inc.pending = append(inc.pending, "severity raised to "+string(sev))
	}
	if sev.Rank() > inc.Severity.Rank() {
		inc.Severity = sev // never lowered within an incident
	}
	inc.Kind = inc.kind()
	inc.TopSources = inc.topSources(5)
}

// protocols lists the classes carrying at least a tenth of the tick.
func protocols(t *detector.Tick) []string {
	total := t.Total.TotalPackets()
	var out []string
	for c := range detector.NumClasses {
		if n := t.Total.Packets[c]; n > 0 && n*10 >= total {
			out = append(out, c.String())
		}
	}
	return out
}

func (tr *Tracker) severity(inc *Incident) Severity {
	for i := range tr.cfg.Severity {
		if r := &tr.cfg.Severity[i]; r.matches(inc) {
			return r.Severity
		}
	}
	return tr.cfg.DefaultSeverity
}

// kind names the flood from what the incident's events said.
func (inc *incidentState) kind() string {
	k := &inc.kinds
	switch {
	case k.reflectionPort > 0:
		return fmt.Sprintf("reflection on UDP port %d", k.reflectionPort)
	case k.signature != "":
		return "matched by signature " + k.signature
	case len(k.prefixes) > 0:
		return "carpet from prefixes"
	case len(k.sources) == 1:
		return "single source"
	case len(k.sources) > 1:
		return fmt.Sprintf("distributed, %d sources", len(k.sources))
	case k.spoofed:
		return "spoofed sources"
	}
	return "distributed"
}

func (inc *incidentState) topSources(n int) []detector.Contributor {
	out := make([]detector.Contributor, 0, len(inc.top))
	for t, pps := range inc.top {
		out = append(out, detector.Contributor{Target: t, PPS: pps})
	}
	slices.SortFunc(out, func(a, b detector.Contributor) int {
		if a.PPS != b.PPS {
			if a.PPS > b.PPS {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Target, b.Target)
	})
	return out[:min(n, len(out))]
}

// page makes the next page of the open incident.
func (tr *Tracker) page(a Action, now time.Time, why string) Page {
	inc := tr.inc
	inc.seq++
	inc.lastPage = now
	inc.Summary = summary(&inc.Incident, a)
	snap := inc.Incident
	snap.Protocols = slices.Clone(inc.Protocols)
	snap.Attacks = slices.Clone(inc.Attacks)
	snap.TopSources = slices.Clone(inc.TopSources)
	return Page{
		ID:     fmt.Sprintf("%s#%d", inc.Key, inc.seq),
		Action: a, Seq: inc.seq, Time: now, Why: why,
		Incident: snap,
	}
}

// summary is the one line an engineer reads first.
func summary(inc *Incident, a Action) string {
	var b strings.Builder
	if inc.Replay != "" {
		fmt.Fprintf(&b, "[replay of %s] ", inc.Replay)
	}
	if a == Resolve {
		fmt.Fprintf(&b, "RESOLVED on %s: %s flood (%s), peak %s vs baseline %s; %d sources and %d prefixes banned",
			inc.Host, inc.Kind, strings.Join(inc.Protocols, "+"), Rate(inc.PeakPPS), Rate(inc.BaselinePPS),
			inc.BannedSources, inc.BannedPrefixes)
	} else {
		fmt.Fprintf(&b, "%s flood on %s (%s): peak %s vs baseline %s; %d sources and %d prefixes banned, dropping %.0f%% (%s)",
			inc.Kind, inc.Host, strings.Join(inc.Protocols, "+"), Rate(inc.PeakPPS), Rate(inc.BaselinePPS),
			inc.BannedSources, inc.BannedPrefixes, 100*inc.DroppedShare, Rate(inc.DroppedPPS))
		if !inc.BansHolding && inc.BannedSources+inc.BannedPrefixes+len(inc.SignatureRules) > 0 {
			b.WriteString("; bans NOT holding")
		}
	}
	if len(inc.SignatureRules) > 0 {
		fmt.Fprintf(&b, "; signature rules: %s", strings.Join(inc.SignatureRules, ", "))
	}
	if len(inc.TopSources) > 0 {
		b.WriteString("; top:")
		for i, c := range inc.TopSources[:min(3, len(inc.TopSources))] {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s (%s)", c.Target, Rate(c.PPS))
		}
	}
	if inc.AnnouncedUpstream > 0 {
		fmt.Fprintf(&b, "; announced upstream: %d rule%s", inc.AnnouncedUpstream, map[bool]string{true: "s"}[inc.AnnouncedUpstream > 1])
	}
	if inc.DryRun {
		b.WriteString("; DRY RUN: nothing dropped")
	}
	return b.String()
}

// Finish is for the end of a replay: if the open incident has been quiet,
// it returns the resolve the daemon would send once the quiet period has
// passed with no new attack, stamped at that time.
func (tr *Tracker) Finish() []Page {
	inc := tr.inc
	if inc == nil || !inc.paged || inc.quietSince.IsZero() {
		return nil
	}
	at := inc.quietSince.Add(tr.cfg.QuietPeriod.D())
	inc.Resolved = at
	inc.Attacks = nil
	p := tr.page(Resolve, at, fmt.Sprintf("no attack for %s (after the end of the capture)", tr.cfg.QuietPeriod.D()))
	tr.inc = nil
	return []Page{p}
}

// Rate formats packets per second with a k/M suffix.
func Rate(pps float64) string {
	switch {
	case pps >= 1e6:
		return fmt.Sprintf("%.1f Mpps", pps/1e6)
	case pps >= 1e3:
		return fmt.Sprintf("%.1f kpps", pps/1e3)
	}
	return fmt.Sprintf("%.0f pps", pps)
}
