package daemon

import (
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/upstream"
)

// startUpstream starts the BGP speaker when the config has an upstream
// section. A speaker that cannot start is an error at start (the config
// asked for it); its sessions connect in the background.
func (d *daemon) startUpstream() error {
	if d.file.Upstream == nil {
		return nil
	}
	up, err := upstream.New(d.file.Upstream, d.log.With().Str("component", "upstream").Logger(), nil)
	if err != nil {
		return err
	}
	d.setUpstream(up)
	d.log.Info().Str("event", "upstream_started").Int("peers", len(d.file.Upstream.BGP.Peers)).
		Float64("escalate_pps", d.file.Upstream.EscalatePPS).Float64("escalate_bps", d.file.Upstream.EscalateBPS).
		Msg("BGP speaker started: escalated attacks are announced upstream")
	return nil
}

// reloadUpstream applies a reloaded upstream section: new peers and
// thresholds, or the speaker started or stopped.
func (d *daemon) reloadUpstream(cfg *upstream.Config) {
	switch {
	case cfg == nil && d.up != nil:
		d.up.Close()
		d.setUpstream(nil)
		d.log.Info().Str("event", "upstream_stopped").Msg("upstream section removed: BGP sessions closed")
	case cfg != nil && d.up != nil:
		d.up.Reconfigure(cfg)
	case cfg != nil:
		d.file.Upstream = cfg
		if err := d.startUpstream(); err != nil {
			d.log.Error().Str("event", "upstream_failed").Err(err).Msg("BGP speaker not started")
		}
	}
}

// setUpstream makes up the upstream stage, for the tick loop and for the
// metrics.
func (d *daemon) setUpstream(up *upstream.Upstream) {
	d.up = up
	d.upNow.Store(up)
}

// upstreamCollector serves the floodguard_upstream_* series of whichever
// upstream stage runs when scraped: registered once with the metrics, so
// a stage a reload starts is scraped too (registering the stage itself at
// start missed it), and one a reload stops is not.
type upstreamCollector struct {
	cur *atomic.Pointer[upstream.Upstream]
}

// Describe implements prometheus.Collector.
func (c upstreamCollector) Describe(ch chan<- *prometheus.Desc) { upstream.DescribeMetrics(ch) }

// Collect implements prometheus.Collector: nothing while no stage runs.
func (c upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	if up := c.cur.Load(); up != nil {
		up.Collect(ch)
	}
}

// observeUpstream hands the tick's rules in force to the upstream stage.
func (d *daemon) observeUpstream(t *detector.Tick) {
	if d.up == nil {
		return
	}
	in := upstream.Input{
		Tick: t, Bans: d.eng.Bans(), Signatures: d.eng.Signatures(),
		Attacking: len(d.eng.Attacks()) > 0,
		Protected: interfaceAddrs(d.file.Daemon.Interface),
	}
	for _, c := range d.file.Bans.Allowlist {
		in.Never = append(in.Never, c.Prefix)
	}
	in.Never = append(in.Never, d.host...)
	for _, p := range d.file.Upstream.BGP.Peers {
		if a, err := netip.ParseAddr(p.Address); err == nil {
			in.Never = append(in.Never, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	d.up.Observe(in)
}

// pagerView is the engine as the pager reads it, with what is announced
// upstream (paging.UpstreamView), so pages say when an incident's rules
// went upstream. Read on the tick goroutine, after the upstream stage.
type pagerView struct {
	*detector.Engine
	d *daemon
}

// AnnouncedUpstream implements paging.UpstreamView.
func (v pagerView) AnnouncedUpstream() int {
	if v.d.up == nil {
		return 0
	}
	return v.d.up.Announced()
}

// interfaceAddrs are the protected interface's global addresses: the
// destination of the rules announced upstream.
func interfaceAddrs(name string) []netip.Addr {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().IsGlobalUnicast() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}
