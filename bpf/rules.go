package bpf

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

var (
	// ErrInvalidRule is returned for a prefix or duration a rule cannot
	// have: invalid prefix, /0, IPv4-mapped prefix shorter than
	// /96, non-positive duration.
	ErrInvalidRule = errors.New("invalid rule")
	// ErrRuleNotFound is returned when extending or removing a rule that is
	// not installed.
	ErrRuleNotFound = errors.New("no such rule")
)

// Rule is a drop rule as installed in the kernel.
type Rule struct {
	// Prefix is what the rule drops; a single address (/32 or /128) is an
	// exact rule. IPv4 rules are reported as IPv4 prefixes.
	Prefix netip.Prefix
	// ExpiresNs is the expiry on the kernel's CLOCK_MONOTONIC (see
	// MonotonicNow). The program stops dropping at that instant on its own.
	ExpiresNs uint64
	// TimeLeft is the time until expiry when the rule was listed; zero or
	// negative means expired: no longer dropping, still installed until
	// removed or pruned. An expired prefix rule still shadows shorter
	// prefixes covering the same addresses (longest match wins).
	TimeLeft time.Duration
	// Packets and Bytes are what the rule dropped. Prefix rules count their
	// own hits. An exact rule's are the dropped counters of its address's
	// per-source entry: every drop of that source since the entry was
	// created, by this rule or (while it was not active) a prefix rule.
	Packets uint64
	Bytes   uint64
}

// Exact reports whether r is a single-address rule.
func (r Rule) Exact() bool { return r.Prefix.IsSingleIP() }

// MonotonicNow returns CLOCK_MONOTONIC in nanoseconds, the clock on which
// rule expiries and last-seen times are kept. The program reads it at tick
// resolution (bpf_ktime_get_coarse_ns), so its view of now lags by at most
// one tick: rules stop dropping up to a tick after their expiry, never
// before, and LastSeenNs is up to a tick old.
func MonotonicNow() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime: %w", err)
	}
	return uint64(ts.Nano()), nil
}

// ruleKey is a normalized rule prefix and its key in one of the rule maps.
type ruleKey struct {
	prefix netip.Prefix
	exact  bool
	v4     bool
	addr   detector.Addr // exact rules
	k4     LPM4Key       // IPv4 prefix rules
	k6     LPM6Key       // IPv6 prefix rules
}

func newRuleKey(p netip.Prefix) (ruleKey, error) {
	if !p.IsValid() {
		return ruleKey{}, fmt.Errorf("%w: prefix %v", ErrInvalidRule, p)
	}
	a, bits := p.Addr(), p.Bits() // a prefix never has a zone
	if a.Is4In6() {
		if bits < 96 {
			return ruleKey{}, fmt.Errorf("%w: IPv4-mapped prefix %v is shorter than /96", ErrInvalidRule, p)
		}
		a, bits = a.Unmap(), bits-96
	}
	if bits == 0 {
		return ruleKey{}, fmt.Errorf("%w: %v would drop every address", ErrInvalidRule, p)
	}
	p = netip.PrefixFrom(a, bits).Masked()
	k := ruleKey{prefix: p, v4: a.Is4(), exact: bits == a.BitLen()}
	switch {
	case k.exact:
		k.addr = detector.AddrFrom(a)
	case k.v4:
		k.k4 = LPM4Key{Prefixlen: uint32(bits), Addr: p.Addr().As4()}
	default:
		k.k6 = LPM6Key{Prefixlen: uint32(bits), Addr: p.Addr().As16()}
	}
	return k, nil
}

func (x *XDP) prefixMap(k *ruleKey) (*ebpf.Map, any) {
	if k.v4 {
		return x.prefix4, &k.k4
	}
	return x.prefix6, &k.k6
}

// expiryFromNow converts a duration from now to a CLOCK_MONOTONIC expiry.
func expiryFromNow(ttl time.Duration) (uint64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("%w: duration %v", ErrInvalidRule, ttl)
	}
	now, err := MonotonicNow()
	if err != nil {
		return 0, err
	}
	if uint64(ttl) > math.MaxUint64-now {
		return math.MaxUint64, nil
	}
	return now + uint64(ttl), nil
}

