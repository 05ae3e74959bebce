package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/humanize"
)

// Meta is what the page says about the replay beyond what the Recorder saw:
// its input, its configuration and the replay source's counts.
type Meta struct {
	// Title heads the page (default "floodguard replay report").
	Title string
	Files []string
	// Tick and WarmUp are the detector's; DryRun marks a replay that
	// decided bans but dropped nothing.
	Tick, WarmUp time.Duration
	DryRun       bool
	// The replay source's and the data plane's counts.
	Packets, Bytes               uint64
	DroppedPackets, DroppedBytes uint64
	Undecodable                  uint64
	BackwardsTimestamps          uint64
	ClockJumps                   uint64
	ActiveBans                   int
	// Error is why the replay stopped early, if it did.
	Error   string
	Version string
}

// maxRows is how many rows a table lists; the rest are counted.
const maxRows = 200

// Chart heights.
const (
	mainChartH  = 380.0
	classChartH = 320.0
	bytesChartH = 240.0
)

type summaryItem struct{ Label, Value, Note string }

type attackRow struct {
	Detected, Ended, Duration, Scope, Target, Peak, Baseline, Reason string
	Open                                                             bool
}

type bannedRow struct {
	Target, Scope, First, Times, TTL, Lifted, Dropped, DroppedBytes string
	Active                                                          bool
}

// page is the data of report.html.tmpl.
type page struct {
	Title, Subtitle          string
	Summary                  []summaryItem
	Notes                    []string
	Empty                    bool
	Aggregate, Classes, Rate template.HTML
	Downsampled              string
	Incidents                []incidentRow
	Paged                    bool
	Attacks                  []attackRow
	AttacksMore              int
	Banned                   []bannedRow
	BannedMore               int
	BannedMoreDropped        string
	Footer                   string
}

// WriteHTML writes the report as one self-contained HTML page.
func (r *Recorder) WriteHTML(w io.Writer, meta Meta) error {
	if err := pageTemplate.Execute(w, r.page(meta)); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	return nil
}

func (r *Recorder) page(m Meta) page {
	p := page{Title: m.Title, Empty: r.ticks == 0, Paged: r.paged, Incidents: r.incidentRows()}
	if p.Title == "" {
		p.Title = "floodguard replay report"
	}
	p.Subtitle = strings.Join(m.Files, ", ")
	ft := r.timeFormat()

	span := r.last.Sub(r.first)
	dropPct := ""
	if m.Packets > 0 {
		dropPct = fmt.Sprintf("%.1f %% of the packets", 100*float64(m.DroppedPackets)/float64(m.Packets))
	}
	activeAttacks := len(r.open)
	p.Summary = []summaryItem{
		{"Capture", plural(len(m.Files), "file"), p.Subtitle},
		{"Time span", humanize.Duration(span), spanNote(r, ft)},
		{"Packets", humanize.Group(m.Packets, thinSpace), humanize.SI(float64(m.Bytes)) + " bytes"},
		{"Ticks", humanize.Group(r.ticks, thinSpace), "of " + humanize.Duration(m.Tick) + ", warm-up " + humanize.Duration(m.WarmUp)},
		{"Peak rate", humanize.SI(r.peakPPS) + " pps", peakNote(r, ft)},
		{"Attacks", strconv.Itoa(r.started), plural(len(r.attacks), "attack window") + fmt.Sprintf(", %d still going at the end", activeAttacks)},
		{"Bans", strconv.Itoa(r.bans), fmt.Sprintf("%d lifted, %d active at the end; %s", r.unbans, m.ActiveBans, plural(len(r.banned), "target"))},
		{"Dropped", humanize.Group(m.DroppedPackets, thinSpace) + " packets", strings.TrimPrefix(dropPct+", ", ", ") + humanize.SI(float64(m.DroppedBytes)) + " bytes"},
		{"Undecodable", humanize.Group(m.Undecodable, thinSpace), "packets with no readable IP source"},
	}
	if m.BackwardsTimestamps > 0 || m.ClockJumps > 0 {
		p.Summary = append(p.Summary, summaryItem{"Clock", fmt.Sprintf("%d jumps", m.ClockJumps), fmt.Sprintf("%d timestamps going backwards", m.BackwardsTimestamps)})
	}
	if m.DryRun {
		p.Notes = append(p.Notes, "Dry run: bans were decided but nothing was dropped.")
	}
	if m.Error != "" {
		p.Notes = append(p.Notes, "The replay stopped early: "+m.Error)
	}

	if !p.Empty {
		p.Aggregate = template.HTML(r.aggregateChart(m, ft))
		p.Classes = template.HTML(r.classChart())
		p.Rate = template.HTML(r.bytesChart())
		if r.width > 1 {
			p.Downsampled = fmt.Sprintf("Each point covers up to %d ticks and shows their highest rate.", r.width)
		}
	}

	for i, a := range r.attacks {
		if i == maxRows {
			p.AttacksMore = len(r.attacks) - maxRows
			break
		}
		row := attackRow{
			Detected: ft(a.Detected), Scope: a.Scope.String(), Target: a.Target,
			Peak: humanize.SI(a.PeakPPS) + " pps", Baseline: humanize.SI(a.BaselinePPS) + " pps", Reason: a.Reason,
		}
		if a.Scope == detector.ScopeAggregate {
			row.Target = "all traffic"
			if a.Class != "all" && a.Class != "" {
				row.Target = a.Class + " traffic"
			}
		}
		if a.Ended.IsZero() {
			row.Ended, row.Open = "still going", true
			row.Duration = "≥ " + humanize.Duration(r.last.Sub(a.Began))
		} else {
			row.Ended, row.Duration = ft(a.Ended), humanize.Duration(a.Ended.Sub(a.Began))
		}
		p.Attacks = append(p.Attacks, row)
	}

	banned := slices.Clone(r.banned)
	slices.SortStableFunc(banned, func(a, b Banned) int {
		switch {
		case a.DroppedPackets > b.DroppedPackets:
			return -1
		case a.DroppedPackets < b.DroppedPackets:
			return 1
		}
		return a.FirstBanned.Compare(b.FirstBanned)
	})
	var moreDropped uint64
	for i, b := range banned {
		if i >= maxRows {
			p.BannedMore++
			moreDropped += b.DroppedPackets
			continue
		}
		row := bannedRow{
			Target: b.Target, Scope: b.Scope.String(), First: ft(b.FirstBanned), Times: strconv.Itoa(b.Times),
			TTL: humanize.Duration(b.TTL), Dropped: humanize.Group(b.DroppedPackets, thinSpace), DroppedBytes: humanize.SI(float64(b.DroppedBytes)),
		}
		switch {
		case b.DryRun:
			row.Lifted, row.Dropped, row.DroppedBytes = "dry run", "–", "–"
		case b.Lifted.IsZero():
			row.Lifted, row.Active = "active at the end", true
		default:
			row.Lifted = ft(b.Lifted)
		}
		p.Banned = append(p.Banned, row)
	}
	p.BannedMoreDropped = humanize.Group(moreDropped, thinSpace)
	p.Footer = "Generated by floodguard"
	if m.Version != "" {
		p.Footer += " " + m.Version
	}
	p.Footer += " replay --report. Self-contained: charts are inline SVG, nothing is loaded from elsewhere."
	return p
}

