package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/internal/humanize"
)

// renderTop lays out the top view for a screen of width columns and height
// rows (height <= 0: as many rows as the view has), in plain ASCII with no
// escape codes. The source, prefix and rule lists share the rows the
// summary leaves, and each says how many it could not show. top may be nil
// (nothing received yet); footer, if any, is the last line.
func renderTop(top *daemon.Top, width, height int, footer string) []string {
	width = max(width, 20)
	var lines []string
	if top == nil {
		lines = append(lines, "floodguard top", "")
		lines = append(lines, wrap(footer, width)...)
		return fit(lines, width, height)
	}
	lines = append(lines, summaryLines(top, width)...)

	srcs := keyRows(top.Sources, top.SourcesSeen, false)
	pfxs := keyRows(top.Prefixes, top.PrefixesSeen, true)
	rules := ruleRows(top)
	sections := []*section{srcs, pfxs, rules}
	fixed := len(lines) + 2*len(sections) // a blank line and a heading each
	if footer != "" {
		fixed++
	}
	if height > 0 {
		share(sections, height-fixed)
	} else {
		for _, s := range sections {
			s.rows = s.want()
		}
	}
	for _, s := range sections {
		lines = append(lines, "")
		lines = append(lines, s.render(width)...)
	}
	if footer != "" {
		// On the bottom row, where a terminal's status line is.
		for height > 0 && len(lines) < height-1 {
			lines = append(lines, "")
		}
		lines = append(lines, footer)
	}
	return fit(lines, width, height)
}

// summaryLines are the view's first lines: who, traffic against baseline,
// per class, attacks.
func summaryLines(top *daemon.Top, width int) []string {
	st := &top.Status
	var out []string

	mode := st.Mode + " XDP"
	if st.Adopted {
		mode += ", adopted"
	}
	if st.DryRun {
		mode += ", DRY RUN"
	}
	title := fmt.Sprintf("floodguard top - %s (%s)  up %s  tick %d", st.Interface, mode, humanize.Duration(st.LastTick.Sub(st.Started)), st.Ticks)
	if clock := st.LastTick.Format("15:04:05"); !st.LastTick.IsZero() && len(title)+2+len(clock) <= width {
		title += strings.Repeat(" ", width-len(title)-len(clock)) + clock
	}
	out = append(out, title)

	var all daemon.TopClass
	var classes []string
	anomalous := false
	for _, c := range top.Classes {
		if c.Class == "all" {
			all = c
			continue
		}
		mark := ""
		if c.Anomalous {
			mark, anomalous = "*", true
		}
		classes = append(classes, fmt.Sprintf("%s %s/%s%s", c.Class, humanize.SI(c.PPS), humanize.SI(c.BaselinePPS), mark))
	}
	traffic := fmt.Sprintf("traffic  %s pps  baseline %s  threshold %s  dropped %s pps", humanize.SI(all.PPS), humanize.SI(all.BaselinePPS), humanize.SI(all.ThresholdPPS), humanize.SI(st.DroppedPPS))
	switch {
	case !top.Warm:
		traffic += "  (warm-up)"
	case all.Anomalous:
		traffic += "  OVER"
	}
	out = append(out, traffic)
	line := "classes  " + strings.Join(classes, "  ")
	legend := "  (pps/baseline)"
	if anomalous {
		legend = "  (pps/baseline, * over threshold)"
	}
	if len(line)+len(legend) <= width {
		line += legend
	}
	out = append(out, line)
	attacks := "none"
	if len(st.Attacks) > 0 {
		attacks = strings.Join(st.Attacks, ", ")
	}
	out = append(out, "attacks  "+attacks)
	if top.SourcesLost > 0 {
		out = append(out, fmt.Sprintf("WARNING  per-source map full: %d packets of untracked sources this tick", top.SourcesLost))
	}
	return out
}

// section is one list of the view: a heading and rows, of which rows fit.
type section struct {
	names []string   // the heading: the key column's, then the others'
	cells [][]string // per item: the key, then the other columns
	// widths are the columns' after the key: right-aligned, or
	// left-aligned if negative.
	widths []int
	// more counts items the daemon did not send (beyond its top N).
	more int
	none string
	rows int // rows given, below the heading
}

// want is how many rows the section would fill: its items, and a line
// saying how many more there are, or one saying there are none.
func (s *section) want() int {
	n := len(s.cells)
	if s.more > 0 || n == 0 {
		n++
	}
	return n
}

// share hands avail rows to the sections in turn, one at a time, until
// each has what it wants or none are left.
func share(sections []*section, avail int) {
	for _, s := range sections {
		s.rows = 0
	}
	for avail > 0 {
		gave := false
		for _, s := range sections {
			if avail > 0 && s.rows < s.want() {
				s.rows++
				avail--
				gave = true
			}
		}
		if !gave {
			return
		}
	}
}

