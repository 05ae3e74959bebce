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
// Root only. Everything is in namespaces it creates and removes on exit,
// Ctrl-C included; every wait is bounded.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	fgbpf "github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/internal/lab"
)

// The demo's lab: the same hosts as `floodguard demo`.
var (
	serverAddr   = lab.DemoServer
	clientAddr   = lab.DemoClient
	attackerAddr = lab.DemoAttacker
)

const (
	sinkPort   = 9
	clientRate = 20
	// detectGrace is how long after the flood a late detection still counts.
	detectGrace = 3 * time.Second
	// pollEvery is how often the drop counter and the notify file are read.
	pollEvery = 5 * time.Millisecond
	// fnmThreshold is FastNetMon's per-host threshold_pps: floodguard's
	// per-source floor.
	fnmThreshold = 1000
	// fnmAttackDir is where FastNetMon 1.2.4 writes attack details.
	fnmAttackDir = "/var/log/fastnetmon_attacks"
)

// fnmTmpFiles are the traffic summaries FastNetMon 1.2.4 rewrites every
// check_period.
var fnmTmpFiles = []string{"/tmp/fastnetmon.dat", "/tmp/fastnetmon_ipv6.dat"}

type options struct {
	rounds                int
	rate                  float64
	flood, warmUp, idle   time.Duration
	frameSize             int
	floodguard, fnm, out  string
	xdpRuntime, keepFiles bool
	fnmAverage            int
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
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "benchlive:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err := run(ctx, o)
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
	if o.fnm, err = exec.LookPath(o.fnm); err != nil {
		return fmt.Errorf("fastnetmon: %w (apt-get install fastnetmon)", err)
	}
	return nil
}

// bench is the lab shared by every run.
type bench struct {
	opt                          options
	lab                          *lab.Lab
	sw, server, client, attacker *lab.Netns
	pins                         string
	sender                       *lab.Sender
	frames                       lab.Frames
	sink                         *lab.UDPSink
	http                         *lab.HTTPServer
	logs                         []string // files to keep with -keep
	created                      []string // FastNetMon's files outside the lab, removed at the end
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
			if err := sleep(ctx, 3*time.Second); err != nil { // let the machine settle
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
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		logf("report written to %s", o.out)
		if o.keepFiles {
			for _, f := range b.logs {
				data, err := os.ReadFile(f)
				if err == nil {
					_ = os.WriteFile(filepath.Join(filepath.Dir(o.out), "bench-live."+filepath.Base(f)), data, 0o644)
				}
			}
		}
	}
	return nil
}

// setup builds the demo's topology: server, client and attacker namespaces
// on a bridge, the server's HTTP server and UDP sink, the benign client and
// the attacker's sender.
func (b *bench) setup() error {
	l, err := lab.New()
	if err != nil {
		return err
	}
	b.lab = l
	var hosts []*lab.Netns
	b.sw, hosts, err = l.Bridged(lab.DemoHosts()...)
	if err != nil {
		return err
	}
	b.server, b.client, b.attacker = hosts[0], hosts[1], hosts[2]
	if b.pins, err = l.BPFFS(); err != nil {
		return err
	}
	srvIf, err := b.server.Interface("eth0")
	if err != nil {
		return err
	}
	if b.sender, err = b.attacker.NewSender("eth0"); err != nil {
		return err
	}
	b.frames, err = lab.UDPFrames(lab.Packet{SrcMAC: b.sender.MAC, DstMAC: srvIf.HardwareAddr,
		Src: attackerAddr, Dst: serverAddr, SrcPort: 40000, DstPort: sinkPort, Size: b.opt.frameSize})
	if err != nil {
		return err
	}
	if b.sink, err = b.server.ListenUDP(netip.AddrPortFrom(serverAddr, sinkPort)); err != nil {
		return err
	}
	if b.http, err = b.server.ServeHTTP(netip.AddrPortFrom(serverAddr, 80)); err != nil {
		return err
	}
	// FastNetMon 1.2.4 logs an error for every attack without it.
	if _, err := os.Stat(fnmAttackDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(fnmAttackDir, 0o755); err == nil {
			b.created = append(b.created, fnmAttackDir)
		}
	}
	// It also writes its traffic summary to fixed files in /tmp.
	for _, f := range fnmTmpFiles {
		if _, err := os.Lstat(f); errors.Is(err, os.ErrNotExist) {
			b.created = append(b.created, f)
		}
	}
	logf("lab %s: server %v, benign client %v (%d HTTP requests/s), attacker %v", l.ID(), serverAddr, clientAddr, clientRate, attackerAddr)
	return nil
}

