package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
)

// kernelRules is the detector's Enforcer live: every decision becomes a
// rule in the XDP program's maps, with an expiry the kernel honours itself.
type kernelRules struct {
	x *bpf.XDP
	// lastWrite is the duration of the last rule write (the rule write
	// must stay well under 100 ms).
	lastWrite time.Duration
}

func (k *kernelRules) Ban(r detector.Rule) error {
	start := time.Now()
	err := k.x.AddRule(r.Prefix, r.TTL)
	k.lastWrite = time.Since(start)
	if err != nil {
		return fmt.Errorf("install rule %s: %w", r.Prefix, err)
	}
	return nil
}

func (k *kernelRules) Unban(p netip.Prefix) error {
	err := k.x.RemoveRule(p)
	if err != nil && !errors.Is(err, bpf.ErrRuleNotFound) {
		return fmt.Errorf("remove rule %s: %w", p, err)
	}
	return nil
}
