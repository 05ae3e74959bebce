package upstream

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Upstream is the daemon's upstream stage: after each tick Observe runs the
// policy (on the tick goroutine: it is pure and quick) and logs the change;
// a goroutine of its own brings the speaker to the wanted set, so a slow
// or dead router never delays a tick, and a session going down never
// touches the local rules. Routes the speaker holds are re-sent by GoBGP
// to a router whose session comes back.
type Upstream struct {
	log    zerolog.Logger
	policy *Policy
	newSp  func(ctx context.Context, cfg *Config) (Speaker, error)

	mu      sync.Mutex
	cfg     *Config
	want    []Announcement
	peers   []PeerState
	counts  Counts
	wake    chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc
	applied map[Key]Announcement
	redial  *redialer // run's alone
}

// Counts are running totals for metrics and status.
type Counts struct {
	Announcements uint64 `json:"announcements"`
	Withdrawals   uint64 `json:"withdrawals"`
	Refusals      uint64 `json:"refusals"`
	Errors        uint64 `json:"errors"`
}

// Status is what `floodguard status` shows of the upstream stage.
type Status struct {
	Peers     []PeerState  `json:"peers"`
	Announced []StatusRule `json:"announced"`
	Counts
}

// StatusRule is one announced route.
type StatusRule struct {
	Route  string `json:"route"`
	DryRun bool   `json:"dry_run,omitempty"`
	Reason string `json:"reason"`
}

