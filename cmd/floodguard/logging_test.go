package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestJournaldPriorities: with --log-format journald every line starts with
// its syslog priority, and --log-level drops the lines below it.
func TestJournaldPriorities(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "journald", "debug")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug().Msg("d")
	log.Info().Str("iface", "eth0").Msg("attached")
	log.Warn().Msg("w")
	log.Error().Msg("e")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"<7>", "<6>", "<4>", "<3>"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines: %q", len(lines), buf.String())
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) {
			t.Errorf("line %d %q: want prefix %s", i, l, want[i])
		}
	}
	if !strings.Contains(lines[1], "attached") || !strings.Contains(lines[1], "iface=eth0") {
		t.Errorf("info line %q", lines[1])
	}

	buf.Reset()
	log, err = newLogger(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("i")
	log.Warn().Msg("w")
	if s := buf.String(); strings.Contains(s, `"i"`) || !strings.HasPrefix(s, "{") {
		t.Errorf("json at warn: %q", s)
	}
	if _, err := newLogger(&buf, "json", "verbose"); err == nil {
		t.Error("-log-level verbose accepted")
	}
}

// TestJournalStreamJSON: JSON lines get the priority prefix when
// JOURNAL_STREAM names the log's file, as systemd sets it for the unit.
func TestJournalStreamJSON(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	log, err := newLogger(f, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Error().Msg("boom")
	log.Info().Msg("fine")
	b, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `<3>{"level":"error"`) || !strings.HasPrefix(lines[1], "<6>{") {
		t.Errorf("log under JOURNAL_STREAM: %q", b)
	}
	t.Setenv("JOURNAL_STREAM", "1:2")
	var buf bytes.Buffer
	if journalStream(f, "1:2") || journalStream(&buf, "1:2") {
		t.Error("JOURNAL_STREAM naming another stream was taken for ours")
	}
}
