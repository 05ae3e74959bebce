// Command benchspoofed measures what a random-source (spoofed) flood costs
// floodguard's daemon (issue 14; `make bench-spoofed` runs it), optionally
// side by side with a second floodguard binary in the same run.
//
// The lab is the live demo's (server, benign client and attacker namespaces
// on a bridge, 198.18.0.0/24), plus an IPv6 address on the server. For each
// binary and round it starts `floodguard run` on the server's veth in
// native XDP mode and, after its warm-up:
//
//   - measures its CPU over an idle window (no traffic at all), then
//     starts the benign client, which runs through every flood;
//   - floods it from one fixed source (UDP, 60 kpps) on the quiet server,
//     the reference time to a ban;
//   - floods it with TCP SYNs from random sources (IPv6 across
//     2001:db8::/32, or IPv4 across 198.19.0.0/16) with trafgen as fast
//     as one CPU sends them, and starts a second single-source flood in
//     the middle of it;
//   - starts a third single-source flood right after it, and measures the
//     daemon through a quiet window after the flood.
//
// It records the daemon's CPU (utime+stime from /proc over each window),
// resident memory (VmRSS, VmHWM), its slow_map_read warnings (its JSON log
// on stderr), its tick punctuality (ticks done against ticks due, tick and
// map-read durations, from its Prometheus metrics), and for each
// single-source flood the time from its first frame to the daemon's ban
// line and to the flood's last datagram reaching the server's socket
// (after that XDP drops it: the ban is in the kernel). The binaries take
// turns round by round, each with its own pin directory on the lab's
// bpffs; the report goes to stdout and -out.
//
// Root only. Everything is in namespaces it creates and removes on exit,
// Ctrl-C included; every wait is bounded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/floodguard/floodguard/internal/benchout"
	"github.com/floodguard/floodguard/internal/ctxtime"
)

type options struct {
	floodguard, baseline, out string
	trafgen, sender           string
	family, rounds            int
	spoofRate, singleRate     float64
	flood, quiet, idle        time.Duration
	warmUp, single, during    time.Duration
	after                     time.Duration
	keep                      bool
}

// parseFlags reads the command line into options; a usage error is
// returned as is, for exit code 2.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchspoofed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.floodguard, "floodguard", "bin/floodguard", "the floodguard binary measured")
	fs.StringVar(&o.baseline, "baseline", "", "a second floodguard binary, run in the same rounds, taking turns (scripts/bench-spoofed.sh builds one from BASE_REF)")
	fs.StringVar(&o.out, "out", "out/bench-spoofed.md", "also write the report here (\"\": stdout only)")
	fs.StringVar(&o.sender, "sender", "trafgen", "the spoofed flood's sender: trafgen (netsniff-ng, one CPU, fastest) or lab (internal/lab's paced sender, needs -spoof-rate)")
	fs.StringVar(&o.trafgen, "trafgen", "trafgen", "the trafgen binary")
	fs.IntVar(&o.family, "family", 6, "spoofed sources: 6 (random across 2001:db8::/32) or 4 (random across 198.19.0.0/16)")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds, each running every binary once, 1..10")
	fs.Float64Var(&o.spoofRate, "spoof-rate", 0, "spoofed flood rate in packets per second (0: as fast as the sender goes; trafgen only)")
	fs.Float64Var(&o.singleRate, "single-rate", 60000, "rate of the single-source UDP floods, packets per second")
	fs.DurationVar(&o.flood, "flood", 20*time.Second, "spoofed flood duration, 5s..5m")
	fs.DurationVar(&o.quiet, "quiet", 60*time.Second, "quiet window measured after the spoofed flood, 5s..10m")
	fs.DurationVar(&o.idle, "idle", 20*time.Second, "idle CPU window before any flood (CPU time comes in 10 ms steps: 20 s resolves 0.05 %), 2s..5m")
	fs.DurationVar(&o.warmUp, "warm-up", 15*time.Second, "the daemon's warm_up before the idle window, 3s..5m")
	fs.DurationVar(&o.single, "single", 30*time.Second, "longest a single-source flood lasts (it ends once banned and stopped in the kernel), 2s..1m")
	fs.DurationVar(&o.during, "during", 0, "when a single-source flood starts within the spoofed one (0: half-way)")
	fs.DurationVar(&o.after, "after", time.Second, "delay from the spoofed flood's end to the next single-source flood (later if the one inside the flood is still on)")
	fs.BoolVar(&o.keep, "keep", false, "copy the daemons' logs next to -out")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.during == 0 {
		o.during = o.flood / 2
	}
	return o, o.check()
}

