// Command benchlive measures floodguard side by side with FastNetMon
// Community (Debian's fastnetmon package) on one namespace lab and one
// flood, one tool after the other (issue #5; `make bench-live` runs it).
//
// The lab is the live demo's: a server (198.18.0.1, an HTTP server and a
// UDP sink), a benign HTTP client (198.18.0.10, 20 requests a second all
// along) and an attacker (198.18.0.66) in namespaces joined by a bridge.
// For each tool and round it starts the tool in the server's namespace,
// lets it learn for the warm-up, measures its CPU over an idle window, then
// floods the server with UDP from the attacker with internal/lab's paced
// packet sender (fixed rate and duration, the same for both tools) and
// records: flood start to detection, to the tool's action, to the first
// packet dropped in the kernel, the share of the flood reaching the
// server's socket, the tool's CPU (and floodguard's XDP program's run time),
// the machine's CPU, and what happened to the benign client.
//
// With -compare-trips (`make bench-trips`, issue 17) it runs floodguard
// alone, trips on against off (daemon.trips), for each of -rates and each
// of -phases phases of the daemon's tick, and records flood start to the
// first drop in the kernel and to the ban line (trips.go, tripsreport.go).
//
// Root only. Everything is in namespaces it creates and removes on exit,
// Ctrl-C included; every wait is bounded.
//
// This file holds the flags and the top-level flow. The lab is in lab.go,
// what a round of either tool shares in round.go, the tools' runners in
// floodguard.go and fastnetmon.go, the report in report.go; /proc is
// read with internal/procstat.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/floodguard/floodguard/internal/ctxtime"
)

type options struct {
	rounds                int
	rate                  float64
	flood, warmUp, idle   time.Duration
	frameSize             int
	floodguard, fnm, out  string
	xdpRuntime, keepFiles bool
	fnmAverage            int
	// -compare-trips (trips.go).
	compareTrips bool
	rates        []float64
	phases       int
	tripFlood    time.Duration
	trafgen      string
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "rounds (each runs both tools), 1..10")
	flag.Float64Var(&o.rate, "rate", 20000, "flood rate in packets per second, 1000..200000")
	flag.DurationVar(&o.flood, "flood", 10*time.Second, "flood duration, 3s..60s")
	flag.DurationVar(&o.warmUp, "warm-up", 10*time.Second, "time each tool learns before the idle window, 3s..2m")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "idle CPU window, 2s..2m")
	flag.IntVar(&o.frameSize, "frame-size", 64, "flood frame size in bytes")
	flag.StringVar(&o.floodguard, "floodguard", "bin/floodguard", "floodguard binary")
	flag.StringVar(&o.fnm, "fastnetmon", "fastnetmon", "fastnetmon binary")
	flag.StringVar(&o.out, "out", "out/bench-live.md", "also write the report here")
	flag.BoolVar(&o.xdpRuntime, "xdp-runtime", true, "measure floodguard's XDP program run time (enables BPF run-time stats during its floods only)")
	flag.IntVar(&o.fnmAverage, "fastnetmon-average", 5, "FastNetMon's average_calculation_time in seconds (its default: 5), 1..60")
	flag.BoolVar(&o.keepFiles, "keep", false, "copy the tools' logs next to -out")
	flag.BoolVar(&o.compareTrips, "compare-trips", false, "instead: floodguard with trips on against off (issue 17), for each of -rates and -phases phases of the tick; no FastNetMon (report in out/bench-trips.md unless -out)")
	rates := flag.String("rates", "20000,60000,150000", "with -compare-trips: flood rates in packets per second, comma-separated, each 1000..200000 (above 40000 sent with trafgen)")
	flag.IntVar(&o.phases, "phases", 5, "with -compare-trips: phases of the tick, (i+½)/N, 1..20")
	flag.DurationVar(&o.tripFlood, "trip-flood", 3*time.Second, "with -compare-trips: flood duration, 2s..60s")
	flag.StringVar(&o.trafgen, "trafgen", "trafgen", "with -compare-trips: the trafgen binary (netsniff-ng)")
	flag.Parse()
	var err error
	if o.rates, err = parseRates(*rates); err != nil {
		fmt.Fprintln(os.Stderr, "benchlive: -rates:", err)
		os.Exit(2)
	}
	outSet := false
	flag.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if o.compareTrips && !outSet {
		o.out = "out/bench-trips.md"
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "benchlive:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if o.compareTrips {
		err = runTrips(ctx, o)
	} else {
		err = run(ctx, o)
	}
	if ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchlive:", err)
		os.Exit(1)
	}
}

