package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/paging"
)

// replayPager runs the daemon's incident logic over a replay: it prints
// the pages the live daemon would have sent, at packet time, and with
// --send-pages delivers them through the configured sinks.
type replayPager struct {
	tr   *paging.Tracker
	w    *bufio.Writer
	errw io.Writer // delivery results
	// print says to print the pages (--page); record, if set, gets them
	// too (the report's incidents table).
	print  bool
	record func(paging.Page)
	jsonl  bool
	disp   *paging.Dispatcher
	sent   int
	first  time.Time // the first tick's start, for offsets
}

func newReplayPager(cfg paging.Config, files []string, w *bufio.Writer, jsonl, send bool, stderr io.Writer) (*replayPager, error) {
	p := &replayPager{tr: paging.NewTracker(cfg, cfg.HostName(), strings.Join(files, ",")), w: w, jsonl: jsonl, errw: stderr}
	if send {
		if len(cfg.Sinks) == 0 {
			return nil, usageError("--send-pages: the config has no paging.sinks")
		}
		sinks, err := daemon.BuildSinks(cfg.Sinks)
		if err != nil {
			return nil, err
		}
		// No outbox: a replay delivers and exits, and waits for delivery.
		log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true}).With().Timestamp().Logger()
		p.disp, err = paging.NewDispatcher(sinks, cfg.Sinks, paging.Options{Log: log})
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *replayPager) observe(t *detector.Tick, evs []detector.Event, eng paging.EngineView) error {
	if p.first.IsZero() {
		p.first = t.Start
	}
	for _, pg := range p.tr.Observe(t, evs, eng) {
		if err := p.emit(&pg); err != nil {
			return err
		}
		if p.disp != nil {
			if err := p.disp.Submit(pg); err != nil {
				return err
			}
			p.sent++
		}
	}
	return nil
}

func (p *replayPager) emit(pg *paging.Page) error {
	if p.record != nil {
		p.record(*pg)
	}
	if !p.print {
		return nil
	}
	var err error
	if p.jsonl {
		rec := struct {
			Event string `json:"event"`
			paging.Page
		}{"page", *pg}
		var b []byte
		if b, err = json.Marshal(rec); err == nil {
			b = append(b, '\n')
			_, err = p.w.Write(b)
		}
	} else {
		_, err = fmt.Fprintf(p.w, "%s  PAGE %-7s %s [%s] %s (%s)\n    %s\n",
			pg.Time.UTC().Format("15:04:05"), pg.Action, pg.Incident.Key, pg.Incident.Severity,
			offset(pg.Time.Sub(p.first)), pg.Why, pg.Incident.Summary)
	}
	if err != nil {
		return fmt.Errorf("write page: %w", err)
	}
	return nil
}

func offset(d time.Duration) string { return "+" + d.Round(time.Second).String() }

// finish waits (bounded) for the pages being sent.
func (p *replayPager) finish() error {
	for _, pg := range p.tr.Finish() {
		if err := p.emit(&pg); err != nil {
			return err
		}
		if p.disp != nil {
			if err := p.disp.Submit(pg); err != nil {
				return err
			}
		}
	}
	if p.disp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := p.disp.Flush(ctx)
	_ = p.disp.Close(ctx)
	for _, s := range p.disp.Stats() {
		fmt.Fprintf(p.errw, "paging %s (%s): %d delivered, %d failed attempts, %d dropped, %d undelivered\n",
			s.Sink, s.Type, s.Delivered, s.Failed, s.Dropped, s.Queued)
	}
	return err
}
