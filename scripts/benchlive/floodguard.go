// The floodguard runner: its config, its start in the server's namespace,
// and how its detection, ban and first XDP drop are read (its JSON log and
// pinned counters), with its XDP program's run time.

package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	fgbpf "github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/internal/ctxtime"
	"github.com/floodguard/floodguard/internal/humanize"
	"github.com/floodguard/floodguard/internal/lab"
)

func (b *bench) runFloodguard(ctx context.Context, round int) (result, error) {
	res := result{tool: "floodguard", round: round, xdpFlood: -1}
	p, pinDir, stop, err := b.startFloodguard(ctx, fmt.Sprintf("floodguard%d", round), "")
	if err != nil {
		return res, err
	}
	defer stop()
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

// startFloodguard starts floodguard in the server's namespace with its
// own directories and pins (named after name), the shipped defaults but a
// warm-up as long as FastNetMon's settling time, bans outlasting the flood
// and extra lines under daemon:, and waits until it has attached and warmed
// up. stop ends it and keeps its log.
func (b *bench) startFloodguard(ctx context.Context, name, extra string) (p *lab.Process, pinDir string, stop func(), err error) {
	dir := filepath.Join(b.lab.Dir(), name)
	pinDir = filepath.Join(b.pins, name)
	config := filepath.Join(dir, "floodguard.yaml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", nil, err
	}
	cfg := fmt.Sprintf("warm_up: %s\nbans:\n  ttl: 60s\ndaemon:\n  pin_dir: %s\n  state_dir: %s\n  runtime_dir: %s\n  max_sources: 65536\n%s",
		b.opt.warmUp, pinDir, filepath.Join(dir, "state"), filepath.Join(dir, "run"), extra)
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		return nil, "", nil, fmt.Errorf("floodguard config: %w", err)
	}
	p, err = b.server.Start(b.opt.floodguard, "run", "--interface", "eth0", "--config", config, "--log-format", "json", "--detach-on-exit")
	if err != nil {
		return nil, "", nil, err
	}
	end := func() {
		p.Stop(10 * time.Second)
		b.saveLog(p, name+".log")
	}
	defer func() {
		if err != nil {
			end()
		}
	}()
	if _, _, err := p.Log.WaitEvent(0, 15*time.Second, "attached", nil); err != nil {
		return nil, "", nil, fmt.Errorf("floodguard did not attach: %w\n%s", err, humanize.Tail(p.Log.String(), 20))
	}
	if err := ctxtime.Wait(ctx, func() error {
		_, _, err := p.Log.WaitEvent(0, b.opt.warmUp+15*time.Second, "warmed_up", nil)
		return err
	}); err != nil {
		return nil, "", nil, fmt.Errorf("floodguard did not warm up: %w\n%s", err, humanize.Tail(p.Log.String(), 20))
	}
	return p, pinDir, end, nil
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
