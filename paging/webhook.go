package paging

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// webhook POSTs each Page, as JSON, to a URL, signed with HMAC-SHA256.
//
// Every request carries these headers:
//
//	Content-Type:           application/json
//	X-Floodguard-Timestamp: the Unix time of this attempt, in seconds
//	X-Floodguard-Signature: sha256=<hex of HMAC-SHA256(key, timestamp + "." + body)>
//	X-Floodguard-Delivery:  the Page's ID
//
// A receiver verifies a request this way:
//
//  1. Read the raw body exactly as received (before any JSON decoding).
//  2. Take the X-Floodguard-Timestamp header as the decimal string it is,
//     and compute HMAC-SHA256 with the shared key over that string, a
//     single ".", and the raw body.
//  3. Hex-encode the result (lower case), prefix it with "sha256=", and
//     compare it with X-Floodguard-Signature in constant time (e.g. Go's
//     hmac.Equal, Python's hmac.compare_digest). Reject on mismatch.
//  4. Reject the request if the timestamp is more than 5 minutes away from
//     the receiver's clock (older, or in the future), so a captured
//     request cannot be replayed later.
//  5. Deduplicate on X-Floodguard-Delivery: a retry of a page carries the
//     same delivery ID (with a fresh timestamp and signature), so a
//     receiver that has already processed that ID should answer 2xx and do
//     nothing.
//
// Answers: 2xx is delivered; 429 and 503 (with Retry-After) and other 5xx
// are retried; other 4xx (except 408) are not.
type webhook struct {
	name string
	key  []byte
	post *httpPoster
	now  func() time.Time
}

func newWebhook(cfg SinkConfig) (*webhook, error) {
	raw, err := sinkSecret(cfg, "webhook_url", cfg.WebhookURL)
	if err != nil {
		return nil, err
	}
	key, err := sinkSecret(cfg, "hmac_key", cfg.HMACKey)
	if err != nil {
		return nil, err
	}
	u, shown, err := sinkParseURL(raw, true)
	if err == nil {
		err = sinkCheckTransport(u)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook sink %q: webhook_url (%s): %w", cfg.Name, cfg.WebhookURL, err)
	}
	secrets := append(sinkURLSecrets(raw, u), key)
	return &webhook{
		name: cfg.Name,
		key:  []byte(key),
		post: newHTTPPoster(u.String(), shown, cfg.Timeout.D(), secrets...),
		now:  time.Now,
	}, nil
}

func (s *webhook) Name() string { return s.name }

// webhookSign returns the X-Floodguard-Signature value for a body sent at
// timestamp ts (Unix seconds, as a decimal string).
func webhookSign(key []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send posts the page. Each attempt is signed afresh with the current
// time, so a retry is not rejected as stale.
func (s *webhook) Send(ctx context.Context, p *Page) error {
	body, err := sinkJSON(p)
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("webhook %s: encode page: %w", s.name, err)}
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	h := http.Header{}
	h.Set("X-Floodguard-Timestamp", ts)
	h.Set("X-Floodguard-Signature", webhookSign(s.key, ts, body))
	h.Set("X-Floodguard-Delivery", p.ID)
	if _, err := s.post.postJSON(ctx, body, h); err != nil {
		return fmt.Errorf("webhook %s: %w", s.name, err)
	}
	return nil
}