// AddRule installs a rule dropping every frame from p for ttl from now. If
// the rule exists its expiry is set to now+ttl (shortening it if need be)
// and its counters are kept.
func (x *XDP) AddRule(p netip.Prefix, ttl time.Duration) error {
	k, err := newRuleKey(p)
	if err != nil {
		return err
	}
	exp, err := expiryFromNow(ttl)
	if err != nil {
		return err
	}
	if k.exact {
		if err := x.exact.Put(&k.addr, ExactRuleValue{ExpiresNs: exp}); err != nil {
			return fmt.Errorf("add rule %v: %w", k.prefix, err)
		}
		return x.bumpGeneration()
	}
	m, key := x.prefixMap(&k)
	err = m.Update(key, PrefixRuleValue{ExpiresNs: exp}, ebpf.UpdateNoExist)
	if errors.Is(err, ebpf.ErrKeyExist) {
		// Keep the counters. A lookup of an existing prefix returns that
		// prefix's own value (it is the longest match for itself).
		var v PrefixRuleValue
		if err = m.Lookup(key, &v); err == nil {
			v.ExpiresNs = exp
			err = m.Update(key, v, ebpf.UpdateExist)
		}
	}
	if err != nil {
		return fmt.Errorf("add rule %v: %w", k.prefix, err)
	}
	return x.bumpGeneration()
}

// ExtendRule moves the expiry of an installed rule to now+ttl if that is
// later than its current expiry (reviving an expired rule). It returns
// ErrRuleNotFound if p has no rule.
func (x *XDP) ExtendRule(p netip.Prefix, ttl time.Duration) error {
	k, err := newRuleKey(p)
	if err != nil {
		return err
	}
	exp, err := expiryFromNow(ttl)
	if err != nil {
		return err
	}
	if k.exact {
		var v ExactRuleValue
		if err := x.exact.Lookup(&k.addr, &v); err != nil {
			return ruleErr("extend", k.prefix, err)
		}
		if v.ExpiresNs >= exp {
			return nil
		}
		v.ExpiresNs = exp
		if err := x.exact.Update(&k.addr, v, ebpf.UpdateExist); err != nil {
			return ruleErr("extend", k.prefix, err)
		}
		return x.bumpGeneration()
	}
	m, key := x.prefixMap(&k)
	var v PrefixRuleValue
	// The lookup may return a shorter covering prefix's value when p is not
	// installed; the BPF_EXIST update below then fails, so nothing of it
	// is written.
	if err := m.Lookup(key, &v); err != nil {
		return ruleErr("extend", k.prefix, err)
	}
	if v.ExpiresNs >= exp {
		// Only meaningful if the value was p's own: check it exists.
		if err := m.Update(key, v, ebpf.UpdateExist); err != nil {
			return ruleErr("extend", k.prefix, err)
		}
		return nil
	}
	v.ExpiresNs = exp
	if err := m.Update(key, v, ebpf.UpdateExist); err != nil {
		return ruleErr("extend", k.prefix, err)
	}
	return x.bumpGeneration()
}

// RemoveRule removes the rule for p, or returns ErrRuleNotFound.
func (x *XDP) RemoveRule(p netip.Prefix) error {
	k, err := newRuleKey(p)
	if err != nil {
		return err
	}
	if k.exact {
		err = x.exact.Delete(&k.addr)
	} else {
		m, key := x.prefixMap(&k)
		err = m.Delete(key)
	}
	if err != nil {
		return ruleErr("remove", k.prefix, err)
	}
	return x.bumpGeneration()
}

func ruleErr(op string, p netip.Prefix, err error) error {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("%s rule %v: %w", op, p, ErrRuleNotFound)
	}
	return fmt.Errorf("%s rule %v: %w", op, p, err)
}

