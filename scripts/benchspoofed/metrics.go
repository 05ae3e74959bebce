// The daemon's tick punctuality, from its Prometheus metrics scraped at
// the edges of each window: ticks done against ticks due (its ticker drops
// the ticks a slow tick overran), the mean and the bound on the longest
// tick's work and map read, and the per-source map's entries.

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

// samples are the metrics of one scrape, keyed by name and labels as
// written: `floodguard_ticks_total`, `floodguard_tick_duration_seconds_bucket{le="0.5"}`.
type samples map[string]float64

// parseSamples reads the Prometheus text format, keeping every sample
// line; comments and lines that do not end in a number are skipped.
func parseSamples(r io.Reader) (samples, error) {
	s := samples{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// NAME{LABELS} VALUE [TIMESTAMP]: label values may hold spaces
		// but no unescaped '}', so the name ends at the last '}' if any.
		var name, value string
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			name, value = line[:i+1], line[i+1:]
		} else {
			name, value, _ = strings.Cut(line, " ")
		}
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		s[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return s, nil
}

// ticks is the daemon's tick punctuality over a window.
type ticks struct {
	// ok is false when the metrics could not be read.
	ok bool
	// done and due are the ticks processed and the whole ticks in the
	// window.
	done, due float64
	// meanWork and meanRead are a tick's mean processing time and map
	// read time (negative: no tick).
	meanWork, meanRead time.Duration
	// maxWork bounds the longest tick's work in seconds: the smallest
	// histogram bucket holding them all (+Inf past the last; negative: no
	// tick).
	maxWork float64
	// over counts ticks whose work took longer than overAt seconds, the
	// largest bucket bound at most half a tick.
	over, overAt float64
	// entries is the per-source map's size at the window's end.
	entries float64
	// insertFailures counts frames whose source found the per-source map
	// full: a single source arriving then is not tracked by source.
	insertFailures float64
}

const (
	tickHist = "floodguard_tick_duration_seconds"
	readHist = "floodguard_map_read_duration_seconds"
)

// tickWindow compares two scrapes secs seconds apart, for a tick of tick.
func tickWindow(a, b samples, secs float64, tick time.Duration) ticks {
	if a == nil || b == nil {
		return ticks{}
	}
	d := func(k string) float64 { return b[k] - a[k] }
	t := ticks{ok: true, done: d("floodguard_ticks_total"), due: math.Floor(secs / tick.Seconds()),
		entries: b["floodguard_source_map_entries"], maxWork: -1}
	mean := func(h string) time.Duration {
		if n := d(h + "_count"); n > 0 {
			return time.Duration(d(h+"_sum") / n * float64(time.Second))
		}
		return -1
	}
	t.meanWork, t.meanRead = mean(tickHist), mean(readHist)
	n := d(tickHist + "_count")
	type bucket struct{ le, count float64 }
	var bs []bucket
	prefix := tickHist + `_bucket{le="`
	for k := range b {
		if v, ok := strings.CutPrefix(k, prefix); ok {
			le, err := strconv.ParseFloat(strings.TrimSuffix(v, `"}`), 64)
			if err == nil {
				bs = append(bs, bucket{le, d(k)})
			}
		}
	}
	for k := range b {
		if strings.HasPrefix(k, "floodguard_source_insert_failures_total") {
			t.insertFailures += d(k)
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	half := tick.Seconds() / 2
	for _, bk := range bs {
		if bk.le <= half {
			t.over, t.overAt = n-bk.count, bk.le
		}
		if t.maxWork < 0 && n > 0 && bk.count >= n {
			t.maxWork = bk.le
		}
	}
	return t
}

// scraper reads a daemon's metrics inside the server's namespace, where
// it listens on loopback.
type scraper struct{ http *http.Client }

func newScraper(ns *lab.Netns) *scraper {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.DialContext(ctx, &net.Dialer{}, network, addr)
		},
	}
	return &scraper{http: &http.Client{Transport: tr, Timeout: 3 * time.Second}}
}

// scrape returns the metrics, or nil (a window without tick figures) if
// the daemon does not answer in time.
func (s *scraper) scrape() samples {
	resp, err := s.http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		logf("  metrics: %v", err)
		return nil
	}
	defer resp.Body.Close()
	m, err := parseSamples(resp.Body)
	if err != nil {
		logf("  metrics: %v", err)
		return nil
	}
	return m
}
