package paging

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// receiver is a webhook receiver on 127.0.0.1 whose behaviour the test
// changes: it records the delivery IDs it accepted (2xx).
type receiver struct {
	mu       sync.Mutex
	mode     string // "ok", "500", "429", "slow"
	release  chan struct{}
	accepted map[string]int
	attempts int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	r.mu.Lock()
	r.attempts++
	mode := r.mode
	r.mu.Unlock()
	switch mode {
	case "500":
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	case "429":
		w.Header().Set("Retry-After", "1")
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	case "slow":
		<-r.release
	}
	r.mu.Lock()
	r.accepted[req.Header.Get("X-Floodguard-Delivery")]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) set(mode string) {
	r.mu.Lock()
	r.mode = mode
	r.mu.Unlock()
}

// TestDeliveryFaults drives the webhook sink through the dispatcher
// against a receiver that is down, slow, or answers 500 or 429: each page
// arrives exactly once after the receiver recovers, and Submit (what the
// tick loop calls) never waits for it.
func TestDeliveryFaults(t *testing.T) {
	for _, fault := range []string{"down", "slow", "500", "429"} {
		t.Run(fault, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			rcv := &receiver{mode: fault, release: make(chan struct{}), accepted: map[string]int{}}
			srv := &http.Server{Handler: rcv}
			if fault == "down" {
				ln.Close() // nothing listens until the receiver "recovers"
			} else {
				go srv.Serve(ln)
			}
			defer srv.Close()

			cfg := SinkConfig{Type: "webhook", WebhookURL: secretFile(t, "http://"+addr+"/hook"), HMACKey: secretFile(t, "k")}
			cfg.SinkDefaults()
			cfg.MinInterval = 0
			sink, err := NewSink(cfg)
			if err != nil {
				t.Fatal(err)
			}
			d, err := NewDispatcher([]Sink{sink}, []SinkConfig{cfg}, Options{OutboxDir: t.TempDir(), Log: zerolog.Nop(),
				RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close(context.Background())

			pages := []Page{queuedPage("web1/x", Trigger, 1), queuedPage("web1/x", Resolve, 2)}
			for _, p := range pages {
				if err := d.Submit(p); err != nil {
					t.Fatal(err)
				}
			}
			// Submit returned while the receiver is failing or holding the
			// first request: delivery happens behind the tick loop.
			time.Sleep(300 * time.Millisecond) // let it fail (or hang) a few times
			switch fault {
			case "down":
				ln2, err := net.Listen("tcp", addr)
				if err != nil {
					t.Skipf("port %s taken again before the receiver came back: %v", addr, err)
				}
				rcv.set("ok")
				go srv.Serve(ln2)
			case "slow":
				close(rcv.release)
			default:
				rcv.set("ok")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := d.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			for _, p := range pages {
				if n := rcv.accepted[p.ID]; n != 1 {
					t.Errorf("%s accepted %d times, want exactly once", p.ID, n)
				}
			}
			if len(rcv.accepted) != len(pages) {
				t.Errorf("accepted %v", rcv.accepted)
			}
			st := d.Stats()[0]
			t.Logf("%s: %d attempts at the receiver, stats %+v", fault, rcv.attempts, st)
			if st.Delivered != 2 || (fault != "slow" && st.Failed == 0) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
