package paging

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

// Secret values used by the tests; no error may ever contain them.
const (
	testRoutingKey = "R0UTINGKEY5ECRETabcdef0123456789"
	testSlackToken = "SLACKT0KEN5ECRETxyz"
	testHookToken  = "H00KT0KEN5ECRETqrs"
	testHMACKey    = "HMACKEY5ECRETvalue-do-not-print"
)

var testSecrets = []string{testRoutingKey, testSlackToken, testHookToken, testHMACKey}

func checkNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range testSecrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s leaks a secret: %q", what, s)
		}
	}
}

func testPage(action Action) *Page {
	opened := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := &Page{
		ID:     "web-1/7#1",
		Action: action,
		Seq:    1,
		Time:   opened.Add(2 * time.Second),
		Why:    "opened",
		Incident: Incident{
			Key:            "web-1/7",
			Host:           "web-1",
			Opened:         opened,
			Severity:       SeverityWarning,
			Kind:           "single source",
			Protocols:      []string{"udp"},
			Summary:        "UDP flood from 198.18.0.66 at 11.8k pps on web-1; banned, holding",
			PeakPPS:        11800,
			PeakBPS:        96e6,
			BaselinePPS:    110,
			DroppedPPS:     11700,
			DroppedShare:   0.99,
			BannedSources:  1,
			BannedPrefixes: 0,
			BansHolding:    true,
			Waves:          1,
			Attacks:        []string{"source 198.18.0.66"},
			TopSources:     []detector.Contributor{{Target: "198.18.0.66", PPS: 11790, Share: 0.99}},
		},
	}
	switch action {
	case Update:
		p.ID, p.Seq, p.Why = "web-1/7#2", 2, "severity raised to critical"
		p.Incident.Severity = SeverityCritical
		p.Incident.Waves = 2
	case Resolve:
		p.ID, p.Seq, p.Why = "web-1/7#3", 3, "resolved"
		p.Incident.Resolved = opened.Add(5 * time.Minute)
		p.Time = p.Incident.Resolved
		p.Incident.Attacks = nil
		p.Incident.DroppedPPS, p.Incident.DroppedShare = 0, 0
	}
	return p
}

// secretFile writes v to a file and returns a Secret reading it.
func secretFile(t *testing.T, v string) Secret {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Secret{File: path}
}

// captured is one request a test server received.
type captured struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// recorder is an httptest server on 127.0.0.1 that records requests and
// answers with the status, headers and body the test sets.
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []captured
	status int
	header http.Header
	body   string
	echo   bool // answer with the request body
}

func newRecorder(t *testing.T, status int) *recorder {
	r := &recorder{status: status, header: http.Header{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, captured{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone(), b})
		status, body, echo := r.status, r.body, r.echo
		for k, v := range r.header {
			w.Header()[k] = v
		}
		r.mu.Unlock()
		if echo {
			body = "you sent: " + string(b)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.reqs...)
}

func (r *recorder) last(t *testing.T) captured {
	t.Helper()
	reqs := r.requests()
	if len(reqs) == 0 {
		t.Fatal("the server received no request")
	}
	return reqs[len(reqs)-1]
}

// sinkConfigFor returns a config of the given type pointing at base.
func sinkConfigFor(t *testing.T, typ, base string) SinkConfig {
	t.Helper()
	c := SinkConfig{Type: typ, Name: "test-" + typ, Timeout: detector.Duration(5 * time.Second)}
	switch typ {
	case "pagerduty":
		c.URL = base + "/v2/enqueue"
		c.RoutingKey = secretFile(t, testRoutingKey)
	case "alertmanager":
		c.URL = base
		c.Labels = map[string]string{"team": "netops", "env": "prod"}
	case "slack":
		c.WebhookURL = secretFile(t, base+"/services/T0000/B0000/"+testSlackToken)
	case "webhook":
		c.WebhookURL = secretFile(t, base+"/hooks/floodguard?token="+testHookToken)
		c.HMACKey = secretFile(t, testHMACKey)
	}
	c.SinkDefaults()
	return c
}

func mustSink(t *testing.T, c SinkConfig) Sink {
	t.Helper()
	s, err := NewSink(c)
	if err != nil {
		t.Fatalf("NewSink(%s): %v", c.Type, err)
	}
	if s.Name() != c.Name {
		t.Fatalf("Name() = %q, want %q", s.Name(), c.Name)
	}
	return s
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, b)
	}
	return m
}

func checkKeys(t *testing.T, what string, m map[string]any, required, allowed []string) {
	t.Helper()
	ok := map[string]bool{}
	for _, k := range append(required, allowed...) {
		ok[k] = true
	}
	for _, k := range required {
		if _, has := m[k]; !has {
			t.Errorf("%s: required field %q missing", what, k)
		}
	}
	for k := range m {
		if !ok[k] {
			t.Errorf("%s: unexpected field %q", what, k)
		}
	}
}

func checkClass(t *testing.T, err error, want string, wantAfter time.Duration) {
	t.Helper()
	var ra *RetryAfterError
	isRA := errors.As(err, &ra)
	switch want {
	case "ok":
		if err != nil {
			t.Errorf("err = %v, want success", err)
		}
	case "retry":
		if err == nil || IsPermanent(err) || isRA {
			t.Errorf("err = %v (%T), want a plain retryable error", err, err)
		}
	case "permanent":
		if !IsPermanent(err) {
			t.Errorf("err = %v (%T), want a PermanentError", err, err)
		}
	case "after":
		if !isRA || IsPermanent(err) {
			t.Fatalf("err = %v (%T), want a RetryAfterError", err, err)
		}
		if wantAfter >= 0 && ra.After != wantAfter {
			t.Errorf("After = %s, want %s", ra.After, wantAfter)
		}
		if wantAfter < 0 && (ra.After <= 0 || ra.After > -wantAfter) {
			t.Errorf("After = %s, want in (0, %s]", ra.After, -wantAfter)
		}
	}
}

// closedURL returns a base URL on 127.0.0.1 where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