func (b *bench) close() {
	if b.lab != nil {
		if err := b.lab.Close(); err != nil {
			logf("cleanup: %v", err)
		}
	}
	for _, f := range b.created {
		_ = os.RemoveAll(f)
	}
}

// result is one tool's run.
type result struct {
	tool  string
	round int
	// offset is how long after a whole number of seconds of idle window
	// the flood started.
	offset time.Duration
	// sent is the flood's frames and its achieved rate; atServer the
	// frames the bridge forwarded to the server's interface.
	sent, atServer uint64
	sentPPS        float64
	// detect, action and drop are from the flood's first frame; negative
	// when it did not happen within the flood plus detectGrace.
	detect, action, drop time.Duration
	actionWhat           string
	// delivered counts flood datagrams that reached the server's socket.
	delivered uint64
	// CPU in cores (1 = one core busy): the tool's process idle and under
	// the flood, floodguard's XDP program under the flood (negative: not
	// measured), and the whole machine under the flood.
	cpuIdle, cpuFlood, xdpFlood, machineFlood float64
	// rssMiB is the tool's resident memory at the end of the flood.
	rssMiB float64
	// xdpPerPacket is the XDP program's mean run time per packet.
	xdpPerPacket time.Duration
	benign       lab.ClientStats
	benignHit    string
}

func (r result) summary() string {
	return fmt.Sprintf("flood %d frames at %.0f pps (%d at the server); detect %s, action %s (%s), drop %s; delivered %d; CPU idle %.1f%%, flood %.1f%%, xdp %s, machine %.0f%%; benign %s; %s",
		r.sent, r.sentPPS, r.atServer, ms(r.detect), ms(r.action), r.actionWhat, ms(r.drop), r.delivered,
		100*r.cpuIdle, 100*r.cpuFlood, pctOrNA(r.xdpFlood), 100*r.machineFlood, r.benign, r.benignHit)
}

// proc is a running tool, and how the flood is watched for it.
type proc struct {
	p *lab.Process
	// watch starts following the tool just before the flood; it returns
	// a function that stops following and reports the times (zero: never).
	watch func(ctx context.Context) (stop func() (detect, action, drop time.Time))
}

