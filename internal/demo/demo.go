// Package demo is floodguard's live demo, what `floodguard demo` and `make
// demo` run: a lab of network namespaces (internal/lab) with an HTTP server
// protected by `floodguard run`, a benign client and an attacker; hping3
// floods the server while the demo narrates what the daemon does, then
// prints a summary and removes everything it made.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/internal/ctxtime"
	"github.com/floodguard/floodguard/internal/humanize"
	"github.com/floodguard/floodguard/internal/lab"
)

const (
	// clientRate is the benign client's requests per second.
	clientRate = 20
	// hpingMax caps hping3's packet count (-c) at this rate times the
	// flood's duration; a timer stops it at the duration anyway.
	hpingMax = 50000
)

// Options shape a run of the demo.
type Options struct {
	// WarmUp is the daemon's warm-up (3s..2m).
	WarmUp time.Duration
	// TTL is how long a ban lasts (2s..5m).
	TTL time.Duration
	// Flood is how long the hping3 flood lasts (2s..2m).
	Flood time.Duration
	// Floodguard is the floodguard binary the demo runs as the daemon and
	// asks for its rules; empty means this process's own executable.
	Floodguard string
	// Upstream adds a router upstream (gobgpd) that floodguard announces
	// the flood's rule to over BGP FlowSpec (upstream.go).
	Upstream bool
}

// DefaultOptions are the demo's usual timings: a 10 s warm-up, 15 s bans
// and a 12 s flood, about half a minute in all.
func DefaultOptions() Options {
	return Options{WarmUp: 10 * time.Second, TTL: 15 * time.Second, Flood: 12 * time.Second}
}

// ErrOptions marks options out of their range: errors.Is(err, ErrOptions)
// for what Check and Run return then.
var ErrOptions = errors.New("demo options out of range")

type optionError string

func (e optionError) Error() string      { return string(e) }
func (optionError) Is(target error) bool { return target == ErrOptions }

// Check reports the first option out of its range; the message names it
// as `floodguard demo`'s flag does.
func (o Options) Check() error {
	for _, b := range []struct {
		name      string
		v, lo, hi time.Duration
	}{{"warm-up", o.WarmUp, 3 * time.Second, 2 * time.Minute}, {"ttl", o.TTL, 2 * time.Second, 5 * time.Minute}, {"flood", o.Flood, 2 * time.Second, 2 * time.Minute}} {
		if b.v < b.lo || b.v > b.hi {
			return optionError(fmt.Sprintf("-%s %v: want %v..%v", b.name, b.v, b.lo, b.hi))
		}
	}
	return nil
}

// Run runs the live demo, narrating on stdout, and removes the lab at the
// end, also when ctx is cancelled (Ctrl-C): then it prints "interrupted"
// and returns an error saying so. It needs root and hping3. Should the
// demo fail, the last lines of the daemon's log go to stderr.
func Run(ctx context.Context, opt Options, stdout, stderr io.Writer) error {
	if err := opt.Check(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("the live demo needs root: it creates network namespaces and attaches an XDP program " +
			"(run: sudo make demo; `make demo-replay` is the offline demo, for any user)")
	}
	if _, err := exec.LookPath("hping3"); err != nil {
		return fmt.Errorf("hping3 is needed for the flood (`make demo` installs it): %w", err)
	}
	if opt.Upstream {
		if err := checkUpstreamTools(); err != nil {
			return err
		}
	}
	self := opt.Floodguard
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return fmt.Errorf("find the floodguard binary: %w", err)
		}
	}
	d := &demo{out: stdout, opt: opt, self: self, t0: time.Now()}
	err := d.run(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "\ninterrupted")
		err = errors.New("interrupted")
	}
	if err != nil && ctx.Err() == nil && d.fg != nil {
		fmt.Fprintf(stderr, "last lines of floodguard's log:\n%s", humanize.Tail(d.fg.Log.String(), 15))
	}
	d.cleanup()
	return err
}

// demo is one run of the live demo.
type demo struct {
	out  io.Writer
	opt  Options
	self string
	t0   time.Time

	lab                      *lab.Lab
	server, client, attacker *lab.Netns
	config                   string
	http                     *lab.HTTPServer
	fg                       *lab.Process
	benign                   *lab.Client

	// With Options.Upstream: the router, and when the rule was in its
	// table and left it.
	router            *lab.Netns
	gobgpd            *lab.Process
	routeIn, routeOut time.Time
}

