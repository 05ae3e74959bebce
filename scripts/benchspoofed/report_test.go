// Tests of the report's tables on made-up rounds.

package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestFormatResults(t *testing.T) {
	cur, base := binary{label: "current"}, binary{label: "baseline"}
	ban := func(kernel time.Duration) banTiming {
		return banTiming{src: duringSrc, kernel: kernel, logged: kernel + 5*time.Millisecond, pps: 59800}
	}
	tk := ticks{ok: true, done: 19, due: 20, meanWork: 3 * time.Millisecond, meanRead: time.Millisecond, maxWork: 0.008, entries: 1200}
	slowTk := ticks{ok: true, done: 5, due: 20, meanWork: 3 * time.Second, meanRead: 2900 * time.Millisecond, maxWork: math.Inf(1), over: 5, overAt: 0.256, entries: 1_300_000}
	rs := []result{
		{bin: cur, round: 1, mode: "native", idle: window{cpu: 0.001}, flood: window{cpu: 0.04, ticks: tk}, quiet: window{cpu: 0.01, ticks: tk},
			spoof: spoofStats{sent: 3_000_000, end: time.Unix(20, 0), start: time.Unix(0, 0)}, distinct: 3_000_000,
			rssIdle: 40, peakFlood: 60, peakEnd: 61, rssEnd: 55, quietBan: ban(300 * time.Millisecond),
			duringBan: ban(400 * time.Millisecond), afterBan: ban(500 * time.Millisecond), afterStart: time.Second},
		{bin: base, round: 1, mode: "native", idle: window{cpu: 0.001}, flood: window{cpu: 0.6, ticks: slowTk, slowReads: []string{"3.1s for 1300000 sources"}},
			quiet: window{cpu: 0.9, ticks: slowTk}, spoof: spoofStats{sent: 3_000_000, end: time.Unix(20, 0), start: time.Unix(0, 0)}, distinct: 3_000_000,
			rssIdle: 40, peakFlood: 900, peakEnd: 1300, rssEnd: 1300, quietBan: ban(300 * time.Millisecond),
			duringBan: banTiming{src: duringSrc, kernel: -1, logged: -1}, afterBan: ban(1600 * time.Millisecond), afterStart: 5 * time.Second,
			otherBans: []string{"2001:db8::/32"}},
		{bin: cur, round: 2, mode: "native", idle: window{cpu: 0.003}, flood: window{cpu: 0.02, ticks: tk}, quiet: window{cpu: 0.03, ticks: ticks{}},
			rssIdle: 40, peakEnd: 63, rssEnd: 57, quietBan: ban(350 * time.Millisecond),
			duringBan: banTiming{src: duringSrc, kernel: -1, logged: -1}, afterBan: ban(700 * time.Millisecond), afterStart: time.Second},
	}
	out := formatResults(rs)
	for _, want := range []string{
		"| 1 | current | native | 0.10% | 3000000 (150k pps) | 3.0M | 1.2k | 0 / 0 | 4.00% | 1.00% | 40 | 60 | 61 | 55 | no / no | 19/20 | 19/20 | 3.00 ms, max ≤ 8.00 ms | 3.00 ms, max ≤ 8.00 ms | 1.00 ms / 1.00 ms |",
		"| 1 | baseline | native | 0.10% | 3000000 (150k pps) | 3.0M | 1.3M | 0 / 0 | 60.00% | 90.00% | 40 | 900 | 1300 | 1300 | yes: 3.1s for 1300000 sources / no | 5/20, 5 over 256 ms | 5/20, 5 over 256 ms | 3000 ms, max > last bucket |",
		// A round whose metrics could not be read.
		"| 2 | current | native | 0.30% | 0 (0k pps) | 0 | 1.2k | 0 / n/a | 2.00% | 3.00% | 40 | 0 | 63 | 57 | no / no | 19/20 | n/a | 3.00 ms, max ≤ 8.00 ms | n/a | 1.00 ms / n/a |",
		"| 1 | baseline | 300 ms / 305 ms (59.8k pps) | none / none (0.0k pps) | 1600 ms / 1605 ms (59.8k pps), started 5000 ms after | 2001:db8::/32 |",
		// Medians: of two rounds the mean of the two; the quiet window's
		// ticks of round 2 are unknown, so round 1's alone.
		// A ban that came in one round of two says so.
		"| current | 2 | 0.20% | 3.00% | 2.00% | 62 | 56 | 0 of 2 | 95% / 95% | 325 ms | 400 ms (1 of 2 rounds; none in the others) | 600 ms |",
		"- single-source flood during the flood banned within 1.0 s: 400 ms (1 of 2 rounds; none in the others) (MISSED)",
		"- single-source flood right after it banned within 1.0 s: 600 ms (met)",
		"| baseline | 1 | 0.10% | 60.00% | 90.00% | 1300 | 1300 | 1 of 1 | 25% / 25% | 300 ms | none | 1600 ms |",
		"- daemon ≤ 5 % of a core during the flood: 3.00% (met)",
		"- single-source flood during the flood banned within 1.0 s: none (MISSED)",
		"- single-source flood right after it banned within 1.0 s: 1600 ms (MISSED)",
		"- RSS ≤ 200 MiB: peak 1300 MiB (MISSED)",
		"- no slow-read warning: in 0 rounds (met)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks\n%s\nin\n%s", want, out)
		}
	}
	if strings.Index(out, "Issue 14's targets, current") > strings.Index(out, "Issue 14's targets, baseline") {
		t.Error("targets not in the order the binaries first ran")
	}
}
