package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floodguard/floodguard/detector"
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
		{"Time span", fmtDur(span), spanNote(r, ft)},
		{"Packets", groupDigits(m.Packets), detector.SI(float64(m.Bytes)) + " bytes"},
		{"Ticks", groupDigits(r.ticks), "of " + fmtDur(m.Tick) + ", warm-up " + fmtDur(m.WarmUp)},
		{"Peak rate", detector.SI(r.peakPPS) + " pps", peakNote(r, ft)},
		{"Attacks", strconv.Itoa(r.started), plural(len(r.attacks), "attack window") + fmt.Sprintf(", %d still going at the end", activeAttacks)},
		{"Bans", strconv.Itoa(r.bans), fmt.Sprintf("%d lifted, %d active at the end; %s", r.unbans, m.ActiveBans, plural(len(r.banned), "target"))},
		{"Dropped", groupDigits(m.DroppedPackets) + " packets", strings.TrimPrefix(dropPct+", ", ", ") + detector.SI(float64(m.DroppedBytes)) + " bytes"},
		{"Undecodable", groupDigits(m.Undecodable), "packets with no readable IP source"},
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
			Peak: detector.SI(a.PeakPPS) + " pps", Baseline: detector.SI(a.BaselinePPS) + " pps", Reason: a.Reason,
		}
		if a.Scope == detector.ScopeAggregate {
			row.Target = "all traffic"
			if a.Class != "all" && a.Class != "" {
				row.Target = a.Class + " traffic"
			}
		}
		if a.Ended.IsZero() {
			row.Ended, row.Open = "still going", true
			row.Duration = "≥ " + fmtDur(r.last.Sub(a.Began))
		} else {
			row.Ended, row.Duration = ft(a.Ended), fmtDur(a.Ended.Sub(a.Began))
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
			TTL: fmtDur(b.TTL), Dropped: groupDigits(b.DroppedPackets), DroppedBytes: detector.SI(float64(b.DroppedBytes)),
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
	p.BannedMoreDropped = groupDigits(moreDropped)
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
	return "at " + ft(r.peakAt) + "; peak " + detector.SI(r.peakBPS) + " bytes/s"
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

// groupDigits writes n with thin-space thousands separators: 1 234 567.
func groupDigits(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(d)
	}
	return b.String()
}

// fmtDur prints a duration compactly: 150ms, 4.5s, 2m30s, 2m, 1h5m.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64) + "s"
	}
	d = d.Round(time.Second)
	h, m, sec := d/time.Hour, d/time.Minute%60, d/time.Second%60
	var b strings.Builder
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if sec > 0 && h == 0 {
		fmt.Fprintf(&b, "%ds", sec)
	}
	return b.String()
}

