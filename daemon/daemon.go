package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/floodguard/floodguard/internal/config"

	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/capture"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/atomicfile"
	"github.com/floodguard/floodguard/upstream"
)

// Options are what the command line decides.
type Options struct {
	// ConfigPath is the YAML config file ("" for the defaults).
	ConfigPath string
	// Interface overrides the config's daemon.interface.
	Interface string
	// DetachOnExit removes the program and its rules on a clean stop;
	// by default they stay (rules still expire in the kernel) so traffic
	// stays protected across restarts.
	DetachOnExit bool
	// Reload delivers reload requests (SIGHUP).
	Reload <-chan struct{}
	Log    zerolog.Logger
	// MetricsListen overrides the config's daemon.metrics_listen.
	MetricsListen string
	// Version is the binary's version, for floodguard_build_info.
	Version string
}

// snapshotFile is the detector state's file name in the state directory.
const snapshotFile = "detector.state"

// Run protects the interface until ctx is done.
func Run(ctx context.Context, opt Options) error {
	file, err := config.Load(opt.ConfigPath)
	if err != nil {
		return err
	}
	if opt.Interface != "" {
		file.Daemon.Interface = opt.Interface
	}
	if opt.MetricsListen != "" {
		if err := config.CheckListen(opt.MetricsListen); err != nil {
			return fmt.Errorf("--metrics-listen %w", err)
		}
		file.Daemon.MetricsListen = opt.MetricsListen
	}
	if file.Daemon.Interface == "" {
		return errors.New("no interface: set daemon.interface in the config or pass --interface")
	}
	d := &daemon{opt: opt, file: file, log: opt.Log}
	return d.run(ctx)
}

type daemon struct {
	opt      Options
	file     config.File
	log      zerolog.Logger
	x        *bpf.XDP
	eng      *detector.Engine
	rules    *kernelRules
	lastSnap time.Time
	lastHost time.Time
	host     []netip.Prefix
	// discoverHost finds the host's prefixes (hostPrefixes; tests replace it).
	discoverHost func() ([]netip.Prefix, error)
	// hostFound: a discovery has worked; hostErrs: the causes of failure
	// logged since the last discovery that worked fully.
	hostFound bool
	hostErrs  map[string]bool
	ctl       *control
	started   time.Time
	// warm is set once the warm-up is over and that has been logged.
	warm bool
	// partialRead: reads of the per-source map are partial (the
	// partial_map_read warning was logged); sampledProbation: the
	// probation records are sampled (probation_sampled). Each episode
	// ends after two reads in a row without it (a pass spread over ticks
	// ends with a read that is not partial).
	partialRead      episode
	sampledProbation episode
	// tripLevels is syncTripLevels' reused buffer.
	tripLevels []bpf.SourceTripLevel
	// metrics is nil unless daemon.metrics_listen is set.
	metrics *metrics
	pager   *pager
	// up is the upstream BGP stage (nil without an upstream section);
	// upNow is the same for the metrics server's goroutines (setUpstream
	// sets both).
	up    *upstream.Upstream
	upNow atomic.Pointer[upstream.Upstream]
}

