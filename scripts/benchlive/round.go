// What a round of either tool shares: the result it records, the
// measurement around the flood (idle window, flood, benign client), and
// the helpers for starting, stopping and waiting on a tool.

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/floodguard/floodguard/internal/ctxtime"
	"github.com/floodguard/floodguard/internal/humanize"
	"github.com/floodguard/floodguard/internal/lab"
	"github.com/floodguard/floodguard/internal/procstat"
)

const (
	// detectGrace is how long after the flood a late detection still counts.
	detectGrace = 3 * time.Second
	// pollEvery is how often the drop counter and the notify file are read.
	pollEvery = 5 * time.Millisecond
)

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
	if err := ctxtime.Sleep(ctx, time.Second); err != nil {
		return err
	}
	c0, err := procstat.CPU(pid)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := ctxtime.Sleep(ctx, b.opt.idle); err != nil {
		return err
	}
	c1, err := procstat.CPU(pid)
	if err != nil {
		return fmt.Errorf("%s died while idle: %w\n%s", res.tool, err, humanize.Tail(pr.p.Log.String(), 20))
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
	if err := ctxtime.Sleep(ctx, res.offset); err != nil {
		return err
	}
	atServer0, err := b.txPackets()
	if err != nil {
		return err
	}
	delivered0 := b.sink.Received(attackerAddr)
	stopWatch := pr.watch(ctx)
	m0, err := procstat.MachineCPU()
	if err != nil {
		return err
	}
	c2, _ := procstat.CPU(pid)
	fst, ferr := b.sender.Flood(ctx, lab.Flood{Frames: b.frames, Rate: b.opt.rate, Duration: b.opt.flood})
	c3, cerr := procstat.CPU(pid)
	res.rssMiB = procstat.RSS(pid)
	m1, _ := procstat.MachineCPU()
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
		return fmt.Errorf("%s died during the flood: %w\n%s", res.tool, cerr, humanize.Tail(pr.p.Log.String(), 20))
	}
	res.cpuFlood = (c3 - c2) / window
	res.machineFlood = (m1 - m0) / window
	res.sent, res.sentPPS = fst.Sent, fst.Rate()
	if err := ctxtime.Sleep(ctx, detectGrace); err != nil {
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

func since(start, t time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return t.Sub(start)
}

// tailFile is the last n lines of a file, empty if it cannot be read.
func tailFile(path string, n int) string {
	data, _ := os.ReadFile(path)
	return humanize.Tail(string(data), n)
}

// pollUntil calls found every pollEvery until it returns true, done is
// closed, ctx ends or limit has passed.
func pollUntil(ctx context.Context, done <-chan struct{}, limit time.Duration, found func() bool) {
	pollEveryUntil(ctx, done, pollEvery, limit, found)
}

// pollEveryUntil is pollUntil calling found every every.
func pollEveryUntil(ctx context.Context, done <-chan struct{}, every, limit time.Duration, found func() bool) {
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
		case <-time.After(every):
		}
	}
}
