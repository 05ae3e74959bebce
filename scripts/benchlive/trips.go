// -compare-trips (issue 17): for each rate and each of -phases phases of
// the tick, one floodguard with trips on (daemon.trips: true) and one with
// them off (decisions at the tick's end only), the same binary, taking
// turns; each a fresh daemon, warmed up with the benign client running,
// flooded from one source with the flood's first frame at that phase of
// its tick. The tick is read off the daemon's own admission epoch, which
// it advances at the start of every tick's read (bpf.XDP.Epoch, a load
// from the pinned, memory-mapped map), so the phase is the daemon's, not a
// guess. FastNetMon does not run in this mode.

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	fgbpf "github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/internal/benchout"
	"github.com/floodguard/floodguard/internal/ctxtime"
	"github.com/floodguard/floodguard/internal/lab"
)

const (
	// tick is the daemon's: the config leaves the shipped 1 s.
	tick = time.Second
	// labMaxRate is the fastest rate internal/lab's sender is trusted
	// with here (it reaches 40-50k pps); faster floods use trafgen.
	labMaxRate = 40000
	// epochEvery is how often the daemon's epoch is read: the resolution
	// of the measured phase.
	epochEvery = time.Millisecond
	// tripGrace is how long after a flood a late drop or ban still counts.
	tripGrace = time.Second
)

func runTrips(ctx context.Context, o options) error {
	b := &bench{opt: o}
	defer b.close()
	if err := b.setup(); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	phases := tripPhases(o.phases)
	var ss []tripSample
	n := 0
	for _, rate := range o.rates {
		for _, phase := range phases {
			// Take turns, so that neither mode always runs on a machine
			// the other has just warmed.
			order := []bool{true, false}
			if n%2 == 1 {
				slices.Reverse(order)
			}
			n++
			for _, trips := range order {
				if err := ctxtime.Sleep(ctx, time.Second); err != nil { // let the machine settle
					return err
				}
				logf("%.0fk pps, phase %.0f ms, trips %s", rate/1000, phase*float64(tick.Milliseconds()), onOff(trips))
				s, err := b.tripRound(ctx, fmt.Sprintf("trips%d-%s", n, onOff(trips)), rate, phase, trips)
				if err != nil {
					return fmt.Errorf("%.0f pps, phase %.2f, trips %s: %w", rate, phase, onOff(trips), err)
				}
				logf("  %s: %d frames at %.1fk pps, at %s in the tick; rule in the kernel %s, first drop %s, ban line %s (stamped %s); benign %s; other bans %v",
					s.sender, s.sent, s.pps/1000, ms(s.at), ms(s.rule), ms(s.drop), ms(s.ban), ms(s.stamped), s.benign, s.others)
				ss = append(ss, s)
			}
		}
	}
	header := fmt.Sprintf("floodguard %s, trips on vs off (daemon.trips, same binary, taking turns); %s, %d CPUs, kernel %s, Go %s\n"+
		"flood: UDP from %v to %v:%d, %d-byte frames, %s each, its first frame at %d phases of the daemon's 1 s tick; internal/lab's sender up to %dk pps, trafgen (netsniff-ng) above; a fresh daemon per flood, warm-up %s, the benign client (%v, %d HTTP requests/s) running all along\n",
		version(o.floodguard, "version"), time.Now().UTC().Format("2006-01-02T15:04Z"), runtime.NumCPU(), kernel(), runtime.Version(),
		attackerAddr, serverAddr, sinkPort, o.frameSize, o.tripFlood, o.phases, labMaxRate/1000, o.warmUp, clientAddr, clientRate)
	if slices.Max(o.rates) > labMaxRate {
		header += "trafgen's rate (-b) is an average per second: it sends each second's frames back to back, as fast as the path takes them (~270k pps on a bare veth pair here), then waits for the next second; its floods are bursts, so the time to a trip (the level's frames) is shorter than at a paced rate, and a tick-end rule that lands after a second's burst drops nothing until the next one (first drop up to ~1 s after the rule)\n"
	}
	report := formatTrips(header, o.rates, phases, tick, ss)
	fmt.Print(report)
	return b.writeReport(report)
}

