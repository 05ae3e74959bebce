package daemon

// The HTTP side of the Prometheus metrics: checking daemon.metrics_listen,
// serving the collector of metrics.go on /metrics, and starting, moving and
// stopping that server as the daemon starts, reloads and exits.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// promLogger passes the HTTP handler's errors to the daemon's log.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Warn().Str("event", "metrics_error").Msg(strings.TrimSpace(fmt.Sprintln(v...)))
}

// handler serves /metrics and a small index page at /.
func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            promLogger{m.log},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><title>floodguard</title></head><body><h1>floodguard</h1><p><a href="/metrics">Metrics</a></p></body></html>`+"\n")
	})
	return mux
}

// listen starts serving the metrics on addr.
func (m *metrics) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	m.ln = ln
	m.srv = &http.Server{
		Handler:           m.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error().Str("event", "metrics_failed").Err(err).Msg("metrics server stopped")
		}
	}()
	return nil
}

// relisten moves the server to addr. The new listener comes first, so a
// failure leaves the old one serving.
func (m *metrics) relisten(addr string) error {
	old := m.srv
	if err := m.listen(addr); err != nil {
		return err
	}
	if old != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = old.Shutdown(ctx)
		cancel()
	}
	return nil
}

// reloadMetrics applies a reloaded daemon.metrics_listen: start, stop or
// move the server. On failure the previous setting stays in force.
func (d *daemon) reloadMetrics(addr string) error {
	switch {
	case addr == d.file.Daemon.MetricsListen:
		return nil
	case addr == "":
		d.metrics.stop()
		d.metrics = nil
		d.log.Info().Str("event", "metrics_stopped").Msg("metrics server stopped (daemon.metrics_listen is empty)")
		return nil
	case d.metrics == nil:
		prev := d.file.Daemon.MetricsListen
		d.file.Daemon.MetricsListen = addr
		err := d.startMetrics()
		d.file.Daemon.MetricsListen = prev
		return err
	}
	if err := d.metrics.relisten(addr); err != nil {
		return err
	}
	d.log.Info().Str("event", "metrics_listening").Str("address", d.metrics.ln.Addr().String()).
		Msg("serving Prometheus metrics on /metrics")
	return nil
}

// stop shuts the server down and stops reading the kernel maps, which may
// then be closed. It is safe on a nil receiver and to call twice.
func (m *metrics) stop() {
	if m == nil {
		return
	}
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = m.srv.Shutdown(ctx)
		cancel()
		m.srv = nil
	}
	m.kmu.Lock()
	m.kernel = nil
	m.kmu.Unlock()
}

// startMetrics serves the metrics if daemon.metrics_listen is set, with the
// paging series of d.pager (which must exist by then).
func (d *daemon) startMetrics() error {
	addr := d.file.Daemon.MetricsListen
	if addr == "" {
		return nil
	}
	m := newMetrics(d.file.Daemon.Interface, d.opt.Version, d.x.ReadStats, d.log)
	if pg := d.pager; pg != nil {
		m.SetPagingStats(func() []SinkCounters {
			var out []SinkCounters
			for _, s := range pg.stats() {
				out = append(out, SinkCounters{Sink: s.Sink, Type: s.Type, Delivered: s.Delivered, Failed: s.Failed, Dropped: s.Dropped, Queued: s.Queued})
			}
			return out
		})
	}
	m.reg.MustRegister(upstreamCollector{&d.upNow}) // the floodguard_upstream_* series, while a stage runs
	if err := m.listen(addr); err != nil {
		return err
	}
	d.metrics = m
	d.log.Info().Str("event", "metrics_listening").Str("address", m.ln.Addr().String()).
		Msg("serving Prometheus metrics on /metrics")
	if ap, err := netip.ParseAddrPort(m.ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		d.log.Warn().Str("event", "metrics_exposed").Str("address", m.ln.Addr().String()).
			Msg("metrics are reachable from the network, not only from this host; prefer 127.0.0.1:PORT")
	}
	return nil
}