// measure is the common part of a run: idle window, flood, benign traffic.
func (b *bench) measure(ctx context.Context, res *result, pr proc, beforeFlood func() error, afterFlood func()) error {
	pid := pr.p.Cmd.Process.Pid
	// The benign client, for this run only (a client stops by itself
	// after 10 minutes at most).
	benign, err := b.client.StartClient(lab.ClientOptions{URL: b.http.URL + "/", Local: clientAddr,
		Rate: clientRate, Timeout: time.Second, MaxDuration: 5 * time.Minute})
	if err != nil {
		return err
	}
	defer benign.Stop()
	if err := sleep(ctx, time.Second); err != nil {
		return err
	}
	c0, err := procCPU(pid)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := sleep(ctx, b.opt.idle); err != nil {
		return err
	}
	c1, err := procCPU(pid)
	if err != nil {
		return fmt.Errorf("%s died while idle: %w\n%s", res.tool, err, tail(pr.p.Log.String(), 20))
	}
	res.cpuIdle = (c1 - c0) / time.Since(t0).Seconds()

	if beforeFlood != nil {
		if err := beforeFlood(); err != nil {
			return err
		}
	}
	// Both tools work in 1 s steps counted from when they started: delay
	// the flood by a different fraction of a second each round (evenly
	// spread, the same for both tools), so that the rounds sample the
	// phase of each tool's cycle evenly instead of one lucky or unlucky
	// phase.
	res.offset = time.Duration((float64(res.round) - 0.5) / float64(b.opt.rounds) * float64(time.Second))
	if err := sleep(ctx, res.offset); err != nil {
		return err
	}
	atServer0, err := b.txPackets()
	if err != nil {
		return err
	}
	delivered0 := b.sink.Received(attackerAddr)
	stopWatch := pr.watch(ctx)
	m0, err := machineCPU()
	if err != nil {
		return err
	}
	c2, _ := procCPU(pid)
	fst, ferr := b.sender.Flood(ctx, lab.Flood{Frames: b.frames, Rate: b.opt.rate, Duration: b.opt.flood})
	c3, cerr := procCPU(pid)
	res.rssMiB = procRSS(pid)
	m1, _ := machineCPU()
	window := time.Since(fst.Start).Seconds()
	if afterFlood != nil {
		afterFlood()
	}
	if ferr != nil {
		stopWatch()
		return ferr
	}
	if cerr != nil {
		stopWatch()
		return fmt.Errorf("%s died during the flood: %w\n%s", res.tool, cerr, tail(pr.p.Log.String(), 20))
	}
	res.cpuFlood = (c3 - c2) / window
	res.machineFlood = (m1 - m0) / window
	res.sent, res.sentPPS = fst.Sent, fst.Rate()
	if err := sleep(ctx, detectGrace); err != nil {
		stopWatch()
		return err
	}
	det, act, drop := stopWatch()
	res.detect, res.action, res.drop = since(fst.Start, det), since(fst.Start, act), since(fst.Start, drop)
	atServer1, err := b.txPackets()
	if err != nil {
		return err
	}
	res.atServer = atServer1 - atServer0
	res.delivered = b.sink.Settle(attackerAddr, 200*time.Millisecond, 2*time.Second) - delivered0
	res.benign = benign.Stats(fst.Start, fst.End.Add(time.Second))
	return nil
}

// --- floodguard ------------------------------------------------------------

