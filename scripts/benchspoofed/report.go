// The report: what was run, every round's raw figures, the medians per
// binary, and issue 14's targets against the measured binary's medians.

package main

import (
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/internal/humanize"
)

func (b *bench) report(bins []binary, rs []result) string {
	o := b.opt
	dst, from := b.spoofTarget()
	sender := "trafgen (netsniff-ng) on one CPU, as fast as it goes"
	if o.spoofRate > 0 {
		sender = fmt.Sprintf("%s at %.0f pps", o.sender, o.spoofRate)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "# bench-spoofed: floodguard under a random-source flood (issue 14)\n\n")
	for _, bin := range bins {
		fmt.Fprintf(&head, "- %s: %s (%s)\n", bin.label, bin.version, bin.path)
	}
	fmt.Fprintf(&head, "- machine: %d CPUs, kernel %s, %s; %s\n", runtime.NumCPU(), kernel(), runtime.Version(), time.Now().UTC().Format("2006-01-02T15:04Z"))
	fmt.Fprintf(&head, "- spoofed flood: TCP SYNs, each from a random source across %v, to %v, %s, for %s; then a quiet window of %s\n",
		from, netip.AddrPortFrom(dst, synPort), sender, o.flood, o.quiet)
	fmt.Fprintf(&head, "- single-source floods: UDP, %d-byte frames, %.0f pps until banned and stopped in the kernel (at most %s): from %v on the quiet server, from %v %s into the spoofed flood, from %v %s after it (or once the previous one ended)\n",
		singleFrame, o.singleRate, o.single, quietSource, duringSrc, o.during, afterSource, o.after)
	fmt.Fprintf(&head, "- daemon: shipped defaults but warm_up %s, attach_mode native, bans.ttl 10m; idle window %s after the warm-up, no traffic; benign HTTP client at %d requests/s from then on; %d rounds, binaries taking turns\n",
		o.warmUp, o.idle, clientRate, o.rounds)
	return head.String() + formatResults(rs)
}

