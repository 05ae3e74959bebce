package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// newLogger returns the daemon's zerolog logger. format is auto (console on
// a terminal, else JSON), json, console or journald; level the least level
// logged. Under systemd, when JOURNAL_STREAM names the log's file (standard
// error), or with journald, every line starts with its syslog priority
// (<3> error, <4> warn, <6> info, <7> debug) so journald records it and
// `journalctl -p err` filters on it.
func newLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := parseLogLevel(level)
	if err != nil {
		return zerolog.Logger{}, err
	}
	journal := journalStream(w, os.Getenv("JOURNAL_STREAM"))
	console := false
	switch format {
	case "json":
	case "console":
		console = true
	case "journald":
		// Text, without colours or a timestamp: journald stamps each line.
		journal = true
		console = true
	case "auto":
		if f, ok := w.(*os.File); ok && !journal {
			console = isatty.IsTerminal(f.Fd())
		}
	default:
		return zerolog.Logger{}, fmt.Errorf("-log-format %q: want auto, json, console or journald", format)
	}
	var out io.Writer = w
	switch {
	case journal:
		out = &priorityWriter{out: w, text: console}
	case console:
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	l := zerolog.New(out).Level(lvl)
	if !journal || !console {
		l = l.With().Timestamp().Logger()
	}
	return l, nil
}

func parseLogLevel(s string) (zerolog.Level, error) {
	switch s {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info", "":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return 0, fmt.Errorf("-log-level %q: want debug, info, warn or error", s)
}

// journalStream reports whether w is the stream systemd connected to the
// journal: JOURNAL_STREAM is "DEVICE:INODE" of that stream, and a child
// that inherited the variable with other output must not use it.
func journalStream(w io.Writer, env string) bool {
	f, ok := w.(*os.File)
	if env == "" || !ok {
		return false
	}
	dev, ino, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	return err1 == nil && err2 == nil && uint64(st.Dev) == d && st.Ino == i
}

// priorityWriter prefixes each log line with its syslog priority, the
// stream protocol journald reads (sd-daemon(3)); text formats the line as
// plain text rather than JSON.
type priorityWriter struct {
	out  io.Writer
	text bool
}

func (p *priorityWriter) Write(b []byte) (int, error) {
	return p.WriteLevel(zerolog.NoLevel, b)
}

func (p *priorityWriter) WriteLevel(l zerolog.Level, b []byte) (int, error) {
	var buf bytes.Buffer
	buf.WriteString(syslogPriority(l))
	if p.text {
		cw := zerolog.ConsoleWriter{Out: &buf, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}
		if _, err := cw.Write(b); err != nil {
			return 0, err
		}
	} else {
		buf.Write(b)
	}
	if _, err := p.out.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// syslogPriority is the "<N>" prefix of a zerolog level.
func syslogPriority(l zerolog.Level) string {
	switch l {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return "<7>"
	case zerolog.WarnLevel:
		return "<4>"
	case zerolog.ErrorLevel:
		return "<3>"
	case zerolog.FatalLevel:
		return "<2>"
	case zerolog.PanicLevel:
		return "<0>"
	}
	return "<6>"
}
