package paging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFileMode: a secret file others can read is refused, like ssh
// refuses such a key, with an error naming the sink, the key, the file
// and its mode, never the secret.
func TestSecretFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []os.FileMode{0o640, 0o644, 0o604, 0o660} {
		path := filepath.Join(dir, "key-"+octal(mode))
		if err := os.WriteFile(path, []byte(testRoutingKey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := NewSink(SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: Secret{File: path}})
		if err == nil {
			t.Errorf("secret file with mode %04o accepted", mode)
			continue
		}
		for _, w := range []string{`"pd"`, "routing_key", path, "mode 0" + octal(mode)} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("mode %04o: error %q does not name %q", mode, err, w)
			}
		}
		checkNoSecret(t, "secret mode error", err.Error())
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		path := filepath.Join(dir, "ok-"+octal(mode))
		if err := os.WriteFile(path, []byte(testRoutingKey+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if _, err := NewSink(SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: Secret{File: path}}); err != nil {
			t.Errorf("secret file with mode %04o: %v", mode, err)
		}
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

// TestCredentialOverHTTP: a URL carrying a credential (Slack's and a
// webhook's URL, Alertmanager's with a user and password, PagerDuty's
// with the routing key in the body) must be https unless it is loopback;
// errors name the sink and the key, not the secret.
func TestCredentialOverHTTP(t *testing.T) {
	t.Setenv("FG_TEST_HMAC", testHMACKey)
	token := "/services/T0/B0/" + testSlackToken
	for _, tc := range []struct {
		name string
		cfg  SinkConfig
		url  string // in FG_TEST_URL
		want []string
	}{
		{"slack http", SinkConfig{Type: "slack", Name: "chat"}, "http://hooks.slack.example" + token, []string{`"chat"`, "webhook_url", "https"}},
		{"slack https", SinkConfig{Type: "slack", Name: "chat"}, "https://hooks.slack.example" + token, nil},
		{"webhook http", SinkConfig{Type: "webhook", Name: "wh", HMACKey: Secret{Env: "FG_TEST_HMAC"}}, "http://siem.example/in?token=" + testSlackToken, []string{`"wh"`, "webhook_url", "https"}},
		{"webhook http loopback", SinkConfig{Type: "webhook", Name: "wh", HMACKey: Secret{Env: "FG_TEST_HMAC"}}, "http://127.0.0.1:9/hook", nil},
		{"webhook http ::1", SinkConfig{Type: "webhook", Name: "wh", HMACKey: Secret{Env: "FG_TEST_HMAC"}}, "http://[::1]:9/hook", nil},
		{"webhook http localhost", SinkConfig{Type: "webhook", Name: "wh", HMACKey: Secret{Env: "FG_TEST_HMAC"}}, "http://localhost:9/hook", nil},
		{"alertmanager basic auth http", SinkConfig{Type: "alertmanager", Name: "am", URL: "http://fg:" + testSlackToken + "@am.example:9093"}, "", []string{`"am"`, "url", "https"}},
		{"alertmanager basic auth https", SinkConfig{Type: "alertmanager", Name: "am", URL: "https://fg:" + testSlackToken + "@am.example:9093"}, "", nil},
		{"alertmanager basic auth http loopback", SinkConfig{Type: "alertmanager", Name: "am", URL: "http://fg:" + testSlackToken + "@127.0.0.1:9093"}, "", nil},
		{"alertmanager no credential http", SinkConfig{Type: "alertmanager", Name: "am", URL: "http://am.example:9093"}, "", nil},
		{"pagerduty http", SinkConfig{Type: "pagerduty", Name: "pd", RoutingKey: secretFile(t, testRoutingKey), URL: "http://events.pagerduty.example/v2/enqueue"}, "", []string{`"pd"`, "url", "https"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.url != "" {
				t.Setenv("FG_TEST_URL", tc.url)
				tc.cfg.WebhookURL = Secret{Env: "FG_TEST_URL"}
			}
			_, err := NewSink(tc.cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("NewSink: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewSink accepted a credential over plain http")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			checkNoSecret(t, "NewSink error", err.Error())
		})
	}
}