// check validates the options before anything is built: bad values fail
// here with the flag's name, not later with an errno.
func (o *options) check() error {
	switch {
	case o.family != 4 && o.family != 6:
		return fmt.Errorf("-family %d: want 4 or 6", o.family)
	case o.rounds < 1 || o.rounds > 10:
		return fmt.Errorf("-rounds %d: want 1..10", o.rounds)
	case o.sender != "trafgen" && o.sender != "lab":
		return fmt.Errorf("-sender %q: want trafgen or lab", o.sender)
	case o.sender == "lab" && !(o.spoofRate > 0 && o.spoofRate <= 1e6):
		return fmt.Errorf("-sender lab needs -spoof-rate in (0, 1000000], got %v", o.spoofRate)
	case o.spoofRate < 0 || o.spoofRate > 1e7:
		return fmt.Errorf("-spoof-rate %v: want 0..10000000", o.spoofRate)
	case o.singleRate < 1000 || o.singleRate > 200000:
		return fmt.Errorf("-single-rate %v: want 1000..200000", o.singleRate)
	case o.flood < 5*time.Second || o.flood > 5*time.Minute:
		return fmt.Errorf("-flood %v: want 5s..5m", o.flood)
	case o.quiet < 5*time.Second || o.quiet > 10*time.Minute:
		return fmt.Errorf("-quiet %v: want 5s..10m", o.quiet)
	case o.idle < 2*time.Second || o.idle > 5*time.Minute:
		return fmt.Errorf("-idle %v: want 2s..5m", o.idle)
	case o.warmUp < 3*time.Second || o.warmUp > 5*time.Minute:
		return fmt.Errorf("-warm-up %v: want 3s..5m", o.warmUp)
	case o.single < 2*time.Second || o.single > time.Minute:
		return fmt.Errorf("-single %v: want 2s..1m", o.single)
	case o.during < 0 || o.during >= o.flood:
		return fmt.Errorf("-during %v: the single-source flood must start within the spoofed one (-flood %v)", o.during, o.flood)
	case o.after < 0 || max(o.after, o.during+o.single-o.flood)+o.single > o.quiet:
		return fmt.Errorf("-after %v: the single-source floods (-single %v) must fit in the quiet window (-quiet %v)", o.after, o.single, o.quiet)
	}
	return nil
}

// binary is one floodguard build under test.
type binary struct {
	// label names it in the report: "current" or "baseline".
	label, path, version string
}

// resolve checks what the run needs on this machine (root, the binaries,
// trafgen) once the flags are known to be sane.
func (o *options) resolve() ([]binary, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root (network namespaces, XDP)")
	}
	var bins []binary
	for _, b := range []struct{ label, path string }{{"current", o.floodguard}, {"baseline", o.baseline}} {
		if b.path == "" {
			continue
		}
		abs, err := filepath.Abs(b.path)
		if err != nil {
			return nil, fmt.Errorf("%s binary: %w", b.label, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("%s binary: %w (make build)", b.label, err)
		}
		bins = append(bins, binary{label: b.label, path: abs, version: version(abs)})
	}
	if o.sender == "trafgen" {
		p, err := exec.LookPath(o.trafgen)
		if err != nil {
			return nil, fmt.Errorf("trafgen: %w (apt-get install netsniff-ng, or -sender lab)", err)
		}
		o.trafgen = p
	}
	return bins, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchspoofed:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err = run(ctx, o)
	if ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchspoofed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	bins, err := o.resolve()
	if err != nil {
		return err
	}
	b := &bench{opt: o}
	defer b.close()
	if err := b.setup(); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	var results []result
	for r := 1; r <= o.rounds; r++ {
		// Take turns, so that neither binary always runs on a machine
		// the other has just warmed (page cache, CPU frequency).
		order := slices.Clone(bins)
		if r%2 == 0 {
			slices.Reverse(order)
		}
		for _, bin := range order {
			if err := ctxtime.Sleep(ctx, 2*time.Second); err != nil { // let the machine settle
				return err
			}
			logf("round %d/%d: %s (%s)", r, o.rounds, bin.label, bin.version)
			res, err := b.round(ctx, bin, r)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, bin.label, err)
			}
			logf("  %s", res.summary())
			results = append(results, res)
		}
	}
	report := b.report(bins, results)
	fmt.Print(report)
	var logs []string
	if o.keep {
		logs = b.logs
	}
	if err := benchout.Write(o.out, report, "bench-spoofed.", logs); err != nil {
		return err
	}
	if o.out != "" {
		logf("report written to %s", o.out)
	}
	return nil
}

// version is the first line of `BIN version`.
func version(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "(unknown version)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
