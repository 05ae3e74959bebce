package paging

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

func TestNewSinkSecrets(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte(testRoutingKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FG_TEST_SLACK_URL", "https://hooks.slack.example/services/T0/B0/"+testSlackToken)
	t.Setenv("FG_TEST_HMAC", testHMACKey)
	t.Setenv("FG_TEST_EMPTY", "")
	t.Setenv("FG_TEST_BAD_URL", "hooks.slack.example/"+testSlackToken)

	tests := []struct {
		name    string
		cfg     SinkConfig
		wantErr []string // substrings of the error; nil: no error
	}{
		{"pagerduty from file", SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: Secret{File: good}}, nil},
		{"pagerduty missing file", SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: Secret{File: filepath.Join(dir, "nope")}}, []string{`"pd"`, "routing_key", filepath.Join(dir, "nope")}},
		{"pagerduty empty file", SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: Secret{File: empty}}, []string{`"pd"`, empty, "empty"}},
		{"pagerduty unset", SinkConfig{Type: "pagerduty", Name: "pd"}, []string{`"pd"`, "routing_key"}},
		{"pagerduty bad url", SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: Secret{File: good}, URL: "ftp://x"}, []string{`"pd"`, "url"}},
		{"slack from env", SinkConfig{Type: "slack", Name: "chat", WebhookURL: Secret{Env: "FG_TEST_SLACK_URL"}}, nil},
		{"slack env empty", SinkConfig{Type: "slack", Name: "chat", WebhookURL: Secret{Env: "FG_TEST_EMPTY"}}, []string{`"chat"`, "FG_TEST_EMPTY"}},
		{"slack env missing", SinkConfig{Type: "slack", Name: "chat", WebhookURL: Secret{Env: "FG_TEST_NO_SUCH_VAR"}}, []string{`"chat"`, "FG_TEST_NO_SUCH_VAR"}},
		{"slack not a url", SinkConfig{Type: "slack", Name: "chat", WebhookURL: Secret{Env: "FG_TEST_BAD_URL"}}, []string{`"chat"`, "FG_TEST_BAD_URL", "URL"}},
		{"webhook", SinkConfig{Type: "webhook", Name: "wh", WebhookURL: Secret{Env: "FG_TEST_SLACK_URL"}, HMACKey: Secret{Env: "FG_TEST_HMAC"}}, nil},
		{"webhook without key", SinkConfig{Type: "webhook", Name: "wh", WebhookURL: Secret{Env: "FG_TEST_SLACK_URL"}, HMACKey: Secret{Env: "FG_TEST_NO_SUCH_VAR"}}, []string{`"wh"`, "hmac_key", "FG_TEST_NO_SUCH_VAR"}},
		{"alertmanager", SinkConfig{Type: "alertmanager", Name: "am", URL: "http://127.0.0.1:9093"}, nil},
		{"alertmanager no url", SinkConfig{Type: "alertmanager", Name: "am"}, []string{`"am"`, "url"}},
		{"alertmanager reserved label", SinkConfig{Type: "alertmanager", Name: "am", URL: "http://127.0.0.1:9093", Labels: map[string]string{"severity": "x"}}, []string{`"am"`, "severity"}},
		{"alertmanager bad label", SinkConfig{Type: "alertmanager", Name: "am", URL: "http://127.0.0.1:9093", Labels: map[string]string{"team-name": "x"}}, []string{`"am"`, "team-name"}},
		{"exec", SinkConfig{Type: "exec", Name: "hook", Command: []string{"true"}}, nil},
		{"exec no command", SinkConfig{Type: "exec", Name: "hook"}, []string{`"hook"`, "command"}},
		{"exec missing program", SinkConfig{Type: "exec", Name: "hook", Command: []string{filepath.Join(dir, "no-such-program")}}, []string{`"hook"`, "no-such-program"}},
		{"unknown type", SinkConfig{Type: "carrier-pigeon", Name: "bird"}, []string{`"bird"`, "carrier-pigeon"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSink(tc.cfg)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("NewSink: %v", err)
				}
				if s.Name() != tc.cfg.Name {
					t.Errorf("Name() = %q, want %q", s.Name(), tc.cfg.Name)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewSink succeeded, want an error naming %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			checkNoSecret(t, "NewSink error", err.Error())
		})
	}
}

