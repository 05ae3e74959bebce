package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/floodguard/floodguard/detector"
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

// writeReplayReport writes the report atomically: to a temporary file next
// to path, renamed over it once complete.
func writeReplayReport(path string, rec *report.Recorder, files []string, cfg detector.Config, s replaySummary) error {
	meta := report.Meta{
		Files: files, Tick: cfg.Tick.D(), WarmUp: cfg.WarmUp.D(), DryRun: s.DryRun,
		Packets: s.Packets, Bytes: s.Bytes, DroppedPackets: s.DroppedPackets, DroppedBytes: s.DroppedBytes,
		Undecodable: s.Undecodable, BackwardsTimestamps: s.Backwards, ClockJumps: s.ClockJumps,
		ActiveBans: s.ActiveBans, Error: s.Error, Version: version,
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := rec.WriteHTML(tmp, meta); err != nil {
		tmp.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}
