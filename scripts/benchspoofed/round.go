// One round of one binary: the daemon started on the server, its windows
// (idle, spoofed flood, quiet after it) measured, the single-source floods
// timed, and the daemon stopped.

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/floodguard/floodguard/internal/ctxtime"
	"github.com/floodguard/floodguard/internal/humanize"
	"github.com/floodguard/floodguard/internal/lab"
	"github.com/floodguard/floodguard/internal/procstat"
)

// tick is the daemon's tick: the config leaves the shipped 1 s.
const tick = time.Second

// window is the daemon over one stretch of time.
type window struct {
	secs float64
	// cpu is in cores: 1 is one core busy all the window.
	cpu   float64
	ticks ticks
	// slowReads are the read times of its slow_map_read lines.
	slowReads []string
}

// result is one binary's round.
type result struct {
	bin   binary
	round int
	mode  string // the XDP mode it attached in
	idle  window
	flood window
	quiet window
	spoof spoofStats
	// distinct estimates the spoofed flood's distinct sources.
	distinct float64
	// Resident memory, MiB: at the end of the idle window, the peak by the
	// flood's end and by the quiet window's, and at the end.
	rssIdle, peakFlood, peakEnd, rssEnd float64
	// The single-source floods: on the quiet server, during the spoofed
	// flood, right after it.
	quietBan, duringBan, afterBan banTiming
	// afterStart is when the last one started after the spoofed flood's
	// end (-after, or later when the one inside the flood ran past it).
	afterStart time.Duration
	// otherBans are the bans of anything but the single sources.
	otherBans []string
	benign    lab.ClientStats
}

func (r result) summary() string {
	return fmt.Sprintf("CPU idle %.2f%%, flood %.1f%%, quiet %.1f%%; spoofed %d frames at %.0f pps (~%.0f sources); peak RSS %.0f MiB, end %.0f MiB; slow reads %d/%d; bans: quiet %s; during %s; after %s; benign %s",
		100*r.idle.cpu, 100*r.flood.cpu, 100*r.quiet.cpu, r.spoof.sent, r.spoof.rate(), r.distinct, r.peakEnd, r.rssEnd,
		len(r.flood.slowReads), len(r.quiet.slowReads), r.quietBan, r.duringBan, r.afterBan, r.benign)
}

// measurer follows one daemon: CPU and metrics at the edges of a window.
type measurer struct {
	pid     int
	metrics *scraper
	cpu0    float64
	m0      samples
	t0      time.Time
}

func (m *measurer) start() error {
	// Scrape first: serving the scrape is the daemon's CPU, not the
	// window's.
	m0 := m.metrics.scrape()
	c, err := procstat.CPU(m.pid)
	if err != nil {
		return fmt.Errorf("daemon gone: %w", err)
	}
	m.cpu0, m.m0, m.t0 = c, m0, time.Now()
	return nil
}

// end closes the window begun by start and begins the next one.
func (m *measurer) end() (window, error) {
	c, err := procstat.CPU(m.pid)
	if err != nil {
		return window{}, fmt.Errorf("daemon gone: %w", err)
	}
	now, s := time.Now(), m.metrics.scrape()
	secs := now.Sub(m.t0).Seconds()
	w := window{secs: secs, cpu: (c - m.cpu0) / secs, ticks: tickWindow(m.m0, s, secs, tick)}
	m.cpu0, m.m0, m.t0 = c, s, now
	return w, nil
}

