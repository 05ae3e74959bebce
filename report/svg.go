package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart geometry, in SVG user units; the SVG scales to the page width.
const (
	chartW      = 1200.0
	chartLeft   = 64.0
	chartRight  = 16.0
	chartTop    = 12.0
	chartBottom = 42.0
)

// chart draws one time chart as an SVG element.
type chart struct {
	h      float64
	t0, t1 time.Time
	yMax   float64
	b      strings.Builder
}

func newChart(h float64, t0, t1 time.Time, yMax float64, label string) *chart {
	if !t1.After(t0) {
		t1 = t0.Add(time.Second)
	}
	step := niceStep(yMax / 5)
	if yMax <= 0 || math.IsNaN(yMax) || math.IsInf(yMax, 0) {
		yMax, step = 1, 0.2
	} else {
		yMax = math.Ceil(yMax/step-1e-9) * step
	}
	c := &chart{h: h, t0: t0, t1: t1, yMax: yMax}
	fmt.Fprintf(&c.b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, chartW, h, esc(label))
	c.b.WriteString("\n")
	c.grid(step)
	return c
}

func (c *chart) x(t time.Time) float64 {
	f := float64(t.Sub(c.t0)) / float64(c.t1.Sub(c.t0))
	return chartLeft + f*(chartW-chartLeft-chartRight)
}

func (c *chart) y(v float64) float64 {
	f := min(max(v/c.yMax, 0), 1.02)
	return c.h - chartBottom - f*(c.h-chartTop-chartBottom)
}

func (c *chart) plotTop() float64    { return chartTop }
func (c *chart) plotBottom() float64 { return c.h - chartBottom }

// grid draws the axes, horizontal grid lines with rate labels and time
// labels.
func (c *chart) grid(step float64) {
	b := &c.b
	x0, x1 := chartLeft, chartW-chartRight
	b.WriteString(`<g class="grid">`)
	for v := 0.0; v <= c.yMax*(1+1e-9); v += step {
		y := c.y(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x0, y, x1, y)
		fmt.Fprintf(b, `<text class="ylab" x="%.1f" y="%.1f">%s</text>`, x0-6, y+4, esc(siLabel(v)))
	}
	tstep, layout := timeStep(c.t1.Sub(c.t0))
	for t := c.t0.Truncate(tstep); !t.After(c.t1); t = t.Add(tstep) {
		if t.Before(c.t0) {
			continue
		}
		x := c.x(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x, c.plotTop(), x, c.plotBottom())
		if x > x1-32 { // a label there would be cut off by the edge
			continue
		}
		fmt.Fprintf(b, `<text class="xlab" x="%.1f" y="%.1f">%s</text>`, x, c.plotBottom()+16, esc(t.UTC().Format(layout)))
	}
	fmt.Fprintf(b, `<text class="xcap" x="%.1f" y="%.1f">time (UTC, %s)</text>`, x1, c.h-6, esc(c.t0.UTC().Format("2006-01-02")))
	fmt.Fprintf(b, `<rect class="frame" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x0, c.plotTop(), x1-x0, c.plotBottom()-c.plotTop())
	b.WriteString("</g>\n")
}

// span shades the time window [from, to] over the plot's full height.
func (c *chart) span(from, to time.Time, class, title string) {
	x0, x1 := c.x(from), c.x(to)
	if x1-x0 < 1 {
		x1 = x0 + 1
	}
	fmt.Fprintf(&c.b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>`,
		class, x0, c.plotTop(), x1-x0, c.plotBottom()-c.plotTop(), esc(title))
	c.b.WriteString("\n")
}

// vline draws a vertical marker at t.
func (c *chart) vline(t time.Time, class, title string) {
	x := c.x(t)
	fmt.Fprintf(&c.b, `<line class="%s" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"><title>%s</title></line>`,
		class, x, c.plotTop(), x, c.plotBottom(), esc(title))
	c.b.WriteString("\n")
}

