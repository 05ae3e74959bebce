package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/upstream"
)

// SocketName is the control socket's name in the runtime directory.
const SocketName = "floodguard.sock"

// PermanentTTL is the TTL of `block --permanent`: a hundred years. The
// kernel keeps a rule's expiry as 64-bit nanoseconds of CLOCK_MONOTONIC and
// would take longer, but floodguard's durations top out at 292 years and
// its snapshot keeps expiries as Unix nanoseconds, which end in 2262; a
// hundred years stays well inside all three, and outlives any host.
const PermanentTTL = 100 * 365 * 24 * time.Hour

// controlLimits bound what clients can hold of the control server: open
// connections, header size, the time to send a request's header and body,
// and an idle keep-alive connection's life. The write timeout follows the
// tick (see listenControl).
var controlLimits = struct {
	maxConns               int
	maxHeader              int
	readHeader, read, idle time.Duration
}{16, 8 << 10, 5 * time.Second, 10 * time.Second, time.Minute}

// Status is what `floodguard status` shows.
type Status struct {
	Interface      string    `json:"interface"`
	Mode           string    `json:"mode"`
	Adopted        bool      `json:"adopted"`
	Started        time.Time `json:"started"`
	Ticks          uint64    `json:"ticks"`
	DryRun         bool      `json:"dry_run"`
	TrackedSources int       `json:"tracked_sources"`
	ActiveBans     int       `json:"active_bans"`
	PPS            float64   `json:"pps"`
	DroppedPPS     float64   `json:"dropped_pps"`
	BaselinePPS    float64   `json:"baseline_pps"`
	Attacks        []string  `json:"attacks"`
	LastTick       time.Time `json:"last_tick"`
	// Upstream is the BGP stage: sessions and announced routes (absent
	// without an upstream section).
	Upstream *upstream.Status `json:"upstream,omitempty"`
}

// Ban is one rule as `floodguard bans` shows it.
type Ban struct {
	Target   string        `json:"target"`
	Origin   string        `json:"origin"` // detector, manual, or kernel (unknown to the detector)
	Scope    string        `json:"scope"`
	TimeLeft time.Duration `json:"time_left_ns"`
	Packets  uint64        `json:"dropped_packets"`
	Bytes    uint64        `json:"dropped_bytes"`
	DryRun   bool          `json:"dry_run,omitempty"`
	// Action and RatePPS are a signature rule's: "drop" or "rate_limit".
	Action  string `json:"action,omitempty"`
	RatePPS uint64 `json:"rate_pps,omitempty"`
}

// BlockRequest is the body of POST /v1/block and /v1/unblock: a source
// prefix ban (CIDR alone), or a signature rule (Match, whose source prefix
// is CIDR if given), dropping or rate-limited to RatePPS.
type BlockRequest struct {
	CIDR string `json:"cidr,omitempty"`
	TTL  string `json:"ttl,omitempty"`
	// Permanent blocks for PermanentTTL, past bans.max_ttl (TTL unset).
	Permanent bool            `json:"permanent,omitempty"`
	Match     *detector.Match `json:"match,omitempty"`
	RatePPS   uint64          `json:"rate_pps,omitempty"`
}

// command is an operator request run on the detector's goroutine between
// ticks, where the engine may be touched.
type command struct {
	run   func() (any, error)
	reply chan commandReply
}

type commandReply struct {
	v   any
	err error
}

// control serves the operator commands on a Unix socket only root can use.
type control struct {
	d    *daemon
	ln   net.Listener
	srv  *http.Server
	cmds chan command

	mu     sync.Mutex
	status Status

	top topFeed // GET /v1/top
}

type peerKey struct{}

// listenControl creates the socket (mode 0600) in dir, replacing a stale one.
func listenControl(d *daemon, dir string) (*control, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, SocketName)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another floodguard is running", path)
	}
	os.Remove(path)
	lim := controlLimits
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	c := &control{d: d, ln: newLimitListener(ln.(*net.UnixListener), lim.maxConns), cmds: make(chan command)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", c.handleStatus)
	mux.HandleFunc("GET /v1/bans", c.handleBans)
	mux.HandleFunc("GET /v1/top", c.handleTop)
	mux.HandleFunc("POST /v1/block", c.handleBlock)
	mux.HandleFunc("POST /v1/unblock", c.handleUnblock)
	c.srv = &http.Server{
		Handler:           c.rootOnly(mux),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		// The slowest answer is GET /v1/top, which waits up to three ticks
		// and two seconds for a fresh tick; a command waits for a tick.
		WriteTimeout:   4*d.file.Tick.D() + 10*time.Second,
		IdleTimeout:    lim.idle,
		MaxHeaderBytes: lim.maxHeader,
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerOf(conn))
		},
	}
	go c.srv.Serve(c.ln)
	return c, nil
}

func (c *control) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.srv.Shutdown(ctx)
	os.Remove(c.ln.Addr().String())
}

// peer is who is on the other end of a control connection.
type peer struct {
	uid, pid int
	comm     string
	ok       bool
}

func (p peer) String() string {
	if !p.ok {
		return "unknown peer"
	}
	return fmt.Sprintf("uid=%d pid=%d (%s)", p.uid, p.pid, p.comm)
}

