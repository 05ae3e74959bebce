package paging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/floodguard/floodguard/internal/atomicfile"
	"github.com/rs/zerolog"
)

// Options configure a Dispatcher.
type Options struct {
	// OutboxDir keeps pages until delivered, across restarts; "" keeps
	// them in memory only.
	OutboxDir string
	Log       zerolog.Logger
	// Retries back off from about RetryBase, doubling up to RetryMax,
	// each delay drawn uniformly from half to all of that (jitter, so
	// many daemons paging after one outage do not retry in step).
	// Defaults 1s and 5m.
	RetryBase, RetryMax time.Duration
}

// SinkStats counts one sink's deliveries.
type SinkStats struct {
	Sink, Type string
	Delivered  uint64 // pages the receiver accepted
	Failed     uint64 // failed attempts (a page retried three times counts three)
	Dropped    uint64 // pages given up: rejected as permanent, or pushed out of a full queue
	Queued     int    // pages waiting now
}

// Dispatcher delivers pages to every sink independently: a bounded queue
// per sink, retries with exponential backoff and jitter, a per-sink rate
// limit, and an outbox on disk so that a page not yet delivered when the
// daemon stops is delivered after it starts again. Submit never blocks on
// a sink: detection and enforcement never wait for paging.
type Dispatcher struct {
	workers []*worker
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

type worker struct {
	sink   Sink
	cfg    SinkConfig
	dir    string // this sink's outbox directory, "" for none
	log    zerolog.Logger
	wake   chan struct{}
	resend time.Duration
	base   time.Duration // retry backoff bounds
	max    time.Duration

	mu     sync.Mutex
	queue  []*entry
	open   map[string]Page // latest page of each open incident (for resends)
	stats  SinkStats
	seq    uint64 // orders outbox file names
	rng    *rand.Rand
	failed int // consecutive failures, for logging
}

// entry is one page waiting for one sink.
type entry struct {
	page     Page
	file     string // outbox file, "" for none (resends)
	attempts int
	next     time.Time // no attempt before
	inFlight bool
	resend   bool // a periodic re-send, in memory only
}

// NewDispatcher starts one delivery goroutine per sink. cfgs[i] configures
// sinks[i]. Pages left in the outbox by an earlier run are queued first.
func NewDispatcher(sinks []Sink, cfgs []SinkConfig, opt Options) (*Dispatcher, error) {
	d, err := prepareDispatcher(sinks, cfgs, opt)
	if err != nil {
		return nil, err
	}
	d.start()
	return d, nil
}

// prepareDispatcher builds a Dispatcher and makes its outbox directories,
// which is all that can fail, without touching what they hold: another
// Dispatcher may still be delivering from them. start takes them over.
func prepareDispatcher(sinks []Sink, cfgs []SinkConfig, opt Options) (*Dispatcher, error) {
	if len(sinks) != len(cfgs) {
		return nil, fmt.Errorf("paging: %d sinks but %d configs", len(sinks), len(cfgs))
	}
	if opt.RetryBase <= 0 {
		opt.RetryBase = time.Second
	}
	if opt.RetryMax < opt.RetryBase {
		opt.RetryMax = max(5*time.Minute, opt.RetryBase)
	}
	d := &Dispatcher{}
	for i, s := range sinks {
		w := &worker{
			sink: s, cfg: cfgs[i], log: opt.Log.With().Str("sink", s.Name()).Logger(),
			base: opt.RetryBase, max: opt.RetryMax,
			wake: make(chan struct{}, 1), open: map[string]Page{},
			stats: SinkStats{Sink: s.Name(), Type: cfgs[i].Type},
			rng:   rand.New(rand.NewPCG(rand.Uint64(), uint64(i))),
		}
		if r, ok := s.(Resender); ok {
			w.resend = r.ResendInterval()
		}
		if opt.OutboxDir != "" {
			w.dir = filepath.Join(opt.OutboxDir, safeName(s.Name()))
			if err := os.MkdirAll(w.dir, 0o700); err != nil {
				return nil, fmt.Errorf("paging %s: outbox: %w", s.Name(), err)
			}
		}
		d.workers = append(d.workers, w)
	}
	return d, nil
}

// start queues what the outbox holds and starts delivery. It cannot fail:
// a page it cannot read is logged and left where it is.
func (d *Dispatcher) start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	for _, w := range d.workers {
		if w.dir != "" {
			w.load()
		}
	}
	for _, w := range d.workers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			w.run(ctx)
		}()
	}
}

