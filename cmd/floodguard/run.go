package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/floodguard/floodguard/daemon"
	fgconfig "github.com/floodguard/floodguard/internal/config"
)

func runDaemon(e env, args []string) error {
	fs := newFlagSet(e, "run", "--interface IFACE [--config FILE] [flags]")
	iface := fs.String("interface", "", "network `interface` to protect (overrides daemon.interface)")
	config := fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	detach := fs.Bool("detach-on-exit", false, "remove the XDP program and its rules on a clean stop")
	logFormat := fs.String("log-format", "auto", "log `format`: auto (console on a terminal, else JSON), json, console or journald (text with syslog priorities; JSON gets them too when JOURNAL_STREAM names standard error)")
	logLevel := fs.String("log-level", "info", "least `level` logged: debug, info, warn or error")
	metricsListen := fs.String("metrics-listen", "", "serve Prometheus metrics on `ADDR` (HOST:PORT, e.g. 127.0.0.1:9797; overrides daemon.metrics_listen)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected arguments %v", pos)
	}
	log, err := newLogger(e.stderr, *logFormat, *logLevel)
	if err != nil {
		return usageError("%v", err)
	}
	if paths, err := fgconfig.LoadPaths(*config); err == nil {
		if err := ensureBPFFS(paths.PinDir, log); err != nil {
			return err
		}
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
