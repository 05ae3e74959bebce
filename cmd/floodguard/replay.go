package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/floodguard/floodguard/internal/config"

	"github.com/floodguard/floodguard/capture"
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
}

func parseReplayFlags(args []string, stderr io.Writer) (replayFlags, error) {
	var f replayFlags
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "YAML config `file` (default: built-in defaults)")
	fs.DurationVar(&f.tick, "tick", 0, "tick length, 100ms or more (default: the config's, 1s)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "decide and report bans but drop nothing")
	fs.StringVar(&f.format, "format", "human", "output `format`: human or jsonl")
	fs.BoolVar(&f.page, "page", false, "print the pages the daemon would have sent (incidents), with their timing")
	fs.BoolVar(&f.sendPages, "send-pages", false, "with --page: also send them through the config's paging sinks")
	fs.StringVar(&f.report, "report", "", "also write a self-contained HTML report of the replay to `file`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: floodguard replay [flags] FILE... (- for standard input)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, err
		}
		return f, usageError("%v", err)
	}
	f.files = fs.Args()
	if len(f.files) == 0 {
		return f, usageError("no capture files given")
	}
	if f.format != "human" && f.format != "jsonl" {
		return f, usageError("-format %q: want human or jsonl", f.format)
	}
	if f.sendPages && !f.page {
		return f, usageError("--send-pages needs --page")
	}
	return f, nil
}

// replayOutput is what a replay prints: events as they are decided and a
// summary at the end.
type replayOutput interface {
	start(files []string, cfg detector.Config)
	tick(t *detector.Tick, evs []detector.Event) error
	summary(s replaySummary) error
}

// replaySummary is the last record of a replay.
type replaySummary struct {
	Packets        uint64 `json:"packets"`
	Bytes          uint64 `json:"bytes"`
	DroppedPackets uint64 `json:"dropped_packets"`
	DroppedBytes   uint64 `json:"dropped_bytes"`
	Undecodable    uint64 `json:"undecodable"`
	Ticks          uint64 `json:"ticks"`
	Backwards      uint64 `json:"timestamps_backwards"`
	ClockJumps     uint64 `json:"clock_jumps"`
	AttacksStarted int    `json:"attacks_started"`
	Bans           int    `json:"bans"`
	Unbans         int    `json:"unbans"`
	ActiveBans     int    `json:"active_bans"`
	DryRun         bool   `json:"dry_run"`
	Error          string `json:"error,omitempty"`
}

func runReplay(e env, args []string) error {
	f, err := parseReplayFlags(args, e.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	if f.tick != 0 {
		cfg.Tick = detector.Duration(f.tick)
	}
	if f.dryRun {
		cfg.Bans.DryRun = true
	}
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	plane := capture.NewSimulatedPlane()
	eng, err := detector.New(cfg, plane)
	if err != nil {
		return err
	}
	src, err := capture.NewReplay(f.files, capture.ReplayOptions{Tick: cfg.Tick.D(), Stdin: e.stdin, Dropper: plane})
	if err != nil {
		return err
	}
	defer src.Close()

	prog := newReplayProgress(f.format, e.stderr, src) // nil unless stderr is a terminal
	defer prog.clear()
	rec := newReplayReport(f.report, cfg) // nil without --report
	w := bufio.NewWriterSize(prog.wrap(e.stdout), 64<<10)
	defer w.Flush()
	var out replayOutput
	if f.format == "jsonl" {
		out = &jsonlOutput{w: w, enc: json.NewEncoder(w)}
	} else {
		out = newHumanOutput(w)
	}
	out.start(f.files, cfg)
	var pager *replayPager
	if f.page || rec != nil { // the report has an incidents table
		file, err := config.Load(f.config)
		if err != nil {
			return err
		}
		if pager, err = newReplayPager(file.Paging, f.files, w, f.format == "jsonl", f.sendPages, e.stderr); err != nil {
			return err
		}
		pager.print = f.page
		if rec != nil {
			rec.TrackIncidents()
			pager.record = rec.Page
		}
	}

	var sum replaySummary
	obs := func(t *detector.Tick, evs []detector.Event) error {
		sum.DroppedPackets += t.Total.DroppedPackets
		sum.DroppedBytes += t.Total.DroppedBytes
		for _, ev := range evs {
			switch ev.Kind {
			case detector.AttackStart:
				sum.AttacksStarted++
			case detector.Ban:
				sum.Bans++
			case detector.Unban:
				sum.Unbans++
			}
		}
		prog.update()
		if rec != nil {
			rec.Observe(t, evs, eng.Baselines())
		}
		if err := out.tick(t, evs); err != nil {
			return err
		}
		if pager != nil {
			return pager.observe(t, evs, eng)
		}
		return nil
	}
	// Ctrl-C ends the replay early, still with a summary.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	runErr := detector.Run(ctx, src, eng, obs)

	st := src.Stats()
	es := eng.Stats()
	sum.Packets, sum.Bytes, sum.Undecodable = st.Packets, st.Bytes, st.Undecodable
	sum.Backwards, sum.ClockJumps = st.BackwardsTimestamps, st.ClockJumps
	sum.Ticks, sum.ActiveBans, sum.DryRun = es.Ticks, es.ActiveBans, cfg.Bans.DryRun
	if runErr != nil {
		sum.Error = runErr.Error()
	}
	prog.clear()
	if pager != nil {
		// Before the summary: a resolve due after the capture's end is
		// still one of the replay's pages.
		if err := pager.finish(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if err := out.summary(sum); err != nil {
		return err
	}
	if rec != nil {
		if err := writeReplayReport(f.report, rec, f.files, cfg, sum); err != nil && runErr == nil {
			runErr = err
		}
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

func (o *jsonlOutput) summary(s replaySummary) error {
	rec := struct {
		Event string `json:"event"`
		replaySummary
	}{"summary", s}
	if err := o.enc.Encode(rec); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}