func peerOf(conn net.Conn) peer {
	uc, ok := conn.(syscall.Conn)
	if !ok {
		return peer{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}
	}
	var p peer
	raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			p = peer{uid: int(cred.Uid), pid: int(cred.Pid), ok: true}
		}
	})
	if p.ok {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.pid)); err == nil {
			p.comm = strings.TrimSpace(string(b))
		}
	}
	return p
}

// rootOnly refuses anyone but root, whatever the socket's mode says.
func (c *control) rootOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		if !p.ok || p.uid != 0 {
			httpError(w, http.StatusForbidden, fmt.Errorf("only root may control floodguard (you are %s)", p))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// do runs f on the detector goroutine and waits for it (at most until the
// next tick has been processed, bounded by the request's context).
func (c *control) do(ctx context.Context, f func() (any, error)) (any, error) {
	cmd := command{run: f, reply: make(chan commandReply, 1)}
	select {
	case c.cmds <- cmd:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-cmd.reply:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// serve runs pending commands; the tick loop calls it between ticks.
func (c *control) serve() {
	for {
		select {
		case cmd := <-c.cmds:
			v, err := cmd.run()
			cmd.reply <- commandReply{v, err}
		default:
			return
		}
	}
}

func (c *control) setStatus(s Status) {
	c.mu.Lock()
	c.status = s
	c.mu.Unlock()
}

func (c *control) handleStatus(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	s := c.status
	c.mu.Unlock()
	writeJSON(w, s)
}

func (c *control) handleBans(w http.ResponseWriter, r *http.Request) {
	v, err := c.do(r.Context(), func() (any, error) { return c.d.bans() })
	if err != nil {
		httpError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, v)
}

func (c *control) handleBlock(w http.ResponseWriter, r *http.Request) {
	c.change(w, r, true)
}

func (c *control) handleUnblock(w http.ResponseWriter, r *http.Request) {
	c.change(w, r, false)
}

func (c *control) change(w http.ResponseWriter, r *http.Request, block bool) {
	var req BlockRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return
	}
	ttl := time.Hour
	var err error
	switch {
	case req.Permanent && req.TTL != "":
		httpError(w, http.StatusBadRequest, errors.New("give a ttl or permanent, not both"))
		return
	case req.Permanent:
		ttl = PermanentTTL
	case req.TTL != "":
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("ttl %q: want a positive duration like 10m", req.TTL))
			return
		}
	}
	asked := ttl
	var cidr detector.CIDR
	if req.CIDR != "" || req.Match == nil {
		if cidr, err = detector.ParseCIDR(req.CIDR); err != nil {
			httpError(w, http.StatusBadRequest, err)
			return
		}
	}
	target := cidr.String()
	var m detector.Match
	if req.Match != nil {
		m = *req.Match
		if cidr.IsValid() {
			m.Src = cidr.Prefix
		}
		if err := m.Validate(); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Errorf("rule %s: %w", m.String(), err))
			return
		}
		target = m.String()
	}
	who, _ := r.Context().Value(peerKey{}).(peer)
	_, err = c.do(r.Context(), func() (any, error) {
		// Capped here, on the detector's goroutine, where a reload
		// changes the config.
		if max := c.d.eng.Config().Bans.MaxTTL.D(); block && !req.Permanent && ttl > max {
			ttl = max
		}
		switch {
		case req.Match != nil && block:
			return nil, c.d.eng.ManualSignature(m, req.RatePPS, ttl, time.Now())
		case req.Match != nil:
			return nil, c.d.eng.ManualUnsignature(m)
		case block:
			return nil, c.d.eng.ManualBan(cidr.Prefix, ttl, time.Now())
		}
		return nil, c.d.eng.ManualUnban(cidr.Prefix, time.Now())
	})
	op := "unblock"
	if block {
		op = "block"
	}
	ev := c.d.log.Warn().Str("event", "manual_"+op).Str("target", target).Str("by", who.String())
	if block {
		ev = ev.Str("ttl", ttl.String()).Bool("permanent", req.Permanent)
		if ttl != asked {
			ev = ev.Str("ttl_asked", asked.String())
		}
		if req.RatePPS > 0 {
			ev = ev.Uint64("rate_pps", req.RatePPS)
		}
	}
	if err != nil {
		ev.Err(err).Msg("operator " + op + " refused")
		status := http.StatusInternalServerError
		if errors.Is(err, detector.ErrAllowlisted) {
			status = http.StatusConflict
		}
		httpError(w, status, err)
		return
	}
	ev.Msg("operator " + op)
	result := op + "ed " + target
	switch {
	case block && req.Permanent:
		result += " permanently (until unblocked)"
	case block && ttl != asked:
		result += fmt.Sprintf(" for %s: --ttl %s capped by bans.max_ttl (--permanent to block for good)", ttl, asked)
	}
	writeJSON(w, map[string]string{"result": result})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// bans joins the kernel's rules (with their hit counters) and the
// detector's book (origin, scope).
func (d *daemon) bans() ([]Ban, error) {
	out, err := joinBans(d.x.Rules, d.eng.Bans())
	if err != nil {
		return nil, err
	}
	return append(out, signatureBans(d.eng.Signatures(), time.Now())...), nil
}

// KernelBans lists the rules in the pinned maps alone, for when the daemon
// is down.
func KernelBans(pinDir string) ([]Ban, error) {
	x, err := openPinned(pinDir)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	return joinBans(x.Rules, nil)
}

func scopeName(p netip.Prefix) string {
	if p.IsSingleIP() {
		return "source"
	}
	return "prefix"
}
