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
// It is a detector.SignatureEnforcer too: signature rules and the exempt
// sources go to the program's signature maps.
type kernelRules struct {
	x *bpf.XDP
	// lastWrite is the duration of the last rule write (the rule write
	// must stay well under 100 ms).
	lastWrite time.Duration
}

var _ detector.SignatureEnforcer = (*kernelRules)(nil)

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

func (k *kernelRules) InstallSignature(r detector.SignatureRule) error {
	start := time.Now()
	err := k.x.InstallSignature(r)
	k.lastWrite = time.Since(start)
	return err
}

func (k *kernelRules) RemoveSignature(m detector.Match) error {
	err := k.x.RemoveSignature(m)
	if err != nil && !errors.Is(err, bpf.ErrRuleNotFound) {
		return err
	}
	return nil
}

func (k *kernelRules) SetExempt(addrs []detector.Addr) error { return k.x.SetExempt(addrs) }
