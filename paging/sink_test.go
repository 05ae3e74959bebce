package paging

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

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
