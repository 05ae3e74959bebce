package daemon_test

// Upstream escalation against a real router: Debian's gobgpd runs in the
// peer namespace, on the victim's link, and `floodguard run` peers with it.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

const (
	router4  = "198.18.0.254" // gobgpd, on the peer's end of the link
	routerAS = 64500
	localAS  = 64512
	// ribPoll is how often the router's table is read.
	ribPoll = 50 * time.Millisecond
)

// router is gobgpd in the peer namespace.
type router struct {
	t    *testing.T
	ns   *lab.Netns
	conf string
	proc *lab.Process // the running gobgpd (a restart replaces it)
	logs []*lab.Log   // every run's, shown if the test fails
}

// startRouter starts gobgpd on the peer namespace with a passive session
// for the victim, short timers, its gRPC API on the namespace's 127.0.0.1.
func (e *e2e) startRouter() *router {
	e.t.Helper()
	if _, err := exec.LookPath("gobgpd"); err != nil {
		skipOrFail(e.t, "needs gobgpd (Debian package gobgpd): %v", err)
	}
	if _, err := exec.LookPath("gobgp"); err != nil {
		skipOrFail(e.t, "needs the gobgp CLI (Debian package gobgpd): %v", err)
	}
	if err := e.peer.AddAddr("va", router4+"/24"); err != nil {
		e.t.Fatal(err)
	}
	conf := lab.GoBGPConfig(routerAS, netip.MustParseAddr(router4), victim4, localAS, "ipv4-flowspec", "ipv6-flowspec")
	r := &router{t: e.t, ns: e.peer, conf: filepath.Join(e.dir, "gobgpd.toml")}
	if err := os.WriteFile(r.conf, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if r.proc != nil {
			r.proc.Kill()
		}
		if e.t.Failed() {
			for i, l := range r.logs {
				e.t.Logf("gobgpd log (run %d):\n%s", i+1, l)
			}
		}
	})
	r.run()
	return r
}

