package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/floodguard/floodguard/internal/config"

	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/atomicfile"
	"github.com/floodguard/floodguard/paging"
)

// pager runs the incident tracker in the tick loop and hands its pages to
// the dispatcher, which delivers them in the background: the tick loop
// never waits for a sink. Everything but stats runs on the tick loop's
// goroutine; stats is called by the metrics scrape too.
type pager struct {
	cfg      paging.Config // the settings in force
	tr       *paging.Tracker
	log      zerolog.Logger
	stateDir string // holds incidentFile

	mu   sync.Mutex         // guards disp against stats
	disp *paging.Dispatcher // nil when no sinks are configured
}

// incidentFile keeps the open incident across restarts, beside the
// detector snapshot and saved with it.
const incidentFile = "incident.json"

// maxIncidentAge: an incident last paged longer ago than this is not
// resumed after a restart (the next attack opens a new one).
const maxIncidentAge = 6 * time.Hour

// newPager builds the configured sinks (reading their secrets) and starts
// delivery, queueing first whatever an earlier run left in the outbox. A
// sink that cannot be built (a missing secret file) is a startup error,
// like any other bad setting.
func newPager(f *config.File, log zerolog.Logger) (*pager, error) {
	p := &pager{log: log, stateDir: f.Daemon.StateDir}
	sinks, err := BuildSinks(f.Paging.Sinks)
	if err != nil {
		return nil, err
	}
	disp, err := startDelivery(f, sinks, log)
	if err != nil {
		return nil, err
	}
	p.cfg, p.disp = f.Paging, disp
	p.tr = paging.NewTracker(f.Paging, f.Paging.HostName(), "")
	p.restore()
	return p, nil
}

// startDelivery starts a dispatcher for sinks, built from f's paging
// section, over the outbox (nil without sinks).
func startDelivery(f *config.File, sinks []paging.Sink, log zerolog.Logger) (*paging.Dispatcher, error) {
	cfg := f.Paging
	if len(sinks) == 0 {
		return nil, nil
	}
	outbox := cfg.OutboxDir
	if outbox == "" {
		outbox = filepath.Join(f.Daemon.StateDir, "outbox")
	}
	disp, err := paging.NewDispatcher(sinks, cfg.Sinks, paging.Options{OutboxDir: outbox, Log: log})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name()
	}
	log.Info().Str("event", "paging_ready").Strs("sinks", names).Str("outbox", outbox).Msg("paging on")
	return disp, nil
}

// BuildSinks constructs the configured sinks; secrets are read here, and
// errors name the sink, never a secret.
func BuildSinks(cfgs []paging.SinkConfig) ([]paging.Sink, error) {
	var sinks []paging.Sink
	for i := range cfgs {
		cfgs[i].SinkDefaults()
		s, err := paging.NewSink(cfgs[i])
		if err != nil {
			return nil, fmt.Errorf("paging sink %s: %w", cfgs[i].Name, err)
		}
		sinks = append(sinks, s)
	}
	return sinks, nil
}

// reconfigure applies a reloaded config's paging section, if it changed.
// The sinks are built first, so a bad one (a secret file missing) leaves
// the old settings in force. Then delivery stops (pages in flight finish
// or stay in the outbox), the new dispatcher takes the outbox over, and
// the open incident carries on under the new settings.
func (p *pager) reconfigure(f *config.File) error {
	if reflect.DeepEqual(f.Paging, p.cfg) {
		return nil
	}
	sinks, err := BuildSinks(f.Paging.Sinks)
	if err != nil {
		return err
	}
	state, err := p.tr.MarshalState()
	if err != nil {
		return err
	}
	p.closeDelivery()
	disp, err := startDelivery(f, sinks, p.log)
	if err != nil {
		return err // only the outbox can fail here
	}
	p.mu.Lock()
	p.disp = disp
	p.mu.Unlock()
	p.cfg = f.Paging
	p.tr = paging.NewTracker(f.Paging, f.Paging.HostName(), "")
	if state != nil {
		if err := p.tr.RestoreState(state, time.Now(), maxIncidentAge); err != nil {
			p.log.Warn().Str("event", "incident_not_restored").Err(err).Msg("open incident not carried over to the new paging settings")
		}
	}
	p.log.Info().Str("event", "paging_reloaded").Int("sinks", len(f.Paging.Sinks)).Msg("paging settings reloaded")
	return nil
}

// restore reopens the incident the last run left open, if any.
func (p *pager) restore() {
	path := filepath.Join(p.stateDir, incidentFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = p.tr.RestoreState(data, time.Now(), maxIncidentAge)
	}
	if err != nil {
		p.log.Warn().Str("event", "incident_not_restored").Str("path", path).Err(err).Msg("open incident of the last run not resumed")
		return
	}
	inc, _ := p.tr.Open()
	p.log.Info().Str("event", "incident_restored").Str("incident", inc.Key).Msg("resuming the incident open at the last stop")
}

// save writes the open incident (or removes the file when none is open);
// called with the detector snapshot.
func (p *pager) save() error {
	if p == nil {
		return nil
	}
	data, err := p.tr.MarshalState()
	if err != nil {
		return err
	}
	if data == nil {
		if err := os.Remove(filepath.Join(p.stateDir, incidentFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	return atomicfile.Write(filepath.Join(p.stateDir, incidentFile), data, 0o600)
}

// observe runs one tick through the tracker and queues its pages.
func (p *pager) observe(t *detector.Tick, evs []detector.Event, eng *detector.Engine) {
	if p == nil {
		return
	}
	for _, pg := range p.tr.Observe(t, evs, eng) {
		p.log.Info().Str("event", "page").Str("action", string(pg.Action)).Str("incident", pg.Incident.Key).
			Str("severity", string(pg.Incident.Severity)).Str("why", pg.Why).Msg(pg.Incident.Summary)
		if p.disp == nil {
			continue
		}
		if err := p.disp.Submit(pg); err != nil {
			p.log.Error().Str("event", "outbox_write_failed").Err(err).Msg("page queued in memory only")
		}
	}
}

// stats returns the sinks' counters (nil without sinks).
func (p *pager) stats() []paging.SinkStats {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	disp := p.disp
	p.mu.Unlock()
	if disp == nil {
		return nil
	}
	return disp.Stats()
}

// close stops delivery, giving attempts in flight a moment; what is not
// delivered stays in the outbox for the next start.
func (p *pager) close() {
	if p != nil {
		p.closeDelivery()
	}
}

func (p *pager) closeDelivery() {
	p.mu.Lock()
	disp := p.disp
	p.disp = nil
	p.mu.Unlock()
	if disp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := disp.Close(ctx); err != nil {
		p.log.Warn().Err(err).Msg("paging stopped with a delivery in flight (kept in the outbox)")
	}
}
