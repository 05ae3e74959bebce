// Package humanize formats numbers, rates and durations for people: the one
// place the CLI, the pages, the report and the lab tools take them from, so
// "1.2k pps" reads the same everywhere.
package humanize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// SI formats a value with an SI suffix: 950, 1.2k, 3.4M, 5.0G.
func SI(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// Rate formats a packet and a bit rate: "1.2k pps / 3.4Mbit/s".
func Rate(pps, bps float64) string {
	return SI(pps) + " pps / " + SI(bps) + "bit/s"
}

// Group writes n with sep between groups of three digits: Group(1234567,
// ",") is "1,234,567".
func Group(n uint64, sep string) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(d)
	}
	return b.String()
}

// Duration prints a duration compactly: 150ms, 4.5s, 2m30s, 2m, 1h5m.
// Below a second it keeps milliseconds, below a minute tenths of a second,
// above that whole seconds (and no seconds once there are hours).
func Duration(d time.Duration) string {
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

// Tail returns the last n lines of s (a log shown when something failed).
func Tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