// timeFormat returns how the page prints instants: with the date when the
// replay spans more than one day.
func (r *Recorder) timeFormat() func(time.Time) string {
	multiDay := r.first.UTC().YearDay() != r.last.UTC().YearDay() || r.last.Sub(r.first) > 24*time.Hour
	return func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		layout := "15:04:05"
		if t.Nanosecond() != 0 {
			layout = "15:04:05.000"
		}
		if multiDay {
			layout = "Jan 2 " + layout
		}
		return t.UTC().Format(layout)
	}
}

func spanNote(r *Recorder, ft func(time.Time) string) string {
	if r.ticks == 0 {
		return "no ticks"
	}
	return r.first.UTC().Format("2006-01-02 ") + ft(r.first) + " to " + ft(r.last) + " UTC"
}

func peakNote(r *Recorder, ft func(time.Time) string) string {
	if r.ticks == 0 {
		return ""
	}
	return "at " + ft(r.peakAt) + "; peak " + humanize.SI(r.peakBPS) + " bytes/s"
}

// window is a time interval to shade.
type window struct{ from, to time.Time }

// attackWindows returns the union of the windows of the attacks of the
// given kind (aggregate or not), each from the start of the tick it was
// detected in to its end event (or the end of the replay).
func (r *Recorder) attackWindows(aggregate bool) []window {
	var ws []window
	for _, a := range r.attacks {
		if (a.Scope == detector.ScopeAggregate) != aggregate {
			continue
		}
		end := a.Ended
		if end.IsZero() {
			end = r.last
		}
		ws = append(ws, window{a.Began, end})
	}
	slices.SortFunc(ws, func(a, b window) int { return a.from.Compare(b.from) })
	var out []window
	for _, w := range ws {
		if n := len(out); n > 0 && !w.from.After(out[n-1].to) {
			if w.to.After(out[n-1].to) {
				out[n-1].to = w.to
			}
			continue
		}
		out = append(out, w)
	}
	return out
}

