package main

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/floodguard/floodguard/replay"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/humanize"
)

// humanOutput prints a readable timeline: one line per event, with bursts of
// bans in one tick folded so a reflection flood does not print thousands of
// lines.
type humanOutput struct {
	w *bufio.Writer
}

// maxBansShown is how many bans of one tick the timeline lists before
// folding the rest into a count.
const maxBansShown = 5

func newHumanOutput(w *bufio.Writer) *humanOutput { return &humanOutput{w: w} }

func (o *humanOutput) start(files []string, cfg detector.Config) {
	dry := ""
	if cfg.Bans.DryRun {
		dry = ", dry run (nothing dropped)"
	}
	fmt.Fprintf(o.w, "replaying %s: tick %s, warm-up %s%s\n", strings.Join(files, ", "), cfg.Tick, cfg.WarmUp, dry)
}

var kindLabel = map[detector.EventKind]string{
	detector.AttackStart: "ATTACK", detector.AttackEnd: "ended", detector.Ban: "BAN", detector.Unban: "unban",
}

func (o *humanOutput) tick(_ *detector.Tick, evs []detector.Event) error {
	bans := 0
	for i := range evs {
		ev := &evs[i]
		if ev.Kind == detector.Ban {
			bans++
			if bans > maxBansShown {
				continue
			}
		}
		target := ev.Target
		if ev.Scope == detector.ScopeAggregate {
			target = "all traffic"
			if ev.Class != "all" {
				target = ev.Class + " traffic"
			}
		}
		detail := ""
		switch ev.Kind {
		case detector.AttackStart, detector.AttackEnd:
			detail = fmt.Sprintf("%s pps (baseline %s)", humanize.SI(ev.PPS), humanize.SI(ev.BaselinePPS))
		case detector.Ban:
			detail = fmt.Sprintf("for %s", ev.TTL)
			if ev.RatePPS > 0 {
				detail += fmt.Sprintf(", limit %d pps", ev.RatePPS)
			}
			if ev.DryRun {
				detail += " (dry run)"
			}
		case detector.Unban:
			detail = ""
		}
		fmt.Fprintf(o.w, "%s  %-6s %-9s %-22s %-24s %s\n", ev.Time.UTC().Format("15:04:05.000"),
			kindLabel[ev.Kind], ev.Scope, target, detail, ev.Reason)
		for _, c := range ev.Contributors {
			fmt.Fprintf(o.w, "%s  %-6s %-9s   top contributor %-18s %s pps (%.1f%% of the excess)\n",
				strings.Repeat(" ", 12), "", "", c.Target, humanize.SI(c.PPS), 100*c.Share)
		}
	}
	if bans > maxBansShown {
		fmt.Fprintf(o.w, "%s  %-6s … and %d more bans in this tick\n", strings.Repeat(" ", 12), "BAN", bans-maxBansShown)
	}
	return nil
}

func (o *humanOutput) summary(s replay.Summary) error {
	pct := 0.0
	if s.Packets > 0 {
		pct = 100 * float64(s.DroppedPackets) / float64(s.Packets)
	}
	fmt.Fprintf(o.w, "\nsummary: %d packets (%s bytes) in %d ticks\n", s.Packets, humanize.SI(float64(s.Bytes)), s.Ticks)
	fmt.Fprintf(o.w, "  dropped: %d packets (%.1f%%), %s bytes\n", s.DroppedPackets, pct, humanize.SI(float64(s.DroppedBytes)))
	fmt.Fprintf(o.w, "  attacks started: %d; bans: %d issued, %d lifted, %d active at the end\n", s.AttacksStarted, s.Bans, s.Unbans, s.ActiveBans)
	fmt.Fprintf(o.w, "  undecodable packets: %d; timestamps going backwards: %d; clock jumps: %d\n", s.Undecodable, s.Backwards, s.ClockJumps)
	if s.DryRun {
		fmt.Fprintln(o.w, "  dry run: bans were decided but nothing was dropped")
	}
	if s.Error != "" {
		fmt.Fprintf(o.w, "  stopped early: %s\n", s.Error)
	}
	return nil
}
