package daemon_test

// More of upstream escalation against gobgpd (upstream_e2e_test.go has the
// router): a router restart, an IPv6 flood, a signature rule, the cap.

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

// waitRoute polls the router's table of family until it holds a discard
// rule named nlri, at most until deadline, and returns when it was seen.
func (r *router) waitRoute(family, nlri string, deadline time.Time) time.Time {
	r.t.Helper()
	for {
		routes, err := r.ribOf(family)
		if err != nil {
			r.t.Fatal(err)
		}
		if hasDiscard(routes, nlri) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("router has no discard rule %s (%s) by %v: %+v", nlri, family, deadline.Format(time.TimeOnly), routes)
		}
		time.Sleep(ribPoll)
	}
}

// floodAsync starts a flood and returns a function that waits for its end
// and returns what was sent.
func (e *e2e) floodAsync(fr lab.Frames, rate float64, d time.Duration) func() lab.FloodStats {
	type result struct {
		st  lab.FloodStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := e.snd.Flood(context.Background(), lab.Flood{Frames: fr, Rate: rate, Duration: d})
		done <- result{st, err}
	}()
	return func() lab.FloodStats {
		e.t.Helper()
		res := <-done
		if res.err != nil {
			e.t.Fatal(res.err)
		}
		return res.st
	}
}

// reconnectBound is how long floodguard may take to re-establish a session
// after the router came back: its backoff re-arms a down peer 2 s after it
// is seen down (polled every second), GoBGP dials 1-2 s after that, and the
// handshake; twice that, for a loaded CI machine.
const reconnectBound = 15 * time.Second

// TestE2EUpstreamRouterRestart: the router crashes and comes back with an
// empty table while a ban is in force. floodguard keeps dropping locally,
// re-establishes the session and announces the rule again.
func TestE2EUpstreamRouterRestart(t *testing.T) {
	e := newE2E(t, cfg{})
	r, d := e.startPeered(e.upstreamConfig(cfg{TTL: "2m"}, false))

	family, nlri := discardNLRI(attacker4)
	st := e.flood(e.udp(attacker4), floodRate, 2*time.Second)
	r.waitRoute(family, nlri, st.Start.Add(2*tick+2*time.Second))

	mark := d.Log.Len()
	r.restart()
	back := time.Now()
	if _, _, err := d.Log.WaitEvent(mark, reconnectBound, "upstream_session",
		func(en lab.Entry) bool { return en.Str("state") != "established" }); err != nil {
		t.Fatalf("floodguard did not see the session go down: %v", err)
	}
	// Local drops are untouched by the session's loss.
	if _, ok := findBan(e.bans(), netip.PrefixFrom(attacker4, 32).String()); !ok {
		t.Fatalf("the ban of %v is gone with the BGP session: %+v", attacker4, e.bans())
	}
	if got := e.probe(attacker4); got != 0 {
		t.Errorf("%d frames from the banned %v got through while the session was down", got, attacker4)
	}
	seen := r.waitRoute(family, nlri, back.Add(reconnectBound))
	t.Logf("rule back in the restarted router %v after it came back", seen.Sub(back).Round(time.Millisecond))
	if _, _, err := d.Log.WaitEvent(mark, time.Second, "upstream_session",
		func(en lab.Entry) bool { return en.Str("state") == "established" }); err != nil {
		t.Errorf("no upstream_session established in the log after the restart: %v", err)
	}
	e.waitEstablished()
}

// TestE2EUpstreamIPv6: an IPv6 flood is announced as an IPv6 FlowSpec rule
// (RFC 8956) for its source and the protected IPv6 address within two
// ticks, and withdrawn when the ban ends.
func TestE2EUpstreamIPv6(t *testing.T) {
	e := newE2E(t, cfg{})
	r, d := e.startPeered(e.upstreamConfig(cfg{TTL: "3s"}, false))
	e.upstreamRound(d, r.tableOf(attacker6), attacker6)
	if routes, err := r.rib(); err != nil || len(routes) != 0 {
		t.Errorf("IPv4 FlowSpec table after an IPv6 flood: %+v (%v), want it empty", routes, err)
	}
}

