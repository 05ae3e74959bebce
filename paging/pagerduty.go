package paging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// PagerDuty Events API v2 limits.
const (
	pdSummaryMax  = 1024 // characters of payload.summary
	pdDedupKeyMax = 255  // characters of dedup_key
)

// pagerDuty sends alert events to PagerDuty's Events API v2. A trigger
// opens an alert keyed by the incident key; an update is another trigger
// with the same dedup_key, which PagerDuty folds into the open alert; a
// resolve closes it.
type pagerDuty struct {
	name       string
	routingKey string
	post       *httpPoster
}

func newPagerDuty(cfg SinkConfig) (*pagerDuty, error) {
	key, err := sinkSecret(cfg, "routing_key", cfg.RoutingKey)
	if err != nil {
		return nil, err
	}
	u, shown, err := sinkParseURL(cfg.URL, false)
	if err == nil {
		err = sinkCheckTransport(u) // the routing key is in every body
	}
	if err != nil {
		return nil, fmt.Errorf("pagerduty sink %q: url: %w", cfg.Name, err)
	}
	return &pagerDuty{
		name:       cfg.Name,
		routingKey: key,
		post:       newHTTPPoster(u.String(), shown, cfg.Timeout.D(), key),
	}, nil
}

func (s *pagerDuty) Name() string { return s.name }

// pdEvent is an Events API v2 alert event.
type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"` // trigger, acknowledge or resolve
	DedupKey    string     `json:"dedup_key"`
	Payload     *pdPayload `json:"payload,omitempty"` // trigger only
	Client      string     `json:"client,omitempty"`
}

type pdPayload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"` // critical, error, warning or info
	Timestamp     string          `json:"timestamp,omitempty"`
	Component     string          `json:"component,omitempty"`
	Group         string          `json:"group,omitempty"`
	Class         string          `json:"class,omitempty"`
	CustomDetails pdCustomDetails `json:"custom_details"`
}

// pdCustomDetails is the incident as every sink's JSON has it, with what
// this page is about.
type pdCustomDetails struct {
	Action Action `json:"action"`
	Why    string `json:"why"`
	Seq    int    `json:"seq"`
	PageID string `json:"page_id"`
	Incident
}

// pdDedupKey is the incident key, hashed when it exceeds PagerDuty's
// limit (the same key always gives the same dedup_key).
func pdDedupKey(key string) string {
	if len(key) <= pdDedupKeyMax {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:16])
	return sinkTruncate(key, pdDedupKeyMax-len(h)-1) + "-" + h
}

// pdSeverity maps an unknown severity to error rather than have PagerDuty
// reject the event.
func pdSeverity(s Severity) string {
	if s.Valid() {
		return string(s)
	}
	return string(SeverityError)
}

func (s *pagerDuty) event(p *Page) *pdEvent {
	ev := &pdEvent{
		RoutingKey: s.routingKey,
		DedupKey:   pdDedupKey(p.Incident.Key),
	}
	if p.Action == Resolve {
		ev.EventAction = "resolve"
		return ev
	}
	inc := &p.Incident
	ev.EventAction = "trigger"
	ev.Client = "floodguard"
	ts := p.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	details := *inc
	if details.Attacks == nil {
		details.Attacks = []string{} // [] rather than null in the details
	}
	ev.Payload = &pdPayload{
		Summary:   sinkTruncateRunes(sinkSummary(p), pdSummaryMax),
		Source:    sinkHost(p),
		Severity:  pdSeverity(inc.Severity),
		Timestamp: ts.UTC().Format(time.RFC3339),
		Component: "floodguard",
		// group: the protocol classes under attack, so that PagerDuty
		// can group alerts by what is being flooded.
		Group:         strings.Join(inc.Protocols, ","),
		Class:         inc.Kind,
		CustomDetails: pdCustomDetails{Action: p.Action, Why: p.Why, Seq: p.Seq, PageID: p.ID, Incident: details},
	}
	return ev
}

// Send posts one event. PagerDuty answers 202 when it accepted it, 400
// for an invalid event (permanent) and 429 when throttled.
func (s *pagerDuty) Send(ctx context.Context, p *Page) error {
	body, err := sinkJSON(s.event(p))
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("pagerduty %s: encode event: %w", s.name, err)}
	}
	if _, err := s.post.postJSON(ctx, body, nil); err != nil {
		return fmt.Errorf("pagerduty %s: %w", s.name, err)
	}
	return nil
}
