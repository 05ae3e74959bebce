package paging

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// alertmanager posts incidents to Alertmanager's API v2 as alerts.
//
// Alertmanager identifies an alert by its label set, so every send of one
// incident must carry exactly the same labels, or it becomes a second alert
// (the first would stay firing until its endsAt and never get the
// resolve). The labels are therefore only what cannot change during an
// incident:
//
//	alertname  FloodguardAttack
//	host       Incident.Host
//	incident   Incident.Key
//	severity   the severity the incident had when this sink first saw it
//	           (the trigger), for routing
//	kind       the kind it had then, for grouping
//	plus the configured labels.
//
// The live severity and kind go in the annotations (severity, kind), with
// the summary, a multi-line description and why the page was made. The
// labels at open are remembered per incident until it resolves; if
// floodguard restarted in between, the current values are used, and should
// that give a different label set, the orphaned alert ends by itself at its
// endsAt, at most 4 × resend_interval later.
//
// While the incident is open, endsAt is now + 4 × resend_interval, so the
// alert stays firing between re-sends (the sink is a Resender); the
// resolve sets endsAt to the incident's resolution time.
type alertmanager struct {
	name   string
	resend time.Duration
	extra  map[string]string
	post   *httpPoster
	now    func() time.Time

	mu     sync.Mutex
	atOpen map[string]amOpenLabels // incident key → labels fixed at open
}

type amOpenLabels struct {
	severity, kind string
	opened         time.Time
}

// amMaxRemembered bounds the incidents whose labels at open are kept.
const amMaxRemembered = 4096

const amAlertName = "FloodguardAttack"

// amReserved are the labels the sink sets; configured labels may not
// replace them.
var amReserved = map[string]bool{"alertname": true, "host": true, "incident": true, "severity": true, "kind": true}

var amLabelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func newAlertmanager(cfg SinkConfig) (*alertmanager, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("alertmanager sink %q: url (Alertmanager's base URL) not configured", cfg.Name)
	}
	u, shown, err := sinkParseURL(cfg.URL, false)
	if err == nil && u.User != nil {
		err = sinkCheckTransport(u) // basic auth: a password in every request
	}
	if err != nil {
		return nil, fmt.Errorf("alertmanager sink %q: url: %w", cfg.Name, err)
	}
	for k := range cfg.Labels {
		if !amLabelName.MatchString(k) || strings.HasPrefix(k, "__") {
			return nil, fmt.Errorf("alertmanager sink %q: label %q: not a valid label name", cfg.Name, k)
		}
		if amReserved[k] {
			return nil, fmt.Errorf("alertmanager sink %q: label %q is set by floodguard and cannot be configured", cfg.Name, k)
		}
	}
	resend := cfg.ResendInterval.D()
	if resend <= 0 {
		resend = time.Minute
	}
	endpoint := *u
	endpoint.Path = strings.TrimSuffix(u.Path, "/") + "/api/v2/alerts"
	endpoint.RawPath = ""
	extra := make(map[string]string, len(cfg.Labels))
	for k, v := range cfg.Labels {
		extra[k] = v
	}
	return &alertmanager{
		name:   cfg.Name,
		resend: resend,
		extra:  extra,
		post:   newHTTPPoster(endpoint.String(), strings.TrimSuffix(shown, "/")+"/api/v2/alerts", cfg.Timeout.D()),
		now:    time.Now,
		atOpen: map[string]amOpenLabels{},
	}, nil
}

func (s *alertmanager) Name() string { return s.name }

// ResendInterval is how often the Dispatcher should send an open incident
// again.
func (s *alertmanager) ResendInterval() time.Duration { return s.resend }

// amAlert is a postable alert of Alertmanager's API v2.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// openLabels returns the severity and kind labels fixed for p's incident,
// fixing them now if this is the first page seen for it, and forgets them
// when p resolves it.
func (s *alertmanager) openLabels(p *Page) amOpenLabels {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := p.Incident.Key
	l, ok := s.atOpen[key]
	if !ok {
		l = amOpenLabels{severity: string(p.Incident.Severity), kind: p.Incident.Kind, opened: p.Incident.Opened}
		if p.Action != Resolve {
			if len(s.atOpen) >= amMaxRemembered {
				s.forgetOldest()
			}
			s.atOpen[key] = l
		}
	}
	return l
}

// forgetResolved drops a resolved incident's labels once the resolve has
// been delivered (a failed resolve is retried with the same labels).
func (s *alertmanager) forgetResolved(key string) {
	s.mu.Lock()
	delete(s.atOpen, key)
	s.mu.Unlock()
}

func (s *alertmanager) forgetOldest() {
	var oldKey string
	var old time.Time
	first := true
	for k, l := range s.atOpen {
		if first || l.opened.Before(old) {
			oldKey, old, first = k, l.opened, false
		}
	}
	delete(s.atOpen, oldKey)
}

func (s *alertmanager) alert(p *Page) amAlert {
	inc := &p.Incident
	open := s.openLabels(p)
	labels := make(map[string]string, len(s.extra)+5)
	for k, v := range s.extra {
		labels[k] = v
	}
	labels["alertname"] = amAlertName
	labels["host"] = sinkHost(p)
	labels["incident"] = inc.Key
	labels["severity"] = open.severity
	labels["kind"] = open.kind

	desc := sinkDetailLines(p)
	annotations := map[string]string{
		"summary":     sinkSummary(p),
		"description": strings.Join(desc, "\n"),
		"why":         p.Why,
		"severity":    string(inc.Severity),
		"kind":        inc.Kind,
		"seq":         fmt.Sprint(p.Seq),
	}

	now := s.now()
	start := inc.Opened
	if start.IsZero() {
		start = now
	}
	var end time.Time
	if p.Action == Resolve {
		end = inc.Resolved
		if end.IsZero() {
			end = p.Time
		}
		if end.IsZero() || end.After(now) {
			end = now
		}
	} else {
		end = now.Add(4 * s.resend)
	}
	if end.Before(start) { // Alertmanager rejects an alert that ends before it starts
		end = start
	}
	return amAlert{
		Labels:      labels,
		Annotations: annotations,
		StartsAt:    start.UTC(),
		EndsAt:      end.UTC(),
	}
}

// Send posts a one-alert array. Alertmanager answers 200 when it took the
// alerts and 400 when one is invalid.
func (s *alertmanager) Send(ctx context.Context, p *Page) error {
	body, err := sinkJSON([]amAlert{s.alert(p)})
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("alertmanager %s: encode alert: %w", s.name, err)}
	}
	if _, err := s.post.postJSON(ctx, body, nil); err != nil {
		return fmt.Errorf("alertmanager %s: %w", s.name, err)
	}
	if p.Action == Resolve {
		s.forgetResolved(p.Incident.Key)
	}
	return nil
}
