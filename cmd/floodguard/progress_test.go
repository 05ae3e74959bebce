package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestShowProgress(t *testing.T) {
	for _, c := range []struct {
		format   string
		terminal bool
		term     string
		want     bool
	}{
		{"human", true, "xterm-256color", true},
		{"human", true, "", true},
		{"human", false, "xterm", false}, // piped or redirected
		{"jsonl", true, "xterm", false},  // jsonl never gets a bar
		{"jsonl", false, "xterm", false},
		{"human", true, "dumb", false}, // no cursor control
	} {
		if got := showProgress(c.format, c.terminal, c.term); got != c.want {
			t.Errorf("showProgress(%q, %v, %q) = %v, want %v", c.format, c.terminal, c.term, got, c.want)
		}
	}
}

func TestRenderProgress(t *testing.T) {
	s := progressState{done: 250e6, total: 1000e6, packets: 3e6, elapsed: 10 * time.Second}
	got := renderProgress(s, 79)
	if bar, _, ok := strings.Cut(strings.TrimPrefix(got, "replay ["), "]"); !ok || len(bar) < 10 ||
		strings.Count(bar, "#") != len(bar)/4 || strings.Trim(bar, "#.") != "" {
		t.Errorf("bar of %q is not a quarter full", got)
	}
	for _, want := range []string{"25%", "250.0MB of 1.0GB", "300.0k pkt/s", "0:30 left"} {
		if !strings.Contains(got, want) {
			t.Errorf("renderProgress = %q, want it to contain %q", got, want)
		}
	}
	if n := len([]rune(got)); n > 79 {
		t.Errorf("renderProgress is %d columns wide, want at most 79: %q", n, got)
	}
	if strings.ContainsAny(got, "\r\n\x1b") {
		t.Errorf("renderProgress returns control characters: %q", got)
	}
	// The bar's fill follows the fraction.
	full := renderProgress(progressState{done: 10, total: 10, packets: 1, elapsed: time.Second}, 79)
	if !strings.Contains(full, "100%") || !strings.Contains(full, "#] ") || strings.Contains(full, ".") {
		t.Errorf("finished bar = %q", full)
	}
	// Nothing read yet: no time left known.
	if got := renderProgress(progressState{total: 10}, 79); !strings.Contains(got, "--:-- left") || !strings.Contains(got, "  0%") {
		t.Errorf("bar before any byte = %q", got)
	}
	// Hours.
	if got := renderProgress(progressState{done: 1, total: 10000, packets: 1, elapsed: time.Second}, 79); !strings.Contains(got, "2:46:39 left") {
		t.Errorf("long bar = %q", got)
	}
	// Standard input: no total, so no bar, no percentage, no time left.
	in := renderProgress(progressState{done: 5e6, total: -1, packets: 1000, elapsed: 2 * time.Second}, 79)
	if in != "replay: 5.0MB read  500 pkt/s" {
		t.Errorf("stdin progress = %q", in)
	}
	// A narrow terminal drops the bar, then cuts the line.
	if got := renderProgress(s, 50); strings.Contains(got, "[") || len([]rune(got)) > 50 {
		t.Errorf("narrow progress = %q", got)
	}
	if got := renderProgress(s, 20); len([]rune(got)) > 20 {
		t.Errorf("very narrow progress = %q", got)
	}
}

// TestProgressBarRedraws drives the bar with a fake clock: nothing in the
// first half second, then at most ten redraws a second, and a clear that
// erases the line.
func TestProgressBarRedraws(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var done int64
	p := newProgressBar(&out, func() int { return 80 }, func() (int64, int64, uint64) { return done, 1000, uint64(done) }, clock)

	for range 40 { // 0.4 s in 10 ms steps: too early to draw
		now = now.Add(10 * time.Millisecond)
		p.update()
	}
	if out.Len() != 0 {
		t.Fatalf("bar drawn before %v: %q", progressDelay, out.String())
	}
	for range 300 { // 3 s more in 10 ms steps
		now = now.Add(10 * time.Millisecond)
		done += 3
		p.update()
	}
	draws := strings.Count(out.String(), "\r")
	if draws < 20 || draws > 31 {
		t.Errorf("%d redraws in 2.6 s of drawing time, want about 10 a second", draws)
	}
	if !strings.HasSuffix(out.String(), "\x1b[K") {
		t.Errorf("redraw does not erase the rest of the line: %q", out.String()[max(0, out.Len()-40):])
	}
	out.Reset()
	// Output sharing the terminal erases the bar first.
	var stdout bytes.Buffer
	w := p.wrap(&stdout)
	w.Write([]byte("event\n"))
	if out.String() != "\r\x1b[K" || stdout.String() != "event\n" {
		t.Errorf("write through wrap: stderr %q, stdout %q", out.String(), stdout.String())
	}
	out.Reset()
	p.clear() // already clear: nothing to erase
	if out.Len() != 0 {
		t.Errorf("second clear wrote %q", out.String())
	}

	// The nil bar (no terminal, jsonl) does nothing.
	var nilBar *replayProgress
	nilBar.update()
	nilBar.clear()
	if w := nilBar.wrap(&stdout); w != &stdout {
		t.Errorf("nil bar wraps the output")
	}
}

// TestReplayNoProgressWhenPiped: in-process replays write to buffers, not
// terminals, so standard error stays empty.
func TestReplayNoProgressWhenPiped(t *testing.T) {
	var stdout, stderr bytes.Buffer
	path := writeTinyScenario(t)
	if code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, []string{"replay", path}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr not empty without a terminal: %q", stderr.String())
	}
}