func (d *daemon) run(ctx context.Context) error {
	dc := &d.file.Daemon
	// Single instance before anything is touched: a second daemon must
	// not load, adopt or change the first one's program and rules.
	lock, err := lockInstance(dc.RuntimeDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	mode, _ := config.AttachMode(dc.AttachMode)
	x, err := bpf.Load(bpf.Options{Interface: dc.Interface, Mode: mode, PinDir: dc.PinDir, MaxSources: dc.MaxSources, MaxRules: dc.MaxRules, AdmitAfter: dc.AdmitAfter, AdmitBudget: dc.AdmitBudgetOption()})
	if err != nil {
		return fmt.Errorf("attach to %s: %w", dc.Interface, err)
	}
	d.x = x
	if fb := x.Fallback(); fb != nil {
		d.log.Warn().Str("event", "generic_mode").Str("interface", dc.Interface).Err(fb).
			Msg("native XDP unavailable; running in generic mode (slower)")
	}
	if sr := x.StatsReplaced(); sr != nil {
		d.log.Warn().Str("event", "stats_map_replaced").Str("interface", dc.Interface).Err(sr).
			Msg("pinned global counters left by another floodguard build replaced; kernel counters restart from zero (rules kept)")
	}
	d.log.Info().Str("event", "attached").Str("interface", dc.Interface).Str("mode", x.Mode().String()).
		Bool("adopted", x.Adopted()).Uint32("max_sources", x.MaxSources()).Msg("XDP program attached")

	d.pruneExpiredRules()
	d.rules = &kernelRules{x: x}
	d.eng, err = detector.New(d.file.Config, d.rules)
	if err != nil {
		d.close(false)
		return err
	}
	// Snapshots and the open incident live here (systemd's
	// StateDirectory creates it too); without it they are not saved, and
	// each attempt says so.
	if err := os.MkdirAll(dc.StateDir, 0o700); err != nil {
		d.log.Error().Str("event", "snapshot_failed").Err(err).Msg("create the state directory")
	}
	// The host's addresses first: the snapshot's bans and the kernel's
	// rules are checked against them as they come in.
	d.refreshHost(time.Now())
	d.restore()
	d.adoptKernelRules()
	d.started = time.Now()
	d.ctl, err = listenControl(d, dc.RuntimeDir)
	if err != nil {
		d.close(false)
		return err
	}
	defer d.ctl.close()
	if d.pager, err = newPager(&d.file, pagerView{d.eng, d}, d.log); err != nil {
		d.close(false)
		return err
	}
	defer d.pager.close()
	if err := d.startUpstream(); err != nil {
		d.close(false)
		return err
	}
	defer func() {
		if d.up != nil {
			d.up.Close() // sessions close; the local rules stay
		}
	}()

	trips, err := d.startTrips()
	if err != nil {
		d.close(false)
		return err
	}
	defer trips.close()
	d.syncTripLevels()
	live, err := capture.NewLive(ctx, capture.LiveMapsOf(x), capture.LiveOptions{
		Tick: d.file.Tick.D(), IdleTimeout: dc.SourceIdleTimeout.D(),
		Trips: trips.ch, OnTrip: d.onTrip,
	})
	if err != nil {
		d.close(false)
		return err
	}
	defer live.Close()
	if err := d.startMetrics(); err != nil {
		d.close(false)
		return err
	}
	defer d.metrics.stop()

	if ok, err := sdnotify.SdNotify(false, sdnotify.SdNotifyReady); err != nil {
		d.log.Warn().Err(err).Msg("sd_notify READY failed")
	} else if ok {
		d.log.Debug().Msg("told systemd we are ready")
	}
	wd, _ := sdnotify.SdWatchdogEnabled(false)
	d.lastSnap = time.Now()

	// The live pipeline: the kernel's per-tick counts, the detector (its
	// rules go to the kernel), then the observers in order.
	runErr := detector.Run(ctx, live, d.eng,
		detector.ObserverFunc(func(t *detector.Tick, evs []detector.Event) error {
			d.logEvents(t, evs, live)
			return nil
		}),
		// Upstream before the pager: pages say what went upstream.
		detector.ObserverFunc(func(t *detector.Tick, _ []detector.Event) error {
			d.observeUpstream(t)
			return nil
		}),
		d.pager,
		detector.ObserverFunc(func(t *detector.Tick, evs []detector.Event) error {
			d.logWarm()
			d.ctl.setStatus(d.status(t))
			d.ctl.publishTop(t)
			d.observeTick(t, evs, live) // metrics
			d.ctl.serve()
			return nil
		}),
		detector.ObserverFunc(func(*detector.Tick, []detector.Event) error {
			d.syncTripLevels()
			d.housekeep(wd > 0)
			return nil
		}),
	)
	_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyStopping)
	trips.close()
	d.metrics.stop() // before the maps it reads are closed
	d.snapshot()
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	if err := d.close(d.opt.DetachOnExit); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// housekeep runs after every tick: the watchdog, a pending reload, the
// host's addresses and the snapshot when they are due.
func (d *daemon) housekeep(watchdog bool) {
	now := time.Now()
	if watchdog {
		_, _ = sdnotify.SdNotify(false, sdnotify.SdNotifyWatchdog)
	}
	select {
	case <-d.opt.Reload:
		d.reload()
	default:
	}
	if now.Sub(d.lastHost) >= d.file.Daemon.HostRefresh.D() {
		d.refreshHost(now)
	}
	if now.Sub(d.lastSnap) >= d.file.Daemon.SnapshotInterval.D() {
		d.snapshot()
	}
}

// close leaves the program and its rules in the kernel (they keep dropping
// and expire by themselves), or removes them with detach.
func (d *daemon) close(detach bool) error {
	if detach {
		if err := d.x.Detach(); err != nil {
			return fmt.Errorf("detach: %w", err)
		}
		d.log.Info().Str("event", "detached").Msg("XDP program and rules removed")
		return nil
	}
	d.log.Info().Str("event", "stopped").Msg("stopped; XDP program and rules left in place")
	return d.x.Close()
}

// restore loads the detector snapshot; a missing or bad one is reported and
// ignored.
func (d *daemon) restore() {
	path := filepath.Join(d.file.Daemon.StateDir, snapshotFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.log.Info().Str("event", "no_snapshot").Str("path", path).Msg("no detector snapshot: learning from scratch")
		return
	case err != nil:
		d.log.Warn().Str("event", "snapshot_unreadable").Str("path", path).Err(err).Msg("ignoring detector snapshot")
		return
	}
	if err := d.eng.RestoreState(data); err != nil {
		d.log.Warn().Str("event", "snapshot_bad").Str("path", path).Err(err).Msg("ignoring detector snapshot")
		return
	}
	s := d.eng.Stats()
	d.log.Info().Str("event", "snapshot_restored").Str("path", path).Int("keys", s.TrackedKeys).
		Int("bans", s.ActiveBans).Msg("detector state restored")
}

// pruneExpiredRules removes the rules that expired in the kernel while no
// daemon ran. An expired rule no longer drops, but an expired prefix still
// wins the longest-prefix lookup over a shorter live one, which then does
// not drop what it covers; and with the snapshot refused or lost, nothing
// else would ever remove it.
func (d *daemon) pruneExpiredRules() {
	n, err := d.x.PruneExpiredRules()
	if err != nil {
		d.log.Warn().Str("event", "prune_failed").Err(err).Msg("remove expired kernel rules")
	}
	if n > 0 {
		d.log.Info().Str("event", "expired_rules_pruned").Int("rules", n).Msg("expired kernel rules removed")
	}
}

// adoptKernelRules hands the engine any live rule it does not know, and
// removes those over the allowlist or the host's own addresses (the
// snapshot's bans over them are lifted at the first tick).
func (d *daemon) adoptKernelRules() {
	rules, err := d.x.Rules()
	if err != nil {
		d.log.Warn().Err(err).Msg("list kernel rules")
		return
	}
	now := time.Now()
	known := map[netip.Prefix]bool{}
	for _, b := range d.eng.Bans() {
		known[b.Prefix] = true
	}
	inKernel := map[netip.Prefix]bool{}
	for _, r := range rules {
		if r.TimeLeft > 0 {
			inKernel[r.Prefix] = true
		}
	}
	// A ban the snapshot remembers but the kernel no longer holds was
	// unblocked by hand while the daemon was down: honour it as an
	// operator's unblock.
	for _, b := range d.eng.Bans() {
		if !b.DryRun && !inKernel[b.Prefix] && b.Expires.After(now) {
			if err := d.eng.ManualUnban(b.Prefix, now); err == nil {
				d.log.Info().Str("event", "unblocked_while_down").Str("target", b.Prefix.String()).Msg("ban removed while floodguard was down: not reinstalled")
			}
		}
	}
	for _, r := range rules {
		if r.TimeLeft <= 0 || known[r.Prefix] {
			continue
		}
		scope := detector.ScopePrefix
		if r.Exact() {
			scope = detector.ScopeSource
		}
		err := d.eng.AdoptBan(detector.Rule{Prefix: r.Prefix, TTL: r.TimeLeft, Expires: now.Add(r.TimeLeft)}, scope)
		if errors.Is(err, detector.ErrAllowlisted) {
			ev := d.log.Warn()
			if rerr := d.rules.Unban(r.Prefix); rerr != nil {
				ev = d.log.Error().AnErr("remove_error", rerr)
			}
			ev.Str("event", "rule_not_adopted").Str("target", r.Prefix.String()).Err(err).
				Msg("kernel rule over the allowlist or the host's own addresses removed")
			continue
		}
		d.log.Info().Str("event", "rule_adopted").Str("target", r.Prefix.String()).Str("time_left", r.TimeLeft.Round(time.Second).String()).Msg("adopted kernel rule")
	}
	d.adoptKernelSignatures(now)
}

// adoptKernelSignatures hands the engine the signature rules an earlier
// run left in the kernel, still in force, so they are renewed or lifted
// as their traffic goes on or stops rather than left to expire blind.
func (d *daemon) adoptKernelSignatures(now time.Time) {
	sigs, err := d.x.Signatures()
	if err != nil {
		d.log.Warn().Err(err).Msg("list kernel signature rules")
		return
	}
	for _, s := range sigs {
		if s.TimeLeft <= 0 {
			continue
		}
		d.eng.AdoptSignature(detector.SignatureRule{Match: s.Match, RatePPS: s.RatePPS, TTL: s.TimeLeft, Expires: now.Add(s.TimeLeft)})
		d.log.Info().Str("event", "rule_adopted").Str("scope", "signature").Str("target", s.Match.String()).
			Str("time_left", s.TimeLeft.Round(time.Second).String()).Msg("adopted kernel signature rule")
	}
}

// logWarm says once when the warm-up is over (at the first tick if the
// restored detector had finished it): from then on anomalies are judged
// against learnt baselines, not only the ceilings.
func (d *daemon) logWarm() {
	if d.warm {
		return
	}
	tick, warm := d.file.Tick.D(), d.file.WarmUp.D()
	st := d.eng.Stats()
	if st.Ticks*uint64(tick) < uint64(warm) {
		return
	}
	d.warm = true
	d.log.Info().Str("event", "warmed_up").Float64("baseline", round(d.eng.AggregateBaseline())).
		Int("sources", st.TrackedSources).Uint64("ticks", st.Ticks).
		Msg("warm-up over: baselines learnt, judging traffic against them")
}

// reload re-reads the config file; a bad one is logged and the old one kept.
func (d *daemon) reload() {
	f, err := config.Load(d.opt.ConfigPath)
	if err == nil {
		err = d.eng.Reload(f.Config)
	}
	if err != nil {
		d.log.Error().Str("event", "reload_failed").Err(err).Msg("config rejected; running on the previous one")
		return
	}
	if d.opt.MetricsListen != "" {
		f.Daemon.MetricsListen = d.opt.MetricsListen // the flag still wins
	}
	if err := d.reloadMetrics(f.Daemon.MetricsListen); err != nil {
		d.log.Error().Str("event", "metrics_reload_failed").Err(err).Msg("metrics_listen rejected; metrics keep the previous address")
		f.Daemon.MetricsListen = d.file.Daemon.MetricsListen
	}
	if err := d.pager.reconfigure(&f); err != nil {
		d.log.Error().Str("event", "paging_reload_failed").Err(err).Msg("paging settings rejected; paging keeps the previous ones")
		f.Paging = d.file.Paging
	}
	f.Daemon.Interface = d.file.Daemon.Interface
	d.reloadUpstream(f.Upstream)
	d.file = f
	d.log.Info().Str("event", "reloaded").Str("config", d.opt.ConfigPath).Msg("config reloaded")
}

// snapshot saves the detector state atomically: write a temporary file,
// fsync it, rename it over the old one, fsync the directory.
func (d *daemon) snapshot() {
	d.lastSnap = time.Now()
	if err := atomicfile.Write(filepath.Join(d.file.Daemon.StateDir, snapshotFile), d.eng.MarshalState(), 0o600); err != nil {
		d.log.Error().Str("event", "snapshot_failed").Err(err).Msg("save detector state")
	}
	if err := d.pager.save(); err != nil {
		d.log.Error().Str("event", "snapshot_failed").Err(err).Msg("save the open incident")
	}
}

// status summarises the daemon for `floodguard status`.
func (d *daemon) status(t *detector.Tick) Status {
	st := d.eng.Stats()
	secs := t.Length.Seconds()
	if secs <= 0 {
		secs = d.file.Tick.D().Seconds()
	}
	s := Status{
		Interface: d.file.Daemon.Interface, Mode: d.x.Mode().String(), Adopted: d.x.Adopted(),
		Started: d.started, Ticks: st.Ticks, DryRun: d.file.Bans.DryRun,
		TrackedSources: st.TrackedSources, ActiveBans: st.ActiveBans,
		PPS:         float64(t.Total.TotalPackets()) / secs,
		DroppedPPS:  float64(t.Total.DroppedPackets) / secs,
		BaselinePPS: d.eng.AggregateBaseline(),
		Attacks:     attackNames(d.eng.Attacks()),
		LastTick:    t.End(),
	}
	if d.up != nil {
		us := d.up.Status()
		s.Upstream = &us
	}
	return s
}

// logEvents writes each decision with fields an operator can filter on.
func (d *daemon) logEvents(t *detector.Tick, evs []detector.Event, live *capture.Live) {
	for i := range evs {
		ev := &evs[i]
		lvl := zerolog.InfoLevel
		if ev.Kind == detector.AttackStart || ev.Kind == detector.Ban {
			lvl = zerolog.WarnLevel
		}
		e := d.log.WithLevel(lvl).Str("event", ev.Kind.String()).Str("scope", ev.Scope.String()).
			Str("tick_end", ev.Time.UTC().Format(time.RFC3339Nano)).
			Str("target", ev.Target).Float64("pps", round(ev.PPS)).Float64("bps", round(ev.BPS)).
			Float64("baseline", round(ev.BaselinePPS))
		if ev.Class != "" {
			e = e.Str("class", ev.Class)
		}
		if ev.Kind == detector.Ban {
			e = e.Str("ttl", ev.TTL.String()).Bool("dry_run", ev.DryRun).Float64("rule_write_ms", float64(d.rules.lastWrite.Microseconds())/1000)
		}
		e.Msg(ev.Reason)
	}
	if t.SourcesLost > 0 {
		d.log.Warn().Str("event", "sources_lost").Uint64("packets", t.SourcesLost).
			Msg("per-source map full: per-source view partial this tick")
	}
	// A read of the per-source map stops at half a tick and goes on at
	// the next (capture.LiveOptions.ReadBudget): the per-source view is
	// then spread over ticks. Say so once per episode, and when it ends.
	ls := live.Stats()
	switch d.partialRead.step(ls.Partial) {
	case episodeStarted:
		d.log.Warn().Str("event", "partial_map_read").Str("read_time", ls.LastReadTime.String()).Int("sources_read", ls.Sources).
			Msg("the kernel's per-source map takes more than half a tick to read: reading it over several ticks (per-source detection slower; totals, signatures and rules unaffected); consider a smaller daemon.max_sources or a longer tick")
	case episodeEnded:
		d.log.Info().Str("event", "partial_map_read_end").Uint64("partial_reads", ls.PartialReads).
			Msg("the per-source map is read within half a tick again")
	}
	// Past the live source's bound on records of sources on probation
	// (a spoofed flood on a host with many CPUs), a sample stands for
	// them in their prefixes.
	switch d.sampledProbation.step(ls.Sampled) {
	case episodeStarted:
		d.log.Warn().Str("event", "probation_sampled").Int("records", ls.ProbationRecords).Int("kept", ls.ProbationKept).
			Msg("more sources on probation than the detector takes one by one in a tick (a spoofed flood): a sample of them, scaled up, is counted in their prefixes (prefix rates estimated; totals, sources, signatures and rules unaffected)")
	case episodeEnded:
		d.log.Info().Str("event", "probation_sampled_end").Uint64("sampled_ticks", ls.SampledTicks).
			Msg("every source on probation is counted in its prefixes again")
	}
}

// episode follows a condition of the reads that the log reports once when
// it starts and once when it is over: after two reads in a row without it.
type episode struct {
	on    bool
	clear int // reads in a row without the condition
}

type episodeChange int

const (
	episodeSame episodeChange = iota
	episodeStarted
	episodeEnded
)

// step records whether the condition held in this read.
func (e *episode) step(now bool) episodeChange {
	if now {
		e.clear = 0
	} else {
		e.clear++
	}
	switch {
	case now && !e.on:
		e.on = true
		return episodeStarted
	case e.on && e.clear >= 2:
		e.on = false
		return episodeEnded
	}
	return episodeSame
}

func round(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// attackNames is how the control socket shows attacks: "aggregate udp",
// "source 198.18.0.7".
func attackNames(as []detector.Attack) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