// Rules lists every installed rule, expired or not, with its hit counters
// and the time left.
func (x *XDP) Rules() ([]Rule, error) {
	now, err := MonotonicNow()
	if err != nil {
		return nil, err
	}
	left := func(exp uint64) time.Duration { return timeLeft(exp, now) }
	var rules []Rule

	var (
		addr detector.Addr
		ev   ExactRuleValue
	)
	it := x.exact.Iterate()
	for it.Next(&addr, &ev) {
		r := Rule{Prefix: addr.Prefix(), ExpiresNs: ev.ExpiresNs, TimeLeft: left(ev.ExpiresNs)}
		src, ok, err := x.LookupSource(addr)
		if err != nil {
			return nil, fmt.Errorf("list rules: %w", err)
		}
		if ok {
			r.Packets, r.Bytes = src.DroppedPackets, src.DroppedBytes
		}
		rules = append(rules, r)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list exact rules: %w", err)
	}

	var (
		k4 LPM4Key
		k6 LPM6Key
		pv PrefixRuleValue
	)
	it = x.prefix4.Iterate()
	for it.Next(&k4, &pv) {
		p := netip.PrefixFrom(netip.AddrFrom4(k4.Addr), int(k4.Prefixlen))
		rules = append(rules, Rule{Prefix: p, ExpiresNs: pv.ExpiresNs, TimeLeft: left(pv.ExpiresNs), Packets: pv.Packets, Bytes: pv.Bytes})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list ipv4 prefix rules: %w", err)
	}
	it = x.prefix6.Iterate()
	for it.Next(&k6, &pv) {
		p := netip.PrefixFrom(netip.AddrFrom16(k6.Addr), int(k6.Prefixlen))
		rules = append(rules, Rule{Prefix: p, ExpiresNs: pv.ExpiresNs, TimeLeft: left(pv.ExpiresNs), Packets: pv.Packets, Bytes: pv.Bytes})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list ipv6 prefix rules: %w", err)
	}
	return rules, nil
}

// PruneExpiredRules removes every expired rule and returns how many it
// removed.
func (x *XDP) PruneExpiredRules() (int, error) {
	rules, err := x.Rules()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rules {
		if r.TimeLeft > 0 {
			continue
		}
		k, err := newRuleKey(r.Prefix)
		if err != nil {
			return n, err
		}
		if k.exact {
			err = x.exact.Delete(&k.addr)
		} else {
			m, key := x.prefixMap(&k)
			err = m.Delete(key)
		}
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return n, fmt.Errorf("prune rule %v: %w", r.Prefix, err)
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	return n, x.bumpGeneration()
}

// RulesGeneration returns the generation the program compares its cached
// rule decisions against; it changes after every rule change.
func (x *XDP) RulesGeneration() uint32 { return uint32(x.control()) }

// bumpGeneration publishes a source rule change: it recomputes the flags
// and stores them with the next generation (publishFlags).
func (x *XDP) bumpGeneration() error { return x.publishFlags(true) }

// publishFlags recomputes which rule maps are non-empty (and the signature
// flags) and stores them in fg_control with one compare-and-swap, with the
// next generation if bump (a source rule changed: the per-source caches
// must be refreshed) or the same one (signature rules and exempt sources,
// which the program reads through the flags on every frame). The flags
// are computed after reading the old word, so a concurrent writer (another
// process) that changed a map in between makes the swap fail and the loop
// recompute.
func (x *XDP) publishFlags(bump bool) error {
	for {
		old := atomic.LoadUint64(x.ctl)
		flags, err := x.ruleFlags()
		if err != nil {
			return err
		}
		gen := uint32(old)
		if bump || gen == 0 {
			gen++
			if gen == 0 {
				gen = 1 // 0 is what a zeroed per-CPU copy holds
			}
		}
		if atomic.CompareAndSwapUint64(x.ctl, old, uint64(flags)<<32|uint64(gen)) {
			return nil
		}
	}
}

// ruleFlags returns the FG_HAVE_* flags for the rule maps' current
// contents.
func (x *XDP) ruleFlags() (uint32, error) {
	var (
		flags uint32
		addr  detector.Addr
		k4    LPM4Key
		k6    LPM6Key
	)
	for _, c := range []struct {
		m    *ebpf.Map
		key  any
		flag uint32
	}{
		{x.exact, &addr, haveExact},
		{x.prefix4, &k4, havePrefix4},
		{x.prefix6, &k6, havePrefix6},
		{x.exempt, &addr, haveExempt},
		{x.tripLevels, &addr, haveTripLvl},
	} {
		err := c.m.NextKey(nil, c.key)
		switch {
		case err == nil:
			flags |= c.flag
		case errors.Is(err, ebpf.ErrKeyNotExist):
		default:
			return 0, fmt.Errorf("rule map %s: %w", c.m, err)
		}
	}
	return flags | x.sigFlags(), nil
}
