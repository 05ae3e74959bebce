// The pure parts of -compare-trips: where in the tick each flood starts,
// and the report (per flood, per rate with trips on against off, the raw
// samples and the targets).

package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

// Issue 17's targets for trips on: flood start to the rule in the kernel.
const (
	targetMedian = 150 * time.Millisecond
	targetWorst  = 250 * time.Millisecond
)

// tripSample is one flood of -compare-trips: one rate, one phase of the
// tick, trips on or off.
type tripSample struct {
	rate  float64 // asked for, frames per second
	phase float64 // asked for, fraction of the tick after its read
	trips bool
	// sender is "lab" (internal/lab's paced sender) or "trafgen".
	sender string
	// at is where in the tick the flood's first frame came: the time
	// since the daemon's last tick read (negative: not seen).
	at time.Duration
	// sent is the flood's frames, pps its achieved rate.
	sent uint64
	pps  float64
	// drop, ban and stamped are from the flood's first frame to the first
	// frame dropped in the kernel, to the ban line (when it was written)
	// and to the ban's time stamped in that line (its tick_end field: the
	// trip's time for a ban on a trip); negative if it did not happen by
	// the flood's end plus a grace.
	drop, ban, stamped time.Duration
	benign             lab.ClientStats
	// others are the bans of anything but the flood's source.
	others []string
}

// tripPhases is n phases evenly spread over the tick: (i + ½)/n.
func tripPhases(n int) []float64 {
	p := make([]float64, n)
	for i := range p {
		p[i] = (float64(i) + 0.5) / float64(n)
	}
	return p
}

// nextStart is the first time at least at earliest that lies phase (a
// fraction) of a tick after a tick read, tick reads being at boundary plus
// whole ticks.
func nextStart(boundary, earliest time.Time, tick time.Duration, phase float64) time.Time {
	t := boundary.Add(time.Duration(phase * float64(tick)))
	if t.Before(earliest) {
		n := (earliest.Sub(t) + tick - 1) / tick
		t = t.Add(n * tick)
	}
	return t
}

// phaseOf is how long before start the last of reads (in time order)
// happened; negative when none did.
func phaseOf(start time.Time, reads []time.Time) time.Duration {
	// reads[i] is the first read at start or later.
	i, found := slices.BinarySearchFunc(reads, start, func(r, s time.Time) int { return r.Compare(s) })
	if found {
		return 0
	}
	if i == 0 {
		return -1
	}
	return start.Sub(reads[i-1])
}

// median is the median of v (negative: v is empty).
func median(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return -1
	}
	v = slices.Sorted(slices.Values(v))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// tripStat sums up one measure over a set of floods.
type tripStat struct {
	med, worst time.Duration
	// missed counts floods where it did not happen.
	missed int
	raw    []time.Duration
}

func statOf(ss []tripSample, f func(tripSample) time.Duration) tripStat {
	st := tripStat{worst: -1}
	var seen []time.Duration
	for _, s := range ss {
		d := f(s)
		st.raw = append(st.raw, d)
		if d < 0 {
			st.missed++
			continue
		}
		seen = append(seen, d)
		st.worst = max(st.worst, d)
	}
	st.med = median(seen)
	return st
}

func (t tripStat) String() string {
	if t.med < 0 {
		return "none"
	}
	s := fmt.Sprintf("%s / %s", ms(t.med), ms(t.worst))
	if t.missed > 0 {
		s += fmt.Sprintf(" (%d missed)", t.missed)
	}
	return s
}

// rawMS lists samples in milliseconds, "none" for a miss.
func rawMS(v []time.Duration) string {
	s := make([]string, len(v))
	for i, d := range v {
		if d < 0 {
			s[i] = "none"
		} else {
			s[i] = strconv.FormatInt(d.Milliseconds(), 10)
		}
	}
	return strings.Join(s, ", ")
}

// meets tells whether a set of floods meets the targets: every flood
// dropped, median and worst within bounds.
func (t tripStat) meets() bool {
	return t.missed == 0 && t.med >= 0 && t.med <= targetMedian && t.worst <= targetWorst
}

func onOff(trips bool) string {
	if trips {
		return "on"
	}
	return "off"
}

