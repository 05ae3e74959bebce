package detector

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ActiveBan is a ban the detector holds.
type ActiveBan struct {
	Rule
	Scope Scope
	// HoldPPS: at expiry the ban is renewed if its target still sends at
	// least this rate (dropped or not), else lifted.
	HoldPPS float64
	// LastPPS is the target's rate in the last tick it was seen.
	LastPPS float64
	DryRun  bool
	// Manual marks an operator's block: the detector never lifts or renews
	// it; it lasts its TTL.
	Manual bool
	seen   uint32
}

type offence struct {
	count int
	last  time.Time
}

// banBook holds active bans in insertion order (for deterministic output)
// with an index, and remembers past offences for TTL doubling.
type banBook struct {
	idx      map[netip.Prefix]int
	list     []ActiveBan
	offences map[netip.Prefix]offence
	// pardons: prefixes an operator unblocked, not to be banned again by
	// the detector before the time given.
	pardons map[netip.Prefix]time.Time
}

func newBanBook() banBook {
	return banBook{idx: make(map[netip.Prefix]int), offences: make(map[netip.Prefix]offence), pardons: make(map[netip.Prefix]time.Time)}
}

func (b *banBook) get(p netip.Prefix) *ActiveBan {
	if i, ok := b.idx[p]; ok {
		return &b.list[i]
	}
	return nil
}

func (b *banBook) observe(p netip.Prefix, pps float64, tick uint32) {
	if ab := b.get(p); ab != nil {
		ab.LastPPS, ab.seen = pps, tick
	}
}

func (b *banBook) remove(p netip.Prefix) {
	i, ok := b.idx[p]
	if !ok {
		return
	}
	last := len(b.list) - 1
	b.list[i] = b.list[last]
	b.idx[b.list[i].Prefix] = i
	b.list = b.list[:last]
	delete(b.idx, p)
}

// Bans returns a copy of the active bans.
func (e *Engine) Bans() []ActiveBan {
	out := make([]ActiveBan, len(e.bans.list))
	copy(out, e.bans.list)
	return out
}

// allowlisted reports whether a ban on p would drop any allowlisted address.
func (e *Engine) allowlisted(p netip.Prefix) bool {
	_, ok := e.allowlistedBy(p)
	return ok
}

// allowlistedBy returns the first allowlist entry a ban on p would drop
// addresses of.
func (e *Engine) allowlistedBy(p netip.Prefix) (netip.Prefix, bool) {
	for _, a := range e.allow {
		if a.Overlaps(p) {
			return a, true
		}
	}
	return netip.Prefix{}, false
}

// applyAllowlist runs at the start of the Step after the allowlist changed:
// it lifts every ban the allowlist now covers, detector's and operator's
// alike, and re-sends the sources exempt from signature rules. If the
// exempt sources cannot be sent it tries again at the next Step.
func (e *Engine) applyAllowlist() {
	for i := 0; i < len(e.bans.list); i++ {
		ab := &e.bans.list[i]
		if a, ok := e.allowlistedBy(ab.Prefix); ok {
			e.liftBan(i, ab.LastPPS, fmt.Sprintf("lifted: now covered by the allowlist (%s)", a))
			i--
		}
	}
	e.allowChanged = false
	if e.sigRulesInForce() || e.sig.exemptSent != nil {
		if err := e.syncExempt(); err != nil {
			e.allowChanged = true
		}
	}
}

// sigRulesInForce reports whether the data plane holds a signature rule.
func (e *Engine) sigRulesInForce() bool {
	for i := range e.sig.book.list {
		if !e.sig.book.list[i].DryRun {
			return true
		}
	}
	return false
}

// liftBan removes the ban at index i of the book, from the data plane too
// (an unban that fails leaves a rule that expires in the kernel by itself:
// nothing to retry), and emits its unban event.
func (e *Engine) liftBan(i int, rate float64, reason string) {
	ab := e.bans.list[i]
	if !ab.DryRun {
		_ = e.enf.Unban(ab.Prefix)
	}
	e.bans.remove(ab.Prefix)
	e.stats.Unbans++
	j := e.emit(Unban, ab.Scope, ab.Prefix.String(), rate, 0, 0, reason)
	e.scratch.events[j].DryRun, e.scratch.events[j].Prefix = ab.DryRun, ab.Prefix
	if s := e.keyOf(ab.Prefix); s != nil {
		s.flags &^= flagBanned
	}
	e.noteTripPrefix(ab.Prefix)
}

