package paging

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

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