func TestSinkDefaultName(t *testing.T) {
	s, err := NewSink(SinkConfig{Type: "exec", Command: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "exec" {
		t.Errorf("Name() = %q, want the type", s.Name())
	}
}

func TestPagerDutyEvent(t *testing.T) {
	srv := newRecorder(t, http.StatusAccepted)
	srv.body = `{"status":"success","message":"Event processed","dedup_key":"web-1/7"}`
	s := mustSink(t, sinkConfigFor(t, "pagerduty", srv.URL))
	long := testPage(Update)
	long.Incident.Summary = strings.Repeat("é", 1500)
	long.Incident.Key = strings.Repeat("k", 300)

	tests := []struct {
		name       string
		page       *Page
		wantAction string
		wantSev    string
	}{
		{"trigger", testPage(Trigger), "trigger", "warning"},
		{"update is a trigger", testPage(Update), "trigger", "critical"},
		{"resolve", testPage(Resolve), "resolve", ""},
		{"long summary and key", long, "trigger", "critical"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Send(context.Background(), tc.page); err != nil {
				t.Fatalf("Send: %v", err)
			}
			req := srv.last(t)
			if req.Method != http.MethodPost || req.Path != "/v2/enqueue" {
				t.Errorf("request %s %s, want POST /v2/enqueue", req.Method, req.Path)
			}
			if ct := req.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			ev := decodeObject(t, req.Body)
			if ev["routing_key"] != testRoutingKey {
				t.Errorf("routing_key = %v", ev["routing_key"])
			}
			if ev["event_action"] != tc.wantAction {
				t.Errorf("event_action = %v, want %s", ev["event_action"], tc.wantAction)
			}
			dk, _ := ev["dedup_key"].(string)
			if dk == "" || len(dk) > 255 {
				t.Errorf("dedup_key %q: want 1-255 characters", dk)
			}
			if len(tc.page.Incident.Key) <= 255 && dk != tc.page.Incident.Key {
				t.Errorf("dedup_key = %q, want the incident key %q", dk, tc.page.Incident.Key)
			}
			if tc.wantAction == "resolve" {
				checkKeys(t, "resolve event", ev, []string{"routing_key", "event_action", "dedup_key"}, nil)
				return
			}
			checkKeys(t, "trigger event", ev, []string{"routing_key", "event_action", "dedup_key", "payload"}, []string{"client", "client_url", "links", "images"})
			if ev["client"] != "floodguard" {
				t.Errorf("client = %v", ev["client"])
			}
			pl, _ := ev["payload"].(map[string]any)
			checkKeys(t, "payload", pl, []string{"summary", "source", "severity"}, []string{"timestamp", "component", "group", "class", "custom_details"})
			sum, _ := pl["summary"].(string)
			if sum == "" || len([]rune(sum)) > 1024 {
				t.Errorf("summary has %d characters, want 1-1024", len([]rune(sum)))
			}
			if pl["source"] != "web-1" {
				t.Errorf("source = %v", pl["source"])
			}
			if pl["severity"] != tc.wantSev {
				t.Errorf("severity = %v, want %s", pl["severity"], tc.wantSev)
			}
			if ts, _ := pl["timestamp"].(string); ts != "" {
				if _, err := time.Parse(time.RFC3339, ts); err != nil {
					t.Errorf("timestamp %q: %v", ts, err)
				}
			} else {
				t.Error("no timestamp")
			}
			if pl["component"] != "floodguard" || pl["class"] != "single source" || pl["group"] != "udp" {
				t.Errorf("component/class/group = %v/%v/%v", pl["component"], pl["class"], pl["group"])
			}
			cd, _ := pl["custom_details"].(map[string]any)
			for _, k := range []string{"peak_pps", "peak_bps", "baseline_pps", "dropped_pps", "dropped_share", "banned_sources", "banned_prefixes", "bans_holding", "waves", "top_sources", "attacks", "dry_run", "why", "seq"} {
				if _, ok := cd[k]; !ok {
					t.Errorf("custom_details lacks %q", k)
				}
			}
			if cd["why"] != tc.page.Why || cd["seq"] != float64(tc.page.Seq) {
				t.Errorf("custom_details why/seq = %v/%v", cd["why"], cd["seq"])
			}
		})
	}
	// The long key is hashed, stably.
	reqs := srv.requests()
	if err := s.Send(context.Background(), long); err != nil {
		t.Fatal(err)
	}
	a := decodeObject(t, reqs[len(reqs)-1].Body)["dedup_key"]
	b := decodeObject(t, srv.last(t).Body)["dedup_key"]
	if a != b {
		t.Errorf("dedup_key of one long key differs between sends: %v, %v", a, b)
	}
}

func TestAlertmanagerAlerts(t *testing.T) {
	srv := newRecorder(t, http.StatusOK)
	cfg := sinkConfigFor(t, "alertmanager", srv.URL+"/am/")
	cfg.ResendInterval = detector.Duration(30 * time.Second)
	s := mustSink(t, cfg)
	am := s.(*alertmanager)
	now := time.Date(2025, 3, 1, 12, 10, 0, 0, time.UTC)
	am.now = func() time.Time { return now }
	if r, ok := s.(Resender); !ok || r.ResendInterval() != 30*time.Second {
		t.Fatalf("alertmanager sink is not a Resender with the configured interval")
	}

	wantLabels := map[string]string{
		"alertname": "FloodguardAttack", "host": "web-1", "incident": "web-1/7",
		"severity": "warning", "kind": "single source", "team": "netops", "env": "prod",
	}
	tests := []struct {
		page    *Page
		wantSev string // the annotation
		wantEnd time.Time
	}{
		{testPage(Trigger), "warning", now.Add(2 * time.Minute)},
		{testPage(Update), "critical", now.Add(2 * time.Minute)},
		{testPage(Resolve), "warning", testPage(Resolve).Incident.Resolved},
	}
	for _, tc := range tests {
		t.Run(string(tc.page.Action), func(t *testing.T) {
			if tc.page.Action == Update {
				tc.page.Incident.Kind = "carpet from prefixes" // kind changes too: labels must not
			}
			if err := s.Send(context.Background(), tc.page); err != nil {
				t.Fatalf("Send: %v", err)
			}
			req := srv.last(t)
			if req.Method != http.MethodPost || req.Path != "/am/api/v2/alerts" {
				t.Errorf("request %s %s, want POST /am/api/v2/alerts", req.Method, req.Path)
			}
			var alerts []map[string]any
			if err := json.Unmarshal(req.Body, &alerts); err != nil || len(alerts) != 1 {
				t.Fatalf("body is not an array of one alert (%v): %s", err, req.Body)
			}
			a := alerts[0]
			checkKeys(t, "alert", a, []string{"labels", "startsAt", "endsAt"}, []string{"annotations", "generatorURL"})
			labels := map[string]string{}
			for k, v := range a["labels"].(map[string]any) {
				labels[k] = v.(string)
			}
			if fmt.Sprint(labels) != fmt.Sprint(wantLabels) {
				t.Errorf("labels = %v, want %v", labels, wantLabels)
			}
			ann, _ := a["annotations"].(map[string]any)
			for _, k := range []string{"summary", "description", "why"} {
				if s, _ := ann[k].(string); s == "" {
					t.Errorf("annotation %q missing", k)
				}
			}
			if d, _ := ann["description"].(string); !strings.Contains(d, "\n") || !strings.Contains(d, "198.18.0.66") {
				t.Errorf("description is not multi-line details: %q", d)
			}
			if ann["why"] != tc.page.Why {
				t.Errorf("why = %v", ann["why"])
			}
			if tc.page.Action != Resolve && ann["severity"] != tc.wantSev {
				t.Errorf("severity annotation = %v, want %s", ann["severity"], tc.wantSev)
			}
			start, err1 := time.Parse(time.RFC3339, a["startsAt"].(string))
			end, err2 := time.Parse(time.RFC3339, a["endsAt"].(string))
			if err1 != nil || err2 != nil {
				t.Fatalf("times: %v %v", err1, err2)
			}
			if !start.Equal(tc.page.Incident.Opened) {
				t.Errorf("startsAt = %s, want %s", start, tc.page.Incident.Opened)
			}
			if !end.Equal(tc.wantEnd) {
				t.Errorf("endsAt = %s, want %s", end, tc.wantEnd)
			}
		})
	}
	if len(am.atOpen) != 0 {
		t.Errorf("labels of a resolved incident still remembered: %v", am.atOpen)
	}
}

func TestSlackMessage(t *testing.T) {
	srv := newRecorder(t, http.StatusOK)
	srv.body = "ok"
	s := mustSink(t, sinkConfigFor(t, "slack", srv.URL))
	tests := []struct {
		page *Page
		want []string // in the header or the first section
	}{
		{testPage(Trigger), []string{"WARNING", "single source", "web-1"}},
		{testPage(Update), []string{"Update", "CRITICAL", "web-1/7"}},
		{testPage(Resolve), []string{"Resolved", "web-1/7"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.page.Action), func(t *testing.T) {
			if err := s.Send(context.Background(), tc.page); err != nil {
				t.Fatalf("Send: %v", err)
			}
			req := srv.last(t)
			if req.Path != "/services/T0000/B0000/"+testSlackToken || req.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request to %s (%s)", req.Path, req.Header.Get("Content-Type"))
			}
			m := decodeObject(t, req.Body)
			checkKeys(t, "message", m, []string{"text", "blocks"}, nil)
			if txt, _ := m["text"].(string); !strings.Contains(txt, tc.page.Incident.Summary) {
				t.Errorf("fallback text %q lacks the summary", txt)
			}
			blocks, _ := m["blocks"].([]any)
			if len(blocks) < 3 {
				t.Fatalf("%d blocks", len(blocks))
			}
			var all strings.Builder
			var fields []string
			for i, b := range blocks {
				bm := b.(map[string]any)
				typ := bm["type"].(string)
				switch typ {
				case "header":
					if i != 0 {
						t.Errorf("header is block %d", i)
					}
					txt := bm["text"].(map[string]any)
					if txt["type"] != "plain_text" {
						t.Errorf("header text type %v", txt["type"])
					}
					h := txt["text"].(string)
					for _, r := range h {
						if r > 0x7e || r < 0x20 {
							t.Errorf("header %q has a non-ASCII character %q", h, r)
						}
					}
					if strings.Contains(h, ":rotating") || len([]rune(h)) > 150 {
						t.Errorf("header %q", h)
					}
					all.WriteString(h + "\n")
				case "section":
					if txt, ok := bm["text"].(map[string]any); ok {
						all.WriteString(txt["text"].(string) + "\n")
					}
					fs, _ := bm["fields"].([]any)
					for _, f := range fs {
						fields = append(fields, f.(map[string]any)["text"].(string))
					}
				case "context":
					for _, e := range bm["elements"].([]any) {
						all.WriteString(e.(map[string]any)["text"].(string) + "\n")
					}
				default:
					t.Errorf("unexpected block type %q", typ)
				}
			}
			for _, w := range append(tc.want, tc.page.Incident.Summary, "198.18.0.66") {
				if !strings.Contains(all.String(), w) {
					t.Errorf("message lacks %q:\n%s", w, all.String())
				}
			}
			joined := strings.Join(fields, "\n")
			for _, w := range []string{"*Peak*", "*Baseline*", "*Bans*", "*Dropped*"} {
				if !strings.Contains(joined, w) {
					t.Errorf("fields lack %s: %q", w, fields)
				}
			}
		})
	}
}

