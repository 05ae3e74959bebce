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
	// rule, drop, ban and stamped are from the flood's first frame to its
	// source's rule in the kernel's rule maps, to the first frame dropped
	// in the kernel, to the ban line (when it was written)
	// and to the ban's time stamped in that line (its tick_end field: the
	// trip's time for a ban on a trip); negative if it did not happen by
	// the flood's end plus a grace.
	rule, drop, ban, stamped time.Duration
	benign                   lab.ClientStats
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
	fmt.Fprintf(&w, "| rate asked | sender | phase | trips | sent (achieved) | to rule in the kernel | to first kernel drop | to ban line written | ban time in the line | benign HTTP | other bans |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range ss {
		at := "?"
		if s.at >= 0 {
			at = strconv.FormatInt(s.at.Milliseconds(), 10)
		}
		others := "none"
		if len(s.others) > 0 {
			others = strings.Join(s.others, " ")
		}
		fmt.Fprintf(&w, "| %.0fk | %s | %.0f / %s ms | %s | %d (%.1fk pps) | %s | %s | %s | %s | %d/%d | %s |\n",
			s.rate/1000, s.sender, s.phase*float64(tick.Milliseconds()), at, onOff(s.trips), s.sent, s.pps/1000,
			ms(s.rule), ms(s.drop), ms(s.ban), ms(s.stamped), s.benign.Served, s.benign.Requests, others)
	}
	measures := []struct {
		name string
		f    func(tripSample) time.Duration
	}{
		{"rule in the kernel", func(s tripSample) time.Duration { return s.rule }},
		{"first kernel drop", func(s tripSample) time.Duration { return s.drop }},
		{"ban line written", func(s tripSample) time.Duration { return s.ban }},
		{"ban time in the line", func(s tripSample) time.Duration { return s.stamped }},
	}
	fmt.Fprintf(&w, "\nPer rate, from the flood's first frame, median / worst over the phases (target for trips on: rule in the kernel and first drop ≤ %s median, ≤ %s worst):\n\n", ms(targetMedian), ms(targetWorst))
	fmt.Fprintf(&w, "| rate (achieved) | to | trips on | trips off (tick end) | off / on (medians) |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|\n")
	var raw, verdicts strings.Builder
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
		lo, hi := minMax(pps)
		label := fmt.Sprintf("%.0fk", rate/1000)
		met := len(on) > 0
		for i, m := range measures {
			sOn, sOff := statOf(on, m.f), statOf(off, m.f)
			ratio := "n/a"
			if sOn.med > 0 && sOff.med > 0 {
				ratio = fmt.Sprintf("%.1fx", float64(sOff.med)/float64(sOn.med))
			}
			rateCol := ""
			if i == 0 {
				rateCol = fmt.Sprintf("%s (%.1fk–%.1fk)", label, lo/1000, hi/1000)
			}
			fmt.Fprintf(&w, "| %s | %s | %s | %s | %s |\n", rateCol, m.name, sOn, sOff, ratio)
			fmt.Fprintf(&raw, "- %s to %s: trips on [%s]; off [%s]\n", label, m.name, rawMS(sOn.raw), rawMS(sOff.raw))
			if i < 2 {
				met = met && sOn.meets()
			}
		}
		verdict := "met"
		if !met {
			verdict = "NOT met"
		}
		fmt.Fprintf(&verdicts, "- %s: %s\n", label, verdict)
		allMet = allMet && met
	}
	fmt.Fprintf(&w, "\nRaw samples, ms, in phase order %s of the tick:\n\n%s", phaseList(phases, tick), raw.String())
	fmt.Fprintf(&w, "\nTargets for trips on (rule in the kernel and first drop ≤ %s median, ≤ %s worst, every flood):\n\n%s", ms(targetMedian), ms(targetWorst), verdicts.String())
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
	if allMet {
		fmt.Fprintf(&w, "Targets met at every rate.\n")
	} else {
		fmt.Fprintf(&w, "Targets NOT met at every rate.\n")
	}
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