func (o *options) check() error {
	switch {
	case o.rounds < 1 || o.rounds > 10:
		return fmt.Errorf("-rounds %d: want 1..10", o.rounds)
	case o.rate < 1000 || o.rate > 200000:
		return fmt.Errorf("-rate %v: want 1000..200000", o.rate)
	case o.flood < 3*time.Second || o.flood > time.Minute:
		return fmt.Errorf("-flood %v: want 3s..60s", o.flood)
	case o.warmUp < 3*time.Second || o.warmUp > 2*time.Minute:
		return fmt.Errorf("-warm-up %v: want 3s..2m", o.warmUp)
	case o.idle < 2*time.Second || o.idle > 2*time.Minute:
		return fmt.Errorf("-idle %v: want 2s..2m", o.idle)
	case o.fnmAverage < 1 || o.fnmAverage > 60:
		return fmt.Errorf("-fastnetmon-average %d: want 1..60", o.fnmAverage)
	case o.phases < 1 || o.phases > 20:
		return fmt.Errorf("-phases %d: want 1..20", o.phases)
	case o.tripFlood < 2*time.Second || o.tripFlood > time.Minute:
		return fmt.Errorf("-trip-flood %v: want 2s..60s", o.tripFlood)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, XDP)")
	}
	var err error
	if o.floodguard, err = filepath.Abs(o.floodguard); err != nil {
		return err
	}
	if _, err := os.Stat(o.floodguard); err != nil {
		return fmt.Errorf("floodguard binary: %w (make build)", err)
	}
	if o.compareTrips {
		if slices.Max(o.rates) > labMaxRate {
			if o.trafgen, err = exec.LookPath(o.trafgen); err != nil {
				return fmt.Errorf("trafgen: %w (apt-get install netsniff-ng)", err)
			}
		}
		return nil
	}
	if o.fnm, err = exec.LookPath(o.fnm); err != nil {
		return fmt.Errorf("fastnetmon: %w (apt-get install fastnetmon)", err)
	}
	return nil
}

// parseRates reads -rates: comma-separated rates, each 1000..200000.
func parseRates(s string) ([]float64, error) {
	var rates []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		if r < 1000 || r > 200000 {
			return nil, fmt.Errorf("%v: want 1000..200000", r)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

func run(ctx context.Context, o options) error {
	b := &bench{opt: o}
	defer b.close()
	if err := b.setup(); err != nil {
		return err
	}
	var results []result
	for r := 1; r <= o.rounds; r++ {
		order := []string{"floodguard", "fastnetmon"}
		if r%2 == 0 {
			slices.Reverse(order)
		}
		for _, tool := range order {
			if err := ctxtime.Sleep(ctx, 3*time.Second); err != nil { // let the machine settle
				return err
			}
			logf("round %d/%d: %s", r, o.rounds, tool)
			var res result
			var err error
			if tool == "floodguard" {
				res, err = b.runFloodguard(ctx, r)
			} else {
				res, err = b.runFastNetMon(ctx, r)
			}
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, tool, err)
			}
			logf("  %s", res.summary())
			results = append(results, res)
		}
	}
	report := b.report(results)
	fmt.Print(report)
	return b.writeReport(report)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
