package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/paging"
)

// pagePrinter shows the pages of `replay --page` at packet time, in the
// replay's output format, and hands them to the report's incidents table.
type pagePrinter struct {
	// print says to print the pages (--page); record, if set, gets them
	// too (the report's incidents table).
	print  bool
	record func(paging.Page)
	jsonl  bool
	w      *bufio.Writer // the replay's output (set before the replay runs)
	first  time.Time     // the first tick's start, for offsets
}

// observe notes the first tick's start: pages show their offset from it.
func (p *pagePrinter) observe(t *detector.Tick, _ []detector.Event) error {
	if p.first.IsZero() {
		p.first = t.Start
	}
	return nil
}

func (p *pagePrinter) emit(pg *paging.Page) error {
	if p.record != nil {
		p.record(*pg)
	}
	if !p.print {
		return nil
	}
	w := p.w
	var err error
	if p.jsonl {
		rec := struct {
			Event string `json:"event"`
			paging.Page
		}{"page", *pg}
		var b []byte
		if b, err = json.Marshal(rec); err == nil {
			b = append(b, '\n')
			_, err = w.Write(b)
		}
	} else {
		_, err = fmt.Fprintf(w, "%s  PAGE %-7s %s [%s] %s (%s)\n    %s\n",
			pg.Time.UTC().Format("15:04:05"), pg.Action, pg.Incident.Key, pg.Incident.Severity,
			offset(pg.Time.Sub(p.first)), pg.Why, pg.Incident.Summary)
	}
	if err != nil {
		return fmt.Errorf("write page: %w", err)
	}
	return nil
}

func offset(d time.Duration) string { return "+" + d.Round(time.Second).String() }
