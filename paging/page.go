// Package paging turns the detector's attacks into incidents and pages
// on-call staff about them: one incident per attack (or overlapping run of
// attacks), opened, updated when something material changes and resolved
// after a quiet period, delivered to any number of sinks (PagerDuty,
// Alertmanager, Slack, a signed webhook, a program) without losing a page
// across failures or restarts.
//
// The incident logic (Tracker) is pure: it sees ticks and events and
// returns pages, so `floodguard replay --page` runs exactly what the
// daemon runs. Delivery (Dispatcher) is the only part that does I/O.
package paging

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// Action is what a page does to its incident.
type Action string

const (
	Trigger Action = "trigger" // the incident opened
	Update  Action = "update"  // something material changed
	Resolve Action = "resolve" // the incident ended
)

// Severity follows PagerDuty's four levels, most severe last.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityError    Severity = "error"
	SeverityCritical Severity = "critical"
)

var severityRank = map[Severity]int{SeverityInfo: 1, SeverityWarning: 2, SeverityError: 3, SeverityCritical: 4}

// Rank orders severities: 0 for an unknown one, then info to critical.
func (s Severity) Rank() int { return severityRank[s] }

// Valid reports whether s is one of the four severities.
func (s Severity) Valid() bool { return s.Rank() > 0 }

// Page is one message about an incident, as every sink receives it.
type Page struct {
	// ID identifies this page (dedup key and sequence number): a sink or
	// receiver that sees the same ID twice is seeing a retry.
	ID     string    `json:"id"`
	Action Action    `json:"action"`
	Seq    int       `json:"seq"` // 1 for the trigger, then counting up
	Time   time.Time `json:"time"`
	// Why says what made this page: "opened", "severity raised to
	// critical", "new wave", "bans not holding", "resolved", "test".
	Why      string   `json:"why"`
	Incident Incident `json:"incident"`
}

// Incident is the state of one incident when a page was made.
type Incident struct {
	// Key is the stable deduplication key every sink uses: host plus
	// incident id.
	Key      string    `json:"key"`
	Host     string    `json:"host"`
	Opened   time.Time `json:"opened"`
	Resolved time.Time `json:"resolved,omitzero"`
	Severity Severity  `json:"severity"`
	// Kind names the flood: "single source", "carpet from prefixes",
	// "reflection on UDP port 53", "spoofed sources", "distributed".
	Kind      string   `json:"kind"`
	Protocols []string `json:"protocols"`
	// Summary is one line an engineer can act on without logging in.
	Summary string `json:"summary"`

	PeakPPS     float64 `json:"peak_pps"`
	PeakBPS     float64 `json:"peak_bps"`
	BaselinePPS float64 `json:"baseline_pps"`
	// DroppedPPS is what the data plane is dropping now; DroppedShare its
	// share of all traffic now.
	DroppedPPS   float64 `json:"dropped_pps"`
	DroppedShare float64 `json:"dropped_share"`

	BannedSources  int `json:"banned_sources"`
	BannedPrefixes int `json:"banned_prefixes"`
	// SignatureRules are the signature rules in force ("udp sport 53 →
	// 198.18.0.10"): floods dropped by what their packets share.
	SignatureRules []string `json:"signature_rules,omitempty"`
	BansHolding    bool     `json:"bans_holding"`
	// AnnouncedUpstream is how many routes are announced to the upstream
	// routers over BGP now (the daemon with an upstream section only).
	AnnouncedUpstream int `json:"announced_upstream,omitempty"`
	Waves             int `json:"waves"`
	// Attacks in progress now, as "scope target" strings.
	Attacks    []string               `json:"attacks"`
	TopSources []detector.Contributor `json:"top_sources,omitempty"`
	DryRun     bool                   `json:"dry_run"`
	// Replay is set when the incident comes from `floodguard replay`.
	Replay string `json:"replay,omitempty"`
}

// Sink delivers pages to one destination. Send makes one attempt; the
// Dispatcher retries. It must be safe to call Send again with the same
// page after a failure.
type Sink interface {
	// Name is the sink's configured name, used in logs and metrics.
	Name() string
	Send(ctx context.Context, p *Page) error
}

// Resender is implemented by sinks whose receiver expects an open
// incident to be sent again periodically (Alertmanager forgets an alert
// that is not re-sent before its end time).
type Resender interface {
	ResendInterval() time.Duration
}

// PermanentError is a failure a retry cannot fix (the receiver rejected
// the request as malformed or unauthorised). The page is logged, counted
// and dropped.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfterError asks for the next attempt no sooner than After (HTTP 429
// or 503 with Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// IsPermanent reports whether err says not to retry.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}
