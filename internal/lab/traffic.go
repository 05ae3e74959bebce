package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// HTTPServer is a tiny HTTP server answering "ok" on every path.
type HTTPServer struct {
	// URL is the server's base URL ("http://198.18.0.1:80").
	URL    string
	srv    *http.Server
	served atomic.Uint64
	once   sync.Once
}

// ServeHTTP starts an HTTP server on addr inside the namespace. The lab
// shuts it down on Close.
func (n *Netns) ServeHTTP(addr netip.AddrPort) (*HTTPServer, error) {
	if err := CheckAddr(addr.Addr()); err != nil {
		return nil, err
	}
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: http server in %s: %w", n.full, err)
	}
	s := &HTTPServer{URL: "http://" + addr.String()}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			s.served.Add(1)
			io.WriteString(w, "ok\n")
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go s.srv.Serve(ln)
	n.lab.track(s)
	return s, nil
}

// Served counts the requests answered.
func (s *HTTPServer) Served() uint64 { return s.served.Load() }

// Close stops the server.
func (s *HTTPServer) Close() error {
	var err error
	s.once.Do(func() { err = s.srv.Close() })
	return err
}

// ClientOptions configure a benign HTTP client.
type ClientOptions struct {
	// URL is what every request gets.
	URL string
	// Local is the client's own source address (a test address).
	Local netip.Addr
	// Rate is requests per second, started on a fixed schedule whatever
	// the answers (at most 1000).
	Rate float64
	// Timeout bounds each request, connection included (default 1s).
	Timeout time.Duration
	// MaxDuration stops the client by itself (default and cap 10m).
	MaxDuration time.Duration
}

// Client makes requests at a fixed rate, each on a new connection (a
// flood must not hide behind one kept-alive connection), and records
// whether each was served in time.
type Client struct {
	opt    ClientOptions
	http   *http.Client
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	results []Result
}

// Result is one request: when it started and whether it was served.
type Result struct {
	Start time.Time
	OK    bool
	Err   string
}

// ClientStats sums requests.
type ClientStats struct {
	Requests, Served int
	// FirstError is an example of what failed.
	FirstError string
}

// SuccessRate is the share of requests served, 1 with no requests.
func (c ClientStats) SuccessRate() float64 {
	if c.Requests == 0 {
		return 1
	}
	return float64(c.Served) / float64(c.Requests)
}

func (c ClientStats) String() string {
	s := fmt.Sprintf("%d of %d requests served (%.1f %%)", c.Served, c.Requests, 100*c.SuccessRate())
	if c.FirstError != "" {
		s += "; first error: " + c.FirstError
	}
	return s
}

// StartClient starts a benign client whose connections come from
// opt.Local inside the namespace. Stop it with Stop (the lab does on
// Close).
func (n *Netns) StartClient(opt ClientOptions) (*Client, error) {
	if err := CheckAddr(opt.Local); err != nil {
		return nil, err
	}
	if !(opt.Rate > 0 && opt.Rate <= 1000) {
		return nil, fmt.Errorf("lab: client rate %v outside (0, 1000]", opt.Rate)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.MaxDuration <= 0 || opt.MaxDuration > 10*time.Minute {
		opt.MaxDuration = 10 * time.Minute
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: opt.Local.AsSlice()}}
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return n.DialContext(ctx, dialer, network, addr)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), opt.MaxDuration)
	c := &Client{opt: opt, http: &http.Client{Transport: tr, Timeout: opt.Timeout}, cancel: cancel, done: make(chan struct{})}
	go c.loop(ctx)
	n.lab.track(c)
	return c, nil
}

// DialContext dials with d from inside the namespace: the connection's
// socket belongs to it for good (see Do), so it can serve as an
// http.Transport's DialContext for a server listening in the namespace.
func (n *Netns) DialContext(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func (c *Client) loop(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.opt.Rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.record(Result{Start: now}, c.get())
			}()
		}
	}
}

func (c *Client) get() error {
	resp, err := c.http.Get(c.opt.URL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func (c *Client) record(r Result, err error) {
	r.OK = err == nil
	if err != nil {
		r.Err = err.Error()
	}
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
}

// Stats sums the finished requests started in [from, to) (zero times
// mean no bound).
func (c *Client) Stats(from, to time.Time) ClientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s ClientStats
	for _, r := range c.results {
		if (!from.IsZero() && r.Start.Before(from)) || (!to.IsZero() && !r.Start.Before(to)) {
			continue
		}
		s.Requests++
		if r.OK {
			s.Served++
		} else if s.FirstError == "" {
			s.FirstError = r.Err
		}
	}
	return s
}

// Stop stops making requests and waits for those under way (at most the
// timeout).
func (c *Client) Stop() ClientStats {
	c.cancel()
	<-c.done
	c.wg.Wait()
	return c.Stats(time.Time{}, time.Time{})
}

// Close is Stop, for the lab.
func (c *Client) Close() error {
	c.Stop()
	return nil
}

// UDPSink counts the datagrams reaching a UDP port, by source address.
type UDPSink struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	bySrc map[netip.Addr]uint64
	done  chan struct{}
}

// ListenUDP starts a UDP sink on addr inside the namespace, with a large
// receive buffer. The lab closes it on Close.
func (n *Netns) ListenUDP(addr netip.AddrPort) (*UDPSink, error) {
	if err := CheckAddr(addr.Addr()); err != nil {
		return nil, err
	}
	var conn *net.UDPConn
	err := n.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: udp sink in %s: %w", n.full, err)
	}
	if raw, err := conn.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			// As root, past net.core.rmem_max.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		})
	}
	s := &UDPSink{conn: conn, bySrc: map[netip.Addr]uint64{}, done: make(chan struct{})}
	go s.read()
	n.lab.track(s)
	return s, nil
}

func (s *UDPSink) read() {
	defer close(s.done)
	buf := make([]byte, 2048)
	for {
		_, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return
		}
		s.mu.Lock()
		s.bySrc[from.Addr().Unmap()]++
		s.mu.Unlock()
	}
}

// Received counts the datagrams from src so far.
func (s *UDPSink) Received(src netip.Addr) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySrc[src.Unmap()]
}

// Settle waits until no datagram from src has arrived for quiet (bounded
// by timeout) and returns the count then.
func (s *UDPSink) Settle(src netip.Addr, quiet, timeout time.Duration) uint64 {
	deadline := time.Now().Add(timeout)
	last, since := s.Received(src), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if n := s.Received(src); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			break
		}
	}
	return last
}

// Close stops the sink.
func (s *UDPSink) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}