func TestWebhookSignature(t *testing.T) {
	srv := newRecorder(t, http.StatusNoContent)
	s := mustSink(t, sinkConfigFor(t, "webhook", srv.URL))
	for _, action := range []Action{Trigger, Update, Resolve} {
		t.Run(string(action), func(t *testing.T) {
			p := testPage(action)
			before := time.Now().Unix()
			if err := s.Send(context.Background(), p); err != nil {
				t.Fatalf("Send: %v", err)
			}
			req := srv.last(t)
			if req.Path != "/hooks/floodguard" || req.RawQuery != "token="+testHookToken {
				t.Errorf("request to %s?%s", req.Path, req.RawQuery)
			}
			if req.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", req.Header.Get("Content-Type"))
			}
			if got := req.Header.Get("X-Floodguard-Delivery"); got != p.ID {
				t.Errorf("X-Floodguard-Delivery = %q, want %q", got, p.ID)
			}
			// Verify as a receiver would, independently of the sink's code.
			tsHeader := req.Header.Get("X-Floodguard-Timestamp")
			ts, err := strconv.ParseInt(tsHeader, 10, 64)
			if err != nil || ts < before-1 || ts > time.Now().Unix()+1 {
				t.Fatalf("X-Floodguard-Timestamp %q is not the current Unix time", tsHeader)
			}
			mac := hmac.New(sha256.New, []byte(testHMACKey))
			mac.Write([]byte(tsHeader + "." + string(req.Body)))
			want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
			if got := req.Header.Get("X-Floodguard-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
				t.Errorf("signature %q, want %q", got, want)
			}
			// A tampered body does not verify.
			mac = hmac.New(sha256.New, []byte(testHMACKey))
			mac.Write([]byte(tsHeader + "." + string(req.Body) + " "))
			if "sha256="+hex.EncodeToString(mac.Sum(nil)) == req.Header.Get("X-Floodguard-Signature") {
				t.Error("signature does not depend on the body")
			}
			var got Page
			if err := json.Unmarshal(req.Body, &got); err != nil {
				t.Fatalf("body is not a Page: %v", err)
			}
			if got.ID != p.ID || got.Action != p.Action || got.Incident.Key != p.Incident.Key || got.Incident.PeakPPS != p.Incident.PeakPPS {
				t.Errorf("body %+v does not match the page", got)
			}
			checkNoSecret(t, "webhook body", string(req.Body))
		})
	}
}

