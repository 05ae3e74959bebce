package paging

import (
	"context"
	"fmt"
	"strings"

	"github.com/floodguard/floodguard/internal/humanize"
)

// slack posts pages to a Slack incoming webhook. Incoming webhooks cannot
// edit a message they posted, so an update or a resolve is a follow-up
// message that says so and names the incident key.
type slack struct {
	name string
	post *httpPoster
}

func newSlack(cfg SinkConfig) (*slack, error) {
	raw, err := sinkSecret(cfg, "webhook_url", cfg.WebhookURL)
	if err != nil {
		return nil, err
	}
	u, shown, err := sinkParseURL(raw, true)
	if err == nil {
		err = sinkCheckTransport(u)
	}
	if err != nil {
		return nil, fmt.Errorf("slack sink %q: webhook_url (%s): %w", cfg.Name, cfg.WebhookURL, err)
	}
	// The URL's path is the credential: scrub it, and the whole URL, from
	// anything quoted back.
	return &slack{name: cfg.Name, post: newHTTPPoster(u.String(), shown, cfg.Timeout.D(), sinkURLSecrets(raw, u)...)}, nil
}

func (s *slack) Name() string { return s.name }

// Block Kit limits.
const (
	slackHeaderMax = 150  // characters of a header's plain text
	slackTextMax   = 3000 // characters of a section's text
	slackFieldMax  = 2000 // characters of one field
)

type slackMessage struct {
	Text   string       `json:"text"` // the fallback for notifications
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"` // header, section, context, divider
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

// slackEscape escapes the three characters Slack's mrkdwn treats as
// control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func slackMrkdwn(s string, max int) slackText {
	return slackText{Type: "mrkdwn", Text: sinkTruncateRunes(s, max)}
}

func (s *slack) message(p *Page) slackMessage {
	inc := &p.Incident
	sev := strings.ToUpper(string(inc.Severity))
	kind := inc.Kind
	if kind == "" {
		kind = "flood"
	}
	host := sinkHost(p)
	var head string
	switch p.Action {
	case Trigger:
		head = fmt.Sprintf("%s: DDoS attack (%s) on %s", sev, kind, host)
	case Update:
		head = fmt.Sprintf("Update: %s: DDoS attack (%s) on %s", sev, kind, host)
	case Resolve:
		head = fmt.Sprintf("Resolved: DDoS attack (%s) on %s", kind, host)
	default:
		head = fmt.Sprintf("%s: DDoS attack (%s) on %s", sev, kind, host)
	}
	summary := sinkSummary(p)

	var blocks []slackBlock
	blocks = append(blocks, slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: sinkTruncateRunes(head, slackHeaderMax)}})
	intro := slackEscape(summary)
	switch p.Action {
	case Update:
		intro = fmt.Sprintf("*Update* to incident `%s` (%s)\n%s", slackEscape(inc.Key), slackEscape(p.Why), intro)
	case Resolve:
		intro = fmt.Sprintf("*Resolved*: incident `%s` is over\n%s", slackEscape(inc.Key), intro)
	}
	blocks = append(blocks, slackBlock{Type: "section", Text: slackPtr(slackMrkdwn(intro, slackTextMax))})

	dropped := fmt.Sprintf("%s pps (%.1f%% of traffic)", humanize.SI(inc.DroppedPPS), 100*inc.DroppedShare)
	if inc.DryRun {
		dropped += ", dry run: nothing dropped"
	}
	blocks = append(blocks, slackBlock{Type: "section", Fields: []slackText{
		slackMrkdwn(fmt.Sprintf("*Peak*\n%s pps, %sbit/s", humanize.SI(inc.PeakPPS), humanize.SI(inc.PeakBPS)), slackFieldMax),
		slackMrkdwn(fmt.Sprintf("*Baseline*\n%s pps", humanize.SI(inc.BaselinePPS)), slackFieldMax),
		slackMrkdwn(fmt.Sprintf("*Bans*\n%d sources, %d prefixes, %d signature rules (%s)", inc.BannedSources, inc.BannedPrefixes, len(inc.SignatureRules), sinkHolding(inc)), slackFieldMax),
		slackMrkdwn("*Dropped*\n"+dropped, slackFieldMax),
	}})
	if len(inc.TopSources) > 0 {
		var b strings.Builder
		b.WriteString("*Top sources*")
		for _, line := range sinkTopSources(inc, 10) {
			b.WriteString("\n• " + slackEscape(line))
		}
		blocks = append(blocks, slackBlock{Type: "section", Text: slackPtr(slackMrkdwn(b.String(), slackTextMax))})
	}
	if len(inc.Attacks) > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Text: slackPtr(slackMrkdwn("*Attacks*\n"+slackEscape(strings.Join(inc.Attacks, "\n")), slackTextMax))})
	}
	ctxLine := fmt.Sprintf("incident `%s` · page %d · %s", slackEscape(inc.Key), p.Seq, slackEscape(p.Why))
	if inc.Replay != "" {
		ctxLine += " · replay of " + slackEscape(inc.Replay)
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackText{slackMrkdwn(ctxLine, slackTextMax)}})

	return slackMessage{Text: sinkTruncateRunes(head+": "+summary, slackTextMax), Blocks: blocks}
}

func slackPtr(t slackText) *slackText { return &t }

// Send posts one message. Slack answers 200 "ok", or a 4xx with a short
// reason (invalid_payload, invalid_token, channel_not_found, ...), or 429.
func (s *slack) Send(ctx context.Context, p *Page) error {
	body, err := sinkJSON(s.message(p))
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("slack %s: encode message: %w", s.name, err)}
	}
	if _, err := s.post.postJSON(ctx, body, nil); err != nil {
		return fmt.Errorf("slack %s: %w", s.name, err)
	}
	return nil
}
