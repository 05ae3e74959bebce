package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodguard/floodguard/internal/config"
	"github.com/floodguard/floodguard/replay"
	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/detector"
)

type replayFlags struct {
	config string
	tick   time.Duration
	dryRun bool
	format string
	files  []string
	// page runs the incident logic and prints the pages; sendPages also
	// sends them through the config's paging sinks.
	page, sendPages bool
	// report is where to write the HTML report ("" for none).
	report string
	// verdicts is where to write one byte per packet ("" for none).
	verdicts string
	// upstream prints what would have been announced upstream per tick.
	upstream bool
}

func parseReplayFlags(e env, args []string) (replayFlags, error) {
	var f replayFlags
	fs := newFlagSet(e, "replay", "[flags] FILE... (- for standard input)")
	fs.StringVar(&f.config, "config", "", "YAML config `file` (default: built-in defaults)")
	fs.DurationVar(&f.tick, "tick", 0, "tick length, 100ms or more (default: the config's, 1s)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "decide and report bans but drop nothing")
	fs.StringVar(&f.format, "o", "human", "output `format`: human or jsonl")
	fs.StringVar(&f.format, "format", "human", "deprecated alias of -o, kept for one release")
	fs.BoolVar(&f.page, "page", false, "print the pages the daemon would have sent (incidents), with their timing")
	fs.BoolVar(&f.sendPages, "send-pages", false, "with --page: also send them through the config's paging sinks")
	fs.StringVar(&f.report, "report", "", "also write a self-contained HTML report of the replay to `file`")
	fs.StringVar(&f.verdicts, "verdicts", "", "also write one byte per packet, in capture order, to `file`: D dropped by a rule, P passed, U undecodable")
	fs.BoolVar(&f.upstream, "upstream", false, "print per tick what would have been announced upstream over BGP (the config's upstream section, or its defaults; no BGP)")
	files, err := fs.parse(args)
	if err != nil {
		return f, err
	}
	f.files = files
	if len(f.files) == 0 {
		return f, usageError("no capture files given")
	}
	if f.format != "human" && f.format != "jsonl" {
		return f, usageError("-o %q: want human or jsonl", f.format)
	}
	if f.sendPages && !f.page {
		return f, usageError("--send-pages needs --page")
	}
	if f.verdicts == "-" {
		return f, usageError("--verdicts -: standard output carries the events; give a file")
	}
	return f, nil
}

// replayOutput is what a replay prints: events as they are decided and a
// summary at the end.
type replayOutput interface {
	start(files []string, cfg detector.Config)
	tick(t *detector.Tick, evs []detector.Event) error
	summary(s replay.Summary) error
}

func runReplay(e env, args []string) error {
	f, err := parseReplayFlags(e, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	file, err := config.Load(f.config)
	if err != nil {
		return err
	}
	cfg := &file.Config
	if f.tick != 0 {
		cfg.Tick = detector.Duration(f.tick)
	}
	if f.dryRun {
		cfg.Bans.DryRun = true
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	if f.sendPages && len(file.Paging.Sinks) == 0 {
		return usageError("--send-pages: the config has no paging.sinks")
	}

	verdicts, err := createVerdicts(f.verdicts) // nil without --verdicts
	if err != nil {
		return err
	}
	defer verdicts.close()

	rec := newReplayReport(f.report, *cfg) // nil without --report
	pages := &pagePrinter{print: f.page, jsonl: f.format == "jsonl"}
	if rec != nil {
		rec.TrackIncidents()
		pages.record = rec.Page
	}
	rp, err := replay.New(replay.Options{
		Files: f.files, Stdin: e.stdin, Config: file,
		Page:   f.page || rec != nil, // the report has an incidents table
		OnPage: pages.emit, SendPages: f.sendPages,
		Log:      zerolog.New(zerolog.ConsoleWriter{Out: e.stderr, NoColor: true}).With().Timestamp().Logger(),
		Verdicts: verdicts.writer(),
	})
	if err != nil {
		return err
	}
	defer rp.Close()

	prog := newReplayProgress(f.format, e.stderr, rp.Source()) // nil unless stderr is a terminal
	defer prog.clear()
	w := bufio.NewWriterSize(prog.wrap(e.stdout), 64<<10)
	defer w.Flush()
	pages.w = w
	var out replayOutput
	if f.format == "jsonl" {
		out = &jsonlOutput{w: w, enc: json.NewEncoder(w)}
	} else {
		out = newHumanOutput(w)
	}
	out.start(f.files, *cfg)

	// The CLI's observers, after the detector and before the pager.
	observers := []detector.Observer{
		detector.ObserverFunc(func(*detector.Tick, []detector.Event) error { prog.update(); return nil }),
		detector.ObserverFunc(pages.observe),
	}
	if rec != nil {
		observers = append(observers, detector.ObserverFunc(func(t *detector.Tick, evs []detector.Event) error {
			rec.Observe(t, evs, rp.Engine().Baselines())
			return nil
		}))
	}
	observers = append(observers, detector.ObserverFunc(out.tick))
	if f.upstream {
		up := newUpstreamPrinter(w, f.format == "jsonl", file.Upstream, cfg.Bans.Allowlist, rp.Engine)
		observers = append(observers, detector.ObserverFunc(up.observe))
	}

	// Ctrl-C ends the replay early, still with a summary.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, runErr := rp.Run(ctx, observers...)
	prog.clear()
	for _, s := range rp.DeliveryStats() {
		fmt.Fprintf(e.stderr, "paging %s (%s): %d delivered, %d failed attempts, %d dropped, %d undelivered\n",
			s.Sink, s.Type, s.Delivered, s.Failed, s.Dropped, s.Queued)
	}
	if err := out.summary(sum); err != nil {
		return err
	}
	if rec != nil {
		if err := writeReplayReport(f.report, rec, f.files, *cfg, sum); err != nil && runErr == nil {
			runErr = err
		}
	}
	if err := verdicts.close(); err != nil && runErr == nil {
		runErr = err
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return runErr
}

// jsonlOutput writes one JSON object per line.
type jsonlOutput struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func (o *jsonlOutput) start([]string, detector.Config) {}

func (o *jsonlOutput) tick(_ *detector.Tick, evs []detector.Event) error {
	for i := range evs {
		if err := o.enc.Encode(evs[i]); err != nil {
			return fmt.Errorf("write event: %w", err)
		}
	}
	return nil
}

func (o *jsonlOutput) summary(s replay.Summary) error {
	rec := struct {
		Event string `json:"event"`
		replay.Summary
	}{"summary", s}
	if err := o.enc.Encode(rec); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// verdictsFile is the --verdicts file; a nil *verdictsFile is none.
type verdictsFile struct {
	f      *os.File
	closed bool
}

func createVerdicts(name string) (*verdictsFile, error) {
	if name == "" {
		return nil, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("--verdicts: %w", err)
	}
	return &verdictsFile{f: f}, nil
}

// writer returns the file as the replay writes to it (nil for none).
func (v *verdictsFile) writer() io.Writer {
	if v == nil {
		return nil
	}
	return v.f
}

// close closes the file, once; the replay has flushed its verdicts when
// Run returns. Errors from the file name it.
func (v *verdictsFile) close() error {
	if v == nil || v.closed {
		return nil
	}
	v.closed = true
	if err := v.f.Close(); err != nil {
		return fmt.Errorf("verdicts: %w", err)
	}
	return nil
}