// formatTrips is the report of -compare-trips; header says what ran where.
// Samples come in run order; rates and phases in the order asked.
func formatTrips(header string, rates, phases []float64, tick time.Duration, ss []tripSample) string {
	var w strings.Builder
	w.WriteString(header)
	fmt.Fprintf(&w, "\nPer flood (phase: where in the tick the flood's first frame came, asked / measured from the daemon's tick read; times from the first frame):\n\n")
	fmt.Fprintf(&w, "| rate asked | sender | phase | trips | sent (achieved) | to kernel drop | to ban line written | ban time in the line | benign HTTP | other bans |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range ss {
		at := "?"
		if s.at >= 0 {
			at = strconv.FormatInt(s.at.Milliseconds(), 10)
		}
		others := "none"
		if len(s.others) > 0 {
			others = strings.Join(s.others, " ")
		}
		fmt.Fprintf(&w, "| %.0fk | %s | %.0f / %s ms | %s | %d (%.1fk pps) | %s | %s | %s | %d/%d | %s |\n",
			s.rate/1000, s.sender, s.phase*float64(tick.Milliseconds()), at, onOff(s.trips), s.sent, s.pps/1000,
			ms(s.drop), ms(s.ban), ms(s.stamped), s.benign.Served, s.benign.Requests, others)
	}
	fmt.Fprintf(&w, "\nPer rate, median / worst over the phases (target for trips on: to kernel drop ≤ %s median, ≤ %s worst):\n\n", ms(targetMedian), ms(targetWorst))
	fmt.Fprintf(&w, "| rate (achieved) | to kernel drop, trips on | trips off (tick end) | off / on (median) | to ban line written, trips on | trips off | ban time in the line, trips on | trips off | target met |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|---|---|\n")
	type raws struct {
		label                string
		dropOn, dropOf       []time.Duration
		banOn, banOf         []time.Duration
		stampedOn, stampedOf []time.Duration
	}
	var rs []raws
	allMet := len(rates) > 0
	for _, rate := range rates {
		var on, off []tripSample
		var pps []float64
		for _, s := range ss {
			if s.rate != rate {
				continue
			}
			pps = append(pps, s.pps)
			if s.trips {
				on = append(on, s)
			} else {
				off = append(off, s)
			}
		}
		drop := func(s tripSample) time.Duration { return s.drop }
		ban := func(s tripSample) time.Duration { return s.ban }
		stamped := func(s tripSample) time.Duration { return s.stamped }
		dOn, dOff, bOn, bOff := statOf(on, drop), statOf(off, drop), statOf(on, ban), statOf(off, ban)
		sOn, sOff := statOf(on, stamped), statOf(off, stamped)
		ratio := "n/a"
		if dOn.med > 0 && dOff.med > 0 {
			ratio = fmt.Sprintf("%.1fx", float64(dOff.med)/float64(dOn.med))
		}
		met := "no"
		if dOn.meets() {
			met = "yes"
		}
		allMet = allMet && dOn.meets() && len(on) > 0
		lo, hi := minMax(pps)
		fmt.Fprintf(&w, "| %.0fk (%.1fk–%.1fk) | %s | %s | %s | %s | %s | %s | %s | %s |\n", rate/1000, lo/1000, hi/1000, dOn, dOff, ratio, bOn, bOff, sOn, sOff, met)
		rs = append(rs, raws{fmt.Sprintf("%.0fk", rate/1000), dOn.raw, dOff.raw, bOn.raw, bOff.raw, sOn.raw, sOff.raw})
	}
	fmt.Fprintf(&w, "\nRaw samples, ms, in phase order %s of the tick:\n\n", phaseList(phases, tick))
	for _, r := range rs {
		fmt.Fprintf(&w, "- %s to kernel drop: trips on [%s]; off [%s]\n", r.label, rawMS(r.dropOn), rawMS(r.dropOf))
		fmt.Fprintf(&w, "- %s to ban line written: trips on [%s]; off [%s]\n", r.label, rawMS(r.banOn), rawMS(r.banOf))
		fmt.Fprintf(&w, "- %s to ban time in the line: trips on [%s]; off [%s]\n", r.label, rawMS(r.stampedOn), rawMS(r.stampedOf))
	}
	var served, reqs int
	var others []string
	for _, s := range ss {
		served += s.benign.Served
		reqs += s.benign.Requests
		for _, o := range s.others {
			others = append(others, fmt.Sprintf("%s (%.0fk, trips %s)", o, s.rate/1000, onOff(s.trips)))
		}
	}
	fmt.Fprintf(&w, "\nBenign client during the floods: %d/%d requests served.\n", served, reqs)
	if len(others) == 0 {
		fmt.Fprintf(&w, "Unexpected bans: none.\n")
	} else {
		fmt.Fprintf(&w, "UNEXPECTED BANS: %s.\n", strings.Join(others, ", "))
	}
	verdict := "met"
	if !allMet {
		verdict = "NOT met"
	}
	fmt.Fprintf(&w, "Targets (trips on, every rate: ≤ %s median, ≤ %s worst to the kernel drop): %s.\n", ms(targetMedian), ms(targetWorst), verdict)
	return w.String()
}

func minMax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	return slices.Min(v), slices.Max(v)
}

func phaseList(phases []float64, tick time.Duration) string {
	s := make([]string, len(phases))
	for i, p := range phases {
		s[i] = fmt.Sprintf("%.0f ms", p*float64(tick.Milliseconds()))
	}
	return strings.Join(s, ", ")
}
