// Package upstream announces the detector's rules to upstream routers over
// BGP: FlowSpec (RFC 8955, RFC 8956) for the rules of an attack that
// reached the escalation threshold, and optionally RTBH. It has three
// parts: Policy, pure, computes what should be announced from the
// detector's rules in force (what `replay --upstream` prints and the unit
// tests cover); the speaker, an embedded GoBGP that connects out to the
// configured routers; and Upstream, the daemon's observer joining them
// without blocking the tick loop.
package upstream

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/floodguard/floodguard/detector"
)

// Announcement is one route announced upstream: a FlowSpec rule (Match,
// with traffic-rate RateBytes, 0 to discard) or, with Blackhole, the
// protected address Match.Dst with the blackhole community.
type Announcement struct {
	Match detector.Match
	// RatePPS is the local rule's rate limit (0: drop); RateBytes is what
	// is announced: traffic-rate in bytes per second (RatePPS × the mean
	// packet size of the matched traffic; 0 discards).
	RatePPS   uint64
	RateBytes float32
	Blackhole bool
	// DryRun: the local rule is a dry run (bans.dry_run): logged as what
	// would be announced, never sent.
	DryRun bool
	// Rule names the local rule it comes from; Reason says why it is
	// announced.
	Rule   string
	Reason string
}

// Key identifies the route: two announcements with the same key replace
// each other.
type Key struct {
	Match     detector.Match
	Blackhole bool
}

// Key returns a's route key.
func (a *Announcement) Key() Key { return Key{a.Match, a.Blackhole} }

// Action is the announcement's action as logs and status show it.
func (a *Announcement) Action() string {
	switch {
	case a.Blackhole:
		return "blackhole"
	case a.RateBytes > 0:
		return fmt.Sprintf("traffic-rate %.0f bytes/s (%d pps)", a.RateBytes, a.RatePPS)
	}
	return "discard"
}

// String is "flowspec udp sport 53 → 198.18.0.1 discard".
func (a *Announcement) String() string {
	if a.Blackhole {
		return "rtbh " + a.Match.Dst.String()
	}
	return "flowspec " + a.Match.String() + " " + a.Action()
}

// Refusal is an announcement the policy would have made but must not.
type Refusal struct {
	Rule string
	Why  string
}

// Diff is what changed since the last Step: routes to announce (new, or
// with a new action), routes to withdraw, and new refusals.
type Diff struct {
	Add, Withdraw []Announcement
	Refused       []Refusal
}

// Empty reports whether d changes nothing.
func (d *Diff) Empty() bool { return len(d.Add) == 0 && len(d.Withdraw) == 0 && len(d.Refused) == 0 }

// Input is what the policy sees after each tick.
type Input struct {
	// Tick is the tick just judged: rates in bits per second and the mean
	// packet sizes come from it. Nil: rates in packets only, 1500-byte
	// packets.
	Tick       *detector.Tick
	Bans       []detector.ActiveBan
	Signatures []detector.ActiveSignature
	// Attacking: an attack is in progress (a blackhole lasts while one is).
	Attacking bool
	// Protected are the host's addresses the floods target: a source ban
	// is announced with each one of its family as destination, and a
	// signature rule without a destination likewise. None known (replay):
	// source bans go without destination, such signature rules are refused.
	Protected []netip.Addr
	// Never: no announced source may overlap these (the allowlist, the
	// host's addresses and gateways, the BGP peers).
	Never []netip.Prefix
}

// ruleID names a local rule across ticks.
type ruleID struct {
	sig bool
	m   detector.Match
}

// Policy turns the detector's rules in force into announcements. It keeps
// which rules have escalated (a rule stays announced until it ends, even
// when the upstream drop makes its rate fall) and what is announced.
type Policy struct {
	cfg       Config
	escalated map[ruleID]bool
	announced map[Key]Announcement
	refused   map[string]bool
	bhOn      bool
	// Refusals counts the refusals so far (each rule once per escalation).
	Refusals uint64
}

