// Tests of the metrics parser and the tick figures on literal scrapes.

package main

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape is a daemon's metrics text with the tick histogram's buckets
// (a subset of its 15), its ticks and its map read.
func scrape(ticks, under256, under512, under4096, all float64, sum, readSum float64, entries float64) string {
	return `# HELP floodguard_ticks_total Ticks processed: kernel counters read and judged.
# TYPE floodguard_ticks_total counter
floodguard_ticks_total ` + f(ticks) + `
# TYPE floodguard_tick_duration_seconds histogram
floodguard_tick_duration_seconds_bucket{le="0.256"} ` + f(under256) + `
floodguard_tick_duration_seconds_bucket{le="0.512"} ` + f(under512) + `
floodguard_tick_duration_seconds_bucket{le="4.096"} ` + f(under4096) + `
floodguard_tick_duration_seconds_bucket{le="+Inf"} ` + f(all) + `
floodguard_tick_duration_seconds_sum ` + f(sum) + `
floodguard_tick_duration_seconds_count ` + f(all) + `
floodguard_map_read_duration_seconds_sum ` + f(readSum) + `
floodguard_map_read_duration_seconds_count ` + f(all) + `
floodguard_source_map_entries ` + f(entries) + `
floodguard_source_insert_failures_total{interface="eth0"} ` + f(entries/10) + `
floodguard_build_info{goversion="go1.26.8",revision="abc",version="v1 (with } and spaces)"} 1
go_gc_duration_seconds{quantile="0.5"} 1.5e-05 1700000000000
`
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestParseSamples(t *testing.T) {
	s, err := parseSamples(strings.NewReader(scrape(10, 8, 9, 10, 10, 1.5, 0.5, 1234)))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]float64{
		"floodguard_ticks_total":                                                                      10,
		`floodguard_tick_duration_seconds_bucket{le="+Inf"}`:                                          10,
		`floodguard_tick_duration_seconds_bucket{le="0.256"}`:                                         8,
		"floodguard_source_map_entries":                                                               1234,
		`go_gc_duration_seconds{quantile="0.5"}`:                                                      1.5e-05, // the timestamp is not the value
		`floodguard_build_info{goversion="go1.26.8",revision="abc",version="v1 (with } and spaces)"}`: 1,
	} {
		if got, ok := s[k]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if len(s) != 13 {
		t.Errorf("%d samples, want 13: %v", len(s), s)
	}
}

func TestTickWindow(t *testing.T) {
	parse := func(text string) samples {
		s, err := parseSamples(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := parse(scrape(100, 95, 100, 100, 100, 2, 1, 5000))
	// 20 s later: 12 ticks done, 2 of them over 256 ms, one over 512 ms,
	// all under 4.096 s; 6 s of tick work, 3 s of it reading the map.
	b := parse(scrape(112, 105, 111, 112, 112, 8, 4, 1_300_000))
	got := tickWindow(a, b, 20.4, time.Second)
	want := ticks{ok: true, done: 12, due: 20, meanWork: 500 * time.Millisecond, meanRead: 250 * time.Millisecond,
		maxWork: 4.096, over: 2, overAt: 0.256, entries: 1_300_000, insertFailures: 129_500}
	if got != want {
		t.Errorf("tickWindow =\n%+v, want\n%+v", got, want)
	}
	// A tick over the last bucket.
	c := parse(scrape(113, 105, 111, 112, 113, 20, 4, 0))
	if got := tickWindow(b, c, 1, time.Second); !math.IsInf(got.maxWork, 1) || got.over != 1 {
		t.Errorf("tickWindow over the last bucket = %+v, want maxWork +Inf, over 1", got)
	}
	// No tick in the window; a failed scrape.
	if got := tickWindow(b, b, 3, time.Second); got.meanWork != -1 || got.maxWork != -1 || got.done != 0 || got.due != 3 {
		t.Errorf("tickWindow without ticks = %+v", got)
	}
	if got := tickWindow(nil, b, 3, time.Second); got.ok {
		t.Errorf("tickWindow without a scrape = %+v, want !ok", got)
	}
}
