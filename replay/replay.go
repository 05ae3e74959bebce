// Package replay assembles floodguard's per-tick pipeline over capture
// files: the pcap/pcapng source, the simulated data plane (the kernel's
// rules as replay applies them), the detector, paging, and whatever
// observers the caller adds (printed output, a report, a progress bar).
// The daemon assembles the same pipeline over the kernel's maps; both run
// detector.Run, so a capture replayed here gets the decisions the daemon
// would have made. It is a library: the CLI's `floodguard replay` and the
// golden tests drive it alike.
package replay

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/capture"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/config"
	"github.com/floodguard/floodguard/paging"
)

// Options configure one replay.
type Options struct {
	// Files are the captures, replayed in order as one timeline; "-" is
	// Stdin.
	Files []string
	Stdin io.Reader
	// Config holds the detector's settings and the paging section.
	Config config.File
	// Page runs the paging tracker over the replay; OnPage gets each page
	// at packet time, in order.
	Page   bool
	OnPage func(*paging.Page) error
	// SendPages also delivers the pages through the config's sinks (no
	// outbox: Run waits, bounded by DeliveryTimeout, for delivery).
	SendPages       bool
	DeliveryTimeout time.Duration
	// Log gets paging delivery problems.
	Log zerolog.Logger
	// Verdicts, if not nil, gets one byte per packet in capture order:
	// 'D' dropped by a rule (source, prefix or signature, or over a rate
	// limit), 'P' passed, 'U' undecodable (see
	// capture.ReplayOptions.Verdicts). Run flushes it; a write error ends
	// the replay with an error.
	Verdicts io.Writer
}

// Summary is what a replay did, its last record.
type Summary struct {
	Packets        uint64 `json:"packets"`
	Bytes          uint64 `json:"bytes"`
	DroppedPackets uint64 `json:"dropped_packets"`
	DroppedBytes   uint64 `json:"dropped_bytes"`
	Undecodable    uint64 `json:"undecodable"`
	Ticks          uint64 `json:"ticks"`
	Backwards      uint64 `json:"timestamps_backwards"`
	ClockJumps     uint64 `json:"clock_jumps"`
	AttacksStarted int    `json:"attacks_started"`
	Bans           int    `json:"bans"`
	Unbans         int    `json:"unbans"`
	ActiveBans     int    `json:"active_bans"`
	DryRun         bool   `json:"dry_run"`
	Error          string `json:"error,omitempty"`
}

// Pipeline is one replay, assembled: New opens the captures, Run drives
// them through the detector.
type Pipeline struct {
	opt   Options
	plane *capture.SimulatedPlane
	eng   *detector.Engine
	src   *capture.Replay
	pager *paging.Pager // nil without Page
	sum   Summary
}

// New validates the config, builds the detector over a simulated data
// plane, opens the captures and, with Page, the pager (with SendPages,
// its sinks: a missing secret is an error here).
func New(opt Options) (*Pipeline, error) {
	cfg := opt.Config.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{opt: opt, plane: capture.NewSimulatedPlane()}
	var err error
	if p.eng, err = detector.New(cfg, p.plane); err != nil {
		return nil, err
	}
	if opt.Page {
		if opt.SendPages && len(opt.Config.Paging.Sinks) == 0 {
			return nil, fmt.Errorf("send pages: the config has no paging.sinks")
		}
		p.pager, err = paging.NewPager(opt.Config.Paging, p.eng, paging.PagerOptions{
			Source: strings.Join(opt.Files, ","), Deliver: opt.SendPages, OnPage: opt.OnPage, Log: opt.Log,
		})
		if err != nil {
			return nil, err
		}
	}
	p.src, err = capture.NewReplay(opt.Files, capture.ReplayOptions{
		Tick: cfg.Tick.D(), Stdin: opt.Stdin, Dropper: p.plane, Tripper: p.eng, Verdicts: opt.Verdicts,
		AdmitAfter: opt.Config.Daemon.AdmitAfter, AdmitBudget: opt.Config.Daemon.AdmitBudgetOption(), SourceIdleTimeout: opt.Config.Daemon.SourceIdleTimeout.D(),
	})
	if err != nil {
		p.closePager()
		return nil, err
	}
	return p, nil
}

// Engine is the replay's detector (for observers that read its state).
func (p *Pipeline) Engine() *detector.Engine { return p.eng }

// Source is the replay's tick source (for progress).
func (p *Pipeline) Source() *capture.Replay { return p.src }

// Run drives the captures through the pipeline: each tick goes to the
// detector, then to the summary, the observers in order, and the pager.
// When the captures end (or ctx is done, or an observer fails) the pager
// emits the pages due after the last tick and, with SendPages, waits for
// their delivery. The summary's Error is the pipeline's error, which Run
// also returns; a paging failure after the last tick is returned too.
func (p *Pipeline) Run(ctx context.Context, observers ...detector.Observer) (Summary, error) {
	stages := append([]detector.Observer{detector.ObserverFunc(p.count)}, observers...)
	if p.pager != nil {
		stages = append(stages, p.pager)
	}
	runErr := detector.Run(ctx, p.src, p.eng, stages...)
	if err := p.src.Flush(); err != nil && runErr == nil {
		runErr = err // the verdicts could not be written
	}

	st, es := p.src.Stats(), p.eng.Stats()
	s := &p.sum
	s.Packets, s.Bytes, s.Undecodable = st.Packets, st.Bytes, st.Undecodable
	s.Backwards, s.ClockJumps = st.BackwardsTimestamps, st.ClockJumps
	s.Ticks, s.ActiveBans, s.DryRun = es.Ticks, es.ActiveBans, p.opt.Config.Bans.DryRun
	if runErr != nil {
		s.Error = runErr.Error()
	}
	if p.pager != nil {
		// A resolve due after the capture's end is still one of the
		// replay's pages.
		if err := p.finishPaging(); err != nil && runErr == nil {
			runErr = err
		}
	}
	return *s, runErr
}

// count adds a tick to the summary.
func (p *Pipeline) count(t *detector.Tick, evs []detector.Event) error {
	p.sum.DroppedPackets += t.Total.DroppedPackets
	p.sum.DroppedBytes += t.Total.DroppedBytes
	for i := range evs {
		switch evs[i].Kind {
		case detector.AttackStart:
			p.sum.AttacksStarted++
		case detector.Ban:
			p.sum.Bans++
		case detector.Unban:
			p.sum.Unbans++
		}
	}
	return nil
}

func (p *Pipeline) finishPaging() error {
	if err := p.pager.Finish(); err != nil {
		return err
	}
	if !p.opt.SendPages {
		return nil
	}
	timeout := p.opt.DeliveryTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.pager.Flush(ctx)
}

// DeliveryStats are the sinks' counters after Run (nil without
// SendPages).
func (p *Pipeline) DeliveryStats() []paging.SinkStats {
	if p.pager == nil {
		return nil
	}
	return p.pager.Stats()
}

// Close closes the captures and stops paging delivery.
func (p *Pipeline) Close() error {
	p.closePager()
	return p.src.Close()
}

func (p *Pipeline) closePager() {
	if p.pager == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.pager.Close(ctx)
}