func (s *section) render(width int) []string {
	shown := len(s.cells)
	if s.rows < s.want() {
		shown = max(0, s.rows-1) // the last row says how many more
	}
	// The key column is as wide as the widest key shown, within what the
	// other columns leave.
	rest := 0
	for _, w := range s.widths {
		rest += 1 + abs(w)
	}
	kw := len(s.names[0])
	for _, c := range s.cells[:shown] {
		kw = max(kw, len(c[0]))
	}
	kw = max(min(kw, width-rest), 12)

	names := s.names
	if k := names[0]; len(k) > kw {
		// Drop the heading's parenthesis rather than cut it.
		if i := strings.Index(k, " ("); i > 0 {
			names = append([]string{k[:i]}, names[1:]...)
		}
	}
	out := []string{s.row(kw, names)}
	if s.rows == 0 {
		return out
	}
	for _, c := range s.cells[:shown] {
		out = append(out, s.row(kw, c))
	}
	if hidden := len(s.cells) - shown + s.more; hidden > 0 {
		out = append(out, fmt.Sprintf("  ... %d more", hidden))
	} else if len(s.cells) == 0 {
		out = append(out, "  "+s.none)
	}
	return out
}

// row lays out a key and its columns.
func (s *section) row(kw int, cells []string) string {
	var b strings.Builder
	b.WriteString(pad(ellipsize(cells[0], kw), kw))
	for i, c := range cells[1:] {
		b.WriteByte(' ')
		if w := s.widths[i]; w < 0 {
			b.WriteString(pad(c, -w))
		} else {
			b.WriteString(strings.Repeat(" ", max(0, w-len(c))) + c)
		}
	}
	return strings.TrimRight(b.String(), " ")
}

func keyRows(keys []daemon.TopKey, seen int, prefixes bool) *section {
	s := &section{more: max(0, seen-len(keys)), none: "(no traffic this tick)"}
	if prefixes {
		s.widths = []int{5, 8, 9, 8, -8}
		s.names = []string{fmt.Sprintf("PREFIX (%d seen)", seen), "SRCS", "PPS", "BASELINE", "DROPPED", "RULE"}
	} else {
		s.widths = []int{8, 9, 8, -8}
		s.names = []string{fmt.Sprintf("SOURCE (%d seen)", seen), "PPS", "BASELINE", "DROPPED", "RULE"}
	}
	for _, k := range keys {
		base := "-" // not tracked (yet)
		if k.Tracked {
			base = humanize.SI(k.BaselinePPS)
		}
		rule := ""
		if k.Ban != "" {
			// The rule holds the key: its length says which it is.
			rule = "in " + k.Ban
			if p, err := netip.ParsePrefix(k.Ban); k.Ban == k.Target || err == nil && p.IsSingleIP() {
				rule = "banned"
			} else if err == nil {
				rule = fmt.Sprintf("in /%d", p.Bits())
			}
			if k.BanDryRun {
				rule += " (dry run)"
			}
		}
		c := []string{k.Target}
		if prefixes {
			c = append(c, fmt.Sprint(k.Sources))
		}
		s.cells = append(s.cells, append(c, humanize.SI(k.PPS), base, humanize.SI(k.DroppedPPS), rule))
	}
	return s
}

func ruleRows(top *daemon.Top) *section {
	s := &section{
		more: max(0, top.RulesTotal-len(top.Rules)), none: "(no rules in force)",
		widths: []int{-8, -6, 9, 8, 8},
		names:  []string{fmt.Sprintf("RULE (%d in force)", max(top.RulesTotal, len(top.Rules))), "ORIGIN", "SCOPE", "TIME LEFT", "DROPPED", "DROP PPS"},
	}
	for _, r := range top.Rules {
		left := humanize.Duration(r.TimeLeft)
		if r.DryRun {
			left = "dry " + left
		}
		s.cells = append(s.cells, []string{r.Target, r.Origin, r.Scope, left, humanize.SI(float64(r.Packets)), humanize.SI(r.DroppedPPS)})
	}
	return s
}

// fit cuts lines to width columns and the list to height rows (if > 0).
func fit(lines []string, width, height int) []string {
	if height > 0 && len(lines) > height {
		lines = lines[:height]
	}
	for i, l := range lines {
		if len(l) > width {
			lines[i] = l[:width]
		}
	}
	return lines
}

// wrap breaks s into lines of at most width columns at spaces (cutting
// words longer than a line).
func wrap(s string, width int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		for len(w) > width {
			if line != "" {
				out, line = append(out, line), ""
			}
			out, w = append(out, w[:width]), w[width:]
		}
		switch {
		case line == "":
			line = w
		case len(line)+1+len(w) <= width:
			line += " " + w
		default:
			out, line = append(out, line), w
		}
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// ellipsize shortens s to at most w columns by cutting its middle (an IPv6
// address keeps its network and its interface ends).
func ellipsize(s string, w int) string {
	if len(s) <= w {
		return s
	}
	if w < 4 {
		return s[:max(w, 0)]
	}
	tail := (w - 2) / 2
	return s[:w-2-tail] + ".." + s[len(s)-tail:]
}

func pad(s string, w int) string {
	if len(s) >= w {
		return s
	}
	return s + strings.Repeat(" ", w-len(s))
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
