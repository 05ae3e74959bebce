package paging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/floodguard/floodguard/internal/humanize"
)

// NewSink builds the sink cfg describes. Secrets are read here, once: a
// missing or empty secret is an error that names the sink and where the
// secret was looked for, never its value.
func NewSink(cfg SinkConfig) (Sink, error) {
	cfg.SinkDefaults() // idempotent; cfg is a copy
	if cfg.Timeout.D() <= 0 {
		return nil, fmt.Errorf("%s sink %q: timeout must be positive", cfg.Type, cfg.Name)
	}
	switch cfg.Type {
	case "pagerduty":
		return newPagerDuty(cfg)
	case "alertmanager":
		return newAlertmanager(cfg)
	case "slack":
		return newSlack(cfg)
	case "webhook":
		return newWebhook(cfg)
	case "exec":
		return newExec(cfg)
	}
	return nil, fmt.Errorf("sink %q: unknown type %q: want pagerduty, alertmanager, slack, webhook or exec", cfg.Name, cfg.Type)
}

// sinkSecret reads one of a sink's secrets; what names the config key.
func sinkSecret(cfg SinkConfig, what string, s Secret) (string, error) {
	if !s.IsSet() {
		return "", fmt.Errorf("%s sink %q: %s not configured (give file or env)", cfg.Type, cfg.Name, what)
	}
	v, err := s.Value()
	if err != nil {
		// Secret.Value's errors name the file or variable, not the value.
		return "", fmt.Errorf("%s sink %q: %s (%s): %w", cfg.Type, cfg.Name, what, s, err)
	}
	return v, nil
}

// sinkParseURL checks that raw is an absolute http(s) URL. When secret is
// set the URL carries a credential: neither the error nor the returned
// display form shows more than its scheme and host. Otherwise the display
// form is the URL with any password masked.
func sinkParseURL(raw string, secret bool) (u *url.URL, shown string, err error) {
	u, perr := url.Parse(raw)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if secret {
			// url.Parse's error quotes the whole URL: do not pass it on.
			return nil, "", errors.New("not an absolute http or https URL")
		}
		if perr != nil {
			return nil, "", perr
		}
		return nil, "", fmt.Errorf("%q is not an absolute http or https URL", raw)
	}
	if secret {
		return u, u.Scheme + "://" + u.Host, nil
	}
	return u, u.Redacted(), nil
}

// sinkCheckTransport refuses plain http for a request that carries a
// credential (in its URL or body), unless it goes to a loopback address (a
// local relay, a test receiver): on the network it would travel in clear.
// The error never quotes the URL.
func sinkCheckTransport(u *url.URL) error {
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().IsLoopback() {
		return nil
	}
	return errors.New("plain http would send a credential in clear: use https (http is allowed only to a loopback address)")
}

// sinkURLSecrets lists the parts of a credential-bearing URL to scrub
// from quoted responses: the URL, its path and query, and each long path
// segment long enough to be a token.
func sinkURLSecrets(raw string, u *url.URL) []string {
	out := []string{raw}
	if len(u.Path) > 1 {
		out = append(out, u.Path)
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 16 {
			out = append(out, seg)
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= 8 {
				out = append(out, v)
			}
		}
	}
	return out
}

// sinkBodyCap bounds what is read back from a response; sinkSnippetLen
// bounds how much of it an error quotes.
const (
	sinkBodyCap    = 64 << 10
	sinkSnippetLen = 300
)

// httpPoster POSTs JSON bodies to one endpoint and classifies the answer.
type httpPoster struct {
	client  *http.Client
	url     string        // the full endpoint
	shown   string        // what errors say instead of url
	timeout time.Duration // per attempt
	// secrets are scrubbed from any response text quoted in an error (a
	// receiver may echo the request, which can carry a routing key).
	secrets []string
}

func newHTTPPoster(endpoint, shown string, timeout time.Duration, secrets ...string) *httpPoster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &httpPoster{
		client: &http.Client{
			Transport: tr,
			// A redirect is a configuration problem; following one could
			// also send a credential-bearing body somewhere unexpected.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		url:     endpoint,
		shown:   shown,
		timeout: timeout,
		secrets: secrets,
	}
}

// postJSON sends body with the extra headers within the poster's timeout
// and returns the response body (capped) on a 2xx answer. Errors:
// *RetryAfterError for 429 and 503, *PermanentError for a 3xx or a 4xx
// other than 408 and 429, a plain (retryable) error for everything else.
// No error ever contains the endpoint's path or query, or a secret.
func (h *httpPoster) postJSON(ctx context.Context, body []byte, header http.Header) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		// The error would quote the URL.
		return nil, fmt.Errorf("POST %s: cannot build request", h.shown)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "floodguard")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error's text holds the full URL
		}
		return nil, fmt.Errorf("POST %s: %w", h.shown, err)
	}
	defer resp.Body.Close()
	got, rerr := io.ReadAll(io.LimitReader(resp.Body, sinkBodyCap))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, sinkBodyCap)) // let the connection be reused
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return got, nil
	}
	if rerr != nil && len(got) == 0 {
		got = []byte("(body unreadable: " + rerr.Error() + ")")
	}
	failure := fmt.Errorf("POST %s: %s%s", h.shown, resp.Status, h.snippet(got, resp.Header.Get("Content-Type")))
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return nil, &RetryAfterError{After: sinkRetryAfter(resp.Header.Get("Retry-After"), time.Now()), Err: failure}
	case code == http.StatusRequestTimeout || code >= 500:
		return nil, failure
	case code >= 300 && code < 500:
		return nil, &PermanentError{Err: failure}
	}
	return nil, failure
}

