package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/atomicfile"
	"github.com/floodguard/floodguard/internal/config"
	"github.com/floodguard/floodguard/paging"
)

// pager is the daemon's paging.Pager with what only a long-running daemon
// needs: the open incident saved beside the detector snapshot and resumed
// after a restart, the outbox in the state directory, and log lines.
type pager struct {
	*paging.Pager
	log      zerolog.Logger
	stateDir string // holds incidentFile
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
func newPager(f *config.File, eng paging.EngineView, log zerolog.Logger) (*pager, error) {
	outbox := f.Paging.OutboxDir
	if outbox == "" {
		outbox = filepath.Join(f.Daemon.StateDir, "outbox")
	}
	p := &pager{log: log, stateDir: f.Daemon.StateDir}
	pg, err := paging.NewPager(f.Paging, eng, paging.PagerOptions{
		Deliver: true, OutboxDir: outbox, Log: log, OnPage: p.logPage,
	})
	if err != nil {
		return nil, err
	}
	p.Pager = pg
	if sinks := pg.Sinks(); len(sinks) > 0 {
		log.Info().Str("event", "paging_ready").Strs("sinks", sinks).Str("outbox", outbox).Msg("paging on")
	}
	p.restore()
	return p, nil
}

func (p *pager) logPage(pg *paging.Page) error {
	p.log.Info().Str("event", "page").Str("action", string(pg.Action)).Str("incident", pg.Incident.Key).
		Str("severity", string(pg.Incident.Severity)).Str("why", pg.Why).Msg(pg.Incident.Summary)
	return nil
}

// reconfigure applies a reloaded config's paging section, if it changed;
// on an error the previous settings stay in force.
func (p *pager) reconfigure(f *config.File) error {
	changed, err := p.Reconfigure(f.Paging, maxIncidentAge)
	if err == nil && changed {
		p.log.Info().Str("event", "paging_reloaded").Int("sinks", len(f.Paging.Sinks)).Msg("paging settings reloaded")
	}
	return err
}

// restore reopens the incident the last run left open, if any.
func (p *pager) restore() {
	path := filepath.Join(p.stateDir, incidentFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = p.RestoreState(data, time.Now(), maxIncidentAge)
	}
	if err != nil {
		p.log.Warn().Str("event", "incident_not_restored").Str("path", path).Err(err).Msg("open incident of the last run not resumed")
		return
	}
	inc, _ := p.Open()
	p.log.Info().Str("event", "incident_restored").Str("incident", inc.Key).Msg("resuming the incident open at the last stop")
}

// save writes the open incident (or removes the file when none is open);
// called with the detector snapshot.
func (p *pager) save() error {
	if p == nil {
		return nil
	}
	data, err := p.MarshalState()
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

// ObserveTick is the pager's stage in the daemon's pipeline.
func (p *pager) ObserveTick(t *detector.Tick, evs []detector.Event) error {
	if p == nil {
		return nil
	}
	return p.Pager.ObserveTick(t, evs)
}

// stats returns the sinks' counters (nil without sinks).
func (p *pager) stats() []paging.SinkStats {
	if p == nil {
		return nil
	}
	return p.Stats()
}

// close stops delivery, giving attempts in flight a moment; what is not
// delivered stays in the outbox for the next start.
func (p *pager) close() {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		p.log.Warn().Err(err).Msg("paging stopped with a delivery in flight (kept in the outbox)")
	}
}
