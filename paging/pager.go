package paging

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/detector"
)

// Pager is paging as the tick pipeline sees it: every tick goes through
// the incident tracker, and the pages it makes go to OnPage (printed by a
// replay, logged by the daemon) and, when sinks are configured and
// delivery is on, to the dispatcher, which delivers in the background so
// the tick loop never waits for a sink. The daemon and replay both use it.
//
// ObserveTick, Finish and Reconfigure run on the tick loop's goroutine; Stats
// may be called from another (the metrics scrape).
type Pager struct {
	opt PagerOptions
	eng EngineView
	cfg Config // the settings in force
	tr  *Tracker

	mu   sync.Mutex  // guards disp against Stats
	disp *Dispatcher // nil without sinks or without delivery
}

// PagerOptions say where pages go besides the tracker.
type PagerOptions struct {
	// Source names a replay's input in the pages ("" live).
	Source string
	// Deliver builds the configured sinks and sends pages through them;
	// without it pages only reach OnPage.
	Deliver bool
	// OutboxDir keeps undelivered pages across restarts ("" none: a
	// replay delivers and waits).
	OutboxDir string
	// OnPage, if set, sees every page as it is made, before delivery.
	OnPage func(*Page) error
	// Log gets delivery problems.
	Log zerolog.Logger
}

// NewPager builds the tracker and, with Deliver, the configured sinks
// (reading their secrets: a missing one is an error naming the sink) and
// their dispatcher, which first queues what an earlier run left in the
// outbox.
func NewPager(cfg Config, eng EngineView, opt PagerOptions) (*Pager, error) {
	p := &Pager{opt: opt, eng: eng, cfg: cfg, tr: NewTracker(cfg, cfg.HostName(), opt.Source)}
	if !opt.Deliver {
		return p, nil
	}
	disp, err := p.startDelivery(cfg)
	if err != nil {
		return nil, err
	}
	p.disp = disp
	return p, nil
}