// tripRound runs one flood against a fresh daemon.
func (b *bench) tripRound(ctx context.Context, name string, rate, phase float64, trips bool) (tripSample, error) {
	s := tripSample{rate: rate, phase: phase, trips: trips, sender: "lab", at: -1, rule: -1, drop: -1, ban: -1, stamped: -1}
	if rate > labMaxRate {
		s.sender = "trafgen"
	}
	// The benign client runs from before the daemon starts, so that it
	// is learnt in the warm-up (a client stops by itself after
	// MaxDuration).
	benign, err := b.client.StartClient(lab.ClientOptions{URL: b.http.URL + "/", Local: clientAddr,
		Rate: clientRate, Timeout: time.Second, MaxDuration: 5 * time.Minute})
	if err != nil {
		return s, err
	}
	defer benign.Stop()
	p, pinDir, stop, err := b.startFloodguard(ctx, name, fmt.Sprintf("  trips: %t\n", trips))
	if err != nil {
		return s, err
	}
	defer stop()
	x, err := fgbpf.OpenPinned(pinDir)
	if err != nil {
		return s, err
	}
	defer x.Close()

	// The daemon's tick reads, from now until the flood's end.
	reads := followEpoch(x)
	var readTimes []time.Time
	defer func() {
		if readTimes == nil {
			reads()
		}
	}()
	boundary, err := waitRead(ctx, x, 3*tick)
	if err != nil {
		return s, err
	}
	// The flood's first frame is due phase into a tick, at least 300 ms
	// from now; trafgen is started early by how long it took last time
	// to send its first frame.
	lead := time.Duration(0)
	if s.sender == "trafgen" {
		lead = b.trafgenLead
	}
	due := nextStart(boundary, time.Now().Add(300*time.Millisecond+lead), tick, phase)
	if err := ctxtime.Sleep(ctx, time.Until(due.Add(-lead))); err != nil {
		return s, err
	}
	mark := p.Log.Len()
	d0, err := x.ReadStats()
	if err != nil {
		return s, err
	}
	var (
		drop, rule time.Time
		wg         sync.WaitGroup
	)
	done := make(chan struct{})
	limit := 2*b.opt.tripFlood + tripGrace + 5*time.Second
	wg.Add(2)
	go func() { // the first frame dropped by XDP, from the pinned counters
		defer wg.Done()
		pollUntil(ctx, done, limit, func() bool {
			if st, err := x.ReadStats(); err == nil && st.DroppedPackets > d0.DroppedPackets {
				drop = time.Now()
				return true
			}
			return false
		})
	}()
	go func() { // the flood source's rule, from the pinned rule maps
		defer wg.Done()
		pollUntil(ctx, done, limit, func() bool {
			rules, err := x.Rules()
			for _, r := range rules {
				if err == nil && r.Prefix.Contains(attackerAddr) {
					rule = time.Now()
					return true
				}
			}
			return false
		})
	}()
	start, end, ferr := b.tripFlood(ctx, x, &s)
	if ferr == nil {
		ferr = ctxtime.Sleep(ctx, tripGrace)
	}
	close(done)
	wg.Wait()
	readTimes = reads()
	if ferr != nil {
		return s, ferr
	}
	if s.sent > 0 && end.After(start) {
		s.pps = float64(s.sent) / end.Sub(start).Seconds()
	}
	s.at = phaseOf(start, readTimes)
	s.drop, s.rule = since(start, drop), since(start, rule)
	target := netip.PrefixFrom(attackerAddr, 32).String()
	for _, e := range p.Log.Entries()[mark:] {
		if e.Event() == "ban" && e.Str("target") == target {
			s.ban = since(start, e.Read)
			if at, ok := e.TimeField("tick_end"); ok {
				s.stamped = at.Sub(start)
			}
			break
		}
	}
	for _, e := range p.Log.Events("ban") {
		if e.Str("target") != target {
			s.others = append(s.others, e.Str("target"))
		}
	}
	s.benign = benign.Stats(start, end.Add(time.Second))
	return s, nil
}

