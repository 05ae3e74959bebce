package paging

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/yamlconf"
)

// Config is the "paging" section of floodguard's config file.
type Config struct {
	// Host names this machine in dedup keys and summaries (default: the
	// hostname).
	Host string `yaml:"host"`
	// QuietPeriod is how long every attack must have stayed ended before
	// the incident resolves; an attack within it is a new wave of the
	// same incident.
	QuietPeriod detector.Duration `yaml:"quiet_period"`
	// UpdateInterval is the least time between two updates of one
	// incident; material changes within it are folded into one update
	// sent when it has passed.
	UpdateInterval detector.Duration `yaml:"update_interval"`
	// Bans hold when the traffic still passing is under the detector's
	// aggregate threshold; "not holding" after HoldingGrace over it while
	// an attack runs is material news (an update, and the severity rules'
	// bans_not_holding).
	HoldingGrace detector.Duration `yaml:"holding_grace"`
	// PageFlashCrowds pages for aggregate attacks on established TCP
	// alone with nothing banned, which look like a crowd of real visitors
	// (a debate airing). Off by default: the detector still reports them.
	PageFlashCrowds bool `yaml:"page_flash_crowds"`
	// OutboxDir keeps pages not yet delivered across restarts (default:
	// the daemon's state_dir/outbox).
	OutboxDir string `yaml:"outbox_dir"`
	// Severity rules, tried in order; the first that matches sets the
	// incident's severity, else DefaultSeverity.
	Severity        []SeverityRule `yaml:"severity"`
	DefaultSeverity Severity       `yaml:"default_severity"`
	Sinks           []SinkConfig   `yaml:"sinks"`
}

// SeverityRule matches an incident when all its set conditions hold.
type SeverityRule struct {
	Severity Severity `yaml:"severity"`
	// MinPeakPPS and MinPeakBPS: the incident's peak rate.
	MinPeakPPS float64 `yaml:"min_peak_pps"`
	MinPeakBPS float64 `yaml:"min_peak_bps"`
	// MinDroppedShare: share of all traffic being dropped now (0-1).
	MinDroppedShare float64 `yaml:"min_dropped_share"`
	// BansNotHolding: true matches only incidents whose bans do not hold
	// (or that have none while traffic is over the holding ratio).
	BansNotHolding bool `yaml:"bans_not_holding"`
}

func (r *SeverityRule) matches(inc *Incident) bool {
	return inc.PeakPPS >= r.MinPeakPPS && inc.PeakBPS >= r.MinPeakBPS &&
		inc.DroppedShare >= r.MinDroppedShare && (!r.BansNotHolding || !inc.BansHolding)
}

// SinkConfig configures one sink. Which fields apply depends on Type.
type SinkConfig struct {
	// Name identifies the sink in logs and metrics (default: its type).
	Name string `yaml:"name"`
	// Type is pagerduty, alertmanager, slack, webhook or exec.
	Type string `yaml:"type"`
	// URL is the endpoint where it is not a secret: Alertmanager's base
	// URL (required), PagerDuty's events endpoint (default the public
	// one).
	URL string `yaml:"url"`
	// RoutingKey is PagerDuty's integration key.
	RoutingKey Secret `yaml:"routing_key"`
	// WebhookURL is Slack's incoming webhook URL or the webhook's URL:
	// both carry a credential, so they are secrets.
	WebhookURL Secret `yaml:"webhook_url"`
	// HMACKey signs the webhook's bodies.
	HMACKey Secret `yaml:"hmac_key"`
	// Command is the exec hook: the program and its arguments.
	Command []string `yaml:"command"`
	// Labels are extra Alertmanager labels (e.g. team, env).
	Labels map[string]string `yaml:"labels"`
	// Timeout bounds one delivery attempt.
	Timeout detector.Duration `yaml:"timeout"`
	// QueueSize bounds the pages waiting for this sink.
	QueueSize int `yaml:"queue_size"`
	// MinInterval is the least time between two requests to this sink.
	MinInterval detector.Duration `yaml:"min_interval"`
	// ResendInterval is how often Alertmanager is sent open incidents
	// again (it expects a firing alert to be re-sent).
	ResendInterval detector.Duration `yaml:"resend_interval"`
}

// Secret is a credential kept out of the config file: read from a file or
// an environment variable. There is deliberately no way to write the value
// itself in the config.
type Secret struct {
	File string `yaml:"file"`
	Env  string `yaml:"env"`
}

// IsSet reports whether a source is configured.
func (s Secret) IsSet() bool { return s.File != "" || s.Env != "" }

// Value reads the secret. Errors name where it was looked for, never what
// was found. A secret file that group or others may access (mode 0640,
// 0644, ...) is refused, as ssh refuses such a private key: chmod 600 it.
func (s Secret) Value() (string, error) {
	switch {
	case s.File != "":
		b, err := readSecretFile(s.File)
		if err != nil {
			return "", err
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", s.File)
		}
		return v, nil
	case s.Env != "":
		v := strings.TrimSpace(os.Getenv(s.Env))
		if v == "" {
			return "", fmt.Errorf("secret environment variable %s is unset or empty", s.Env)
		}
		return v, nil
	}
	return "", fmt.Errorf("secret not configured (give file or env)")
}

// readSecretFile reads a secret file that only its owner may access.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s has mode %04o: group or others may access it; chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	return b, nil
}