// safeName keeps a sink name usable as a directory name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, s)
}

// Submit queues p for every sink and writes it to the outbox first. It
// returns the outbox write errors (the page is still queued in memory).
func (d *Dispatcher) Submit(p Page) error {
	var errs []error
	for _, w := range d.workers {
		if err := w.submit(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats returns each sink's counters.
func (d *Dispatcher) Stats() []SinkStats {
	out := make([]SinkStats, 0, len(d.workers))
	for _, w := range d.workers {
		w.mu.Lock()
		s := w.stats
		s.Queued = len(w.queue)
		w.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// Close stops delivery, waiting for attempts in flight up to ctx. Pages
// not delivered stay in the outbox for the next start.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.cancel()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("paging: stop: %w", ctx.Err())
	}
}

// Flush waits until every queue is empty or ctx is done (for replay and
// `page --test`, which deliver and exit).
func (d *Dispatcher) Flush(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		busy := false
		for _, w := range d.workers {
			w.mu.Lock()
			for _, e := range w.queue {
				if !e.resend || e.inFlight {
					busy = true
				}
			}
			w.mu.Unlock()
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("paging: pages still undelivered: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func (w *worker) submit(p Page) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := &entry{page: p}
	var err error
	if w.dir != "" {
		w.seq++
		e.file = filepath.Join(w.dir, fmt.Sprintf("%020d-%06d.json", p.Time.UnixNano(), w.seq))
		if err = writePage(e.file, p); err != nil {
			err = fmt.Errorf("paging %s: outbox: %w", w.sink.Name(), err)
			e.file = ""
		}
	}
	w.coalesce(p)
	w.queue = append(w.queue, e)
	w.trim()
	w.poke()
	return err
}

// coalesce drops a queued, not yet attempted update of the same incident
// (and any queued resend of it): the new page carries the newer state.
func (w *worker) coalesce(p Page) {
	w.queue = slices.DeleteFunc(w.queue, func(e *entry) bool {
		old := e.page
		if e.inFlight || old.Incident.Key != p.Incident.Key {
			return false
		}
		if e.resend || (old.Action == Update && p.Action != Trigger) {
			w.remove(e)
			return true
		}
		return false
	})
}

// trim keeps the queue within its bound: oldest updates go first, then,
// if transitions alone overflow it, the oldest page.
func (w *worker) trim() {
	for len(w.queue) > w.cfg.QueueSize {
		i := slices.IndexFunc(w.queue, func(e *entry) bool { return !e.inFlight && e.page.Action == Update })
		if i < 0 {
			i = slices.IndexFunc(w.queue, func(e *entry) bool { return !e.inFlight })
		}
		if i < 0 {
			return
		}
		e := w.queue[i]
		w.log.Warn().Str("event", "page_dropped").Str("incident", e.page.Incident.Key).
			Str("action", string(e.page.Action)).Int("queue_size", w.cfg.QueueSize).Msg("paging queue full: page dropped")
		w.stats.Dropped++
		w.remove(e)
		w.queue = slices.Delete(w.queue, i, i+1)
	}
}

// remove deletes an entry's outbox file.
func (w *worker) remove(e *entry) {
	if e.file != "" {
		if err := os.Remove(e.file); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.log.Warn().Err(err).Msg("outbox: remove delivered page")
		}
	}
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// load queues the pages an earlier run (or the Dispatcher this one
// replaces) left in the outbox, oldest first. A page it cannot read stays
// in place, logged, for the next start; a damaged one is set aside.
func (w *worker) load() {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		w.log.Error().Str("event", "outbox_unreadable").Str("dir", w.dir).Err(err).Msg("outbox: pages left there not queued")
		return
	}
	for _, ent := range ents { // sorted by name: by time, then sequence
		name := filepath.Join(w.dir, ent.Name())
		if ent.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			w.log.Error().Str("event", "outbox_unreadable").Str("file", name).Err(err).Msg("outbox: page not queued, left in place")
			continue
		}
		var p Page
		if err := json.Unmarshal(data, &p); err != nil {
			// A torn write cannot happen (atomicfile), so this is damage:
			// keep the file for inspection, out of the queue.
			w.log.Error().Str("file", name).Err(err).Msg("outbox: unreadable page set aside")
			_ = os.Rename(name, name+".bad")
			continue
		}
		w.queue = append(w.queue, &entry{page: p, file: name})
		// File names go on numbering after the highest found, so a page
		// written now never takes the name of, or sorts before, an older
		// one of the same instant.
		var ns int64
		var seq uint64
		if _, err := fmt.Sscanf(ent.Name(), "%d-%d.json", &ns, &seq); err == nil && seq > w.seq {
			w.seq = seq
		}
		if p.Action == Resolve {
			delete(w.open, p.Incident.Key)
		} else {
			w.open[p.Incident.Key] = p
		}
	}
	if len(w.queue) > 0 {
		w.log.Info().Str("event", "outbox_loaded").Int("pages", len(w.queue)).Msg("undelivered pages from the last run queued")
	}
}

// writePage writes p as JSON to path, atomically.
func writePage(path string, p Page) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// run delivers the queue head by head, in order: a page is retried until
// it is delivered or rejected, and the pages behind it wait (a resolve
// must never overtake its trigger).
func (w *worker) run(ctx context.Context) {
	var lastSend time.Time
	var resendTick <-chan time.Time
	if w.resend > 0 {
		t := time.NewTicker(w.resend)
		defer t.Stop()
		resendTick = t.C
	}
	for {
		w.mu.Lock()
		var head *entry
		if len(w.queue) > 0 {
			head = w.queue[0]
		}
		wait := time.Duration(-1)
		if head != nil {
			at := head.next
			if earliest := lastSend.Add(w.cfg.MinInterval.D()); earliest.After(at) {
				at = earliest
			}
			wait = max(time.Until(at), 0)
			if wait == 0 {
				head.inFlight = true
			}
		}
		w.mu.Unlock()
		if wait != 0 {
			var timer *time.Timer
			var fire <-chan time.Time
			if wait > 0 {
				timer = time.NewTimer(wait)
				fire = timer.C
			}
			select {
			case <-ctx.Done():
			case <-w.wake:
			case <-fire:
			case <-resendTick:
				w.queueResends()
			}
			if timer != nil {
				timer.Stop()
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		lastSend = time.Now()
		err := w.attempt(ctx, &head.page)
		if ctx.Err() != nil && err != nil {
			w.mu.Lock()
			head.inFlight = false
			w.mu.Unlock()
			return // stopping: the page stays in the outbox
		}
		w.done(head, err)
	}
}

func (w *worker) attempt(ctx context.Context, p *Page) error {
	actx, cancel := context.WithTimeout(ctx, w.cfg.Timeout.D())
	defer cancel()
	return w.sink.Send(actx, p)
}

// done records an attempt's outcome.
func (w *worker) done(e *entry, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e.inFlight = false
	p := &e.page
	if err == nil || IsPermanent(err) {
		if err == nil {
			w.stats.Delivered++
			if w.failed > 0 {
				w.log.Info().Str("event", "sink_recovered").Int("failed_attempts", w.failed).Msg("paging sink delivering again")
			}
			w.failed = 0
			if p.Action == Resolve {
				delete(w.open, p.Incident.Key)
			} else if !e.resend {
				w.open[p.Incident.Key] = *p
			}
		} else {
			w.stats.Failed++
			w.stats.Dropped++
			w.log.Error().Str("event", "page_rejected").Str("incident", p.Incident.Key).
				Str("action", string(p.Action)).Err(err).Msg("paging sink rejected a page; not retried")
		}
		w.remove(e)
		if i := slices.Index(w.queue, e); i >= 0 {
			w.queue = slices.Delete(w.queue, i, i+1)
		}
		return
	}
	w.stats.Failed++
	w.failed++
	e.attempts++
	d := min(w.base<<min(e.attempts-1, 20), w.max)
	d = d/2 + time.Duration(w.rng.Int64N(int64(d/2)+1))
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > d {
		d = ra.After
	}
	e.next = time.Now().Add(d)
	// Log the first failure and then every tenth, not every attempt.
	if w.failed == 1 || w.failed%10 == 0 {
		w.log.Warn().Str("event", "page_failed").Str("incident", p.Incident.Key).Str("action", string(p.Action)).
			Int("attempts", e.attempts).Dur("retry_in", d).Err(err).Msg("paging sink failed; retrying")
	}
}

// queueResends re-queues, in memory only, the latest page of each open
// incident for a sink whose receiver expects it (Alertmanager).
func (w *worker) queueResends() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for key, p := range w.open {
		if slices.ContainsFunc(w.queue, func(e *entry) bool { return e.page.Incident.Key == key }) {
			continue
		}
		w.queue = append(w.queue, &entry{page: p, resend: true})
	}
	w.poke()
}
