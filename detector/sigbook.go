package detector

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// SignatureConfig governs signature rules: floods that no small set of
// sources or prefixes explains are dropped by what their packets have in
// common (protocol, port, length) instead of by source.
type SignatureConfig struct {
	// Enabled lets the detector derive and install signature rules.
	Enabled bool `yaml:"enabled"`
	// MinExcessShare: a signature must cover at least this share of the
	// attack's excess over the class's baseline.
	MinExcessShare float64 `yaml:"min_excess_share"`
	// MaxBaselineShare: a signature may cover at most this share of the
	// class's learnt baseline (legitimate traffic it would hit).
	MaxBaselineShare float64 `yaml:"max_baseline_share"`
	// RateMultiple: when the matched traffic has a real baseline (at
	// least MinBaselinePPS not from exempt sources), the rule rate-limits
	// to this multiple of it instead of dropping.
	RateMultiple   float64 `yaml:"rate_multiple"`
	MinBaselinePPS float64 `yaml:"min_baseline_pps"`
	// MaxRules caps the signature rules in force (the detector's and
	// operators' together).
	MaxRules int `yaml:"max_rules"`
	// MaxExempt caps the sources exempt from signature rules (the
	// allowlist's addresses, the host's, and the sources learnt as
	// talking to the server on the rule's port before the attack).
	MaxExempt int `yaml:"max_exempt"`
}

// DefaultSignatureConfig returns the documented defaults.
func DefaultSignatureConfig() SignatureConfig {
	return SignatureConfig{
		Enabled: true, MinExcessShare: 0.9, MaxBaselineShare: 0.02,
		RateMultiple: 3, MinBaselinePPS: 1, MaxRules: 32, MaxExempt: 16384,
	}
}

func (c *SignatureConfig) validate() error {
	bad := func(key, format string, args ...any) error {
		return &FieldError{Key: "signatures." + key, Msg: fmt.Sprintf(format, args...)}
	}
	if !(c.MinExcessShare > 0 && c.MinExcessShare <= 1) {
		return bad("min_excess_share", "%v is outside (0..1]", c.MinExcessShare)
	}
	if !(c.MaxBaselineShare >= 0 && c.MaxBaselineShare <= 1) {
		return bad("max_baseline_share", "%v is outside 0..1", c.MaxBaselineShare)
	}
	if !(c.RateMultiple >= 1) || math.IsInf(c.RateMultiple, 0) {
		return bad("rate_multiple", "%v must be at least 1", c.RateMultiple)
	}
	if !(c.MinBaselinePPS >= 0) || math.IsInf(c.MinBaselinePPS, 0) {
		return bad("min_baseline_pps", "must be a non-negative number")
	}
	if c.MaxRules < 0 || c.MaxRules > MaxSignatureRules {
		return bad("max_rules", "%d is outside 0..%d", c.MaxRules, MaxSignatureRules)
	}
	if c.MaxExempt < 0 || c.MaxExempt > 1<<20 {
		return bad("max_exempt", "%d is outside 0..%d", c.MaxExempt, 1<<20)
	}
	return nil
}

// MaxSignatureRules is the most signature rules any data plane must hold.
const MaxSignatureRules = 256

// ActiveSignature is a signature rule the detector holds.
type ActiveSignature struct {
	SignatureRule
	// Class is the aggregate class whose attack the rule answers.
	Class string
	// HoldPPS: at expiry the rule is renewed if the traffic it matches
	// (dropped or not) still runs at this rate, else lifted.
	HoldPPS float64
	// LastPPS is the matched rate of the last tick.
	LastPPS float64
	DryRun  bool
	// Manual marks an operator's rule: the detector never lifts, renews
	// or replaces it.
	Manual bool
}

// sigBook holds the signature rules in force in insertion order, with
// their offences for TTL doubling.
type sigBook struct {
	list     []ActiveSignature
	offences map[Match]offence
}

func (b *sigBook) find(m Match) int {
	return slices.IndexFunc(b.list, func(s ActiveSignature) bool { return s.Match == m })
}

// Signatures returns a copy of the signature rules in force.
func (e *Engine) Signatures() []ActiveSignature { return slices.Clone(e.sig.book.list) }

func (e *Engine) sigEnforcer() SignatureEnforcer {
	se, _ := e.enf.(SignatureEnforcer)
	return se
}