func (b *bench) runFloodguard(ctx context.Context, round int) (result, error) {
	res := result{tool: "floodguard", round: round, xdpFlood: -1}
	dir := filepath.Join(b.lab.Dir(), fmt.Sprintf("fg%d", round))
	pinDir := filepath.Join(b.pins, fmt.Sprintf("floodguard%d", round))
	config := filepath.Join(dir, "floodguard.yaml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	// The shipped defaults, but a warm-up as long as FastNetMon's settling
	// time, bans outlasting the flood, and the lab's private directories.
	cfg := fmt.Sprintf("warm_up: %s\nbans:\n  ttl: 60s\ndaemon:\n  pin_dir: %s\n  state_dir: %s\n  runtime_dir: %s\n  max_sources: 65536\n",
		b.opt.warmUp, pinDir, filepath.Join(dir, "state"), filepath.Join(dir, "run"))
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		return res, err
	}
	p, err := b.server.Start(b.opt.floodguard, "run", "--interface", "eth0", "--config", config, "--log-format", "json", "--detach-on-exit")
	if err != nil {
		return res, err
	}
	defer func() {
		stopProcess(p)
		b.saveLog(p, fmt.Sprintf("floodguard%d.log", round))
	}()
	if _, _, err := p.Log.WaitEvent(0, 15*time.Second, "attached", nil); err != nil {
		return res, fmt.Errorf("floodguard did not attach: %w\n%s", err, tail(p.Log.String(), 20))
	}
	if err := waitCtx(ctx, func() error {
		_, _, err := p.Log.WaitEvent(0, b.opt.warmUp+15*time.Second, "warmed_up", nil)
		return err
	}); err != nil {
		return res, fmt.Errorf("floodguard did not warm up: %w\n%s", err, tail(p.Log.String(), 20))
	}
	x, err := fgbpf.OpenPinned(pinDir)
	if err != nil {
		return res, err
	}
	defer x.Close()
	var (
		prog    *ebpf.Program
		stats   io.Closer
		rt0     time.Duration
		runs0   uint64
		xdpRuns uint64
		flood0  time.Time
		xdpTime time.Duration
		xdpWall time.Duration
	)
	if b.opt.xdpRuntime {
		if prog, err = pinnedProgram(pinDir); err != nil {
			return res, err
		}
		defer prog.Close()
	}
	target := netip.PrefixFrom(attackerAddr, 32).String()
	watch := func(ctx context.Context) func() (time.Time, time.Time, time.Time) {
		mark := p.Log.Len()
		d0, _ := x.ReadStats()
		var drop time.Time
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the first packet dropped by XDP, from the pinned counters
			defer wg.Done()
			pollUntil(ctx, done, b.opt.flood+detectGrace+2*time.Second, func() bool {
				if s, err := x.ReadStats(); err == nil && s.DroppedPackets > d0.DroppedPackets {
					drop = time.Now()
					return true
				}
				return false
			})
		}()
		return func() (time.Time, time.Time, time.Time) {
			close(done)
			wg.Wait()
			var det, act time.Time
			for _, e := range p.Log.Entries()[mark:] {
				switch {
				case e.Event() == "attack_start" && e.Str("target") == attackerAddr.String() && det.IsZero():
					det = e.Read
				case e.Event() == "ban" && e.Str("target") == target && act.IsZero():
					act = e.Read
				}
			}
			return det, act, drop
		}
	}
	before := func() error {
		if prog == nil {
			return nil
		}
		if stats, err = ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err != nil {
			return fmt.Errorf("enable BPF run-time stats: %w (run with -xdp-runtime=false)", err)
		}
		s, err := prog.Stats()
		if err != nil {
			return err
		}
		rt0, runs0, flood0 = s.Runtime, s.RunCount, time.Now()
		return nil
	}
	after := func() {
		if prog == nil || stats == nil {
			return
		}
		if s, err := prog.Stats(); err == nil {
			xdpTime, xdpWall, xdpRuns = s.Runtime-rt0, time.Since(flood0), s.RunCount-runs0
		}
		stats.Close()
	}
	if err := b.measure(ctx, &res, proc{p: p, watch: watch}, before, after); err != nil {
		return res, err
	}
	if xdpWall > 0 {
		res.xdpFlood = xdpTime.Seconds() / xdpWall.Seconds()
	}
	if xdpRuns > 0 {
		res.xdpPerPacket = xdpTime / time.Duration(xdpRuns)
	}
	res.actionWhat = "XDP drop rule for " + target
	res.benignHit = "benign source never banned"
	for _, e := range p.Log.Events("ban") {
		if pfx, err := netip.ParsePrefix(e.Str("target")); err == nil && pfx.Contains(clientAddr) {
			res.benignHit = "BENIGN SOURCE BANNED (" + e.Str("target") + ")"
		} else if e.Str("target") != target {
			res.benignHit += "; also banned " + e.Str("target")
		}
	}
	return res, nil
}

// pinnedProgram returns the XDP program behind floodguard's pinned link.
func pinnedProgram(pinDir string) (*ebpf.Program, error) {
	lnk, err := link.LoadPinnedLink(filepath.Join(pinDir, "link"), nil)
	if err != nil {
		return nil, fmt.Errorf("floodguard's pinned link: %w", err)
	}
	defer lnk.Close()
	info, err := lnk.Info()
	if err != nil {
		return nil, err
	}
	return ebpf.NewProgramFromID(info.Program)
}

// --- FastNetMon ------------------------------------------------------------