// tripFlood sends one flood of -trip-flood at s.rate with s.sender and
// returns when its first frame went (lab) or reached the server's XDP
// program (trafgen) and when it ended; it sets s.sent.
func (b *bench) tripFlood(ctx context.Context, x *fgbpf.XDP, s *tripSample) (start, end time.Time, err error) {
	if s.sender == "lab" {
		st, err := b.sender.Flood(ctx, lab.Flood{Frames: b.frames, Rate: s.rate, Duration: b.opt.tripFlood})
		s.sent = st.Sent
		return st.Start, st.End, err
	}
	st0, err := x.ReadStats()
	if err != nil {
		return start, end, err
	}
	tg, err := b.attacker.StartTrafgen(lab.TrafgenOptions{Bin: b.opt.trafgen, Dev: "eth0", Config: b.trafgenCfg, Rate: s.rate})
	if err != nil {
		return start, end, err
	}
	// trafgen says nothing of when it began: the flood's first frame is
	// when the XDP program first meets a new source (admitted, or on
	// probation); the lab's only other source, the benign client, has
	// been known since the warm-up. (The server's socket sees it later,
	// by up to some milliseconds under load.)
	pollEveryUntil(ctx, nil, epochEvery, 3*time.Second, func() bool {
		st, err := x.ReadStats()
		if err == nil && st.Admitted+st.ProbationPackets > st0.Admitted+st0.ProbationPackets {
			start = time.Now()
			return true
		}
		return false
	})
	if start.IsZero() {
		_, _ = tg.Stop()
		return start, end, errors.New("trafgen: the XDP program saw no new source within 3 s")
	}
	b.trafgenLead = start.Sub(tg.Started)
	serr := ctxtime.Sleep(ctx, time.Until(start.Add(b.opt.tripFlood)))
	end = time.Now()
	s.sent, err = tg.Stop()
	if serr != nil {
		return start, end, serr
	}
	return start, end, err
}

// followEpoch reads the daemon's admission epoch every epochEvery until the
// returned function is called, which returns when it changed: the daemon's
// tick reads.
func followEpoch(x *fgbpf.XDP) func() []time.Time {
	done := make(chan struct{})
	var reads []time.Time
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		last := x.Epoch()
		// Bounded by its caller, and by a minute in any case.
		for limit := time.Now().Add(time.Minute); time.Now().Before(limit); {
			select {
			case <-done:
				return
			case <-time.After(epochEvery):
			}
			if e := x.Epoch(); e != last {
				last = e
				reads = append(reads, time.Now())
			}
		}
	}()
	return func() []time.Time {
		close(done)
		wg.Wait()
		if reads == nil {
			return []time.Time{}
		}
		return reads
	}
}

// waitRead waits, at most limit, for the daemon's next tick read.
func waitRead(ctx context.Context, x *fgbpf.XDP, limit time.Duration) (time.Time, error) {
	e0 := x.Epoch()
	var at time.Time
	pollEveryUntil(ctx, nil, epochEvery, limit, func() bool {
		if x.Epoch() != e0 {
			at = time.Now()
			return true
		}
		return false
	})
	if at.IsZero() {
		return at, fmt.Errorf("the daemon did not read its maps within %v (epoch stuck at %d)", limit, e0)
	}
	return at, nil
}

// writeReport writes the report to -out, and the logs next to it with
// -keep, named after the report ("bench-trips.trips1-on.log").
func (b *bench) writeReport(report string) error {
	var logs []string
	if b.opt.keepFiles {
		logs = b.logs
	}
	prefix := strings.TrimSuffix(filepath.Base(b.opt.out), filepath.Ext(b.opt.out)) + "."
	if err := benchout.Write(b.opt.out, report, prefix, logs); err != nil {
		return err
	}
	if b.opt.out != "" {
		logf("report written to %s", b.opt.out)
	}
	return nil
}
