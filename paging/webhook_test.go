package paging

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

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