func (b *bench) runFastNetMon(ctx context.Context, round int) (result, error) {
	res := result{tool: "fastnetmon", round: round, xdpFlood: -1}
	if err := b.checkNoXDP(); err != nil {
		return res, err
	}
	dir := filepath.Join(b.lab.Dir(), fmt.Sprintf("fnm%d", round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	notify := filepath.Join(dir, "notify.log")
	script := filepath.Join(dir, "notify.sh")
	// The notify script stamps each call (FastNetMon passes the IP, the
	// direction, the pps and the action) and reads the details it is fed.
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$(date +%s.%N) $*\" >> "+notify+"\ncat > /dev/null\n"), 0o755); err != nil {
		return res, err
	}
	if err := os.WriteFile(notify, nil, 0o644); err != nil {
		return res, err
	}
	// The protected network is the server alone: with the whole lab /24 in
	// it, the flood would be "internal" traffic, which FastNetMon never bans.
	if err := os.WriteFile(filepath.Join(dir, "networks_list"), []byte(netip.PrefixFrom(serverAddr, 32).String()+"\n"), 0o644); err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(dir, "networks_whitelist"), nil, 0o644); err != nil {
		return res, err
	}
	// /etc/fastnetmon.conf's defaults, but for what the lab needs: AF_PACKET
	// capture on the server's interface, the lab's network, a per-host
	// threshold of 1000 pps (floodguard's per-source floor; the shipped
	// 20000 would not fire on this flood), the notify script, no usage
	// report, and no connection tracking (only flow thresholds use it;
	// off spares FastNetMon CPU).
	conf := fmt.Sprintf(`logging_level = info
disable_usage_report = on
enable_ban = on
enable_ban_ipv6 = on
process_incoming_traffic = on
process_outgoing_traffic = on
ban_details_records_count = 20
ban_time = 60
unban_only_if_attack_finished = on
networks_list_path = %[1]s/networks_list
white_list_path = %[1]s/networks_whitelist
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
ban_for_bandwidth = on
ban_for_flows = off
threshold_pps = %[2]d
threshold_mbps = 1000
mirror_afpacket = on
mirror_af_packet_fanout_mode = cpu
interfaces = eth0
average_calculation_time = %[4]d
speed_calculation_delay = 1
notify_script_path = %[3]s
collect_attack_pcap_dumps = off
pcap = off
netflow = off
sflow = off
exabgp = off
gobgp = off
redis_enabled = off
mongodb_enabled = off
graphite = off
influxdb = off
clickhouse_metrics = off
`, dir, fnmThreshold, script, b.opt.fnmAverage)
	confPath := filepath.Join(dir, "fastnetmon.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return res, err
	}
	logPath := filepath.Join(dir, "fastnetmon.log")
	p, err := b.server.Start(b.opt.fnm, "--configuration_file", confPath, "--log_file", logPath, "--disable_pid_logic")
	if err != nil {
		return res, err
	}
	defer func() {
		stopProcess(p)
		b.saveFile(logPath, fmt.Sprintf("fastnetmon%d.log", round))
		b.saveFile(notify, fmt.Sprintf("fastnetmon%d.notify", round))
	}()
	// FastNetMon has no warm-up; it gets the same settling time.
	if err := sleep(ctx, b.opt.warmUp); err != nil {
		return res, err
	}
	if p.Exited() {
		return res, fmt.Errorf("fastnetmon exited: %s\n%s", p.Log.String(), tailFile(logPath, 20))
	}
	var lines []notifyLine
	watch := func(ctx context.Context) func() (time.Time, time.Time, time.Time) {
		skip := len(readNotify(notify))
		logSkip := fileSize(logPath)
		done := make(chan struct{})
		var wg sync.WaitGroup
		var det time.Time
		wg.Add(1)
		go func() { // FastNetMon's first ban call
			defer wg.Done()
			pollUntil(ctx, done, b.opt.flood+detectGrace+2*time.Second, func() bool {
				for _, l := range readNotify(notify)[skip:] {
					if l.action == "ban" {
						det = l.at
						return true
					}
				}
				return false
			})
		}()
		return func() (time.Time, time.Time, time.Time) {
			close(done)
			wg.Wait()
			lines = readNotify(notify)[skip:]
			// Detection is the ban decision in FastNetMon's log (ms
			// precision), the action its call of the notify script,
			// stamped by the script. Nothing is dropped locally.
			decided := fnmDecision(logPath, logSkip)
			if decided.IsZero() {
				decided = det
			}
			return decided, det, time.Time{}
		}
	}
	if err := b.measure(ctx, &res, proc{p: p, watch: watch}, nil, nil); err != nil {
		return res, err
	}
	res.actionWhat = "no local drop: notify script called"
	res.benignHit = "benign source never named"
	for _, l := range lines {
		if l.action != "ban" {
			continue
		}
		res.actionWhat = fmt.Sprintf("no local drop: notify script `%s %s %s ban` (to blackhole %s)", l.ip, l.direction, l.pps, l.ip)
		if l.ip == serverAddr.String() {
			res.benignHit = "benign source not named, but the ban is of the server " + l.ip + ": a blackhole cuts the benign client off too"
		}
		if l.ip == clientAddr.String() {
			res.benignHit = "BENIGN SOURCE BANNED"
		}
		break
	}
	return res, nil
}