// installSignature puts a derived rule in force, renewing it if the same
// match is already there; it returns why not when it cannot.
func (e *Engine) installSignature(m Match, rate uint64, class string, hold, pps, bps, base float64, reason string) (bool, string) {
	b := &e.sig.book
	if i := b.find(m); i >= 0 {
		return true, ""
	}
	se := e.sigEnforcer()
	if se == nil {
		return false, "the data plane has no signature rules"
	}
	if len(b.list) >= e.cfg.Signatures.MaxRules {
		e.stats.BansRefused++
		return false, fmt.Sprintf("signature rule cap %d reached", e.cfg.Signatures.MaxRules)
	}
	ttl := e.sigTTL(m)
	r := SignatureRule{Match: m, RatePPS: rate, TTL: ttl, Expires: e.scratch.now.Add(ttl), Origin: OriginDetector}
	if !e.cfg.Bans.DryRun {
		if err := e.syncExempt(); err != nil {
			return false, fmt.Sprintf("exempt sources not installed: %v", err)
		}
		if err := se.InstallSignature(r); err != nil {
			e.stats.BansRefused++
			return false, fmt.Sprintf("rule install failed: %v", err)
		}
	}
	b.list = append(b.list, ActiveSignature{SignatureRule: r, Class: class, HoldPPS: hold, LastPPS: pps, DryRun: e.cfg.Bans.DryRun})
	e.stats.BansIssued++
	e.emitSignature(Ban, &b.list[len(b.list)-1], pps, bps, base, reason)
	return true, ""
}

func (e *Engine) emitSignature(kind EventKind, s *ActiveSignature, pps, bps, base float64, reason string) {
	i := e.emit(kind, ScopeSignature, s.Match.String(), pps, bps, base, reason)
	ev := &e.scratch.events[i]
	m := s.Match
	ev.Match, ev.RatePPS, ev.DryRun = &m, s.RatePPS, s.DryRun
	if kind == Ban {
		ev.TTL = s.TTL
	}
}

// sigTTL doubles a rule's TTL for each remembered offence of its match.
func (e *Engine) sigTTL(m Match) time.Duration {
	if e.sig.book.offences == nil {
		e.sig.book.offences = map[Match]offence{}
	}
	o := e.sig.book.offences[m]
	if o.count > 0 && e.scratch.now.Sub(o.last) > e.cfg.Bans.ForgetAfter.D() {
		o.count = 0
	}
	ttl := e.cfg.Bans.TTL.D()
	for i := 0; i < o.count && ttl < e.cfg.Bans.MaxTTL.D(); i++ {
		ttl *= 2
	}
	ttl = min(ttl, e.cfg.Bans.MaxTTL.D())
	e.sig.book.offences[m] = offence{count: o.count + 1, last: e.scratch.now}
	return ttl
}

// maintainSignatures renews, one tick before it would expire, each rule
// whose matched traffic still runs at its hold level, and lifts the others;
// an operator's rule lasts its TTL.
func (e *Engine) maintainSignatures(t *Tick) {
	b := &e.sig.book
	horizon := e.scratch.now.Add(e.cfg.Tick.D())
	for i := 0; i < len(b.list); i++ {
		s := &b.list[i]
		s.LastPPS = e.matchedPPS(t, &s.Match)
		if s.Expires.After(horizon) {
			continue
		}
		se := e.sigEnforcer()
		if s.Manual {
			if s.Expires.After(e.scratch.now) {
				continue
			}
			if se != nil {
				_ = se.RemoveSignature(s.Match)
			}
			gone := b.list[i]
			b.list = slices.Delete(b.list, i, i+1)
			i--
			e.emitSignature(Unban, &gone, 0, 0, 0, "manual rule expired")
			continue
		}
		if s.LastPPS >= s.HoldPPS && s.LastPPS > 0 {
			ttl := min(s.TTL*2, e.cfg.Bans.MaxTTL.D())
			r := s.SignatureRule
			r.TTL, r.Expires = ttl, e.scratch.now.Add(ttl)
			if !s.DryRun && se != nil {
				if err := se.InstallSignature(r); err != nil {
					e.stats.BansRefused++
					continue // it expires in the data plane; derived afresh if the flood goes on
				}
			}
			s.SignatureRule = r
			e.emitSignature(Ban, s, s.LastPPS, 0, 0,
				fmt.Sprintf("renewed: matched traffic still %.0f pps (hold level %.0f)", s.LastPPS, s.HoldPPS))
			continue
		}
		if !s.DryRun && se != nil {
			_ = se.RemoveSignature(s.Match)
		}
		gone := b.list[i]
		b.list = slices.Delete(b.list, i, i+1)
		i--
		e.stats.Unbans++
		e.emitSignature(Unban, &gone, gone.LastPPS, 0, 0,
			fmt.Sprintf("expired: matched traffic %.0f pps, under hold level %.0f", gone.LastPPS, gone.HoldPPS))
	}
}