// say prints one line of the timeline, stamped with the time since start.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] %s\n", time.Since(d.t0).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context) error {
	if err := d.setup(); err != nil {
		return err
	}
	if d.opt.Upstream {
		if err := d.startRouter(ctx); err != nil {
			return err
		}
	}
	if err := d.startDaemon(); err != nil {
		return err
	}
	var err error
	d.benign, err = d.client.StartClient(lab.ClientOptions{
		URL: d.http.URL + "/", Local: lab.DemoClient, Rate: clientRate, Timeout: time.Second, MaxDuration: 5 * time.Minute,
	})
	if err != nil {
		return err
	}
	d.say("benign client: %d HTTP requests/s from %s, each to be answered within 1 s", clientRate, lab.DemoClient)
	if d.opt.Upstream {
		if err := d.waitSession(ctx); err != nil {
			return err
		}
	}

	warm, _, err := d.waitEvent(ctx, 0, d.opt.WarmUp+15*time.Second, "warmed_up")
	if err != nil {
		return err
	}
	d.say("baseline learned: %s pps of normal traffic; floodguard now judges traffic against it", humanize.SI(warm.Num("baseline")))
	// Half a tick more: the flood starts mid-tick.
	if err := ctxtime.Sleep(ctx, 2500*time.Millisecond); err != nil {
		return err
	}
	d.say("benign client: %s", d.benign.Stats(time.Time{}, time.Time{}))
	return d.attack(ctx)
}

// setup builds the lab: server, client and attacker namespaces on a
// bridge, the HTTP server, floodguard's config.
func (d *demo) setup() error {
	l, err := lab.New()
	if err != nil {
		return err
	}
	d.lab = l
	// The demo's hosts, one namespace each, joined by a bridge in a fourth.
	hostList := lab.DemoHosts()
	if d.opt.Upstream {
		hostList = upstreamHosts()
	}
	_, hosts, err := l.Bridged(hostList...)
	if err != nil {
		return err
	}
	d.server, d.client, d.attacker = hosts[0], hosts[1], hosts[2]
	if d.opt.Upstream {
		d.router = hosts[3]
	}
	pins, err := l.BPFFS()
	if err != nil {
		return err
	}
	d.config = filepath.Join(l.Dir(), "floodguard.yaml")
	cfg := fmt.Sprintf(`# floodguard live demo: a short warm-up and short bans, so that it all
# happens in about a minute; everything else as shipped.
warm_up: %s
bans:
  ttl: %s
daemon:
  pin_dir: %s
  state_dir: %s
  runtime_dir: %s
  max_sources: 65536
`, d.opt.WarmUp, d.opt.TTL, filepath.Join(pins, "floodguard"), filepath.Join(l.Dir(), "state"), filepath.Join(l.Dir(), "run"))
	if d.opt.Upstream {
		cfg += upstreamConfig()
	}
	if err := os.WriteFile(d.config, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("write the demo config: %w", err)
	}
	d.http, err = d.server.ServeHTTP(netip.AddrPortFrom(lab.DemoServer, 80))
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "floodguard live demo: %s hosts in network namespaces, joined by a bridge\n", [...]string{3: "three", 4: "four"}[len(hosts)])
	fmt.Fprintf(d.out, "  server    %-12s an HTTP server, protected by `floodguard run` (XDP on eth0)\n", lab.DemoServer)
	fmt.Fprintf(d.out, "  client    %-12s a benign HTTP client\n", lab.DemoClient)
	fmt.Fprintf(d.out, "  attacker  %-12s hping3, later\n", lab.DemoAttacker)
	if d.opt.Upstream {
		fmt.Fprintf(d.out, "  router    %-12s the provider's router upstream (gobgpd), peering with floodguard over BGP\n", demoRouter)
	}
	fmt.Fprintf(d.out, "config: warm-up %s, bans for %s (namespaces %s-*)\n\n", d.opt.WarmUp, d.opt.TTL, l.ID())
	return nil
}

func (d *demo) startDaemon() error {
	p, err := d.server.Start(d.self, "run", "--interface", "eth0", "--config", d.config, "--log-format", "json", "--detach-on-exit")
	if err != nil {
		return err
	}
	d.fg = p
	ev, _, err := p.Log.WaitEvent(0, 15*time.Second, "attached", nil)
	if err != nil {
		return fmt.Errorf("floodguard did not start: %w", err)
	}
	d.say("floodguard run: XDP program attached to eth0 in the server namespace (%s mode); learning the baseline for %s",
		ev.Str("mode"), d.opt.WarmUp)
	return nil
}

// waitEvent waits for a daemon log event, or ctx.
func (d *demo) waitEvent(ctx context.Context, from int, timeout time.Duration, event string) (lab.Entry, int, error) {
	type res struct {
		e   lab.Entry
		i   int
		err error
	}
	c := make(chan res, 1)
	go func() {
		e, i, err := d.fg.Log.WaitEvent(from, timeout, event, nil)
		c <- res{e, i, err}
	}()
	select {
	case r := <-c:
		return r.e, r.i, r.err
	case <-ctx.Done():
		return lab.Entry{}, -1, ctx.Err()
	}
}