// fnmDecision is the time of FastNetMon's first ban decision logged past
// byte offset skip of its log ("2006-01-02 15:04:05,000 [INFO] We run
// execute_ip_ban code ..."), zero if none.
func fnmDecision(path string, skip int64) time.Time {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < skip {
		return time.Time{}
	}
	for _, line := range strings.Split(string(data[skip:]), "\n") {
		if !strings.Contains(line, "execute_ip_ban") || len(line) < 23 {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05,000", line[:23], time.Local)
		if err == nil {
			return t
		}
	}
	return time.Time{}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

type notifyLine struct {
	at                         time.Time
	ip, direction, pps, action string
}

// readNotify parses the notify script's lines: "EPOCH.NANOS IP DIRECTION PPS ACTION".
func readNotify(path string) []notifyLine {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []notifyLine
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		out = append(out, notifyLine{at: at, ip: f[1], direction: f[2], pps: f[3], action: f[4]})
	}
	return out
}

// checkNoXDP makes sure floodguard's program is gone from the server's
// interface before FastNetMon is measured.
func (b *bench) checkNoXDP() error {
	out, err := exec.Command("ip", "-n", b.server.FullName(), "-j", "link", "show", "dev", "eth0").Output()
	if err != nil {
		return fmt.Errorf("ip link show: %w", err)
	}
	if strings.Contains(string(out), `"xdp"`) {
		return errors.New("an XDP program is still attached to the server's eth0")
	}
	return nil
}

// --- measurements ----------------------------------------------------------

var clkTck = func() float64 {
	// sysconf(_SC_CLK_TCK) is 100 on every Linux architecture Go supports.
	return 100
}()

// procCPU is a process's user plus system CPU seconds, all its threads.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// Fields 14 and 15 of the line (utime, stime); f starts at field 3.
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return float64(u+st) / clkTck, nil
}

// procRSS is a process's resident memory in MiB (VmRSS), 0 if unknown.
func procRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// machineCPU is the CPU seconds all CPUs spent busy (not idle or iowait).
func machineCPU() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: unexpected format")
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, errors.New("/proc/stat: unexpected format")
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice]:
		// guest time is already in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return float64(busy) / clkTck, nil
}