// NewPolicy returns a policy with nothing announced.
func NewPolicy(cfg Config) *Policy {
	return &Policy{cfg: cfg, escalated: map[ruleID]bool{}, announced: map[Key]Announcement{}, refused: map[string]bool{}}
}

// SetConfig applies new thresholds and caps from the next Step on.
func (p *Policy) SetConfig(cfg Config) { p.cfg = cfg }

// Announced lists what is announced, in a stable order.
func (p *Policy) Announced() []Announcement {
	out := make([]Announcement, 0, len(p.announced))
	for _, a := range p.announced {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Announcement) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Step computes the announcements wanted for in and returns the change
// from what Step announced before.
func (p *Policy) Step(in Input) Diff {
	var d Diff
	want, refusals := p.wanted(in)
	newRefused := map[string]bool{}
	for _, r := range refusals {
		newRefused[r.Rule+"\x00"+r.Why] = true
		if !p.refused[r.Rule+"\x00"+r.Why] {
			d.Refused = append(d.Refused, r)
			p.Refusals++
		}
	}
	p.refused = newRefused
	for _, a := range want {
		if old, ok := p.announced[a.Key()]; ok && old.RateBytes == a.RateBytes && old.DryRun == a.DryRun {
			continue
		}
		d.Add = append(d.Add, a)
	}
	keep := map[Key]bool{}
	for _, a := range want {
		keep[a.Key()] = true
	}
	for _, a := range p.Announced() {
		if !keep[a.Key()] {
			d.Withdraw = append(d.Withdraw, a)
			delete(p.announced, a.Key())
		}
	}
	for _, a := range d.Add {
		p.announced[a.Key()] = a
	}
	return d
}

// wanted lists the announcements in for, in priority order, within the
// cap: what is announced already first (a new rule never displaces one
// the routers hold), then the rest in the detector's order.
func (p *Policy) wanted(in Input) ([]Announcement, []Refusal) {
	var cands []Announcement
	var refused []Refusal
	live := map[ruleID]bool{}
	if p.cfg.FlowSpec {
		bps := p.banBPS(in)
		for i := range in.Bans {
			b := &in.Bans[i]
			if b.Manual {
				continue // an operator's block answers no attack
			}
			id := ruleID{m: detector.Match{Src: b.Prefix}}
			live[id] = true
			if !p.escalate(id, b.LastPPS, bps[b.Prefix]) {
				continue
			}
			rule := b.Scope.String() + " ban " + b.Prefix.String()
			why := fmt.Sprintf("%s dropped locally, %s", rule, p.rateWhy(b.LastPPS, bps[b.Prefix]))
			as, r := p.forBan(b, in, rule, why)
			cands, refused = append(cands, as...), append(refused, r...)
		}
		for i := range in.Signatures {
			s := &in.Signatures[i]
			if s.Manual {
				continue
			}
			id := ruleID{sig: true, m: s.Match}
			live[id] = true
			size := meanSize(&s.Match, in.Tick)
			if !p.escalate(id, s.LastPPS, s.LastPPS*size*8) {
				continue
			}
			rule := "signature " + s.Match.String()
			why := fmt.Sprintf("%s in force locally, %s", rule, p.rateWhy(s.LastPPS, s.LastPPS*size*8))
			as, r := p.forSignature(s, size, in, rule, why)
			cands, refused = append(cands, as...), append(refused, r...)
		}
	}
	for id := range p.escalated {
		if !live[id] {
			delete(p.escalated, id) // the rule ended: it escalates afresh
		}
	}
	cands = append(cands, p.blackholes(in)...)
	// Cap: announced ones keep their place.
	slices.SortStableFunc(cands, func(a, b Announcement) int {
		_, oa := p.announced[a.Key()]
		_, ob := p.announced[b.Key()]
		if oa == ob {
			return 0
		}
		if oa {
			return -1
		}
		return 1
	})
	var out []Announcement
	seen := map[Key]bool{}
	for _, a := range cands {
		if seen[a.Key()] {
			continue
		}
		seen[a.Key()] = true
		if len(out) >= p.cfg.MaxAnnouncements {
			refused = append(refused, Refusal{Rule: a.Rule, Why: fmt.Sprintf("max_announcements %d reached", p.cfg.MaxAnnouncements)})
			continue
		}
		out = append(out, a)
	}
	return out, refused
}

// escalate reports whether the rule is (or now becomes) escalated.
func (p *Policy) escalate(id ruleID, pps, bps float64) bool {
	if p.escalated[id] {
		return true
	}
	if (p.cfg.EscalatePPS > 0 && pps >= p.cfg.EscalatePPS) || (p.cfg.EscalateBPS > 0 && bps >= p.cfg.EscalateBPS) {
		p.escalated[id] = true
		return true
	}
	return false
}

func (p *Policy) rateWhy(pps, bps float64) string {
	if p.cfg.EscalatePPS > 0 && pps >= p.cfg.EscalatePPS {
		return fmt.Sprintf("escalated at %.0f pps (escalate_pps %.0f)", pps, p.cfg.EscalatePPS)
	}
	if p.cfg.EscalateBPS > 0 && bps >= p.cfg.EscalateBPS {
		return fmt.Sprintf("escalated at %.0f bps (escalate_bps %.0f)", bps, p.cfg.EscalateBPS)
	}
	return "escalated earlier; announced until the local rule ends"
}

// forBan makes a source ban's announcements: source prefix and each
// protected address of its family as destination.
func (p *Policy) forBan(b *detector.ActiveBan, in Input, rule, why string) ([]Announcement, []Refusal) {
	if n, ok := overlaps(b.Prefix, in.Never); ok {
		return nil, []Refusal{{Rule: rule, Why: fmt.Sprintf("source overlaps %s (allowlist, host or BGP peer)", n)}}
	}
	var out []Announcement
	for _, dst := range protectedOf(in.Protected, b.Prefix.Addr().Is4()) {
		out = append(out, Announcement{Match: detector.Match{Src: b.Prefix, Dst: dst}, DryRun: b.DryRun, Rule: rule, Reason: why})
	}
	if len(out) == 0 {
		out = append(out, Announcement{Match: detector.Match{Src: b.Prefix}, DryRun: b.DryRun, Rule: rule, Reason: why})
	}
	return out, nil
}

// forSignature makes a signature rule's announcements: as it is when it
// names its destination, else once per protected address.
func (p *Policy) forSignature(s *detector.ActiveSignature, size float64, in Input, rule, why string) ([]Announcement, []Refusal) {
	m := s.Match
	if m.Src.IsValid() {
		if n, ok := overlaps(m.Src, in.Never); ok {
			return nil, []Refusal{{Rule: rule, Why: fmt.Sprintf("source overlaps %s (allowlist, host or BGP peer)", n)}}
		}
	}
	a := Announcement{Match: m, RatePPS: s.RatePPS, RateBytes: float32(float64(s.RatePPS) * size), DryRun: s.DryRun, Rule: rule, Reason: why}
	if m.Dst.IsValid() {
		return []Announcement{a}, nil
	}
	var out []Announcement
	for _, dst := range in.Protected {
		if f := family(&m); (f == 4 && !dst.Is4()) || (f == 6 && dst.Is4()) {
			continue
		}
		a.Match.Dst = netip.PrefixFrom(dst, dst.BitLen())
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, []Refusal{{Rule: rule, Why: "no protected address known: without a destination the rule would drop that traffic to every network behind the router"}}
	}
	return out, nil
}

// blackholes are the RTBH routes: every protected address, from the tick
// its traffic reaches a blackhole threshold while an attack is in progress
// until no attack is.
func (p *Policy) blackholes(in Input) []Announcement {
	bh := p.cfg.Blackhole
	if !bh.Enabled || !in.Attacking {
		p.bhOn = false
		return nil
	}
	var pps, bps float64
	if t := in.Tick; t != nil && t.Length > 0 {
		pps = float64(t.Total.TotalPackets()) / t.Length.Seconds()
		bps = float64(t.Total.TotalBytes()) * 8 / t.Length.Seconds()
	}
	why := fmt.Sprintf("blackhole: %.0f pps, %.0f bps reach blackhole.pps %.0f or blackhole.bps %.0f", pps, bps, bh.PPS, bh.BPS)
	if !p.bhOn {
		if !((bh.PPS > 0 && pps >= bh.PPS) || (bh.BPS > 0 && bps >= bh.BPS)) {
			return nil
		}
		p.bhOn = true
	} else {
		why = "blackhole: the attack is still in progress"
	}
	var out []Announcement
	for _, a := range in.Protected {
		out = append(out, Announcement{Match: detector.Match{Dst: netip.PrefixFrom(a, a.BitLen())}, Blackhole: true,
			Rule: "blackhole " + a.String(), Reason: why})
	}
	return out
}

// banBPS sums the tick's bits per second of each ban not yet escalated,
// when the bps threshold is on.
func (p *Policy) banBPS(in Input) map[netip.Prefix]float64 {
	if p.cfg.EscalateBPS <= 0 || in.Tick == nil || in.Tick.Length <= 0 || len(in.Bans) == 0 {
		return nil
	}
	want := map[netip.Prefix]bool{}
	var lens []int
	for i := range in.Bans {
		b := &in.Bans[i]
		if !b.Manual && !p.escalated[ruleID{m: detector.Match{Src: b.Prefix}}] {
			want[b.Prefix] = true
			if !slices.Contains(lens, b.Prefix.Bits()) {
				lens = append(lens, b.Prefix.Bits())
			}
		}
	}
	out := map[netip.Prefix]float64{}
	if len(want) == 0 {
		return out
	}
	secs := in.Tick.Length.Seconds()
	for i := range in.Tick.Sources {
		s := &in.Tick.Sources[i]
		a := s.Addr.Netip()
		for _, l := range lens {
			if l > a.BitLen() {
				continue
			}
			pf, _ := a.Prefix(l)
			if want[pf] {
				out[pf] += float64(s.Counters.TotalBytes()) * 8 / secs
			}
		}
	}
	return out
}

// meanSize is the mean packet size used to turn a rate in packets into
// bytes: the middle of the rule's length range if it has one, else the
// tick's mean for the rule's protocol (wire bytes as counted at the
// interface, Ethernet header included: a slight over-estimate, so an
// upstream limit errs on letting through), else 1500.
func meanSize(m *detector.Match, t *detector.Tick) float64 {
	if !m.Length.Any() {
		return (float64(m.Length.Lo) + float64(m.Length.Hi)) / 2
	}
	if t == nil {
		return 1500
	}
	var classes []detector.Class
	switch m.Proto {
	case 6:
		classes = []detector.Class{detector.ClassSYN, detector.ClassTCP}
	case 17:
		classes = []detector.Class{detector.ClassUDP}
	case 1, 58:
		classes = []detector.Class{detector.ClassICMP}
	case 0:
		classes = []detector.Class{detector.ClassSYN, detector.ClassTCP, detector.ClassUDP, detector.ClassICMP, detector.ClassOther}
	default:
		classes = []detector.Class{detector.ClassOther}
	}
	var pk, by uint64
	for _, c := range classes {
		pk += t.Total.Packets[c]
		by += t.Total.Bytes[c]
	}
	if pk == 0 {
		return 1500
	}
	return float64(by) / float64(pk)
}

// family is 4 or 6 when the match fixes it (a prefix, or ICMP vs ICMPv6).
func family(m *detector.Match) int {
	if f := m.Family(); f != 0 {
		return f
	}
	switch m.Proto {
	case 1:
		return 4
	case 58:
		return 6
	}
	return 0
}

func protectedOf(addrs []netip.Addr, v4 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		if a.Is4() == v4 {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return cmp.Compare(a.String(), b.String()) })
	return out
}

func overlaps(p netip.Prefix, never []netip.Prefix) (netip.Prefix, bool) {
	for _, n := range never {
		if n.Overlaps(p) {
			return n, true
		}
	}
	return netip.Prefix{}, false
}
