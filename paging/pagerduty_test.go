package paging

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

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