// New starts the stage with cfg: the speaker (newSp, nil for GoBGP) and
// its peers. The speaker connects in the background; New does not wait.
func New(cfg *Config, log zerolog.Logger, newSp func(ctx context.Context, cfg *Config) (Speaker, error)) (*Upstream, error) {
	if newSp == nil {
		newSp = func(ctx context.Context, cfg *Config) (Speaker, error) { return NewGoBGP(ctx, cfg, log) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	sp, err := newSp(ctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	u := &Upstream{log: log, policy: NewPolicy(*cfg), newSp: newSp, cfg: cfg, wake: make(chan struct{}, 1),
		done: make(chan struct{}), cancel: cancel, applied: map[Key]Announcement{},
		redial: newRedialer(DefaultBackoff)}
	if err := sp.SetPeers(ctx, cfg.BGP.Peers); err != nil {
		log.Error().Str("event", "upstream_peer_failed").Err(err).Msg("BGP peers not all configured")
	}
	go u.run(ctx, sp)
	return u, nil
}

// Observe runs the policy over in and hands the wanted set to the speaker.
func (u *Upstream) Observe(in Input) {
	d := u.policy.Step(in)
	for _, a := range d.Add {
		ev := u.log.Warn().Str("event", "upstream_announce")
		if a.DryRun {
			ev = u.log.Info().Str("event", "upstream_would_announce")
		}
		ev.Str("route", a.String()).Str("rule", a.Rule).Bool("dry_run", a.DryRun).Msg(a.Reason)
	}
	for _, a := range d.Withdraw {
		u.log.Info().Str("event", "upstream_withdraw").Str("route", a.String()).Str("rule", a.Rule).Bool("dry_run", a.DryRun).
			Msg("local rule ended: withdrawn upstream")
	}
	for _, r := range d.Refused {
		u.log.Warn().Str("event", "upstream_refused").Str("rule", r.Rule).Msg(r.Why)
	}
	u.mu.Lock()
	u.counts.Refusals = u.policy.Refusals
	u.want = u.policy.Announced()
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Reconfigure applies a reloaded section: thresholds and cap from the next
// tick, the peers now.
func (u *Upstream) Reconfigure(cfg *Config) {
	u.policy.SetConfig(*cfg)
	u.mu.Lock()
	u.cfg = cfg
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// run brings the speaker to the wanted routes whenever woken, and polls the
// sessions' state every second.
func (u *Upstream) run(ctx context.Context, sp Speaker) {
	defer close(u.done)
	defer sp.Stop()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	var peersOf *Config
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case <-u.wake:
		}
		u.mu.Lock()
		want, cfg := u.want, u.cfg
		u.mu.Unlock()
		if peersOf != nil && peersOf != cfg {
			if err := sp.SetPeers(ctx, cfg.BGP.Peers); err != nil {
				u.log.Error().Str("event", "upstream_peer_failed").Err(err).Msg("BGP peers not all reconfigured")
			} else {
				u.log.Info().Str("event", "upstream_peers").Int("peers", len(cfg.BGP.Peers)).Msg("BGP peers reconfigured")
			}
		}
		peersOf = cfg
		u.reconcile(ctx, sp, want)
		ps := sp.Peers(ctx)
		u.redialDown(ctx, sp, ps)
		u.mu.Lock()
		for _, p := range ps {
			for _, old := range u.peers {
				if old.Address == p.Address && (old.State == "established") != (p.State == "established") {
					lvl := u.log.Warn()
					if p.State == "established" {
						lvl = u.log.Info()
					}
					lvl.Str("event", "upstream_session").Str("peer", p.Address).Str("state", p.State).
						Msg("BGP session changed; local rules are unaffected")
				}
			}
		}
		u.peers = ps
		u.mu.Unlock()
	}
}

// redialDown re-arms the peers whose session is down on the backoff
// schedule, and dates each down session from when it was first seen down
// (a re-armed GoBGP peer starts its own clock afresh).
func (u *Upstream) redialDown(ctx context.Context, sp Speaker, ps []PeerState) {
	now := time.Now()
	for _, a := range u.redial.due(now, ps) {
		if err := sp.Rearm(ctx, a); err != nil {
			u.log.Error().Str("event", "upstream_peer_failed").Str("peer", a).Err(err).Msg("BGP peer not re-armed; tried again later")
			continue
		}
		u.log.Debug().Str("event", "upstream_redial").Str("peer", a).Msg("BGP session down: connecting again")
	}
	for i := range ps {
		if since := u.redial.downSince(ps[i].Address); !since.IsZero() {
			ps[i].Since = since
		}
	}
}

func (u *Upstream) reconcile(ctx context.Context, sp Speaker, want []Announcement) {
	keep := map[Key]bool{}
	for i := range want {
		a := &want[i]
		if a.DryRun {
			continue
		}
		keep[a.Key()] = true
		if old, ok := u.applied[a.Key()]; ok && old.RateBytes == a.RateBytes {
			continue
		}
		if err := sp.Announce(ctx, a); err != nil {
			u.count(func(c *Counts) { c.Errors++ })
			u.log.Error().Str("event", "upstream_announce_failed").Str("route", a.String()).Err(err).Msg("announcement not made; retried")
			continue
		}
		u.applied[a.Key()] = *a
		u.count(func(c *Counts) { c.Announcements++ })
	}
	for k, a := range u.applied {
		if keep[k] {
			continue
		}
		if err := sp.Withdraw(ctx, &a); err != nil {
			u.count(func(c *Counts) { c.Errors++ })
			u.log.Error().Str("event", "upstream_withdraw_failed").Str("route", a.String()).Err(err).Msg("withdrawal not made; retried")
			continue
		}
		delete(u.applied, k)
		u.count(func(c *Counts) { c.Withdrawals++ })
	}
}

func (u *Upstream) count(f func(*Counts)) {
	u.mu.Lock()
	f(&u.counts)
	u.mu.Unlock()
}

// Status returns the sessions (as of the last poll) and what is announced.
func (u *Upstream) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := Status{Peers: append([]PeerState(nil), u.peers...), Counts: u.counts}
	for _, a := range u.want {
		s.Announced = append(s.Announced, StatusRule{Route: a.String(), DryRun: a.DryRun, Reason: a.Reason})
	}
	return s
}

// Announced is how many routes are announced now (wanted after the last
// Observe), dry-run ones excluded.
func (u *Upstream) Announced() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for i := range u.want {
		if !u.want[i].DryRun {
			n++
		}
	}
	return n
}

// Close stops the speaker: its sessions close and the routers withdraw
// what it announced. Local rules stay.
func (u *Upstream) Close() {
	u.cancel()
	<-u.done
}

var (
	descSession  = prometheus.NewDesc("floodguard_upstream_session_up", "1 while the BGP session with the peer is established.", []string{"peer"}, nil)
	descAnnounce = prometheus.NewDesc("floodguard_upstream_announcements_total", "Routes announced to the BGP speaker (re-announcements with a new rate included).", nil, nil)
	descWithdraw = prometheus.NewDesc("floodguard_upstream_withdrawals_total", "Routes withdrawn.", nil, nil)
	descRefused  = prometheus.NewDesc("floodguard_upstream_refusals_total", "Announcements refused: source over the allowlist, host or a peer, no destination, or max_announcements reached.", nil, nil)
	descActive   = prometheus.NewDesc("floodguard_upstream_announced", "Routes announced now (dry-run ones excluded).", nil, nil)
)

// Describe implements prometheus.Collector.
func (u *Upstream) Describe(ch chan<- *prometheus.Desc) { DescribeMetrics(ch) }

// DescribeMetrics sends the descriptions of the floodguard_upstream_*
// series, for a collector that stands in for an Upstream which may come
// and go (a reload adds or removes the section).
func DescribeMetrics(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSession, descAnnounce, descWithdraw, descRefused, descActive} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (u *Upstream) Collect(ch chan<- prometheus.Metric) {
	s := u.Status()
	for _, p := range s.Peers {
		up := 0.0
		if p.State == "established" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descSession, prometheus.GaugeValue, up, p.Address)
	}
	ch <- prometheus.MustNewConstMetric(descAnnounce, prometheus.CounterValue, float64(s.Announcements))
	ch <- prometheus.MustNewConstMetric(descWithdraw, prometheus.CounterValue, float64(s.Withdrawals))
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(s.Refusals))
	n := 0
	for _, a := range s.Announced {
		if !a.DryRun {
			n++
		}
	}
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(n))
}
