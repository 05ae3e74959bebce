package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/daemon"
)

func runDaemon(e env, args []string) error {
	fs := newFlagSet(e, "run", "--interface IFACE [--config FILE] [flags]")
	iface := fs.String("interface", "", "network `interface` to protect (overrides daemon.interface)")
	config := fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	detach := fs.Bool("detach-on-exit", false, "remove the XDP program and its rules on a clean stop")
	logFormat := fs.String("log-format", "auto", "log `format`: auto (console on a terminal, else JSON), json or console")
	metricsListen := fs.String("metrics-listen", "", "serve Prometheus metrics on `ADDR` (HOST:PORT, e.g. 127.0.0.1:9797; overrides daemon.metrics_listen)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected arguments %v", pos)
	}
	log, err := newLogger(e.stderr, *logFormat)
	if err != nil {
		return usageError("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	return daemon.Run(ctx, daemon.Options{
		ConfigPath: *config, Interface: *iface, DetachOnExit: *detach, Reload: reload, Log: log,
		MetricsListen: *metricsListen, Version: version,
	})
}

// newLogger returns a zerolog logger: JSON (for journald) unless the output
// is a terminal or console is asked for.
func newLogger(w io.Writer, format string) (zerolog.Logger, error) {
	console := false
	switch format {
	case "json":
	case "console":
		console = true
	case "auto":
		if f, ok := w.(*os.File); ok {
			console = isatty.IsTerminal(f.Fd())
		}
	default:
		return zerolog.Logger{}, fmt.Errorf("-log-format %q: want auto, json or console", format)
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).With().Timestamp().Logger(), nil
}
