package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/floodguard/floodguard/internal/demo"
)

// runDemo is `floodguard demo`, the live demo `make demo` runs; the demo
// itself is internal/demo.
func runDemo(e env, args []string) error {
	fs := newFlagSet(e, "demo", "[flags]   (as root)",
		"The live demo: three hosts in network namespaces joined by a bridge; floodguard",
		"protects an HTTP server while a benign client makes requests and hping3 floods it.",
		"Everything is removed at the end, also on Ctrl-C.")
	o := demo.DefaultOptions()
	fs.DurationVar(&o.WarmUp, "warm-up", o.WarmUp, "the daemon's warm-up (3s..2m)")
	fs.DurationVar(&o.TTL, "ttl", o.TTL, "how long a ban lasts (2s..5m)")
	fs.DurationVar(&o.Flood, "flood", o.Flood, "how long the hping3 flood lasts (2s..2m)")
	fs.BoolVar(&o.Upstream, "upstream", false, "add a router upstream (gobgpd) that floodguard announces the flood's rule to over BGP FlowSpec")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected arguments %v", pos)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err = demo.Run(ctx, o, e.stdout, e.stderr)
	if errors.Is(err, demo.ErrOptions) {
		return usageError("%v", err)
	}
	return err
}
