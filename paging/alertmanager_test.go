package paging

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

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
