package detector

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// TickSource yields ticks in order: the pcap replay source and the live XDP
// source both implement it. Next returns io.EOF after the last tick.
type TickSource interface {
	Next() (*Tick, error)
}

// Observer sees every tick with the events the engine decided for it, after
// the decisions went to the enforcer (the kernel or the replay's simulated
// data plane). Paging, metrics, reports, logs and printed output are
// observers; a new one is one more element in the list its assembler
// (replay/ or daemon/) passes to Run.
type Observer interface {
	ObserveTick(t *Tick, events []Event) error
}

// ObserverFunc makes a function an Observer.
type ObserverFunc func(t *Tick, events []Event) error

// ObserveTick calls f.
func (f ObserverFunc) ObserveTick(t *Tick, events []Event) error { return f(t, events) }

// Run is the per-tick pipeline: it feeds every tick of src through the
// engine, then hands it to each observer in order, until the source ends,
// an observer fails or ctx is done. This loop is the one decision path:
// replay and the live daemon both run it. A source that ends with an error
// (a damaged capture) has its ticks processed first; the error is
// returned.
func Run(ctx context.Context, src TickSource, eng *Engine, observers ...Observer) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := src.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		evs := eng.Step(t)
		for _, obs := range observers {
			if err := obs.ObserveTick(t, evs); err != nil {
				return fmt.Errorf("observe tick %s: %w", t.Start.Format("15:04:05.000"), err)
			}
		}
	}
}
