package main

import (
	"bytes"
	"fmt"

	"github.com/floodguard/floodguard/replay"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/atomicfile"
	"github.com/floodguard/floodguard/report"
)

// newReplayReport returns the recorder of `replay --report`, or nil when no
// report was asked for.
func newReplayReport(path string, cfg detector.Config) *report.Recorder {
	if path == "" {
		return nil
	}
	return report.NewRecorder(report.Options{WarmUp: cfg.WarmUp.D()})
}

// writeReplayReport writes the report atomically: a reader never sees half
// of it.
func writeReplayReport(path string, rec *report.Recorder, files []string, cfg detector.Config, s replay.Summary) error {
	meta := report.Meta{
		Files: files, Tick: cfg.Tick.D(), WarmUp: cfg.WarmUp.D(), DryRun: s.DryRun,
		Packets: s.Packets, Bytes: s.Bytes, DroppedPackets: s.DroppedPackets, DroppedBytes: s.DroppedBytes,
		Undecodable: s.Undecodable, BackwardsTimestamps: s.Backwards, ClockJumps: s.ClockJumps,
		ActiveBans: s.ActiveBans, Error: s.Error, Version: version,
	}
	var html bytes.Buffer
	if err := rec.WriteHTML(&html, meta); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := atomicfile.Write(path, html.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}