// String never shows the value.
func (s Secret) String() string {
	switch {
	case s.File != "":
		return "file " + s.File
	case s.Env != "":
		return "env " + s.Env
	}
	return "unset"
}

// HostName is Host, or the machine's hostname when Host is unset.
func (c *Config) HostName() string {
	if c.Host != "" {
		return c.Host
	}
	host, _ := os.Hostname()
	return host
}

// DefaultConfig returns the documented defaults: no sinks.
func DefaultConfig() Config {
	return Config{
		QuietPeriod:     detector.Duration(2 * time.Minute),
		UpdateInterval:  detector.Duration(time.Minute),
		HoldingGrace:    detector.Duration(10 * time.Second),
		DefaultSeverity: SeverityWarning,
		Severity: []SeverityRule{
			{Severity: SeverityCritical, BansNotHolding: true, MinPeakPPS: 100_000},
			{Severity: SeverityError, MinPeakPPS: 1_000_000},
			{Severity: SeverityError, BansNotHolding: true},
		},
	}
}

// SinkDefaults fills in a sink's unset fields.
func (c *SinkConfig) SinkDefaults() {
	if c.Name == "" {
		c.Name = c.Type
	}
	if c.Timeout == 0 {
		c.Timeout = detector.Duration(10 * time.Second)
	}
	if c.QueueSize == 0 {
		c.QueueSize = 256
	}
	if c.MinInterval == 0 {
		c.MinInterval = detector.Duration(time.Second)
	}
	if c.ResendInterval == 0 && c.Type == "alertmanager" {
		c.ResendInterval = detector.Duration(time.Minute)
	}
	if c.URL == "" && c.Type == "pagerduty" {
		c.URL = "https://events.pagerduty.com/v2/enqueue"
	}
}

// Validate checks the section; errors name the key ("paging." + key).
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &yamlconf.FieldError{Key: "paging." + key, Msg: fmt.Sprintf(format, args...)}
	}
	if c.QuietPeriod.D() < 0 {
		return bad("quiet_period", "%s is negative", c.QuietPeriod)
	}
	if c.UpdateInterval.D() < 0 {
		return bad("update_interval", "%s is negative", c.UpdateInterval)
	}
	if c.HoldingGrace.D() < 0 {
		return bad("holding_grace", "%s is negative", c.HoldingGrace)
	}
	if c.OutboxDir != "" && !filepath.IsAbs(c.OutboxDir) {
		return bad("outbox_dir", "%q must be an absolute path", c.OutboxDir)
	}
	if !c.DefaultSeverity.Valid() {
		return bad("default_severity", "%q: want info, warning, error or critical", c.DefaultSeverity)
	}
	for i, r := range c.Severity {
		if !r.Severity.Valid() {
			return bad(fmt.Sprintf("severity.%d.severity", i), "%q: want info, warning, error or critical", r.Severity)
		}
		if r.MinDroppedShare < 0 || r.MinDroppedShare > 1 {
			return bad(fmt.Sprintf("severity.%d.min_dropped_share", i), "%g is not between 0 and 1", r.MinDroppedShare)
		}
	}
	names := map[string]bool{}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		s.SinkDefaults()
		key := fmt.Sprintf("sinks.%d.", i)
		if err := s.validate(); err != nil {
			return bad(key+err.key, "%s", err.msg)
		}
		if names[s.Name] {
			return bad(key+"name", "%q names two sinks", s.Name)
		}
		names[s.Name] = true
	}
	return nil
}

type sinkError struct{ key, msg string }

func (s *SinkConfig) validate() *sinkError {
	need := func(key string, ok bool, what string) *sinkError {
		if ok {
			return nil
		}
		return &sinkError{key, fmt.Sprintf("a %s sink needs %s", s.Type, what)}
	}
	var err *sinkError
	switch s.Type {
	case "pagerduty":
		err = need("routing_key", s.RoutingKey.IsSet(), "routing_key (file or env)")
	case "alertmanager":
		err = need("url", s.URL != "", "url (Alertmanager's base URL)")
	case "slack":
		err = need("webhook_url", s.WebhookURL.IsSet(), "webhook_url (file or env)")
	case "webhook":
		if err = need("webhook_url", s.WebhookURL.IsSet(), "webhook_url (file or env)"); err == nil {
			err = need("hmac_key", s.HMACKey.IsSet(), "hmac_key (file or env)")
		}
	case "exec":
		err = need("command", len(s.Command) > 0 && s.Command[0] != "", "command (program and arguments)")
	default:
		return &sinkError{"type", fmt.Sprintf("%q: want pagerduty, alertmanager, slack, webhook or exec", s.Type)}
	}
	if err != nil {
		return err
	}
	for key, sec := range map[string]Secret{"routing_key": s.RoutingKey, "webhook_url": s.WebhookURL, "hmac_key": s.HMACKey} {
		if sec.File != "" && sec.Env != "" {
			return &sinkError{key, "give file or env, not both"}
		}
	}
	switch {
	case s.Timeout.D() <= 0:
		return &sinkError{"timeout", "must be positive"}
	case s.QueueSize < 1:
		return &sinkError{"queue_size", "must be at least 1"}
	case s.MinInterval.D() < 0:
		return &sinkError{"min_interval", "is negative"}
	case s.ResendInterval.D() < 0:
		return &sinkError{"resend_interval", "is negative"}
	}
	return nil
}
