// Package benchout writes a live benchmark's report (scripts/benchlive,
// scripts/benchspoofed): the report to its file, and with it, on request,
// copies of the logs the run kept.
package benchout

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes report to path, creating its directory ("" writes
// nothing), and copies each of logs next to it as prefix plus the log's
// base name ("bench-live.floodguard1.log"). A log that cannot be copied is
// skipped: the report is what matters.
func Write(path, report, prefix string, logs []string) error {
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	for _, f := range logs {
		if data, err := os.ReadFile(f); err == nil {
			_ = os.WriteFile(filepath.Join(filepath.Dir(path), prefix+filepath.Base(f)), data, 0o644)
		}
	}
	return nil
}