// snippet quotes the start of a response body for an error message: one
// line of printable text with the poster's secrets removed.
func (h *httpPoster) snippet(b []byte, contentType string) string {
	if len(b) == 0 || strings.HasPrefix(contentType, "image/") || strings.HasPrefix(contentType, "application/octet-stream") {
		return ""
	}
	s := string(b)
	for _, sec := range h.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	return ": " + sinkTruncate(s, sinkSnippetLen)
}

// sinkRetryAfter parses a Retry-After header: delay seconds or an HTTP
// date. Missing, malformed or past values give 0.
func sinkRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(24*time.Hour/time.Second) { // absurd; keep the arithmetic sane
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// sinkJSON encodes v without HTML escaping (receivers show the text).
func sinkJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// sinkTruncate cuts s to at most max bytes on a rune boundary, marking the
// cut with an ellipsis.
func sinkTruncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ell = "…"
	cut := max - len(ell)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ell
}

// sinkTruncateRunes cuts s to at most max characters (runes).
func sinkTruncateRunes(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// sinkSummary is the incident's one-line summary, or a made-up one.
func sinkSummary(p *Page) string {
	if s := strings.TrimSpace(p.Incident.Summary); s != "" {
		return s
	}
	kind := p.Incident.Kind
	if kind == "" {
		kind = "flood"
	}
	return fmt.Sprintf("DDoS attack (%s) on %s", kind, sinkHost(p))
}

func sinkHost(p *Page) string {
	if p.Incident.Host != "" {
		return p.Incident.Host
	}
	return "unknown host"
}

// sinkDetailLines describes the incident's numbers, one fact a line, for
// receivers that show plain text.
func sinkDetailLines(p *Page) []string {
	inc := &p.Incident
	lines := []string{
		fmt.Sprintf("severity: %s", inc.Severity),
		fmt.Sprintf("kind: %s", inc.Kind),
	}
	if len(inc.Protocols) > 0 {
		lines = append(lines, "protocols: "+strings.Join(inc.Protocols, ", "))
	}
	lines = append(lines,
		fmt.Sprintf("peak: %s pps, %sbit/s (baseline %s pps)", humanize.SI(inc.PeakPPS), humanize.SI(inc.PeakBPS), humanize.SI(inc.BaselinePPS)),
		fmt.Sprintf("dropping: %s pps (%.1f%% of traffic)", humanize.SI(inc.DroppedPPS), 100*inc.DroppedShare),
		fmt.Sprintf("bans: %d sources, %d prefixes (%s)", inc.BannedSources, inc.BannedPrefixes, sinkHolding(inc)),
		fmt.Sprintf("waves: %d", inc.Waves),
	)
	if len(inc.SignatureRules) > 0 {
		lines = append(lines, "signature rules: "+strings.Join(inc.SignatureRules, "; "))
	}
	if len(inc.Attacks) > 0 {
		lines = append(lines, "attacks: "+strings.Join(inc.Attacks, "; "))
	}
	if len(inc.TopSources) > 0 {
		lines = append(lines, "top sources: "+strings.Join(sinkTopSources(inc, 5), ", "))
	}
	if inc.DryRun {
		lines = append(lines, "dry run: nothing is dropped")
	}
	if inc.Replay != "" {
		lines = append(lines, "replay of "+inc.Replay)
	}
	lines = append(lines, fmt.Sprintf("opened: %s", inc.Opened.UTC().Format(time.RFC3339)))
	if !inc.Resolved.IsZero() {
		lines = append(lines, fmt.Sprintf("resolved: %s", inc.Resolved.UTC().Format(time.RFC3339)))
	}
	return lines
}

func sinkHolding(inc *Incident) string {
	if inc.BansHolding {
		return "holding"
	}
	return "not holding"
}

// sinkTopSources formats up to n top sources as "target pps (share%)".
func sinkTopSources(inc *Incident, n int) []string {
	var out []string
	for i, c := range inc.TopSources {
		if i == n {
			out = append(out, fmt.Sprintf("and %d more", len(inc.TopSources)-n))
			break
		}
		out = append(out, fmt.Sprintf("%s %s pps (%.0f%%)", c.Target, humanize.SI(c.PPS), 100*c.Share))
	}
	return out
}