// txPackets counts the frames the bridge sent towards the server.
func (b *bench) txPackets() (uint64, error) {
	out, err := exec.Command("ip", "-n", b.sw.FullName(), "-j", "-s", "link", "show", "dev", "to-server").Output()
	if err != nil {
		return 0, fmt.Errorf("ip -s link show: %w", err)
	}
	var links []struct {
		Stats64 struct {
			TX struct {
				Packets uint64 `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("ip -s link show: unexpected output %q", out)
	}
	return links[0].Stats64.TX.Packets, nil
}

// --- helpers ---------------------------------------------------------------

// stopProcess stops a tool with SIGTERM, then SIGKILL after 10 s.
func stopProcess(p *lab.Process) {
	if p.Exited() {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	if p.Wait(10*time.Second) != nil {
		p.Kill()
	}
}

func (b *bench) saveLog(p *lab.Process, name string) {
	f := filepath.Join(b.lab.Dir(), name)
	if os.WriteFile(f, []byte(p.Log.String()), 0o644) == nil {
		b.logs = append(b.logs, f)
	}
}

func (b *bench) saveFile(src, name string) {
	data, err := os.ReadFile(src)
	if err != nil {
		return
	}
	f := filepath.Join(b.lab.Dir(), name)
	if os.WriteFile(f, data, 0o644) == nil {
		b.logs = append(b.logs, f)
	}
}

func since(start, t time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return t.Sub(start)
}

func ms(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func pctOrNA(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitCtx runs a bounded wait, returning early on ctx.
func waitCtx(ctx context.Context, f func() error) error {
	c := make(chan error, 1)
	go func() { c <- f() }()
	select {
	case err := <-c:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func tailFile(path string, n int) string {
	data, _ := os.ReadFile(path)
	return tail(string(data), n)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// --- report ----------------------------------------------------------------

func (b *bench) report(rs []result) string {
	var w strings.Builder
	o := b.opt
	fmt.Fprintf(&w, "floodguard %s vs FastNetMon %s; %s, %d CPUs, kernel %s, %s\n",
		version(o.floodguard, "version"), dpkgVersion("fastnetmon"), time.Now().UTC().Format("2006-01-02T15:04Z"), runtime.NumCPU(), kernel(), "Go "+runtime.Version())
	fmt.Fprintf(&w, "flood: UDP from %v to %v:%d, %d-byte frames, %.0f pps for %s (internal/lab sender); warm-up %s, idle window %s; %d rounds, order alternating\n",
		attackerAddr, serverAddr, sinkPort, o.frameSize, o.rate, o.flood, o.warmUp, o.idle, o.rounds)
	fmt.Fprintf(&w, "FastNetMon: AF_PACKET on the server's eth0, threshold_pps %d for %v/32, average_calculation_time %d s\n\n", fnmThreshold, serverAddr, o.fnmAverage)
	fmt.Fprintf(&w, "Per round:\n\n")
	fmt.Fprintf(&w, "| round | tool | flood offset | flood sent (pps) | at server iface | to detection | to action | to kernel drop | flood reaching server socket | CPU idle | CPU flood | XDP prog flood | RSS | machine CPU flood | benign HTTP during flood |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		xdp := pctOrNA(r.xdpFlood)
		if r.xdpPerPacket > 0 {
			xdp += fmt.Sprintf(" (%d ns/pkt)", r.xdpPerPacket.Nanoseconds())
		}
		fmt.Fprintf(&w, "| %d | %s | %d ms | %d (%.1fk) | %d | %s | %s | %s | %s | %.1f%% | %.1f%% | %s | %.0f MiB | %.0f%% | %d/%d |\n",
			r.round, r.tool, r.offset.Milliseconds(), r.sent, r.sentPPS/1000, r.atServer, ms(r.detect), ms(r.action), ms(r.drop),
			share(r.delivered, r.sent), 100*r.cpuIdle, 100*r.cpuFlood, xdp, r.rssMiB, 100*r.machineFlood, r.benign.Served, r.benign.Requests)
	}
	fmt.Fprintf(&w, "\nMedians (CPU in %% of one core):\n\n")
	fmt.Fprintf(&w, "| tool | flood start to detection | to action | to traffic dropped in the kernel | flood reaching server socket | CPU idle | CPU under flood | + XDP program | RSS | machine CPU under flood | benign client |\n")
	fmt.Fprintf(&w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	med := map[string]result{}
	for _, tool := range []string{"floodguard", "fastnetmon"} {
		var sel []result
		for _, r := range rs {
			if r.tool == tool {
				sel = append(sel, r)
			}
		}
		if len(sel) == 0 {
			continue
		}
		m := result{tool: tool,
			detect:       medianDur(sel, func(r result) time.Duration { return r.detect }),
			action:       medianDur(sel, func(r result) time.Duration { return r.action }),
			drop:         medianDur(sel, func(r result) time.Duration { return r.drop }),
			cpuIdle:      medianF(sel, func(r result) float64 { return r.cpuIdle }),
			cpuFlood:     medianF(sel, func(r result) float64 { return r.cpuFlood }),
			xdpFlood:     medianF(sel, func(r result) float64 { return r.xdpFlood }),
			machineFlood: medianF(sel, func(r result) float64 { return r.machineFlood }),
			rssMiB:       medianF(sel, func(r result) float64 { return r.rssMiB }),
		}
		var delivered, sent uint64
		var served, reqs int
		hits := map[string]bool{}
		for _, r := range sel {
			delivered += r.delivered
			sent += r.sent
			served += r.benign.Served
			reqs += r.benign.Requests
			hits[r.benignHit] = true
		}
		med[tool] = m
		var hit []string
		for h := range hits {
			hit = append(hit, h)
		}
		slices.Sort(hit)
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s | %.1f%% | %.1f%% | %s | %.0f MiB | %.0f%% | %d/%d requests served; %s |\n",
			tool, msMed(m.detect, sel, func(r result) time.Duration { return r.detect }), msMed(m.action, sel, func(r result) time.Duration { return r.action }),
			msMed(m.drop, sel, func(r result) time.Duration { return r.drop }), share(delivered, sent),
			100*m.cpuIdle, 100*m.cpuFlood, pctOrNA(m.xdpFlood), m.rssMiB, 100*m.machineFlood, served, reqs, strings.Join(hit, "; "))
	}
	fg, fnm := med["floodguard"], med["fastnetmon"]
	fmt.Fprintf(&w, "\n")
	if fg.drop >= 0 && fnm.detect > 0 {
		fmt.Fprintf(&w, "floodguard dropping vs FastNetMon detecting: %.1fx faster (%s vs %s)\n", float64(fnm.detect)/float64(fg.drop), ms(fg.drop), ms(fnm.detect))
	} else {
		fmt.Fprintf(&w, "floodguard dropping vs FastNetMon detecting: floodguard %s, FastNetMon %s\n", ms(fg.drop), ms(fnm.detect))
	}
	if fg.detect >= 0 && fnm.detect > 0 {
		fmt.Fprintf(&w, "detection: %.1fx faster (%s vs %s)\n", float64(fnm.detect)/float64(fg.detect), ms(fg.detect), ms(fnm.detect))
	}
	fmt.Fprintf(&w, "process CPU, idle: floodguard %.1f%% vs FastNetMon %.1f%%; under flood: floodguard %.1f%% (+ XDP %s) vs FastNetMon %.1f%%\n",
		100*fg.cpuIdle, 100*fnm.cpuIdle, 100*fg.cpuFlood, pctOrNA(fg.xdpFlood), 100*fnm.cpuFlood)
	// Round by round: floodguard's drop against FastNetMon's detection,
	// the two measured at the same flood offset.
	won, rounds := 0, 0
	for _, a := range rs {
		for _, c := range rs {
			if a.tool == "floodguard" && c.tool == "fastnetmon" && a.round == c.round {
				rounds++
				if a.drop >= 0 && (c.detect < 0 || a.drop < c.detect) {
					won++
				}
			}
		}
	}
	fmt.Fprintf(&w, "rounds where floodguard dropped before FastNetMon detected: %d of %d\n", won, rounds)
	for _, r := range rs {
		if r.tool == "fastnetmon" && r.actionWhat != "" {
			fmt.Fprintf(&w, "FastNetMon's action (round %d): %s\n", r.round, r.actionWhat)
			break
		}
	}
	return w.String()
}

func share(a, b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

// medianDur is the median of the rounds where it happened (negative: none did).
func medianDur(rs []result, f func(result) time.Duration) time.Duration {
	var v []time.Duration
	for _, r := range rs {
		if d := f(r); d >= 0 {
			v = append(v, d)
		}
	}
	if len(v) == 0 {
		return -1
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// msMed prints a median with the range and how many rounds it covers.
func msMed(m time.Duration, rs []result, f func(result) time.Duration) string {
	if m < 0 {
		return "none"
	}
	lo, hi, n, sum := time.Duration(1<<62), time.Duration(-1), 0, time.Duration(0)
	for _, r := range rs {
		if d := f(r); d >= 0 {
			lo, hi, n, sum = min(lo, d), max(hi, d), n+1, sum+d
		}
	}
	s := fmt.Sprintf("%d ms (%d–%d, mean %d)", m.Milliseconds(), lo.Milliseconds(), hi.Milliseconds(), (sum / time.Duration(n)).Milliseconds())
	if n < len(rs) {
		s += fmt.Sprintf(", %d of %d rounds", n, len(rs))
	}
	return s
}

func medianF(rs []result, f func(result) float64) float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, f(r))
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func version(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func dpkgVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "(unknown version)"
	}
	return strings.TrimSpace(string(out))
}

func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// pollUntil calls found every pollEvery until it returns true, done is
// closed, ctx ends or limit has passed.
func pollUntil(ctx context.Context, done <-chan struct{}, limit time.Duration, found func() bool) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if found() {
			return
		}
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-time.After(pollEvery):
		}
	}
}
