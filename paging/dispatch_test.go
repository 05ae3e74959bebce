package paging

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeSink records what it was sent and fails as scripted: fail(n) is the
// error for the n-th attempt overall (nil to deliver).
type fakeSink struct {
	name string
	fail func(attempt int, p *Page) error
	mu   sync.Mutex
	n    int
	got  []Page // delivered pages, in order
}

func (f *fakeSink) Name() string { return f.name }

func (f *fakeSink) Send(ctx context.Context, p *Page) error {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(n, p); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.got = append(f.got, *p)
	f.mu.Unlock()
	return nil
}

func (f *fakeSink) delivered() []Page {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Page(nil), f.got...)
}

func sinkCfg(name string) SinkConfig {
	c := SinkConfig{Name: name, Type: "exec", Command: []string{"true"}}
	c.SinkDefaults()
	c.MinInterval = 0
	return c
}

func queuedPage(key string, a Action, seq int) Page {
	return Page{ID: fmt.Sprintf("%s#%d", key, seq), Action: a, Seq: seq, Time: time.Unix(1_800_000_000+int64(seq), 0).UTC(),
		Incident: Incident{Key: key, Host: "web1"}}
}

func newTestDispatcher(t *testing.T, outbox string, sinks ...*fakeSink) *Dispatcher {
	t.Helper()
	var ss []Sink
	var cfgs []SinkConfig
	for _, s := range sinks {
		ss = append(ss, s)
		cfgs = append(cfgs, sinkCfg(s.name))
	}
	d, err := NewDispatcher(ss, cfgs, Options{OutboxDir: outbox, Log: zerolog.Nop(),
		RetryBase: 5 * time.Millisecond, RetryMax: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

func flush(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func ids(pages []Page) []string {
	var out []string
	for _, p := range pages {
		out = append(out, p.ID)
	}
	return out
}

// Faults: a sink that is down, answers 500, or 429 for a while gets each
// page exactly once, in order, once it recovers; a healthy sink beside it
// is not held up; a rejected page is dropped and counted, not retried.
func TestDispatcherRetriesInOrderExactlyOnce(t *testing.T) {
	flaky := &fakeSink{name: "flaky", fail: func(n int, p *Page) error {
		switch {
		case n <= 3:
			return errors.New("connection refused")
		case n <= 5:
			return errors.New("HTTP 500")
		case n == 6:
			return &RetryAfterError{After: 30 * time.Millisecond, Err: errors.New("HTTP 429")}
		}
		return nil
	}}
	healthy := &fakeSink{name: "healthy"}
	d := newTestDispatcher(t, t.TempDir(), flaky, healthy)
	want := []Page{queuedPage("web1/a", Trigger, 1), queuedPage("web1/a", Update, 2), queuedPage("web1/a", Resolve, 3)}
	start := time.Now()
	for _, p := range want {
		if err := d.Submit(p); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Submit blocked for %s", el) // a bound, not a speed claim: it must not wait for sinks
	}
	flush(t, d)
	// The update waiting behind the failing trigger is superseded by the
	// resolve, which carries the final state: one page per transition.
	if got := fmt.Sprint(ids(flaky.delivered())); got != "[web1/a#1 web1/a#3]" {
		t.Errorf("flaky got %v", got)
	}
	// The healthy sink may have sent the update before the resolve came.
	if got := fmt.Sprint(ids(healthy.delivered())); got != "[web1/a#1 web1/a#2 web1/a#3]" && got != "[web1/a#1 web1/a#3]" {
		t.Errorf("healthy got %v", got)
	}
	st := d.Stats()
	if st[0].Delivered != 2 || st[0].Failed != 6 || st[0].Dropped != 0 || st[1].Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestDispatcherDropsRejectedPages(t *testing.T) {
	s := &fakeSink{name: "s", fail: func(n int, p *Page) error {
		if p.Action == Update {
			return &PermanentError{Err: errors.New("HTTP 400")}
		}
		return nil
	}}
	dir := t.TempDir()
	d := newTestDispatcher(t, dir, s)
	_ = d.Submit(queuedPage("k", Trigger, 1))
	_ = d.Submit(queuedPage("k", Update, 2))
	flush(t, d)
	_ = d.Submit(queuedPage("k", Resolve, 3))
	flush(t, d)
	if got := ids(s.delivered()); fmt.Sprint(got) != "[k#1 k#3]" {
		t.Errorf("delivered %v", got)
	}
	if st := d.Stats()[0]; st.Dropped != 1 || st.Delivered != 2 {
		t.Errorf("stats %+v", st)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*", "*.json")); len(left) != 0 {
		t.Errorf("outbox not emptied: %v", left)
	}
}

// A page not delivered before a stop stays in the outbox and is delivered,
// once, by the next dispatcher.
func TestDispatcherOutboxSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	down := &fakeSink{name: "pd", fail: func(int, *Page) error { return errors.New("down") }}
	d1 := newTestDispatcher(t, dir, down)
	_ = d1.Submit(queuedPage("k", Trigger, 1))
	_ = d1.Submit(queuedPage("k", Resolve, 2))
	time.Sleep(50 * time.Millisecond) // let it fail a few times
	if err := d1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "pd", "*.json"))
	if len(files) != 2 {
		t.Fatalf("outbox holds %d pages, want 2", len(files))
	}
	up := &fakeSink{name: "pd"}
	d2 := newTestDispatcher(t, dir, up)
	flush(t, d2)
	if got := ids(up.delivered()); fmt.Sprint(got) != "[k#1 k#2]" {
		t.Errorf("after restart delivered %v", got)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "pd")); len(left) != 0 {
		t.Errorf("outbox not emptied: %d files", len(left))
	}
}

// Updates waiting behind a failing head are folded into the newest, and
// the queue bound pushes out updates before transitions.
func TestDispatcherCoalescesAndBounds(t *testing.T) {
	var mu sync.Mutex
	open := false
	s := &fakeSink{name: "s", fail: func(int, *Page) error {
		mu.Lock()
		defer mu.Unlock()
		if !open {
			return errors.New("down")
		}
		return nil
	}}
	var cfg = sinkCfg("s")
	cfg.QueueSize = 4
	d, err := NewDispatcher([]Sink{s}, []SinkConfig{cfg}, Options{Log: zerolog.Nop(), RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	_ = d.Submit(queuedPage("a", Trigger, 1))
	for seq := 2; seq <= 6; seq++ {
		_ = d.Submit(queuedPage("a", Update, seq))
	}
	_ = d.Submit(queuedPage("b", Trigger, 1))
	_ = d.Submit(queuedPage("c", Trigger, 1))
	_ = d.Submit(queuedPage("d", Trigger, 1))
	mu.Lock()
	open = true
	mu.Unlock()
	flush(t, d)
	got := fmt.Sprint(ids(s.delivered()))
	if got != "[a#1 b#1 c#1 d#1]" {
		t.Errorf("delivered %v", got)
	}
	if st := d.Stats()[0]; st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
}

// resendSink is a fakeSink whose receiver expects open incidents again.
type resendSink struct{ fakeSink }

func (*resendSink) ResendInterval() time.Duration { return 20 * time.Millisecond }

// An open incident is re-sent to a Resender (Alertmanager) periodically,
// and no longer once resolved.
func TestDispatcherResendsOpenIncidents(t *testing.T) {
	s := &resendSink{fakeSink{name: "am"}}
	d, err := NewDispatcher([]Sink{s}, []SinkConfig{sinkCfg("am")}, Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	_ = d.Submit(queuedPage("k", Trigger, 1))
	deadline := time.Now().Add(5 * time.Second)
	for len(s.delivered()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(s.delivered()); n < 4 {
		t.Fatalf("%d sends of an open incident in 5s, want re-sends", n)
	}
	_ = d.Submit(queuedPage("k", Resolve, 2))
	flush(t, d)
	time.Sleep(30 * time.Millisecond) // let a resend already queued go out
	n := len(s.delivered())
	time.Sleep(100 * time.Millisecond) // five resend intervals
	got := s.delivered()
	if len(got) != n {
		t.Errorf("re-sent after the resolve: %v", ids(got[n:]))
	}
	for _, p := range got {
		if p.ID != "k#1" && p.ID != "k#2" {
			t.Errorf("unexpected page %s", p.ID)
		}
	}
	if got[len(got)-1].ID != "k#2" {
		t.Errorf("last page %s, want the resolve", got[len(got)-1].ID)
	}
}
