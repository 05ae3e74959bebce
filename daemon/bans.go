package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
)

func openPinned(pinDir string) (*bpf.XDP, error) { return bpf.OpenPinned(pinDir) }

// joinBans lists kernel rules with what the detector knows of them. Rules
// of a dry run exist only in the detector's book.
func joinBans(rules func() ([]bpf.Rule, error), book []detector.ActiveBan) ([]Ban, error) {
	krs, err := rules()
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	byPrefix := map[netip.Prefix]detector.ActiveBan{}
	for _, b := range book {
		byPrefix[b.Prefix] = b
	}
	var out []Ban
	for _, r := range krs {
		b := Ban{Target: r.Prefix.String(), Origin: "kernel", Scope: scopeName(r.Prefix), TimeLeft: r.TimeLeft, Packets: r.Packets, Bytes: r.Bytes}
		if ab, ok := byPrefix[r.Prefix]; ok {
			b.Origin = origin(ab)
			delete(byPrefix, r.Prefix)
		}
		out = append(out, b)
	}
	for p, ab := range byPrefix {
		out = append(out, Ban{Target: p.String(), Origin: origin(ab), Scope: ab.Scope.String(), DryRun: ab.DryRun})
	}
	slices.SortFunc(out, func(a, b Ban) int { return strings.Compare(a.Target, b.Target) })
	return out, nil
}

// signatureBans lists the detector's signature rules.
func signatureBans(sigs []detector.ActiveSignature, now time.Time) []Ban {
	var out []Ban
	for _, s := range sigs {
		o := "detector"
		if s.Manual {
			o = "manual"
		}
		out = append(out, Ban{Target: s.Match.String(), Origin: o, Scope: detector.ScopeSignature.String(),
			TimeLeft: s.Expires.Sub(now), DryRun: s.DryRun, Action: s.Action(), RatePPS: s.RatePPS})
	}
	return out
}

func origin(b detector.ActiveBan) string {
	if b.Manual {
		return "manual"
	}
	return "detector"
}

// UnblockPinned removes a rule straight from the pinned maps, for when the
// daemon is down (the restarted daemon adopts what is left).
func UnblockPinned(pinDir string, p netip.Prefix) error {
	x, err := openPinned(pinDir)
	if err != nil {
		return err
	}
	defer x.Close()
	if err := x.RemoveRule(p); err != nil {
		return fmt.Errorf("unblock %s: %w", p, err)
	}
	return nil
}