// runs splits bs where a value of val is missing or the buckets are not
// contiguous, and returns the runs of buckets with values.
func runs(bs []bucket, val func(*bucket) float64) [][]bucket {
	var out [][]bucket
	start := -1
	for i := range bs {
		ok := !math.IsNaN(val(&bs[i]))
		if start >= 0 && (!ok || !bs[i-1].end.Equal(bs[i].start)) {
			out = append(out, bs[start:i])
			start = -1
		}
		if ok && start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, bs[start:])
	}
	return out
}

// stepPoints returns the vertices of val over a run of buckets drawn as
// steps (flat over each bucket), flat stretches merged.
func (c *chart) stepPoints(run []bucket, val func(*bucket) float64) [][2]float64 {
	var pts [][2]float64
	for i := range run {
		xs, xe, y := c.x(run[i].start), c.x(run[i].end), c.y(val(&run[i]))
		if n := len(pts); n >= 2 && pts[n-1][1] == y && pts[n-2][1] == y {
			pts[n-1][0] = xe
			continue
		}
		pts = append(pts, [2]float64{xs, y}, [2]float64{xe, y})
	}
	return pts
}

// line draws series val as a step line.
func (c *chart) line(bs []bucket, val func(*bucket) float64, class string) {
	for _, run := range runs(bs, val) {
		fmt.Fprintf(&c.b, `<path class="%s" d="`, class)
		writePoints(&c.b, c.stepPoints(run, val))
		c.b.WriteString("\"/>\n")
	}
}

// area fills between series lo and hi where both have values.
func (c *chart) area(bs []bucket, lo, hi func(*bucket) float64, class string) {
	both := func(b *bucket) float64 { return lo(b) + hi(b) } // NaN if either is
	for _, run := range runs(bs, both) {
		fmt.Fprintf(&c.b, `<path class="%s" d="`, class)
		writePoints(&c.b, c.stepPoints(run, hi))
		low := c.stepPoints(run, lo)
		for i := len(low) - 1; i >= 0; i-- {
			fmt.Fprintf(&c.b, "L%.1f %.1f", low[i][0], low[i][1])
		}
		c.b.WriteString("Z\"/>\n")
	}
}

func writePoints(b *strings.Builder, pts [][2]float64) {
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(b, "%s%.1f %.1f", cmd, p[0], p[1])
	}
}

// legend returns an HTML row of swatches and names, wrapping on narrow
// screens; each item is a CSS class and a name.
func legend(items ...[2]string) string {
	var b strings.Builder
	b.WriteString(`<div class="legend">`)
	for _, it := range items {
		fmt.Fprintf(&b, `<span class="item"><span class="sw %s"></span>%s</span>`, esc(it[0]), esc(it[1]))
	}
	b.WriteString("</div>\n")
	return b.String()
}

func (c *chart) svg() string {
	c.b.WriteString("</svg>")
	return c.b.String()
}

// esc escapes text for SVG/HTML text and attribute values.
func esc(s string) string { return html.EscapeString(s) }

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// siLabel formats an axis value with a k/M/G suffix and at most three
// significant digits: 0, 250, 2.5k, 20k, 1.25M.
func siLabel(v float64) string {
	suffix := ""
	for _, s := range []struct {
		div float64
		suf string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(v) >= s.div {
			v /= s.div
			suffix = s.suf
			break
		}
	}
	return strconv.FormatFloat(roundSig(v, 3), 'f', -1, 64) + suffix
}

func roundSig(v float64, digits int) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, float64(digits)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// timeStep picks the spacing of time labels for a chart spanning d (about
// eight labels) and their layout.
func timeStep(d time.Duration) (time.Duration, string) {
	steps := []time.Duration{
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	}
	for _, s := range steps {
		if d/s <= 9 {
			switch {
			case s >= 24*time.Hour:
				return s, "Jan 2"
			case d > 24*time.Hour:
				return s, "Jan 2 15:04"
			case s >= time.Minute:
				return s, "15:04"
			}
			return s, "15:04:05"
		}
	}
	s := 24 * time.Hour
	for d/s > 9 {
		s *= 2
	}
	return s, "2006-01-02"
}