// shadeAttacks shades the attack windows of c.
func (r *Recorder) shadeAttacks(c *chart) {
	for _, w := range r.attackWindows(true) {
		c.span(w.from, w.to, "agg-attack", "aggregate attack")
	}
	for _, w := range r.attackWindows(false) {
		c.span(w.from, w.to, "key-attack", "source or prefix attack")
	}
}

func val(i int) func(*bucket) float64 { return func(b *bucket) float64 { return b.v[i] } }

func (r *Recorder) seriesMax(series ...int) float64 {
	m := 0.0
	for i := range r.buckets {
		for _, s := range series {
			m = maxNaN(m, r.buckets[i].v[s])
		}
	}
	return m
}

func (r *Recorder) aggregateChart(m Meta, ft func(time.Time) string) string {
	peak := r.seriesMax(sPPS, sMean)
	// The band counts for the scale, but not when it would flatten the
	// traffic to nothing (a threshold far above a quiet capture).
	yMax := max(peak, min(r.seriesMax(sThreshold), 3*peak))
	c := newChart(mainChartH, r.first, r.last, yMax*1.08, "aggregate packets per second with the baseline band, attacks, bans and unbans")
	if m.WarmUp > 0 {
		end := r.first.Add(m.WarmUp)
		if end.After(r.last) {
			end = r.last
		}
		c.span(r.first, end, "warmup", "warm-up: baseline being learnt")
	}
	r.shadeAttacks(c)
	c.area(r.buckets, val(sMean), val(sThreshold), "band")
	c.area(r.buckets, func(*bucket) float64 { return 0 }, val(sDroppedPPS), "dropped")
	c.line(r.buckets, val(sMean), "mean")
	c.line(r.buckets, val(sPPS), "total")
	r.drawMarkers(c, ft)
	return legend([2]string{"total", "packets/s (all, dropped or not)"}, [2]string{"dropped", "dropped by bans"},
		[2]string{"mean", "baseline mean"}, [2]string{"band", "band up to the threshold"},
		[2]string{"agg-attack", "aggregate attack"}, [2]string{"key-attack", "source/prefix attack"},
		[2]string{"ban", "ban"}, [2]string{"unban", "unban"}, [2]string{"warmup", "warm-up"}) + c.svg()
}

// drawMarkers draws the ban and unban markers, those closer than a couple
// of units folded into one.
func (r *Recorder) drawMarkers(c *chart, ft func(time.Time) string) {
	for _, unban := range []bool{false, true} {
		var group []marker
		flush := func() {
			if len(group) == 0 {
				return
			}
			n, targets := 0, []string{}
			for _, g := range group {
				n += g.count
				targets = append(targets, g.targets...)
			}
			if len(targets) > maxMarkerTargets {
				targets = targets[:maxMarkerTargets]
			}
			what := "ban"
			if unban {
				what = "unban"
			}
			list := strings.Join(targets, ", ")
			if n > len(targets) {
				list += ", …"
			}
			when := ft(group[0].at)
			if len(group) > 1 {
				when += " to " + ft(group[len(group)-1].at)
			}
			cls := "ban"
			if unban {
				cls = "unban"
			}
			c.vline(group[0].at, cls, fmt.Sprintf("%s: %s: %s", when, plural(n, what), list))
			group = group[:0]
		}
		for _, mk := range r.markers {
			if mk.unban != unban {
				continue
			}
			if len(group) > 0 && c.x(mk.at)-c.x(group[0].at) > 2 {
				flush()
			}
			group = append(group, mk)
		}
		flush()
	}
}

func (r *Recorder) classChart() string {
	var series []int
	var items [][2]string
	for cl := range detector.NumClasses {
		series = append(series, sClass+int(cl))
		items = append(items, [2]string{"c-" + cl.String(), cl.String()})
	}
	c := newChart(classChartH, r.first, r.last, r.seriesMax(series...)*1.08, "packets per second by protocol class")
	r.shadeAttacks(c)
	for i, s := range series {
		c.line(r.buckets, val(s), "cl "+items[i][0])
	}
	return legend(items...) + c.svg()
}

func (r *Recorder) bytesChart() string {
	c := newChart(bytesChartH, r.first, r.last, r.seriesMax(sBPS)*1.08, "aggregate bytes per second")
	r.shadeAttacks(c)
	c.area(r.buckets, func(*bucket) float64 { return 0 }, val(sDroppedBPS), "dropped")
	c.line(r.buckets, val(sBPS), "total")
	return legend([2]string{"total", "bytes/s (all, dropped or not)"}, [2]string{"dropped", "dropped by bans"}) + c.svg()
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// thinSpace separates the thousands in the report: 1 234 567.
const thinSpace = "\u202f"

// pageHTML is the page's template, kept in its own file so that the page
// can be edited without reading Go.
//
//go:embed report.html.tmpl
var pageHTML string

var pageTemplate = template.Must(template.New("report").Parse(pageHTML))