// ManualSignature installs an operator's signature rule for ttl from now;
// the detector never lifts, renews or replaces it. Exempt sources stay
// exempt.
func (e *Engine) ManualSignature(m Match, ratePPS uint64, ttl time.Duration, now time.Time) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("block %s: %w", m.String(), err)
	}
	if ttl <= 0 {
		return fmt.Errorf("block %s: ttl %s must be positive", m.String(), ttl)
	}
	se := e.sigEnforcer()
	if se == nil {
		return fmt.Errorf("block %s: the data plane has no signature rules", m.String())
	}
	b := &e.sig.book
	i := b.find(m)
	if i < 0 && len(b.list) >= e.cfg.Signatures.MaxRules {
		return fmt.Errorf("block %s: signature rule cap %d reached", m.String(), e.cfg.Signatures.MaxRules)
	}
	r := SignatureRule{Match: m, RatePPS: ratePPS, TTL: ttl, Expires: now.Add(ttl), Origin: OriginOperator}
	if err := e.syncExempt(); err != nil {
		return fmt.Errorf("block %s: exempt sources: %w", m.String(), err)
	}
	if err := se.InstallSignature(r); err != nil {
		return fmt.Errorf("block %s: %w", m.String(), err)
	}
	if i >= 0 {
		b.list[i].SignatureRule, b.list[i].Manual, b.list[i].DryRun = r, true, false
		return nil
	}
	b.list = append(b.list, ActiveSignature{SignatureRule: r, Manual: true})
	return nil
}

// ManualUnsignature removes a signature rule by hand (its match exactly).
func (e *Engine) ManualUnsignature(m Match) error {
	se := e.sigEnforcer()
	if se == nil {
		return fmt.Errorf("unblock %s: the data plane has no signature rules", m.String())
	}
	if err := se.RemoveSignature(m); err != nil {
		return fmt.Errorf("unblock %s: %w", m.String(), err)
	}
	if i := e.sig.book.find(m); i >= 0 {
		e.sig.book.list = slices.Delete(e.sig.book.list, i, i+1)
	}
	return nil
}

// exemptPrefixes are the allowlist's and the host's prefixes as single
// addresses (a prefix wider than exemptExpand addresses is exempted only
// through its first exemptExpand, and said so in the ban's reason).
const exemptExpand = 256

// syncExempt hands the data plane the exempt sources if they changed.
func (e *Engine) syncExempt() error {
	want := e.sig.exemptWanted(e.allow, e.cfg.Signatures.MaxExempt)
	if slices.Equal(want, e.sig.exemptSent) {
		return nil
	}
	se := e.sigEnforcer()
	if se == nil {
		return nil
	}
	if err := se.SetExempt(want); err != nil {
		return err
	}
	e.sig.exemptSent = want
	return nil
}

// exemptWanted lists the exempt sources: the allowlist's and host's
// addresses, then the learnt ones, at most max.
func (s *sigState) exemptWanted(allow []netip.Prefix, max int) []Addr {
	var out []Addr
	s.exemptTruncated = false
	for _, p := range allow {
		if p.Addr().IsLoopback() {
			continue // never arrives on the NIC
		}
		a := p.Masked().Addr()
		for n := 0; n < exemptExpand && p.Contains(a) && a.IsValid(); n++ {
			out = append(out, AddrFrom(a))
			a = a.Next()
		}
		if p.Bits() < p.Addr().BitLen()-8 {
			s.exemptTruncated = true
		}
	}
	out = append(out, s.learnt...)
	slices.SortFunc(out, func(a, b Addr) int { return compareAddr(a, b) })
	out = slices.Compact(out)
	if len(out) > max {
		out = out[:max]
		s.exemptTruncated = true
	}
	return out
}

func compareAddr(a, b Addr) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

// AdoptSignature takes over a signature rule found in the data plane at
// start (left by an earlier run: the snapshot does not hold signature
// rules). The detector treats it as its own: renewed while its traffic
// holds, lifted otherwise.
func (e *Engine) AdoptSignature(r SignatureRule) {
	if e.sig.book.find(r.Match) >= 0 {
		return
	}
	e.sig.book.list = append(e.sig.book.list, ActiveSignature{SignatureRule: r, Manual: r.Origin == OriginOperator,
		HoldPPS: e.cfg.Aggregate.FloorPPS / 10})
}
