package detector

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"
)

// EventKind says what happened.
type EventKind uint8

const (
	AttackStart EventKind = iota + 1
	AttackEnd
	Ban
	Unban
)

var eventKindNames = map[EventKind]string{
	AttackStart: "attack_start", AttackEnd: "attack_end", Ban: "ban", Unban: "unban",
}

func (k EventKind) String() string { return eventKindNames[k] }

// Scope says what kind of key an event is about.
type Scope uint8

const (
	ScopeSource Scope = iota + 1
	ScopePrefix
	ScopeAggregate
	// ScopeSignature: a signature rule (Event.Match), not a source.
	ScopeSignature
)

var scopeNames = map[Scope]string{ScopeSource: "source", ScopePrefix: "prefix", ScopeAggregate: "aggregate", ScopeSignature: "signature"}

func (s Scope) String() string { return scopeNames[s] }

// Attack is an attack in progress (Engine.Attacks).
type Attack struct {
	Scope Scope
	// Prefix is the source (a /32 or /128) or the source prefix; zero for
	// an aggregate attack.
	Prefix netip.Prefix
	// Class is the aggregate class ("all", "udp", "tcp_syn", ...); empty
	// for sources and prefixes.
	Class string
}

// String names the attack as status, logs and pages show it: "aggregate
// udp", "source 198.18.0.7", "prefix 198.18.5.0/24".
func (a Attack) String() string {
	switch a.Scope {
	case ScopeAggregate:
		return "aggregate " + a.Class
	case ScopeSource:
		return "source " + a.Prefix.Addr().String()
	}
	return a.Scope.String() + " " + a.Prefix.String()
}

// MarshalText writes String, so JSON shows attacks as before.
func (a Attack) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Event is one detector decision or observation.
type Event struct {
	// Time is the end of the tick the event was decided in.
	Time  time.Time
	Kind  EventKind
	Scope Scope
	// Target is an address (source attacks), a CIDR (prefix attacks, and
	// every ban and unban, /32 or /128 for one address) or "*" (aggregate).
	Target string
	// Class is the protocol class of an aggregate attack ("all" or a class
	// name); empty for other scopes.
	Class       string
	PPS, BPS    float64
	BaselinePPS float64
	Reason      string
	// TTL is a ban's lifetime from Time.
	TTL time.Duration
	// DryRun marks bans decided but not installed.
	DryRun bool
	// Prefix is the ban or unban target as a prefix.
	Prefix netip.Prefix
	// Contributors lists the heaviest sources and prefixes of an aggregate
	// attack, largest share of the excess first.
	Contributors []Contributor
	// ReflectionPort is the UDP source port carrying most of an aggregate
	// attack's excess (a reflection flood), or 0. Unexplained says no
	// small set of out-of-band sources explains the attack: spoofed
	// sources or a flash crowd. Both are in Reason for people; these are
	// for programs (paging), and not in the JSON form.
	ReflectionPort uint16
	Unexplained    bool
	// Match is a signature rule's match (Scope ScopeSignature), and
	// RatePPS its rate limit (0: drop).
	Match   *Match
	RatePPS uint64
}

// Contributor is one heavy contributor to an aggregate attack.
type Contributor struct {
	Target string  `json:"target"`
	PPS    float64 `json:"pps"`
	Share  float64 `json:"share"`
}

// eventJSON fixes the field order of the JSON form: the documented fields
// first, extras after.
type eventJSON struct {
	TS           string        `json:"ts"`
	Event        string        `json:"event"`
	Scope        string        `json:"scope"`
	Target       string        `json:"target"`
	PPS          float64       `json:"pps"`
	BPS          float64       `json:"bps"`
	BaselinePPS  float64       `json:"baseline_pps"`
	Reason       string        `json:"reason"`
	Class        string        `json:"class,omitempty"`
	TTLSeconds   float64       `json:"ttl_seconds,omitempty"`
	DryRun       bool          `json:"dry_run,omitempty"`
	Contributors []Contributor `json:"contributors,omitempty"`
	Match        *Match        `json:"match,omitempty"`
	Action       string        `json:"action,omitempty"`
	RatePPS      uint64        `json:"rate_pps,omitempty"`
}

// MarshalJSON writes the event in floodguard's documented JSON-lines shape.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventJSON{
		TS: e.Time.UTC().Format(time.RFC3339Nano), Event: e.Kind.String(), Scope: e.Scope.String(),
		Target: e.Target, PPS: round3(e.PPS), BPS: round3(e.BPS), BaselinePPS: round3(e.BaselinePPS),
		Reason: e.Reason, Class: e.Class, TTLSeconds: e.TTL.Seconds(), DryRun: e.DryRun,
		Contributors: e.Contributors, Match: e.Match, Action: e.action(), RatePPS: e.RatePPS,
	})
}

// action is a signature ban's action in JSON: "drop" or "rate_limit".
func (e *Event) action() string {
	if e.Match == nil || e.Kind != Ban {
		return ""
	}
	if e.RatePPS > 0 {
		return "rate_limit"
	}
	return "drop"
}

func round3(v float64) float64 {
	if v != v || v > 1e15 || v < -1e15 {
		return v
	}
	return float64(int64(v*1000+0.5)) / 1000
}

// emit appends an event and returns its index.
func (e *Engine) emit(kind EventKind, scope Scope, target string, pps, bps, base float64, reason string) int {
	ev := Event{Time: e.scratch.now, Kind: kind, Scope: scope, Target: target, PPS: pps, BPS: bps, BaselinePPS: base, Reason: reason}
	if scope != ScopeAggregate {
		if p, err := netip.ParsePrefix(target); err == nil {
			ev.Prefix = p
		} else if a, err := netip.ParseAddr(target); err == nil {
			ev.Prefix = netip.PrefixFrom(a, a.BitLen())
		}
	}
	e.scratch.events = append(e.scratch.events, ev)
	return len(e.scratch.events) - 1
}

// sortEvents orders events: attack starts, bans, unbans, attack ends; within
// a kind by scope and target. Insertion order is deterministic already; this
// makes it readable too.
func sortEvents(evs []Event) {
	rank := map[EventKind]int{AttackStart: 0, Ban: 1, Unban: 2, AttackEnd: 3}
	slices.SortStableFunc(evs, func(a, b Event) int {
		if r := rank[a.Kind] - rank[b.Kind]; r != 0 {
			return r
		}
		return int(a.Scope) - int(b.Scope)
	})
}