// nextTTL doubles the TTL for each remembered offence, up to the cap.
func (e *Engine) nextTTL(p netip.Prefix) time.Duration {
	o := e.bans.offences[p]
	if o.count > 0 && e.scratch.now.Sub(o.last) > e.cfg.Bans.ForgetAfter.D() {
		o.count = 0
	}
	ttl := e.cfg.Bans.TTL.D()
	for i := 0; i < o.count && ttl < e.cfg.Bans.MaxTTL.D(); i++ {
		ttl *= 2
	}
	ttl = min(ttl, e.cfg.Bans.MaxTTL.D())
	e.bans.offences[p] = offence{count: o.count + 1, last: e.scratch.now}
	return ttl
}

// tryBan installs a ban unless the allowlist, the cap or the data plane
// refuses; it returns false and why if so.
func (e *Engine) tryBan(p netip.Prefix, scope Scope, pps, bps, base, hold float64, reason string) (bool, string) {
	if e.bans.get(p) != nil {
		return true, ""
	}
	if e.allowlisted(p) {
		e.stats.BansRefused++
		return false, "allowlisted"
	}
	if until, ok := e.bans.pardons[p]; ok && e.scratch.now.Before(until) {
		e.stats.BansRefused++
		return false, "unblocked by an operator until " + until.UTC().Format(time.RFC3339)
	}
	if share := e.scratch.banLegitShare; share > e.cfg.Bans.MaxLegitShare {
		e.stats.BansRefused++
		return false, fmt.Sprintf("it would drop %.0f%% of the legitimate-looking traffic (cap %.0f%%)", 100*share, 100*e.cfg.Bans.MaxLegitShare)
	}
	if len(e.bans.list) >= e.cfg.Bans.MaxActive {
		e.stats.BansRefused++
		return false, fmt.Sprintf("active ban cap %d reached", e.cfg.Bans.MaxActive)
	}
	ttl := e.nextTTL(p)
	r := Rule{Prefix: p, TTL: ttl, Expires: e.scratch.now.Add(ttl)}
	if !e.cfg.Bans.DryRun {
		if err := e.enf.Ban(r); err != nil {
			e.stats.BansRefused++
			return false, fmt.Sprintf("rule install failed: %v", err)
		}
	}
	e.bans.idx[p] = len(e.bans.list)
	e.bans.list = append(e.bans.list, ActiveBan{Rule: r, Scope: scope, HoldPPS: hold, DryRun: e.cfg.Bans.DryRun, seen: e.tick, LastPPS: pps})
	e.stats.BansIssued++
	i := e.emit(Ban, scope, p.String(), pps, bps, base, reason)
	e.scratch.events[i].TTL, e.scratch.events[i].DryRun, e.scratch.events[i].Prefix = ttl, e.cfg.Bans.DryRun, p
	return true, ""
}