// formatResults is the report's tables: the raw figures of every round,
// the medians per binary, and the targets.
func formatResults(rs []result) string {
	var w strings.Builder
	fmt.Fprintf(&w, "\nCPU in %% of one core (process utime+stime over the window); RSS in MiB; frames untracked are the kernel's count of frames whose source found the per-source map full (floodguard_source_insert_failures_total); ticks are done/due in the window, tick work mean and bound on the longest (histogram bucket); ban times from the single-source flood's first frame to its last datagram reaching the server's socket (XDP drops the rest: the rule is in the kernel), and to the daemon's ban log line.\n\n")
	fmt.Fprintf(&w, "## Per round: cost\n\n")
	fmt.Fprintf(&w, "| round | binary | XDP | idle CPU | spoofed frames (rate) | distinct sources (est.) | map entries at flood end | frames untracked (map full) flood / quiet | CPU flood | CPU quiet | RSS idle | peak RSS flood | peak RSS end | RSS end | slow_map_read flood / quiet | ticks flood | ticks quiet | tick work flood | tick work quiet | map read mean flood / quiet |\n")
	fmt.Fprintf(&w, "|%s\n", strings.Repeat("---|", 20))
	for _, r := range rs {
		fmt.Fprintf(&w, "| %d | %s | %s | %s | %d (%.0fk pps) | %s | %s | %s / %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %s / %s | %s | %s | %s | %s | %s / %s |\n",
			r.round, r.bin.label, r.mode, pct(r.idle.cpu), r.spoof.sent, r.spoof.rate()/1000, humanize.SI(r.distinct), entries(r.flood.ticks),
			untracked(r.flood.ticks), untracked(r.quiet.ticks),
			pct(r.flood.cpu), pct(r.quiet.cpu), r.rssIdle, r.peakFlood, r.peakEnd, r.rssEnd,
			slow(r.flood.slowReads), slow(r.quiet.slowReads), tickCount(r.flood.ticks), tickCount(r.quiet.ticks),
			tickWork(r.flood.ticks), tickWork(r.quiet.ticks), msOrNA(r.flood.ticks.ok, r.flood.ticks.meanRead), msOrNA(r.quiet.ticks.ok, r.quiet.ticks.meanRead))
	}
	fmt.Fprintf(&w, "\n## Per round: bans\n\n")
	fmt.Fprintf(&w, "| round | binary | ban on the quiet server (kernel / log) | ban during the flood | ban right after it | other bans | benign HTTP from flood start |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		other := "none"
		if len(r.otherBans) > 0 {
			other = strings.Join(r.otherBans, ", ")
		}
		fmt.Fprintf(&w, "| %d | %s | %s | %s | %s | %s | %d/%d served |\n", r.round, r.bin.label,
			banCell(r.quietBan), banCell(r.duringBan), banCell(r.afterBan)+fmt.Sprintf(", started %s after", ms(r.afterStart)), other, r.benign.Served, r.benign.Requests)
	}
	fmt.Fprintf(&w, "\n## Medians\n\n")
	fmt.Fprintf(&w, "| binary | rounds | idle CPU | CPU flood | CPU quiet | peak RSS | RSS end | slow_map_read (rounds) | ticks flood / quiet | ban quiet server (kernel) | ban during flood | ban after flood |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var labels []string
	for _, r := range rs {
		if !slices.Contains(labels, r.bin.label) {
			labels = append(labels, r.bin.label)
		}
	}
	meds, rounds := map[string]median{}, map[string]int{}
	for _, l := range labels {
		var sel []result
		for _, r := range rs {
			if r.bin.label == l {
				sel = append(sel, r)
			}
		}
		m := medianOf(sel)
		meds[l], rounds[l] = m, len(sel)
		fmt.Fprintf(&w, "| %s | %d | %s | %s | %s | %.0f | %.0f | %d of %d | %s / %s | %s | %s | %s |\n", l, len(sel),
			pct(m.idle), pct(m.flood), pct(m.quiet), m.peak, m.rssEnd, m.slowRounds, len(sel),
			share(m.ticksFlood), share(m.ticksQuiet), banMedian(m.banQuiet, m.nBanQuiet, len(sel)),
			banMedian(m.banDuring, m.nBanDuring, len(sel)), banMedian(m.banAfter, m.nBanAfter, len(sel)))
	}
	for _, l := range labels {
		w.WriteString(targets(l, meds[l], rounds[l]))
	}
	return w.String()
}

// median is one binary's medians over its rounds.
type median struct {
	idle, flood, quiet, peak, rssEnd float64
	// ticksFlood and ticksQuiet are ticks done over ticks due (negative:
	// no metrics).
	ticksFlood, ticksQuiet float64
	slowRounds             int
	// The ban times' medians over the rounds with a ban, and how many
	// rounds had one.
	banQuiet, banDuring, banAfter    time.Duration
	nBanQuiet, nBanDuring, nBanAfter int
}

func medianOf(rs []result) median {
	f := func(get func(result) float64) float64 {
		var v []float64
		for _, r := range rs {
			if x := get(r); x >= 0 {
				v = append(v, x)
			}
		}
		return medianF(v)
	}
	d := func(get func(result) time.Duration) (time.Duration, int) {
		n := 0
		for _, r := range rs {
			if get(r) >= 0 {
				n++
			}
		}
		v := f(func(r result) float64 { return float64(get(r)) })
		if math.IsNaN(v) {
			return -1, 0
		}
		return time.Duration(v), n
	}
	punct := func(t ticks) float64 {
		if !t.ok || t.due == 0 {
			return -1
		}
		return t.done / t.due
	}
	m := median{
		idle:       f(func(r result) float64 { return r.idle.cpu }),
		flood:      f(func(r result) float64 { return r.flood.cpu }),
		quiet:      f(func(r result) float64 { return r.quiet.cpu }),
		peak:       f(func(r result) float64 { return r.peakEnd }),
		rssEnd:     f(func(r result) float64 { return r.rssEnd }),
		ticksFlood: f(func(r result) float64 { return punct(r.flood.ticks) }),
		ticksQuiet: f(func(r result) float64 { return punct(r.quiet.ticks) }),
	}
	m.banQuiet, m.nBanQuiet = d(func(r result) time.Duration { return r.quietBan.kernel })
	m.banDuring, m.nBanDuring = d(func(r result) time.Duration { return r.duringBan.kernel })
	m.banAfter, m.nBanAfter = d(func(r result) time.Duration { return r.afterBan.kernel })
	for _, r := range rs {
		if len(r.flood.slowReads)+len(r.quiet.slowReads) > 0 {
			m.slowRounds++
		}
	}
	return m
}

// targets compares one binary's medians with issue 14's targets.
func targets(label string, m median, rounds int) string {
	var w strings.Builder
	fmt.Fprintf(&w, "\nIssue 14's targets, %s (medians):\n\n", label)
	check := func(what string, ok bool, got string) {
		mark := "MISSED"
		if ok {
			mark = "met"
		}
		fmt.Fprintf(&w, "- %s: %s (%s)\n", what, got, mark)
	}
	check("daemon ≤ 5 % of a core during the flood", m.flood <= 0.05, pct(m.flood))
	check("≤ 2 % in the window after it", m.quiet <= 0.02, pct(m.quiet))
	check("RSS ≤ 200 MiB", m.peak <= 200, fmt.Sprintf("peak %.0f MiB", m.peak))
	check("no slow-read warning", m.slowRounds == 0, fmt.Sprintf("in %d rounds", m.slowRounds))
	check("single-source flood during the flood banned within 1.0 s", m.nBanDuring == rounds && m.banDuring <= time.Second, banMedian(m.banDuring, m.nBanDuring, rounds))
	check("single-source flood right after it banned within 1.0 s", m.nBanAfter == rounds && m.banAfter <= time.Second, banMedian(m.banAfter, m.nBanAfter, rounds))
	check("idle daemon ≤ 0.2 % of a core", m.idle <= 0.002, pct(m.idle))
	return w.String()
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func pct(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", 100*v)
}

func share(v float64) string {
	if v < 0 || math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

func entries(t ticks) string {
	if !t.ok {
		return "n/a"
	}
	return humanize.SI(t.entries)
}

func untracked(t ticks) string {
	if !t.ok {
		return "n/a"
	}
	return humanize.SI(t.insertFailures)
}

func slow(reads []string) string {
	if len(reads) == 0 {
		return "no"
	}
	return "yes: " + strings.Join(reads, "; ")
}

func tickCount(t ticks) string {
	if !t.ok {
		return "n/a"
	}
	s := fmt.Sprintf("%.0f/%.0f", t.done, t.due)
	if t.over > 0 {
		s += fmt.Sprintf(", %.0f over %.0f ms", t.over, t.overAt*1000)
	}
	return s
}

func tickWork(t ticks) string {
	if !t.ok || t.meanWork < 0 {
		return "n/a"
	}
	max := "> last bucket"
	if !math.IsInf(t.maxWork, 1) {
		max = fmt.Sprintf("≤ %s ms", trimFloat(t.maxWork*1000))
	}
	return fmt.Sprintf("%s ms, max %s", trimFloat(float64(t.meanWork)/1e6), max)
}

func msOrNA(ok bool, d time.Duration) string {
	if !ok || d < 0 {
		return "n/a"
	}
	return trimFloat(float64(d)/1e6) + " ms"
}

// trimFloat prints v with at most three significant decimals.
func trimFloat(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// banMedian is a ban time's median, saying so when some rounds had no ban:
// a median over the rounds that banned must not pass for all of them.
func banMedian(d time.Duration, n, rounds int) string {
	if n < rounds && n > 0 {
		return fmt.Sprintf("%s (%d of %d rounds; none in the others)", ms(d), n, rounds)
	}
	return ms(d)
}

func banCell(t banTiming) string {
	if !t.src.IsValid() {
		return "n/a"
	}
	return fmt.Sprintf("%s / %s (%.1fk pps)", ms(t.kernel), ms(t.logged), t.pps/1000)
}

func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
