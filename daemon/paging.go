package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/paging"
)

// pager runs the incident tracker in the tick loop and hands its pages to
// the dispatcher, which delivers them in the background: the tick loop
// never waits for a sink.
type pager struct {
	tr       *paging.Tracker
	disp     *paging.Dispatcher // nil when no sinks are configured
	log      zerolog.Logger
	stateDir string // holds incidentFile
}

// incidentFile keeps the open incident across restarts, beside the
// detector snapshot and saved with it.
const incidentFile = "incident.json"

// maxIncidentAge: an incident last paged longer ago than this is not
// resumed after a restart (the next attack opens a new one).
const maxIncidentAge = 6 * time.Hour

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
	return writeAtomic(p.stateDir, incidentFile, data)
}

// newPager builds the configured sinks (reading their secrets) and starts
// delivery, queueing first whatever an earlier run left in the outbox. A
// sink that cannot be built (a missing secret file) is a startup error,
// like any other bad setting.
func newPager(f *File, log zerolog.Logger) (*pager, error) {
	cfg := f.Paging
	host := cfg.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	p := &pager{tr: paging.NewTracker(cfg, host, ""), log: log, stateDir: f.Daemon.StateDir}
	p.restore()
	if len(cfg.Sinks) == 0 {
		return p, nil
	}
	sinks, err := BuildSinks(cfg.Sinks)
	if err != nil {
		return nil, err
	}
	outbox := cfg.OutboxDir
	if outbox == "" {
		outbox = filepath.Join(f.Daemon.StateDir, "outbox")
	}
	p.disp, err = paging.NewDispatcher(sinks, cfg.Sinks, paging.Options{OutboxDir: outbox, Log: log})
	if err != nil {
		return nil, err
	}
	names := make([]string, len(sinks))
	for i, s := range sinks {
		names[i] = s.Name()
	}
	log.Info().Str("event", "paging_ready").Strs("sinks", names).Str("outbox", outbox).Msg("paging on")
	return p, nil
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
	if p == nil || p.disp == nil {
		return nil
	}
	return p.disp.Stats()
}

// close stops delivery, giving attempts in flight a moment; what is not
// delivered stays in the outbox for the next start.
func (p *pager) close() {
	if p == nil || p.disp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.disp.Close(ctx); err != nil {
		p.log.Warn().Err(err).Msg("paging stopped with a delivery in flight (kept in the outbox)")
	}
}
