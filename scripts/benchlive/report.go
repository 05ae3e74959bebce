// The report: the per-round table, the medians and the comparison lines,
// with the versions of what was measured.

package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func (b *bench) report(rs []result) string {
	var w strings.Builder
	o := b.opt
	fmt.Fprintf(&w, "floodguard %s vs FastNetMon %s; %s, %d CPUs, kernel %s, %s\n",
		version(o.floodguard, "version"), dpkgVersion("fastnetmon"), time.Now().UTC().Format("2006-01-02T15:04Z"), runtime.NumCPU(), kernel(), "Go "+runtime.Version())
	fmt.Fprintf(&w, "flood: UDP from %v to %v:%d, %d-byte frames, %.0f pps for %s (internal/lab sender); warm-up %s, idle window %s; %d rounds, order alternating\n",
		attackerAddr, serverAddr, sinkPort, o.frameSize, o.rate, o.flood, o.warmUp, o.idle, o.rounds)
	fmt.Fprintf(&w, "FastNetMon: AF_PACKET on the server's eth0, threshold_pps %d for %v/32, average_calculation_time %d s\n\n", fnmThreshold, serverAddr, o.fnmAverage)
	fmt.Fprintf(&w, "Per round:\n\n")
	fmt.Fprintf(&w, "| round | tool | flood offset | flood sent (pps) | at server iface | to detection | to action | to kernel drop | flood reaching server socket | CPU idle | CPU flood | XDP prog flood | RSS | machine CPU flood | benign HTTP during flood |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		xdp := pctOrNA(r.xdpFlood)
		if r.xdpPerPacket > 0 {
			xdp += fmt.Sprintf(" (%d ns/pkt)", r.xdpPerPacket.Nanoseconds())
		}
		fmt.Fprintf(&w, "| %d | %s | %d ms | %d (%.1fk) | %d | %s | %s | %s | %s | %.1f%% | %.1f%% | %s | %.0f MiB | %.0f%% | %d/%d |\n",
			r.round, r.tool, r.offset.Milliseconds(), r.sent, r.sentPPS/1000, r.atServer, ms(r.detect), ms(r.action), ms(r.drop),
			share(r.delivered, r.sent), 100*r.cpuIdle, 100*r.cpuFlood, xdp, r.rssMiB, 100*r.machineFlood, r.benign.Served, r.benign.Requests)
	}
	fmt.Fprintf(&w, "\nMedians (CPU in %% of one core):\n\n")
	fmt.Fprintf(&w, "| tool | flood start to detection | to action | to traffic dropped in the kernel | flood reaching server socket | CPU idle | CPU under flood | + XDP program | RSS | machine CPU under flood | benign client |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	med := map[string]result{}
	for _, tool := range []string{"floodguard", "fastnetmon"} {
		var sel []result
		for _, r := range rs {
			if r.tool == tool {
				sel = append(sel, r)
			}
		}
		if len(sel) == 0 {
			continue
		}
		m := result{tool: tool,
			detect:       medianDur(sel, func(r result) time.Duration { return r.detect }),
			action:       medianDur(sel, func(r result) time.Duration { return r.action }),
			drop:         medianDur(sel, func(r result) time.Duration { return r.drop }),
			cpuIdle:      medianF(sel, func(r result) float64 { return r.cpuIdle }),
			cpuFlood:     medianF(sel, func(r result) float64 { return r.cpuFlood }),
			xdpFlood:     medianF(sel, func(r result) float64 { return r.xdpFlood }),
			machineFlood: medianF(sel, func(r result) float64 { return r.machineFlood }),
			rssMiB:       medianF(sel, func(r result) float64 { return r.rssMiB }),
		}
		var delivered, sent uint64
		var served, reqs int
		hits := map[string]bool{}
		for _, r := range sel {
			delivered += r.delivered
			sent += r.sent
			served += r.benign.Served
			reqs += r.benign.Requests
			hits[r.benignHit] = true
		}
		med[tool] = m
		var hit []string
		for h := range hits {
			hit = append(hit, h)
		}
		slices.Sort(hit)
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %.1f%% | %.1f%% | %s | %.0f MiB | %.0f%% | %d/%d requests served; %s |\n",
			tool, msMed(m.detect, sel, func(r result) time.Duration { return r.detect }), msMed(m.action, sel, func(r result) time.Duration { return r.action }),
			msMed(m.drop, sel, func(r result) time.Duration { return r.drop }), share(delivered, sent),
			100*m.cpuIdle, 100*m.cpuFlood, pctOrNA(m.xdpFlood), m.rssMiB, 100*m.machineFlood, served, reqs, strings.Join(hit, "; "))
	}
	fg, fnm := med["floodguard"], med["fastnetmon"]
	fmt.Fprintf(&w, "\n")
	if fg.drop >= 0 && fnm.detect > 0 {
		fmt.Fprintf(&w, "floodguard dropping vs FastNetMon detecting: %.1fx faster (%s vs %s)\n", float64(fnm.detect)/float64(fg.drop), ms(fg.drop), ms(fnm.detect))
	} else {
		fmt.Fprintf(&w, "floodguard dropping vs FastNetMon detecting: floodguard %s, FastNetMon %s\n", ms(fg.drop), ms(fnm.detect))
	}
	if fg.detect >= 0 && fnm.detect > 0 {
		fmt.Fprintf(&w, "detection: %.1fx faster (%s vs %s)\n", float64(fnm.detect)/float64(fg.detect), ms(fg.detect), ms(fnm.detect))
	}
	fmt.Fprintf(&w, "process CPU, idle: floodguard %.1f%% vs FastNetMon %.1f%%; under flood: floodguard %.1f%% (+ XDP %s) vs FastNetMon %.1f%%\n",
		100*fg.cpuIdle, 100*fnm.cpuIdle, 100*fg.cpuFlood, pctOrNA(fg.xdpFlood), 100*fnm.cpuFlood)
	// Round by round: floodguard's drop against FastNetMon's detection,
	// the two measured at the same flood offset.
	won, rounds := 0, 0
	for _, a := range rs {
		for _, c := range rs {
			if a.tool == "floodguard" && c.tool == "fastnetmon" && a.round == c.round {
				rounds++
				if a.drop >= 0 && (c.detect < 0 || a.drop < c.detect) {
					won++
				}
			}
		}
	}
	fmt.Fprintf(&w, "rounds where floodguard dropped before FastNetMon detected: %d of %d\n", won, rounds)
	for _, r := range rs {
		if r.tool == "fastnetmon" && r.actionWhat != "" {
			fmt.Fprintf(&w, "FastNetMon's action (round %d): %s\n", r.round, r.actionWhat)
			break
		}
	}
	return w.String()
}

func share(a, b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

// medianDur is the median of the rounds where it happened (negative: none did).
func medianDur(rs []result, f func(result) time.Duration) time.Duration {
	var v []time.Duration
	for _, r := range rs {
		if d := f(r); d >= 0 {
			v = append(v, d)
		}
	}
	return median(v)
}

// msMed prints a median with the range and how many rounds it covers.
func msMed(m time.Duration, rs []result, f func(result) time.Duration) string {
	if m < 0 {
		return "none"
	}
	lo, hi, n, sum := time.Duration(1<<62), time.Duration(-1), 0, time.Duration(0)
	for _, r := range rs {
		if d := f(r); d >= 0 {
			lo, hi, n, sum = min(lo, d), max(hi, d), n+1, sum+d
		}
	}
	s := fmt.Sprintf("%d ms (%d–%d, mean %d)", m.Milliseconds(), lo.Milliseconds(), hi.Milliseconds(), (sum / time.Duration(n)).Milliseconds())
	if n < len(rs) {
		s += fmt.Sprintf(", %d of %d rounds", n, len(rs))
	}
	return s
}

func medianF(rs []result, f func(result) float64) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, f(r))
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func version(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func dpkgVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(string(out))
}

func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func ms(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func pctOrNA(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}