// round runs bin once: warm-up, idle window, a single-source flood on the
// quiet server, the spoofed flood with a single-source flood inside it,
// and the quiet window with one more right after the spoofed flood.
func (b *bench) round(ctx context.Context, bin binary, round int) (result, error) {
	res := result{bin: bin, round: round}
	name := fmt.Sprintf("%s%d", bin.label, round)
	dir := filepath.Join(b.lab.Dir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("round directory: %w", err)
	}
	// Each binary and round pins on its own directory of the lab's
	// bpffs: no build adopts another's maps or program.
	config := filepath.Join(dir, "floodguard.yaml")
	if err := os.WriteFile(config, []byte(daemonConfig(b.opt.warmUp, filepath.Join(b.pins, name), dir)), 0o644); err != nil {
		return res, fmt.Errorf("config: %w", err)
	}
	p, err := b.server.Start(bin.path, "run", "--interface", "eth0", "--config", config, "--log-format", "json", "--detach-on-exit")
	if err != nil {
		return res, fmt.Errorf("start floodguard: %w", err)
	}
	defer func() {
		p.Stop(15 * time.Second)
		b.saveLog(p, name+".log")
	}()
	wait := func(event string, limit time.Duration) (lab.Entry, error) {
		var e lab.Entry
		err := ctxtime.Wait(ctx, func() (err error) {
			e, _, err = p.Log.WaitEvent(0, limit, event, nil)
			return err
		})
		if err != nil {
			// Not e: on Ctrl-C the wait may still be writing it.
			return lab.Entry{}, fmt.Errorf("floodguard: %w\n%s", err, humanize.Tail(p.Log.String(), 20))
		}
		return e, nil
	}
	e, err := wait("attached", 20*time.Second)
	if err != nil {
		return res, err
	}
	res.mode = e.Str("mode")
	if _, err := wait("warmed_up", b.opt.warmUp+20*time.Second); err != nil {
		return res, err
	}
	if _, err := wait("metrics_listening", 5*time.Second); err != nil {
		return res, err
	}
	m := &measurer{pid: p.Cmd.Process.Pid, metrics: newScraper(b.server)}
	if err := ctxtime.Sleep(ctx, 2*time.Second); err != nil {
		return res, err
	}
	if err := m.start(); err != nil {
		return res, err
	}
	if err := ctxtime.Sleep(ctx, b.opt.idle); err != nil {
		return res, err
	}
	if res.idle, err = m.end(); err != nil {
		return res, err
	}
	res.rssIdle = procstat.Memory(m.pid).RSS
	// The idle window is bare (issue #14's idle target); the benign
	// client runs from here on, through every flood.
	benign, err := b.client.StartClient(lab.ClientOptions{URL: b.http.URL + "/", Local: clientAddr,
		Rate: clientRate, Timeout: time.Second, MaxDuration: 10 * time.Minute})
	if err != nil {
		return res, fmt.Errorf("benign client: %w", err)
	}
	defer benign.Stop()
	if err := ctxtime.Sleep(ctx, 2*time.Second); err != nil {
		return res, err
	}
	logf("  idle: CPU %.2f%%; single-source flood on the quiet server", 100*res.idle.cpu)
	if res.quietBan, err = b.singleFlood(ctx, p, quietSource); err != nil {
		return res, err
	}
	if err := ctxtime.Sleep(ctx, 2*time.Second); err != nil {
		return res, err
	}

	logf("  spoofed flood for %s", b.opt.flood)
	if err := m.start(); err != nil {
		return res, err
	}
	floodStart := time.Now()
	stopSpoof, err := b.startSpoof(ctx, round)
	if err != nil {
		return res, err
	}
	// The single-source flood inside the spoofed one goes on until it is
	// banned (at most -single), past the spoofed flood's end if need be.
	type banDone struct {
		t   banTiming
		err error
	}
	during := make(chan banDone, 1)
	go func() {
		var d banDone
		if d.err = ctxtime.Sleep(ctx, b.opt.during); d.err == nil {
			d.t, d.err = b.singleFlood(ctx, p, duringSrc)
		}
		during <- d
	}()
	err = ctxtime.Sleep(ctx, time.Until(floodStart.Add(b.opt.flood)))
	spoof, serr := stopSpoof()
	if err != nil {
		return res, err
	}
	if serr != nil {
		return res, serr
	}
	res.spoof, res.distinct = spoof, distinctSources(spoof.sent, b.opt.spoofBits())
	if res.flood, err = m.end(); err != nil {
		return res, fmt.Errorf("during the spoofed flood: %w\n%s", err, humanize.Tail(p.Log.String(), 20))
	}
	floodEnd := time.Now()
	res.peakFlood = procstat.Memory(m.pid).Peak
	logf("  flood: %d frames at %.0f pps, CPU %.1f%%; quiet window of %s", spoof.sent, spoof.rate(), 100*res.flood.cpu, b.opt.quiet)
	d := <-during // bounded: singleFlood stops by itself after -single
	if d.err != nil {
		return res, d.err
	}
	res.duringBan = d.t
	// The next one starts -after the spoofed flood's end, or when the one
	// inside it has ended if that is later.
	if err := ctxtime.Sleep(ctx, time.Until(floodEnd.Add(b.opt.after))); err != nil {
		return res, err
	}
	res.afterStart = time.Since(floodEnd)
	if res.afterBan, err = b.singleFlood(ctx, p, afterSource); err != nil {
		return res, err
	}
	if err := ctxtime.Sleep(ctx, time.Until(floodEnd.Add(b.opt.quiet))); err != nil {
		return res, err
	}
	if res.quiet, err = m.end(); err != nil {
		return res, fmt.Errorf("after the spoofed flood: %w\n%s", err, humanize.Tail(p.Log.String(), 20))
	}
	mem := procstat.Memory(m.pid)
	res.peakEnd, res.rssEnd = mem.Peak, mem.RSS
	res.benign = benign.Stats(floodStart, time.Now())
	res.sortLog(p.Log.Entries(), floodStart, floodEnd)
	return res, nil
}

// sortLog files the slow_map_read lines under the window they came in
// (spoofed flood: from floodStart to floodEnd; quiet: after it) and lists
// the bans of anything but the single sources.
func (r *result) sortLog(es []lab.Entry, floodStart, floodEnd time.Time) {
	singles := map[string]bool{}
	for _, a := range []netip.Addr{quietSource, duringSrc, afterSource} {
		singles[netip.PrefixFrom(a, 32).String()] = true
	}
	for _, e := range es {
		switch {
		case e.Event() == "slow_map_read" && !e.Read.Before(floodStart):
			s := fmt.Sprintf("%s for %.0f sources", e.Str("read_time"), e.Num("sources"))
			if e.Read.Before(floodEnd) {
				r.flood.slowReads = append(r.flood.slowReads, s)
			} else {
				r.quiet.slowReads = append(r.quiet.slowReads, s)
			}
		case e.Event() == "ban" && !singles[e.Str("target")]:
			r.otherBans = append(r.otherBans, e.Str("target"))
		}
	}
}