// httpSinkTypes are the sinks that speak HTTP.
var httpSinkTypes = []string{"pagerduty", "alertmanager", "slack", "webhook"}

func TestResponseClassification(t *testing.T) {
	httpDate := time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		// want: "ok", "retry" (plain retryable), "permanent", "after"
		want      string
		wantAfter time.Duration // for "after"; negative: any in (0, -wantAfter]
	}{
		{"200", 200, "", "ok", 0},
		{"202", 202, "", "ok", 0},
		{"500", 500, "", "retry", 0},
		{"502", 502, "", "retry", 0},
		{"408", 408, "", "retry", 0},
		{"429 seconds", 429, "3", "after", 3 * time.Second},
		{"429 without header", 429, "", "after", 0},
		{"429 garbage header", 429, "soon", "after", 0},
		{"503 seconds", 503, "120", "after", 2 * time.Minute},
		{"503 http date", 503, httpDate, "after", -21 * time.Second},
		{"400", 400, "", "permanent", 0},
		{"401", 401, "", "permanent", 0},
		{"404", 404, "", "permanent", 0},
		{"302", 302, "", "permanent", 0},
	}
	for _, typ := range httpSinkTypes {
		srv := newRecorder(t, 200)
		srv.echo = true // echo the request, secrets and all, in the answer
		s := mustSink(t, sinkConfigFor(t, typ, srv.URL))
		for _, tc := range tests {
			t.Run(typ+"/"+tc.name, func(t *testing.T) {
				srv.mu.Lock()
				srv.status = tc.status
				srv.header = http.Header{}
				if tc.retryAfter != "" {
					srv.header.Set("Retry-After", tc.retryAfter)
				}
				if tc.status == 302 {
					srv.header.Set("Location", srv.URL+"/elsewhere")
				}
				srv.mu.Unlock()
				n := len(srv.requests())
				err := s.Send(context.Background(), testPage(Trigger))
				if got := len(srv.requests()) - n; got != 1 {
					t.Errorf("%d requests for one Send, want 1", got)
				}
				checkClass(t, err, tc.want, tc.wantAfter)
				if err != nil {
					checkNoSecret(t, "error", err.Error())
					if !strings.HasPrefix(err.Error(), typ+" test-"+typ+": ") {
						t.Errorf("error %q does not name the sink", err)
					}
				}
			})
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

func TestConnectionRefusedIsRetryable(t *testing.T) {
	base := closedURL(t)
	for _, typ := range httpSinkTypes {
		t.Run(typ, func(t *testing.T) {
			s := mustSink(t, sinkConfigFor(t, typ, base))
			err := s.Send(context.Background(), testPage(Trigger))
			checkClass(t, err, "retry", 0)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("err = %v, want connection refused", err)
			}
			checkNoSecret(t, "error", err.Error())
			if typ == "slack" && strings.Contains(err.Error(), "/services") {
				t.Errorf("error shows the Slack URL's path: %v", err)
			}
		})
	}
}

func TestTimeoutBoundsAnAttempt(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	for _, typ := range httpSinkTypes {
		t.Run(typ, func(t *testing.T) {
			cfg := sinkConfigFor(t, typ, srv.URL)
			cfg.Timeout = detector.Duration(200 * time.Millisecond)
			s := mustSink(t, cfg)
			done := make(chan error, 1)
			go func() { done <- s.Send(context.Background(), testPage(Trigger)) }()
			select {
			case err := <-done:
				checkClass(t, err, "retry", 0)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want a deadline error", err)
				}
				checkNoSecret(t, "error", err.Error())
			case <-time.After(30 * time.Second):
				t.Fatal("Send ignored its timeout")
			}
		})
	}
}

func TestSinkRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 10 ", 10 * time.Second},
		{"-5", 0},
		{"1.5", 0},
		{"tomorrow", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"99999999999", 24 * time.Hour},
	}
	for _, tc := range tests {
		if got := sinkRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("sinkRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// writeScript writes an executable shell script into a temporary
// directory and returns its path.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExecHook(t *testing.T) {
	out := t.TempDir()
	script := writeScript(t, `cat > "$1/stdin.json"
printf '%s\n%s\n%s\n%s\n' "$FLOODGUARD_ACTION" "$FLOODGUARD_INCIDENT_KEY" "$FLOODGUARD_SEVERITY" "$FLOODGUARD_PAGE_ID" > "$1/env"
echo "noise on stdout"
`)
	s := mustSink(t, SinkConfig{Type: "exec", Name: "hook", Command: []string{script, out}, Timeout: detector.Duration(10 * time.Second)})
	for _, action := range []Action{Trigger, Update, Resolve} {
		t.Run(string(action), func(t *testing.T) {
			p := testPage(action)
			if err := s.Send(context.Background(), p); err != nil {
				t.Fatalf("Send: %v", err)
			}
			b, err := os.ReadFile(filepath.Join(out, "stdin.json"))
			if err != nil {
				t.Fatal(err)
			}
			var got Page
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("stdin is not a Page: %v\n%s", err, b)
			}
			if got.ID != p.ID || got.Action != action || got.Incident.Key != p.Incident.Key {
				t.Errorf("stdin page %+v", got)
			}
			env, err := os.ReadFile(filepath.Join(out, "env"))
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s\n%s\n%s\n%s\n", action, p.Incident.Key, p.Incident.Severity, p.ID)
			if string(env) != want {
				t.Errorf("environment %q, want %q", env, want)
			}
		})
	}
}