// attack floods the server with hping3 and narrates until the rule has
// expired.
func (d *demo) attack(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mark := d.fg.Log.Len()
	count := int(hpingMax * d.opt.Flood.Seconds())
	// -i u1: as fast as hping3's usleep pacing goes, some 10-30k pps;
	// -c bounds it should the timer below not stop it.
	hp, err := d.attacker.Start("hping3", "-q", "-n", "--udp", "-p", "9", "-i", "u1", "-c", strconv.Itoa(count), lab.DemoServer.String())
	if err != nil {
		return err
	}
	start := time.Now()
	// SIGINT makes hping3 print the statistics the summary reads; it has
	// been seen to miss one under load, so it is repeated, and SIGKILL
	// ends it for sure (without its statistics then).
	stopFlood := time.AfterFunc(d.opt.Flood, func() {
		for i := range 4 {
			select {
			case <-hp.Done():
				return
			default:
			}
			if i == 3 {
				hp.Kill()
				return
			}
			hp.Signal(os.Interrupt)
			select {
			case <-hp.Done():
				return
			case <-time.After(time.Second):
			}
		}
	})
	defer stopFlood.Stop()
	d.say("FLOOD: hping3 --udp from %s to the server, for %s", lab.DemoAttacker, d.opt.Flood)

	events := make(chan lab.Entry)
	go func() {
		for i := mark; ; i++ {
			e, j, err := d.fg.Log.Wait(i, time.Minute, func(e lab.Entry) bool { return e.Event() != "" })
			if err != nil {
				return
			}
			i = j
			select {
			case events <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	var routes <-chan routerChange // nil, never ready, without a router
	if d.opt.Upstream {
		routes = d.watchRouter(ctx)
	}
	progress := time.NewTicker(2 * time.Second)
	defer progress.Stop()
	deadline := time.NewTimer(d.opt.Flood + 2*d.opt.TTL + 30*time.Second)
	defer deadline.Stop()

	target := netip.PrefixFrom(lab.DemoAttacker, 32).String()
	floodDone := hp.Done()
	var (
		banned, expired   bool
		ended             bool // the attack_end of the attacker
		expiredAt         time.Time
		installedAfter    time.Duration
		dropped, lastDrop uint64
		lastAt            = start
		sent              uint64
		floodEnd          time.Time
	)
	readDrops := func() {
		if b, ok := d.ban(target); ok {
			dropped = max(dropped, b.Packets)
		}
	}
	// Until the flood has stopped and its rule expired, and the detector
	// has called the attack over (or a few seconds more have passed), and
	// the router's table no longer holds a rule it got.
	for floodDone != nil || !expired || !ended && time.Since(expiredAt) < 8*time.Second ||
		!d.routeIn.IsZero() && d.routeOut.IsZero() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errors.New("the rule did not expire in time")
		case e := <-events:
			switch e.Event() {
			case "attack_start":
				if e.Str("target") == lab.DemoAttacker.String() {
					d.say("ATTACK from %s at %s pps (its baseline: %s pps)", lab.DemoAttacker, humanize.SI(e.Num("pps")), humanize.SI(e.Num("baseline")))
				} else {
					d.say("attack on %s %s at %s pps", e.Str("scope"), e.Str("target"), humanize.SI(e.Num("pps")))
				}
			case "ban":
				if banned {
					// At expiry a rule whose target still floods is
					// renewed, for twice as long.
					d.say("rule renewed, the flood goes on: drop %s for %s", e.Str("target"), e.Str("ttl"))
					break
				}
				at, _ := e.TimeField("tick_end")
				installedAfter = at.Add(time.Duration(e.Num("rule_write_ms") * float64(time.Millisecond))).Sub(start)
				banned = true
				d.say("rule installed in the kernel %d ms after the flood started: drop %s for %s",
					installedAfter.Milliseconds(), e.Str("target"), e.Str("ttl"))
			case "upstream_announce":
				d.say("BGP: floodguard announces %s to the router (over escalate_pps %d)", e.Str("route"), escalatePPS)
			case "upstream_withdraw":
				d.say("BGP: floodguard withdraws %s: the local rule ended", e.Str("route"))
			case "attack_end":
				ended = ended || e.Str("target") == lab.DemoAttacker.String()
				d.say("attack over: %s calm for 5 ticks", e.Str("target"))
			case "unban":
				if e.Str("target") == target {
					expired, expiredAt = true, time.Now()
					d.say("rule expired; flood over: %s may send again", lab.DemoAttacker)
				}
			}
		case ch := <-routes:
			if ch.added && d.routeIn.IsZero() {
				d.routeIn = ch.at
				d.say("ROUTER: %s in its FlowSpec table %d ms after the flood started: dropped before the server's link",
					ch.rule, ch.at.Sub(start).Milliseconds())
			} else if !ch.added && !d.routeIn.IsZero() {
				d.routeOut = ch.at
				d.say("ROUTER: %s gone from its table", ch.rule)
			}
		case <-progress.C:
			if floodDone == nil {
				continue
			}
			readDrops()
			now := time.Now()
			if banned {
				d.say("kernel dropped %s packets so far (%s pps); benign client: %.1f %% of requests served",
					humanize.Group(dropped, ","), humanize.SI(float64(dropped-lastDrop)/now.Sub(lastAt).Seconds()), 100*d.benign.Stats(start, time.Time{}).SuccessRate())
			} else {
				d.say("benign client: %.1f %% of requests served", 100*d.benign.Stats(start, time.Time{}).SuccessRate())
			}
			lastDrop, lastAt = dropped, now
		case <-floodDone:
			floodDone = nil
			floodEnd = time.Now()
			readDrops()
			sent = hpingSent(hp.Log.String())
			sentText := humanize.Group(sent, ",") + " packets"
			if sent == 0 {
				sentText = "an unknown number of packets (it printed no statistics)"
			}
			d.say("flood stopped after %.1f s: hping3 sent %s; the kernel dropped %s",
				floodEnd.Sub(start).Seconds(), sentText, humanize.Group(dropped, ","))
			if banned && !expired {
				d.say("waiting for the rule to expire (it was installed for %s)", d.opt.TTL)
			}
		}
	}
	d.summary(start, floodEnd, installedAfter, sent, dropped)
	return nil
}

// ban reads one rule with `floodguard bans -o json`, as an operator would.
func (d *demo) ban(target string) (daemon.Ban, bool) {
	out, err := exec.Command(d.self, "bans", "-o", "json", "--config", d.config).Output()
	if err != nil {
		return daemon.Ban{}, false
	}
	var bans []daemon.Ban
	if json.Unmarshal(out, &bans) != nil {
		return daemon.Ban{}, false
	}
	for _, b := range bans {
		if b.Target == target {
			return b, true
		}
	}
	return daemon.Ban{}, false
}

func (d *demo) summary(start, end time.Time, installedAfter time.Duration, sent, dropped uint64) {
	during := d.benign.Stats(start, end)
	all := d.benign.Stop()
	fmt.Fprintf(d.out, "\nsummary\n")
	fmt.Fprintf(d.out, "  detection:     rule in the kernel %d ms after the flood started\n", installedAfter.Milliseconds())
	share := ""
	if sent > 0 {
		share = fmt.Sprintf(" (%.1f %%)", 100*float64(dropped)/float64(sent))
	}
	if sent > 0 {
		fmt.Fprintf(d.out, "  flood:         %s packets sent, %s dropped by XDP in the kernel%s\n", humanize.Group(sent, ","), humanize.Group(dropped, ","), share)
	} else {
		fmt.Fprintf(d.out, "  flood:         %s packets dropped by XDP in the kernel\n", humanize.Group(dropped, ","))
	}
	if d.opt.Upstream {
		if d.routeIn.IsZero() {
			fmt.Fprintf(d.out, "  upstream:      no rule reached the router's table\n")
		} else {
			fmt.Fprintf(d.out, "  upstream:      rule in the router's table %d ms after the flood started, gone %.1f s after the flood stopped\n",
				d.routeIn.Sub(start).Milliseconds(), d.routeOut.Sub(end).Seconds())
		}
	}
	fmt.Fprintf(d.out, "  benign client: %.1f %% of %d requests served during the flood, %.1f %% of %d overall\n",
		100*during.SuccessRate(), during.Requests, 100*all.SuccessRate(), all.Requests)
	if all.FirstError != "" {
		fmt.Fprintf(d.out, "                 (first failure: %s)\n", all.FirstError)
	}
}

// cleanup stops floodguard (which removes its program) and the lab.
func (d *demo) cleanup() {
	if d.lab == nil {
		return
	}
	fmt.Fprintf(d.out, "\ncleaning up: stopping floodguard, removing the namespaces %s-*\n", d.lab.ID())
	if d.fg != nil && !d.fg.Exited() {
		d.fg.Signal(syscall.SIGTERM)
		d.fg.Wait(5 * time.Second)
	}
	if err := d.lab.Close(); err != nil {
		fmt.Fprintf(d.out, "cleanup: %v\n", err)
	}
}

var hpingSentRe = regexp.MustCompile(`(\d+) packets transmitted`)

// hpingSent reads the packet count from hping3's closing statistics.
func hpingSent(out string) uint64 {
	m := hpingSentRe.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}