// run starts gobgpd and waits (at most 10 s) until its API answers.
func (r *router) run() {
	r.t.Helper()
	p, err := r.ns.Start("gobgpd", "-f", r.conf, "--api-hosts", "127.0.0.1:50051", "--pprof-disable", "-l", "info")
	if err != nil {
		r.t.Fatal(err)
	}
	r.proc = p
	r.logs = append(r.logs, p.Log)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := r.rib(); err == nil {
			return
		} else if time.Now().After(deadline) || p.Exited() {
			r.t.Fatalf("gobgpd does not answer: %v\n%s", err, p.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restart kills gobgpd (as a crash would: no NOTIFICATION, its table
// lost) and starts it again.
func (r *router) restart() {
	r.t.Helper()
	r.proc.Kill()
	r.run()
}

// flowRoute is one FlowSpec route in the router's table.
type flowRoute struct {
	NLRI    string
	Discard bool // traffic-rate 0
}

// rib reads the router's IPv4 FlowSpec table.
func (r *router) rib() ([]flowRoute, error) { return r.ribOf("ipv4-flowspec") }

// ribOf reads one of the router's tables ("ipv4-flowspec",
// "ipv6-flowspec") with `gobgp global rib -a FAMILY -j`.
func (r *router) ribOf(family string) ([]flowRoute, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", r.ns.FullName(),
		"gobgp", "-u", "127.0.0.1", "-p", "50051", "global", "rib", "-a", family, "-j")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("gobgp global rib -a %s: %w: %s", family, err, out)
	}
	var table map[string][]struct {
		Attrs []struct {
			Type  int             `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"attrs"`
	}
	if s := strings.TrimSpace(string(out)); s == "" || s == "null" {
		return nil, nil
	}
	if err := json.Unmarshal(out, &table); err != nil {
		return nil, fmt.Errorf("gobgp global rib -a %s -j: %w: %q", family, err, out)
	}
	var routes []flowRoute
	for nlri, paths := range table {
		for _, p := range paths {
			fr := flowRoute{NLRI: nlri}
			for _, a := range p.Attrs {
				if a.Type != 16 { // extended communities
					continue
				}
				var ecs []struct {
					Type    int     `json:"type"`
					Subtype int     `json:"subtype"`
					Rate    float64 `json:"rate"`
				}
				if json.Unmarshal(a.Value, &ecs) == nil {
					for _, ec := range ecs {
						if ec.Type == 0x80 && ec.Subtype == 6 && ec.Rate == 0 {
							fr.Discard = true
						}
					}
				}
			}
			routes = append(routes, fr)
		}
	}
	return routes, nil
}

// discardNLRI is how gobgp names the rule for src towards the victim of
// its family, and the table it is in (gobgp prints an IPv6 prefix with its
// RFC 8956 offset, 0 here).
func discardNLRI(src netip.Addr) (family, nlri string) {
	if src.Is6() {
		return "ipv6-flowspec", fmt.Sprintf("[destination: %s/128/0][source: %s/128/0]", victim6, src)
	}
	return "ipv4-flowspec", fmt.Sprintf("[destination: %s/32][source: %s/32]", victim4, src)
}

// hasDiscard reports whether routes hold a discard rule named nlri.
func hasDiscard(routes []flowRoute, nlri string) bool {
	return slices.ContainsFunc(routes, func(r flowRoute) bool { return r.NLRI == nlri && r.Discard })
}

// upstreamConfig is the test config with an upstream section peering with
// the router (hold time 3s).
func (e *e2e) upstreamConfig(c cfg, dryRun bool) string {
	text := e.text(c)
	if dryRun {
		text = strings.Replace(text, "bans:\n", "bans:\n  dry_run: true\n", 1)
	}
	return text + fmt.Sprintf(`upstream:
  bgp:
    router_id: %s
    local_as: %d
    peers:
      - {address: %s, as: %d, hold_time: 3s}
  escalate_pps: 5000
`, victim4, localAS, router4, routerAS)
}

// startPeered starts the router, then floodguard with config, and waits
// for its warm-up and its session with the router.
func (e *e2e) startPeered(config string) (*router, *lab.Process) {
	e.t.Helper()
	r := e.startRouter()
	e.writeConfig(config)
	d := e.start()
	e.waitWarm(d)
	e.waitEstablished()
	return r, d
}

// waitEstablished waits until floodguard reports its session established.
func (e *e2e) waitEstablished() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := e.status()
		if s.Upstream != nil && len(s.Upstream.Peers) == 1 && s.Upstream.Peers[0].State == "established" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("BGP session with %s not established: %+v", router4, s.Upstream)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestE2EUpstreamFlowSpec: a flood from one source is announced to a real
// router as a FlowSpec discard rule for that source and the protected
// address within two ticks of its start, and withdrawn when the ban ends.
// Several rounds, each from another source, give the latency's median.
func TestE2EUpstreamFlowSpec(t *testing.T) {
	e := newE2E(t, cfg{})
	r, d := e.startPeered(e.upstreamConfig(cfg{TTL: "3s"}, false))

	var lat []time.Duration
	for _, src := range []netip.Addr{attacker4, other4, netip.MustParseAddr("198.18.0.5")} {
		lat = append(lat, e.upstreamRound(d, r.tableOf(src), src))
	}
	slices.Sort(lat)
	t.Logf("flood start → discard rule in the router's table: %v (median %v)", lat, lat[len(lat)/2])
}

// flowTable is a router's FlowSpec table of one family, as its CLI shows
// it, and the name it gives the discard rule of one source.
type flowTable struct {
	read func() ([]flowRoute, error)
	nlri string
}

// tableOf is gobgpd's table holding the rule for src, and its name.
func (r *router) tableOf(src netip.Addr) flowTable {
	family, nlri := discardNLRI(src)
	return flowTable{read: func() ([]flowRoute, error) { return r.ribOf(family) }, nlri: nlri}
}

// upstreamRound floods from src and returns how long after the flood's
// start the router's table held the rule; it then waits for the
// withdrawal.
func (e *e2e) upstreamRound(d *lab.Process, tab flowTable, src netip.Addr) time.Duration {
	t := e.t
	t.Helper()
	nlri := tab.nlri
	mark := d.Log.Len()
	type result struct {
		st  lab.FloodStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := e.snd.Flood(context.Background(), lab.Flood{Frames: e.udp(src), Rate: floodRate, Duration: 2 * time.Second})
		done <- result{st, err}
	}()
	var seen time.Time
	deadline := time.Now().Add(2*tick + 2*time.Second)
	for seen.IsZero() && time.Now().Before(deadline) {
		routes, err := tab.read()
		if err != nil {
			t.Fatal(err)
		}
		if hasDiscard(routes, nlri) {
			seen = time.Now()
			break
		}
		time.Sleep(ribPoll)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if seen.IsZero() {
		routes, _ := tab.read()
		t.Fatalf("router has no discard rule %s within two ticks of the flood from %v: %+v", nlri, src, routes)
	}
	after := seen.Sub(res.st.Start)
	// The table is read every ribPoll, each read a CLI run: allow that.
	if after > 2*tick+ribPoll+200*time.Millisecond {
		t.Errorf("rule for %v in the router %v after its flood started, later than two ticks", src, after)
	}
	t.Logf("%v: discard rule in the router %v after the flood started", src, after.Round(time.Millisecond))

	// The ban ends (ttl 3s after the flood): the route is withdrawn.
	target := netip.PrefixFrom(src, src.BitLen()).String()
	if _, _, err := d.Log.WaitEvent(mark, 8*time.Second, "unban", isEvent(target)); err != nil {
		t.Fatalf("ban of %v did not end: %v", src, err)
	}
	deadline = time.Now().Add(2*tick + time.Second)
	for {
		routes, err := tab.read()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(routes, func(fr flowRoute) bool { return fr.NLRI == nlri }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rule %s still in the router after the ban ended: %+v", nlri, routes)
		}
		time.Sleep(ribPoll)
	}
	return after
}

// TestE2EUpstreamDryRun: with bans.dry_run the flood is logged as what
// would be announced, and the router learns nothing.
func TestE2EUpstreamDryRun(t *testing.T) {
	e := newE2E(t, cfg{})
	r, d := e.startPeered(e.upstreamConfig(cfg{TTL: "3s"}, true))
	mark := d.Log.Len()

	st := e.flood(e.udp(attacker4), floodRate, 2*time.Second)
	if _, _, err := d.Log.WaitEvent(mark, time.Until(st.Start.Add(2*tick+time.Second)), "upstream_would_announce", nil); err != nil {
		t.Fatalf("dry run: no upstream_would_announce: %v", err)
	}
	// Two more ticks for anything to (wrongly) reach the router.
	end := time.Now().Add(2 * tick)
	for time.Now().Before(end) {
		routes, err := r.rib()
		if err != nil {
			t.Fatal(err)
		}
		if len(routes) != 0 {
			t.Fatalf("dry run announced %+v", routes)
		}
		time.Sleep(ribPoll)
	}
	if s := e.status(); s.Upstream == nil || s.Upstream.Announcements != 0 {
		t.Errorf("dry run: status upstream %+v, want no announcements", s.Upstream)
	}
}
