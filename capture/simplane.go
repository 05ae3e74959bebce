package capture

import (
	"net/netip"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// SimulatedPlane stands in for the XDP data plane in replay: it takes the
// detector's rules (it is a detector.Enforcer and a
// detector.SignatureEnforcer) and tells the replay source which packets
// they drop (it is a Dropper). Like the kernel program it honours each
// rule's expiry by itself, matches exact rules first, then prefix rules,
// and only then signature rules (simplane_sig.go).
type SimulatedPlane struct {
	exact    map[detector.Addr]time.Time
	prefixes map[netip.Prefix]time.Time
	sig      sigTable
}

var (
	_ detector.SignatureEnforcer = (*SimulatedPlane)(nil)
	_ Dropper                    = (*SimulatedPlane)(nil)
)

// NewSimulatedPlane returns an empty rule table.
func NewSimulatedPlane() *SimulatedPlane {
	return &SimulatedPlane{
		exact:    make(map[detector.Addr]time.Time),
		prefixes: make(map[netip.Prefix]time.Time),
		sig:      newSigTable(),
	}
}

// Ban installs or extends a rule.
func (p *SimulatedPlane) Ban(r detector.Rule) error {
	if r.Prefix.IsSingleIP() {
		p.exact[detector.AddrFrom(r.Prefix.Addr())] = r.Expires
		return nil
	}
	p.prefixes[r.Prefix.Masked()] = r.Expires
	return nil
}

// Unban removes a rule.
func (p *SimulatedPlane) Unban(pfx netip.Prefix) error {
	if pfx.IsSingleIP() {
		delete(p.exact, detector.AddrFrom(pfx.Addr()))
		return nil
	}
	delete(p.prefixes, pfx.Masked())
	return nil
}

// Banned reports whether a live source or prefix rule at time at drops
// traffic from a.
func (p *SimulatedPlane) Banned(a detector.Addr, at time.Time) bool {
	if exp, ok := p.exact[a]; ok && at.Before(exp) {
		return true
	}
	if len(p.prefixes) == 0 {
		return false
	}
	na := a.Netip()
	for pfx, exp := range p.prefixes {
		if at.Before(exp) && pfx.Contains(na) {
			return true
		}
	}
	return false
}

// Rules returns the number of exact and prefix rules held, expired or not
// (Signatures counts the signature rules).
func (p *SimulatedPlane) Rules() (exact, prefix int) { return len(p.exact), len(p.prefixes) }
