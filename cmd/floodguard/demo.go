package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/floodguard/floodguard/internal/demo"
)

// runDemo is `floodguard demo`, the live demo `make demo` runs; the demo
// itself is internal/demo.
func runDemo(e env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	o := demo.DefaultOptions()
	fs.DurationVar(&o.WarmUp, "warm-up", o.WarmUp, "the daemon's warm-up (3s..2m)")
	fs.DurationVar(&o.TTL, "ttl", o.TTL, "how long a ban lasts (2s..5m)")
	fs.DurationVar(&o.Flood, "flood", o.Flood, "how long the hping3 flood lasts (2s..2m)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: floodguard demo [flags]   (as root)")
		fmt.Fprintln(e.stderr, "\nThe live demo: three hosts in network namespaces joined by a bridge; floodguard")
		fmt.Fprintln(e.stderr, "protects an HTTP server while a benign client makes requests and hping3 floods it.")
		fmt.Fprintln(e.stderr, "Everything is removed at the end, also on Ctrl-C.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments %v", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err := demo.Run(ctx, o, e.stdout, e.stderr)
	if errors.Is(err, demo.ErrOptions) {
		return usageError("%v", err)
	}
	return err
}