var pageTemplate = template.Must(template.New("report").Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{.Title}}</title>
<style>
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #ffffff; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.sub, .caption, footer { color: var(--muted); }
.sub { margin: 0 0 14px; word-break: break-all; }
.caption { margin: 2px 0 8px; font-size: 13px; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 8px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; min-width: 0; }
.card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .n { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 6px 10px; margin: 10px 0 0; }
svg.chart { width: 100%; height: auto; display: block; background: #fff; }
.grid line { stroke: #eaeef2; stroke-width: 1; }
.grid .frame { fill: none; stroke: #8c959f; stroke-width: 1; }
.grid text { fill: #57606a; font-size: 12px; }
.ylab { text-anchor: end; } .xlab { text-anchor: middle; } .xcap { text-anchor: end; }
path { fill: none; stroke-linejoin: round; }
path.total { stroke: #1f4e79; stroke-width: 1.6; }
path.mean { stroke: #1a7f37; stroke-width: 1.4; stroke-dasharray: 5 3; }
path.band { fill: #2da44e; fill-opacity: .16; stroke: none; }
path.dropped { fill: #cf222e; fill-opacity: .35; stroke: none; }
path.cl { stroke-width: 1.5; }
path.c-syn { stroke: #8250df; } path.c-tcp { stroke: #0969da; } path.c-udp { stroke: #e16f24; }
path.c-icmp { stroke: #1b7c83; } path.c-other { stroke: #6e7781; }
rect.agg-attack { fill: #fb8f44; fill-opacity: .16; }
rect.key-attack { fill: #cf222e; fill-opacity: .10; }
rect.warmup { fill: #8c959f; fill-opacity: .10; }
line.ban { stroke: #cf222e; stroke-width: 1.4; stroke-opacity: .8; }
line.unban { stroke: #1a7f37; stroke-width: 1.4; stroke-dasharray: 3 3; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 16px; font-size: 12.5px; margin: 0 0 4px 5%; }
.legend .item { white-space: nowrap; }
.legend .sw { display: inline-block; width: 14px; height: 10px; margin-right: 5px; vertical-align: -1px; }
.sw.total { background: #1f4e79; } .sw.mean { background: #1a7f37; } .sw.band { background: #b7e4c2; }
.sw.dropped { background: #eca2a7; } .sw.ban { background: #cf222e; } .sw.unban { background: #84c494; }
.sw.agg-attack { background: #fdd5b9; } .sw.key-attack { background: #f3c4c7; } .sw.warmup { background: #dfe2e5; }
.sw.c-syn { background: #8250df; } .sw.c-tcp { background: #0969da; } .sw.c-udp { background: #e16f24; }
.sw.c-icmp { background: #1b7c83; } .sw.c-other { background: #6e7781; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.t { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.reason { color: var(--muted); overflow-wrap: anywhere; }
td.target { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: nowrap; }
tr.open td, tr.active td { background: #fff5f5; }
.more { color: var(--muted); margin: 6px 0 0; }
footer { margin-top: 32px; font-size: 12px; }
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p class="sub">{{.Subtitle}}</p>

<section id="summary">
<h2>Summary</h2>
<div class="summary">
{{- range .Summary}}
<div class="card"><div class="k">{{.Label}}</div><div class="v">{{.Value}}</div><div class="n">{{.Note}}</div></div>
{{- end}}
</div>
{{- range .Notes}}
<p class="note">{{.}}</p>
{{- end}}
</section>

{{if .Empty -}}
<section id="charts"><h2>Charts</h2><p class="caption">The replay produced no ticks: nothing to draw.</p></section>
{{- else -}}
<section id="aggregate">
<h2>Aggregate packet rate</h2>
<p class="caption">Packets per second of all traffic per tick (dropped packets included), with the detector's learnt baseline: the dashed mean and the shaded band up to the threshold above which all traffic is judged anomalous (not drawn during the warm-up). Shaded columns are attack windows; red lines are bans, dashed green lines unbans (hover for the targets). {{.Downsampled}}</p>
{{.Aggregate}}
</section>

<section id="classes">
<h2>Packet rate by protocol class</h2>
<p class="caption">Packets per second per class: syn is TCP with SYN set and ACK clear, tcp every other TCP segment.</p>
{{.Classes}}
</section>

<section id="bytes">
<h2>Aggregate byte rate</h2>
{{.Rate}}
</section>
{{- end}}

{{- if .Paged}}
<section id="incidents">
<h2>Incidents</h2>
{{if .Incidents -}}
<p class="caption">What floodguard's paging would have sent on-call staff for this capture (the daemon's incident logic, at packet time).</p>
<table>
<thead><tr><th>Opened</th><th>Resolved</th><th>Severity</th><th>Kind</th><th>Peak</th><th>Banned</th><th>Pages</th><th>First page</th></tr></thead>
<tbody>
{{- range .Incidents}}
<tr><td class="t">{{.Opened}}</td><td class="t">{{.Resolved}}</td><td>{{.Severity}}</td><td>{{.Kind}}</td><td class="num">{{.Peak}}</td><td>{{.Bans}}</td><td>{{.Pages}}</td><td class="reason">{{.Summary}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else -}}
<p class="caption">No incident: nothing here would have paged anyone.</p>
{{- end}}
</section>
{{- end}}

<section id="attacks">
<h2>Attacks</h2>
{{if .Attacks -}}
<table>
<thead><tr><th>Detected</th><th>Ended</th><th>Duration</th><th>Scope</th><th>Target</th><th>Peak</th><th>Baseline</th><th>Reason</th></tr></thead>
<tbody>
{{- range .Attacks}}
<tr{{if .Open}} class="open"{{end}}><td class="t">{{.Detected}}</td><td class="t">{{.Ended}}</td><td class="num">{{.Duration}}</td><td>{{.Scope}}</td><td class="target">{{.Target}}</td><td class="num">{{.Peak}}</td><td class="num">{{.Baseline}}</td><td class="reason">{{.Reason}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .AttacksMore}}<p class="more">… and {{.AttacksMore}} more attacks, not listed.</p>{{end}}
{{- else -}}
<p class="caption">No attacks were detected.</p>
{{- end}}
</section>

<section id="bans">
<h2>Banned targets</h2>
{{if .Banned -}}
<p class="caption">Every target banned during the replay, most packets dropped first. Dropped traffic is counted by the simulated data plane, for the most specific rule that matched.</p>
<table>
<thead><tr><th>Target</th><th>Scope</th><th>First banned</th><th>Times</th><th>TTL</th><th>Lifted</th><th>Packets dropped</th><th>Bytes dropped</th></tr></thead>
<tbody>
{{- range .Banned}}
<tr{{if .Active}} class="active"{{end}}><td class="target">{{.Target}}</td><td>{{.Scope}}</td><td class="t">{{.First}}</td><td class="num">{{.Times}}</td><td class="num">{{.TTL}}</td><td class="t">{{.Lifted}}</td><td class="num">{{.Dropped}}</td><td class="num">{{.DroppedBytes}}</td></tr>
{{- end}}
</tbody>
</table>
{{- if .BannedMore}}<p class="more">… and {{.BannedMore}} more targets, which dropped {{.BannedMoreDropped}} packets.</p>{{end}}
{{- else -}}
<p class="caption">Nothing was banned.</p>
{{- end}}
</section>

<footer>{{.Footer}}</footer>
</main>
</body>
</html>
`
