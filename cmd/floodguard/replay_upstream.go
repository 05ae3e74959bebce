package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/upstream"
)

// upstreamPrinter is `replay --upstream`: the upstream policy over each
// tick, printing what would have been announced, withdrawn and refused.
// No BGP. A replay knows no protected address, so source bans print
// without a destination and signature rules without one are refused.
type upstreamPrinter struct {
	w      io.Writer
	jsonl  bool
	policy *upstream.Policy
	eng    func() *detector.Engine
	never  []detector.CIDR
}

func newUpstreamPrinter(w io.Writer, jsonl bool, cfg *upstream.Config, allow []detector.CIDR, eng func() *detector.Engine) *upstreamPrinter {
	c := upstream.DefaultConfig()
	if cfg != nil {
		c = *cfg
	}
	return &upstreamPrinter{w: w, jsonl: jsonl, policy: upstream.NewPolicy(c), eng: eng, never: allow}
}

func (u *upstreamPrinter) observe(t *detector.Tick, _ []detector.Event) error {
	e := u.eng()
	in := upstream.Input{Tick: t, Bans: e.Bans(), Signatures: e.Signatures(), Attacking: len(e.Attacks()) > 0}
	for _, c := range u.never {
		in.Never = append(in.Never, c.Prefix)
	}
	d := u.policy.Step(in)
	for _, a := range d.Add {
		u.line(t.End(), "announce", a.String(), a.Reason, a.DryRun)
	}
	for _, a := range d.Withdraw {
		u.line(t.End(), "withdraw", a.String(), "local rule ended", a.DryRun)
	}
	for _, r := range d.Refused {
		u.line(t.End(), "refused", r.Rule, r.Why, false)
	}
	return nil
}

func (u *upstreamPrinter) line(ts time.Time, what, route, why string, dry bool) {
	if u.jsonl {
		b, _ := json.Marshal(struct {
			TS     string `json:"ts"`
			Event  string `json:"event"`
			Route  string `json:"route"`
			Reason string `json:"reason"`
			DryRun bool   `json:"dry_run,omitempty"`
		}{ts.UTC().Format(time.RFC3339Nano), "upstream_" + what, route, why, dry})
		fmt.Fprintf(u.w, "%s\n", b)
		return
	}
	fmt.Fprintf(u.w, "%s  UPSTREAM %-8s %s   %s\n", ts.Format("15:04:05.000"), what, route, why)
}