// TestE2EUpstreamSignature: a reflection flood (2000 reflectors, all from
// UDP port 53, no source over any threshold) gets a signature rule, which
// is announced with its components: protocol UDP, source port 53, the
// protected address, discard.
func TestE2EUpstreamSignature(t *testing.T) {
	e := newE2E(t, cfg{})
	r := e.startRouter()
	e.writeConfig(e.upstreamConfig(cfg{TTL: "30s"}, false))
	d := e.start()
	mix := &reflection{resolverEvery: 1 << 62} // reflectors only
	for i := range reflectors {
		// Answers go to the victim's ephemeral ports, as a real
		// reflection's do: with one destination port, that port and
		// source port 53 would carry the same excess and the rule could
		// name either (it did, once, under load).
		fr, err := lab.UDPFrames(lab.Packet{SrcMAC: e.snd.MAC, DstMAC: e.victimMAC, Src: reflectorAddr(i), Dst: victim4,
			SrcPort: resolverPort, DstPort: sinkPort + uint16(i%64), Size: 600})
		if err != nil {
			t.Fatal(err)
		}
		mix.reflectors = append(mix.reflectors, append([]byte(nil), fr.Frame(0)...))
	}
	mix.resolver = mix.reflectors[0]
	e.waitWarm(d)
	e.waitEstablished()
	mark := d.Log.Len()

	const nlri = "[destination: 198.18.0.1/32][protocol: ==udp][source-port: ==53]"
	flood := e.floodAsync(mix, floodRate, 3*time.Second)
	seen := r.waitRoute("ipv4-flowspec", nlri, time.Now().Add(2*tick+2*time.Second))
	st := flood()
	// The table is read every ribPoll, each read a gobgp run: allow that.
	if after := seen.Sub(st.Start); after > 2*tick+ribPoll+200*time.Millisecond {
		t.Errorf("signature rule in the router %v after the flood started, later than two ticks", after)
	} else {
		t.Logf("signature rule in the router %v after the flood started", after.Round(time.Millisecond))
	}
	if _, _, err := d.Log.WaitEvent(mark, time.Second, "ban",
		func(en lab.Entry) bool { return en.Str("scope") == "signature" }); err != nil {
		t.Fatalf("no signature rule in the log: %v", err)
	}
	routes, err := r.rib()
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 {
		t.Errorf("router holds %+v, want the signature rule alone (no source rules beside it)", routes)
	}
	an, _, err := d.Log.WaitEvent(mark, time.Second, "upstream_announce", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rule := an.Str("rule"); !strings.HasPrefix(rule, "signature udp sport 53") {
		t.Errorf("upstream_announce of rule %q, want the signature rule", rule)
	}
}

// alternate interleaves two floods frame by frame: two attackers at once
// from one sender.
type alternate [2]lab.Frames

func (a alternate) Frame(i uint64) []byte { return a[i%2].Frame(i / 2) }

// TestE2EUpstreamCap: with max_announcements 1, two attackers flooding at
// once get one rule announced; the other is refused, logged and counted
// (status and floodguard_upstream_refusals_total), while both are dropped
// locally.
func TestE2EUpstreamCap(t *testing.T) {
	e := newE2E(t, cfg{})
	r, d := e.startPeered(withMetrics(e.upstreamConfig(cfg{TTL: "30s"}, false)) + "  max_announcements: 1\n")
	mark := d.Log.Len()

	st := e.flood(alternate{e.udp(attacker4), e.udp(other4)}, 2*floodRate, 2*time.Second)
	for _, src := range []netip.Addr{attacker4, other4} {
		waitBan(t, d, mark, src, st.Start)
	}
	refused, _, err := d.Log.WaitEvent(mark, 2*tick, "upstream_refused", nil)
	if err != nil {
		t.Fatalf("no upstream_refused: %v", err)
	}
	if !strings.Contains(refused.Line, "max_announcements 1 reached") {
		t.Errorf("refusal %s, want max_announcements 1 reached", refused.Line)
	}
	// Two more ticks for a second rule to (wrongly) arrive.
	var routes []flowRoute
	for end := time.Now().Add(2 * tick); time.Now().Before(end); time.Sleep(ribPoll) {
		if routes, err = r.rib(); err != nil {
			t.Fatal(err)
		}
		if len(routes) > 1 {
			break
		}
	}
	_, n1 := discardNLRI(attacker4)
	_, n2 := discardNLRI(other4)
	if len(routes) != 1 || !slices.ContainsFunc(routes, func(fr flowRoute) bool { return fr.Discard && (fr.NLRI == n1 || fr.NLRI == n2) }) {
		t.Errorf("router holds %+v, want exactly one of the two attackers' rules", routes)
	}
	if s := e.status(); s.Upstream == nil || s.Upstream.Refusals < 1 || len(s.Upstream.Announced) != 1 {
		t.Errorf("status upstream %+v, want one announced and at least one refusal", s.Upstream)
	}
	_, fams, err := e.metricsScraper().get()
	if err != nil {
		t.Fatal(err)
	}
	if v := series(fams, "floodguard_upstream_refusals_total"); v < 1 {
		t.Errorf("floodguard_upstream_refusals_total = %v, want at least 1", v)
	}
	if v := series(fams, "floodguard_upstream_announced"); v != 1 {
		t.Errorf("floodguard_upstream_announced = %v, want 1", v)
	}
	if v := series(fams, "floodguard_upstream_session_up", "peer", router4); v != 1 {
		t.Errorf("floodguard_upstream_session_up{peer=%s} = %v, want 1", router4, v)
	}
}

// withMetrics adds daemon.metrics_listen to a test config.
func withMetrics(text string) string {
	return strings.Replace(text, "daemon:\n", "daemon:\n  metrics_listen: "+metricsAddr+"\n", 1)
}

// TestE2EUpstreamReloadMetrics: a daemon started without an upstream
// section serves no floodguard_upstream_* series; SIGHUP with one starts
// the speaker and its series appear and count (session up, an
// announcement); SIGHUP without it stops the speaker and the series go.
func TestE2EUpstreamReloadMetrics(t *testing.T) {
	e := newE2E(t, cfg{})
	r := e.startRouter()
	e.writeConfig(withMetrics(e.text(cfg{TTL: "30s"})))
	d := e.start()
	s := e.metricsScraper()
	_, fams := s.waitTicks(1)
	for name := range fams {
		if strings.HasPrefix(name, "floodguard_upstream_") {
			t.Errorf("%s served without an upstream section", name)
		}
	}

	e.writeConfig(withMetrics(e.upstreamConfig(cfg{TTL: "30s"}, false)))
	mark := d.Log.Len()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Log.WaitEvent(mark, 5*time.Second, "upstream_started", nil); err != nil {
		t.Fatalf("SIGHUP with an upstream section did not start the speaker: %v", err)
	}
	e.waitEstablished()
	_, fams = s.waitTicks(series(fams, "floodguard_ticks_total") + 1)
	if v := series(fams, "floodguard_upstream_session_up", "peer", router4); v != 1 {
		t.Errorf("after the reload floodguard_upstream_session_up{peer=%s} = %v, want 1", router4, v)
	}
	if v := series(fams, "floodguard_upstream_announcements_total"); v != 0 {
		t.Errorf("floodguard_upstream_announcements_total = %v before any flood, want 0", v)
	}

	e.waitWarm(d)
	family, nlri := discardNLRI(attacker4)
	st := e.flood(e.udp(attacker4), floodRate, 2*time.Second)
	r.waitRoute(family, nlri, st.Start.Add(2*tick+2*time.Second))
	_, fams = s.waitTicks(series(fams, "floodguard_ticks_total") + 1)
	if v := series(fams, "floodguard_upstream_announcements_total"); v != 1 {
		t.Errorf("floodguard_upstream_announcements_total = %v after one announced flood, want 1", v)
	}
	if v := series(fams, "floodguard_upstream_announced"); v != 1 {
		t.Errorf("floodguard_upstream_announced = %v, want 1", v)
	}

	e.writeConfig(withMetrics(e.text(cfg{TTL: "30s"})))
	mark = d.Log.Len()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Log.WaitEvent(mark, 5*time.Second, "upstream_stopped", nil); err != nil {
		t.Fatalf("SIGHUP without the upstream section did not stop the speaker: %v", err)
	}
	_, fams = s.waitTicks(series(fams, "floodguard_ticks_total") + 1)
	for name := range fams {
		if strings.HasPrefix(name, "floodguard_upstream_") {
			t.Errorf("%s still served after the upstream section was removed", name)
		}
	}
}