// BuildSinks constructs the configured sinks; secrets are read here, and
// errors name the sink, never a secret.
func BuildSinks(cfgs []SinkConfig) ([]Sink, error) {
	var sinks []Sink
	for i := range cfgs {
		cfgs[i].SinkDefaults()
		s, err := NewSink(cfgs[i])
		if err != nil {
			return nil, fmt.Errorf("paging sink %s: %w", cfgs[i].Name, err)
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}

// startDelivery starts a dispatcher for cfg's sinks (nil without sinks).
func (p *Pager) startDelivery(cfg Config) (*Dispatcher, error) {
	sinks, err := BuildSinks(cfg.Sinks)
	if err != nil || len(sinks) == 0 {
		return nil, err
	}
	return NewDispatcher(sinks, cfg.Sinks, p.dispatchOptions())
}

func (p *Pager) dispatchOptions() Options {
	return Options{OutboxDir: p.opt.OutboxDir, Log: p.opt.Log}
}

// Sinks names the sinks pages are delivered to (none without delivery).
func (p *Pager) Sinks() []string {
	if p.disp == nil {
		return nil
	}
	names := make([]string, len(p.cfg.Sinks))
	for i := range p.cfg.Sinks {
		names[i] = p.cfg.Sinks[i].Name
	}
	return names
}

// ObserveTick runs one tick through the tracker and passes on its pages: a
// Pager is a detector.Observer, one stage of the tick pipeline. An
// error from OnPage stops the pipeline (a replay that cannot write); a
// page the outbox could not store is still queued in memory, and said so
// in the log.
func (p *Pager) ObserveTick(t *detector.Tick, evs []detector.Event) error {
	return p.emit(p.tr.Observe(t, evs, p.eng))
}

// Finish ends a replay: it emits the pages due after the last tick (the
// resolve of an incident still open when the capture ended).
func (p *Pager) Finish() error { return p.emit(p.tr.Finish()) }

func (p *Pager) emit(pages []Page) error {
	for i := range pages {
		if p.opt.OnPage != nil {
			if err := p.opt.OnPage(&pages[i]); err != nil {
				return err
			}
		}
		if p.disp == nil {
			continue
		}
		if err := p.disp.Submit(pages[i]); err != nil {
			p.opt.Log.Error().Str("event", "outbox_write_failed").Err(err).Msg("page queued in memory only")
		}
	}
	return nil
}

// Submit queues one page for delivery as if the tracker had made it
// (a no-op without delivery).
func (p *Pager) Submit(pg Page) error {
	if p.disp == nil {
		return nil
	}
	return p.disp.Submit(pg)
}

// Reconfigure applies new paging settings, if they changed. Everything
// that can fail comes first, while the old settings still deliver: the
// sinks are built (a secret file missing) and the new dispatcher's outbox
// directories made; on an error the old settings stay in force and the
// error is returned. Only then does the old dispatcher stop (attempts in
// flight finish, or are cut short and stay in the outbox), and the new one
// take the outbox over: it queues what the old one left there, pages
// queued but not yet delivered included, and starts delivering. The two
// never work on the outbox at once, with one exception: should the old one
// take over 5 s to stop (an attempt that ignores its cancellation), a page
// it then delivers after the new one has queued it is delivered twice,
// with the same page ID, as after a crash. The open
// incident carries on under the new settings (maxAge is how old it may
// be). changed says whether anything was applied.
func (p *Pager) Reconfigure(cfg Config, maxAge time.Duration) (changed bool, err error) {
	if reflect.DeepEqual(cfg, p.cfg) {
		return false, nil
	}
	state, err := p.tr.MarshalState()
	if err != nil {
		return false, err
	}
	var next *Dispatcher
	if p.opt.Deliver {
		sinks, err := BuildSinks(cfg.Sinks)
		if err != nil {
			return false, err
		}
		if len(sinks) > 0 {
			if next, err = prepareDispatcher(sinks, cfg.Sinks, p.dispatchOptions()); err != nil {
				return false, err
			}
		}
		p.closeDelivery()
		if next != nil {
			next.start()
		}
	}
	p.mu.Lock()
	p.disp = next
	p.mu.Unlock()
	p.cfg = cfg
	p.tr = NewTracker(cfg, cfg.HostName(), p.opt.Source)
	if state != nil {
		if err := p.tr.RestoreState(state, time.Now(), maxAge); err != nil {
			p.opt.Log.Warn().Str("event", "incident_not_restored").Err(err).Msg("open incident not carried over to the new paging settings")
		}
	}
	return true, nil
}

// Open returns the open incident, if any.
func (p *Pager) Open() (Incident, bool) { return p.tr.Open() }

// MarshalState and RestoreState keep the open incident across restarts
// (see Tracker).
func (p *Pager) MarshalState() ([]byte, error) { return p.tr.MarshalState() }

func (p *Pager) RestoreState(data []byte, now time.Time, maxAge time.Duration) error {
	return p.tr.RestoreState(data, now, maxAge)
}

// Stats returns the sinks' counters (nil without delivery).
func (p *Pager) Stats() []SinkStats {
	p.mu.Lock()
	disp := p.disp
	p.mu.Unlock()
	if disp == nil {
		return nil
	}
	return disp.Stats()
}

// Flush waits, at most until ctx is done, for the queued pages to be
// delivered (a replay's --send-pages).
func (p *Pager) Flush(ctx context.Context) error {
	if p.disp == nil {
		return nil
	}
	return p.disp.Flush(ctx)
}

// Close stops delivery, giving attempts in flight until ctx is done; what
// is not delivered stays in the outbox for the next start.
func (p *Pager) Close(ctx context.Context) error {
	p.mu.Lock()
	disp := p.disp
	p.disp = nil
	p.mu.Unlock()
	if disp == nil {
		return nil
	}
	return disp.Close(ctx)
}

func (p *Pager) closeDelivery() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		p.opt.Log.Warn().Err(err).Msg("paging stopped with a delivery in flight (kept in the outbox)")
	}
}
