package paging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/privtest"
)

// alertmanagerBinary is where Debian's prometheus-alertmanager package
// installs Alertmanager.
const alertmanagerBinary = "/usr/bin/prometheus-alertmanager"

// startAlertmanager runs a real Alertmanager on 127.0.0.1 with a route to
// a receiver that notifies nobody, and returns its base URL once ready.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(alertmanagerBinary); err != nil {
		privtest.SkipOrFail(t, "Alertmanager not installed (%v): apt-get install prometheus-alertmanager", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	err := os.WriteFile(conf, []byte(`route:
  receiver: "null"
  group_by: ["incident"]
receivers:
  - name: "null"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(closedURL(t), "http://")
	var logs bytes.Buffer
	cmd := exec.Command(alertmanagerBinary,
		"--config.file="+conf,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no clustering
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Alertmanager: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("Alertmanager (pid %d) did not exit", cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("Alertmanager output:\n%s", logs.String())
		}
	})

	base := "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("Alertmanager exited before it was ready:\n%s", logs.String())
		default:
		}
		resp, err := client.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager not ready at %s after 30s (last: %v):\n%s", base, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gettableAlert is the part of Alertmanager's GET /api/v2/alerts answer
// the test looks at.
type gettableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// incidentAlerts returns Alertmanager's current (unresolved) alerts for
// one incident key.
func incidentAlerts(t *testing.T, base, key string) []gettableAlert {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("GET alerts: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET alerts: %s", resp.Status)
	}
	var all []gettableAlert
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatalf("decode alerts: %v", err)
	}
	var out []gettableAlert
	for _, a := range all {
		if a.Labels["incident"] == key {
			out = append(out, a)
		}
	}
	return out
}

// pollAlerts polls (bounded) until cond holds for the incident's alerts.
func pollAlerts(t *testing.T, base, key, what string, cond func([]gettableAlert) bool) []gettableAlert {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := incidentAlerts(t, base, key)
		if cond(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s, still not %s: %+v", what, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAlertmanagerReal(t *testing.T) {
	base := startAlertmanager(t)
	cfg := SinkConfig{
		Type:   "alertmanager",
		Name:   "am",
		URL:    base,
		Labels: map[string]string{"team": "netops"},
		// An alert must still be firing well after the test's polling.
		ResendInterval: detector.Duration(time.Minute),
	}
	cfg.SinkDefaults()
	s := mustSink(t, cfg)

	now := time.Now().UTC().Truncate(time.Second)
	key := fmt.Sprintf("web-1/%d", now.UnixNano())
	pages := []*Page{testPage(Trigger), testPage(Update), testPage(Resolve)}
	for _, p := range pages {
		p.Incident.Key = key
		p.Incident.Opened = now.Add(-time.Minute)
		p.Time = now
	}
	pages[2].Incident.Resolved = now.Add(-time.Second)
	ctx := context.Background()

	if err := s.Send(ctx, pages[0]); err != nil {
		t.Fatalf("trigger: %v", err)
	}
	firing := pollAlerts(t, base, key, "one active alert", func(a []gettableAlert) bool {
		return len(a) == 1 && a[0].Status.State == "active"
	})
	want := map[string]string{
		"alertname": "FloodguardAttack", "host": "web-1", "incident": key,
		"severity": "warning", "kind": "single source", "team": "netops",
	}
	if fmt.Sprint(firing[0].Labels) != fmt.Sprint(want) {
		t.Errorf("labels = %v, want %v", firing[0].Labels, want)
	}
	if firing[0].Annotations["summary"] != pages[0].Incident.Summary {
		t.Errorf("summary annotation = %q", firing[0].Annotations["summary"])
	}
	if !firing[0].StartsAt.Equal(pages[0].Incident.Opened) || !firing[0].EndsAt.After(time.Now()) {
		t.Errorf("startsAt %s endsAt %s", firing[0].StartsAt, firing[0].EndsAt)
	}

	// The update raises the severity: still one alert (same labels), with
	// the new severity in its annotations.
	if err := s.Send(ctx, pages[1]); err != nil {
		t.Fatalf("update: %v", err)
	}
	pollAlerts(t, base, key, "one alert with the updated annotations", func(a []gettableAlert) bool {
		return len(a) == 1 && a[0].Annotations["severity"] == "critical" && a[0].Labels["severity"] == "warning"
	})

	if err := s.Send(ctx, pages[2]); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	pollAlerts(t, base, key, "resolved", func(a []gettableAlert) bool { return len(a) == 0 })
}
