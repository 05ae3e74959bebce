package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/capture"
	"github.com/floodguard/floodguard/internal/humanize"
)

// Progress bar timing: nothing is drawn for replays shorter than
// progressDelay, and the bar is redrawn at most every progressEvery.
const (
	progressDelay = 500 * time.Millisecond
	progressEvery = 100 * time.Millisecond
)

// showProgress decides whether a replay draws a progress bar: only on a
// terminal that understands cursor control, and never with jsonl output
// (whose consumers are programs).
func showProgress(format string, stderrIsTerminal bool, term string) bool {
	return format != "jsonl" && stderrIsTerminal && term != "dumb"
}

// progressState is what the bar shows.
type progressState struct {
	done, total int64 // bytes read and the files' total size (-1: unknown)
	packets     uint64
	elapsed     time.Duration
}

// renderProgress formats the bar to fit in width columns, without a line
// end: the bar, the percentage, bytes read of the total, packets per second
// and the time left. Unknown totals (standard input) show what was read and
// the rate only.
func renderProgress(s progressState, width int) string {
	rate := ""
	if secs := s.elapsed.Seconds(); secs > 0 {
		rate = humanize.SI(float64(s.packets)/secs) + " pkt/s"
	}
	if s.total <= 0 {
		return progressFit(fmt.Sprintf("replay: %sB read  %s", humanize.SI(float64(s.done)), rate), width)
	}
	frac := min(max(float64(s.done)/float64(s.total), 0), 1)
	left := "--:-- left"
	if s.done > 0 && s.elapsed > 0 {
		rem := time.Duration(float64(s.elapsed) * float64(s.total-s.done) / float64(s.done))
		left = progressClock(rem) + " left"
	}
	tail := fmt.Sprintf(" %3.0f%%  %sB of %sB  %s  %s", 100*frac, humanize.SI(float64(s.done)), humanize.SI(float64(s.total)), rate, left)
	barW := min(width-len("replay [] ")-len([]rune(tail)), 40)
	if barW < 10 {
		return progressFit("replay"+tail, width)
	}
	n := int(frac * float64(barW))
	return "replay [" + strings.Repeat("#", n) + strings.Repeat(".", barW-n) + "]" + tail
}

// progressFit cuts s to width columns.
func progressFit(s string, width int) string {
	if r := []rune(s); len(r) > width && width > 0 {
		return string(r[:width])
	}
	return s
}

// progressClock formats a duration as m:ss or h:mm:ss.
func progressClock(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute%60), int(d/time.Second%60)
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// replayProgress draws the progress bar of a replay on standard error. A nil
// *replayProgress draws nothing, so callers need no checks.
type replayProgress struct {
	w     io.Writer
	width func() int
	// read returns the bytes read, the total (-1: unknown) and the packets.
	read  func() (done, total int64, packets uint64)
	now   func() time.Time
	start time.Time
	last  time.Time
	drawn bool
}

// newReplayProgress returns the bar for src, or nil when no bar is to be
// drawn (stderr is not a terminal, or the output is jsonl).
func newReplayProgress(format string, stderr io.Writer, src *capture.Replay) *replayProgress {
	f, ok := stderr.(*os.File)
	if !ok || !showProgress(format, isatty.IsTerminal(f.Fd()), os.Getenv("TERM")) {
		return nil
	}
	read := func() (int64, int64, uint64) {
		done, total := src.Progress()
		return done, total, src.Stats().Packets
	}
	return newProgressBar(f, func() int { return termWidth(f.Fd()) }, read, time.Now)
}

func newProgressBar(w io.Writer, width func() int, read func() (int64, int64, uint64), now func() time.Time) *replayProgress {
	t := now()
	return &replayProgress{w: w, width: width, read: read, now: now, start: t, last: t}
}

// update redraws the bar if it is due: not before progressDelay from the
// start, then at most every progressEvery.
func (p *replayProgress) update() {
	if p == nil {
		return
	}
	now := p.now()
	if now.Sub(p.last) < progressEvery || now.Sub(p.start) < progressDelay {
		return
	}
	p.last = now
	done, total, packets := p.read()
	line := renderProgress(progressState{done: done, total: total, packets: packets, elapsed: now.Sub(p.start)}, p.width()-1)
	fmt.Fprint(p.w, "\r"+line+"\x1b[K")
	p.drawn = true
}

// clear erases the bar, if drawn; the next update draws it again.
func (p *replayProgress) clear() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
	p.drawn = false
}

// termWidth returns the columns of the terminal fd, 80 if unknown.
func termWidth(fd uintptr) int {
	if ws, err := unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
		return int(ws.Col)
	}
	return 80
}

// wrap returns w, erasing the bar before each write to w, for output that
// shares the terminal with it.
func (p *replayProgress) wrap(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return clearingWriter{p, w}
}

type clearingWriter struct {
	p *replayProgress
	w io.Writer
}

func (c clearingWriter) Write(b []byte) (int, error) {
	c.p.clear()
	return c.w.Write(b)
}