// maintainBans decides, one tick before each ban would expire in the data
// plane, whether to renew it (the target still sends) or lift it.
func (e *Engine) maintainBans() {
	horizon := e.scratch.now.Add(e.cfg.Tick.D())
	for i := 0; i < len(e.bans.list); i++ {
		ab := &e.bans.list[i]
		if ab.Expires.After(horizon) {
			continue
		}
		if ab.Manual {
			// An operator's block lasts its TTL, no more, no less: the
			// kernel expires it; the book forgets it once it has.
			if ab.Expires.After(e.scratch.now) {
				continue
			}
			p := ab.Prefix
			_ = e.enf.Unban(p)
			e.bans.remove(p)
			i--
			j := e.emit(Unban, scopeOf(p), p.String(), 0, 0, 0, "manual block expired")
			e.scratch.events[j].Prefix = p
			continue
		}
		rate := 0.0
		if ab.seen == e.tick {
			rate = ab.LastPPS
		}
		if a, ok := e.allowlistedBy(ab.Prefix); ok {
			// Never renew over the allowlist, whatever the target sends.
			e.liftBan(i, rate, fmt.Sprintf("not renewed: covered by the allowlist (%s)", a))
			i--
			continue
		}
		if rate >= ab.HoldPPS && rate > 0 {
			ttl := min(ab.TTL*2, e.cfg.Bans.MaxTTL.D())
			r := Rule{Prefix: ab.Prefix, TTL: ttl, Expires: e.scratch.now.Add(ttl)}
			if !ab.DryRun {
				if err := e.enf.Ban(r); err != nil {
					// Leave it to expire; the key will be banned afresh if
					// it goes on.
					e.stats.BansRefused++
					continue
				}
			}
			ab.Rule = r
			j := e.emit(Ban, ab.Scope, ab.Prefix.String(), rate, 0, 0,
				fmt.Sprintf("renewed: target still sends %.0f pps (hold level %.0f)", rate, ab.HoldPPS))
			e.scratch.events[j].TTL, e.scratch.events[j].DryRun, e.scratch.events[j].Prefix = ttl, ab.DryRun, ab.Prefix
			continue
		}
		e.liftBan(i, rate, fmt.Sprintf("expired: target sends %.0f pps, under hold level %.0f", rate, ab.HoldPPS))
		i--
	}
	if e.tick%3600 == 0 {
		for p, o := range e.bans.offences {
			if e.scratch.now.Sub(o.last) > e.cfg.Bans.ForgetAfter.D() {
				delete(e.bans.offences, p)
			}
		}
		for p, until := range e.bans.pardons {
			if !e.scratch.now.Before(until) {
				delete(e.bans.pardons, p)
			}
		}
	}
}

func scopeOf(p netip.Prefix) Scope {
	if p.IsSingleIP() {
		return ScopeSource
	}
	return ScopePrefix
}

// ErrAllowlisted is returned by ManualBan for a prefix overlapping the
// allowlist (the host itself, its gateways, configured CIDRs).
var ErrAllowlisted = errors.New("overlaps the allowlist")

// ManualBan installs an operator's block of p for ttl from now. The
// detector never lifts or renews it. A detector ban of p becomes manual.
func (e *Engine) ManualBan(p netip.Prefix, ttl time.Duration, now time.Time) error {
	p = p.Masked()
	if e.allowlisted(p) {
		return fmt.Errorf("block %s: %w", p, ErrAllowlisted)
	}
	if ttl <= 0 {
		return fmt.Errorf("block %s: ttl %s must be positive", p, ttl)
	}
	r := Rule{Prefix: p, TTL: ttl, Expires: now.Add(ttl)}
	if err := e.enf.Ban(r); err != nil {
		return fmt.Errorf("block %s: %w", p, err)
	}
	delete(e.bans.pardons, p)
	if ab := e.bans.get(p); ab != nil {
		ab.Rule, ab.Manual, ab.DryRun = r, true, false
		return nil
	}
	e.bans.idx[p] = len(e.bans.list)
	e.bans.list = append(e.bans.list, ActiveBan{Rule: r, Scope: scopeOf(p), Manual: true, seen: e.tick})
	if s := e.keyOf(p); s != nil {
		s.flags |= flagBanned
	}
	e.noteTripPrefix(p)
	return nil
}

// ManualUnban lifts the rule for p by hand. If the detector had banned p,
// it will not ban p again for the rest of that ban's TTL.
func (e *Engine) ManualUnban(p netip.Prefix, now time.Time) error {
	p = p.Masked()
	if err := e.enf.Unban(p); err != nil {
		return fmt.Errorf("unblock %s: %w", p, err)
	}
	if ab := e.bans.get(p); ab != nil {
		if !ab.Manual && ab.Expires.After(now) {
			e.bans.pardons[p] = ab.Expires
		}
		e.bans.remove(p)
	}
	if s := e.keyOf(p); s != nil {
		s.flags &^= flagBanned
	}
	e.noteTripPrefix(p)
	return nil
}

// keyOf returns the state of the source or prefix a ban names.
func (e *Engine) keyOf(p netip.Prefix) *keyState {
	if p.IsSingleIP() {
		return e.sources.get(AddrFrom(p.Addr()))
	}
	return e.prefixes.get(e.prefixKeyOf(p))
}