func TestExecFailure(t *testing.T) {
	long := strings.Repeat("x", 500)
	tests := []struct {
		name     string
		script   string
		wantIn   []string
		wantNot  []string
		parentCx bool // cancel the caller's context instead
	}{
		{"exit 1", "echo 'no route to pager' >&2; exit 1", []string{"exit status 1", "no route to pager"}, nil, false},
		{"exit 2", "exit 2", []string{"exit status 2"}, nil, false},
		{"long stderr", "echo " + long + " >&2; exit 3", []string{"exit status 3", strings.Repeat("x", 200)}, []string{strings.Repeat("x", 201)}, false},
		{"stdin ignored", "exit 0", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSink(t, SinkConfig{Type: "exec", Name: "hook", Command: []string{writeScript(t, tc.script)}, Timeout: detector.Duration(10 * time.Second)})
			err := s.Send(context.Background(), testPage(Trigger))
			if tc.wantIn == nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			checkClass(t, err, "retry", 0)
			for _, w := range tc.wantIn {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error quotes more than 200 bytes of stderr: %q", err)
				}
			}
			if !strings.HasPrefix(err.Error(), "exec hook: ") {
				t.Errorf("error %q does not name the sink", err)
			}
		})
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	// The hook starts a helper in the background and waits: both must die.
	script := writeScript(t, `sleep 300 &
echo $! > "$1/helper.pid"
echo $$ > "$1/hook.pid"
wait
`)
	s := mustSink(t, SinkConfig{Type: "exec", Name: "slow", Command: []string{script, dir}, Timeout: detector.Duration(300 * time.Millisecond)})
	done := make(chan error, 1)
	go func() { done <- s.Send(context.Background(), testPage(Trigger)) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a hanging hook was not killed")
	}
	checkClass(t, err, "retry", 0)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("err = %v, want a timeout", err)
	}
	for _, f := range []string{"hook.pid", "helper.pid"} {
		b, rerr := os.ReadFile(filepath.Join(dir, f))
		if rerr != nil {
			t.Fatalf("%s: %v (the hook did not start?)", f, rerr)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 1 {
			t.Fatalf("%s: bad pid %q", f, b)
		}
		// The killed helper is reparented and reaped; wait (bounded) for
		// it to be gone. A zombie still answers kill 0, so check its state.
		deadline := time.Now().Add(10 * time.Second)
		for processAlive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("%s: process %d survived the timeout", f, pid)
				syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func TestExecCallerCancel(t *testing.T) {
	s := mustSink(t, SinkConfig{Type: "exec", Name: "slow", Command: []string{writeScript(t, "sleep 300\n")}, Timeout: detector.Duration(time.Minute)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Send(ctx, testPage(Trigger)) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want cancellation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("cancelling the context did not stop the hook")
	}
}

func TestOnlyAlertmanagerResends(t *testing.T) {
	base := "http://127.0.0.1:1"
	for _, typ := range append(httpSinkTypes, "exec") {
		var cfg SinkConfig
		if typ == "exec" {
			cfg = SinkConfig{Type: "exec", Name: "x", Command: []string{"true"}}
		} else {
			cfg = sinkConfigFor(t, typ, base)
		}
		s := mustSink(t, cfg)
		_, isResender := s.(Resender)
		if isResender != (typ == "alertmanager") {
			t.Errorf("%s: Resender = %v", typ, isResender)
		}
	}
}
