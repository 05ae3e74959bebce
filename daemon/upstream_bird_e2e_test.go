package daemon_test

// Upstream escalation against BIRD 2, the other router the issue names:
// a second, independent BGP implementation checks that floodguard's
// FlowSpec NLRI and traffic-rate action are what RFC 8955 says, not only
// what GoBGP (on both ends of the gobgpd tests) agrees with.

import (
	"bufio"
	"context"
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

// bird is BIRD 2 in the peer namespace, its control socket in the lab.
type bird struct {
	t    *testing.T
	ns   *lab.Netns
	sock string
	proc *lab.Process
}

// startBird runs `bird -f` in the peer namespace on router4 with a passive
// session for the victim that imports FlowSpec into tables flow4tab and
// flow6tab (no validation: there is no unicast route to validate
// against), and waits until birdc answers.
func (e *e2e) startBird() *bird {
	e.t.Helper()
	for _, prog := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(prog); err != nil {
			skipOrFail(e.t, "needs %s (Debian package bird2): %v", prog, err)
		}
	}
	if err := e.peer.AddAddr("va", router4+"/24"); err != nil {
		e.t.Fatal(err)
	}
	conf := fmt.Sprintf(`router id %s;
log stderr all;
protocol device {}
flow4 table flow4tab;
flow6 table flow6tab;
protocol bgp floodguard {
	local %s as %d;
	neighbor %s as %d;
	passive on;
	hold time 3;
	keepalive time 1;
	flow4 { table flow4tab; import all; export none; };
	flow6 { table flow6tab; import all; export none; };
}
`, router4, router4, routerAS, victim4, localAS)
	path := filepath.Join(e.dir, "bird.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
	b := &bird{t: e.t, ns: e.peer, sock: filepath.Join(e.dir, "bird.ctl")}
	p, err := e.peer.Start("bird", "-f", "-c", path, "-s", b.sock, "-P", filepath.Join(e.dir, "bird.pid"))
	if err != nil {
		e.t.Fatal(err)
	}
	b.proc = p
	e.t.Cleanup(func() {
		p.Kill()
		if e.t.Failed() {
			e.t.Logf("bird log:\n%s", p.Log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.show("protocols"); err == nil {
			return b
		} else if time.Now().After(deadline) || p.Exited() {
			e.t.Fatalf("bird does not answer: %v\n%s", err, p.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// show runs `birdc -s SOCK show WHAT...` (birdc needs no namespace: it
// speaks to the control socket).
func (b *bird) show(what ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", b.sock, "show"}, what...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("birdc show %s: %w: %s", strings.Join(what, " "), err, out)
	}
	return string(out), nil
}

// routes reads a FlowSpec table with `birdc show route table T all`.
func (b *bird) routes(table string) ([]flowRoute, error) {
	out, err := b.show("route", "table", table, "all")
	if err != nil {
		return nil, err
	}
	return parseBirdFlow(out), nil
}

// parseBirdFlow reads birdc's listing of a FlowSpec table: a route starts
// with its NLRI ("flow4 { dst 198.18.0.1/32; src 198.18.0.2/32; }  [...]"),
// its attributes follow indented; traffic-rate 0 is the generic extended
// community 0x80060000 with value 0.
func parseBirdFlow(out string) []flowRoute {
	var routes []flowRoute
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "flow4 {"), strings.HasPrefix(trimmed, "flow6 {"):
			nlri, _, _ := strings.Cut(trimmed, "}")
			routes = append(routes, flowRoute{NLRI: nlri + "}"})
		case len(routes) > 0 && strings.Contains(trimmed, "BGP.ext_community:"):
			routes[len(routes)-1].Discard = strings.Contains(trimmed, "(generic, 0x80060000, 0x0)")
		}
	}
	return routes
}

// TestParseBirdFlow pins the parser to birdc's format, as BIRD 2.0.12
// (Debian 12) printed it in TestE2EUpstreamBIRD; the second route, a
// rate limit, is made up from it.
func TestParseBirdFlow(t *testing.T) {
	out := `BIRD 2.0.12 ready.
Table flow4tab:
flow4 { dst 198.18.0.1/32; src 198.18.0.2/32; }  [floodguard 11:46:35.638 from 198.18.0.1] * (100) [AS64512i]
	Type: BGP univ
	BGP.origin: IGP
	BGP.as_path: 64512
	BGP.local_pref: 100
	BGP.ext_community: (generic, 0x80060000, 0x0)
flow4 { dst 198.18.0.1/32; proto 17; sport 53; }  [floodguard 11:46:36.001 from 198.18.0.1] * (100) [AS64512i]
	Type: BGP univ
	BGP.ext_community: (generic, 0x80060000, 0x447a0000)
`
	want := []flowRoute{
		{NLRI: "flow4 { dst 198.18.0.1/32; src 198.18.0.2/32; }", Discard: true},
		{NLRI: "flow4 { dst 198.18.0.1/32; proto 17; sport 53; }", Discard: false},
	}
	if got := parseBirdFlow(out); !slices.Equal(got, want) {
		t.Errorf("parseBirdFlow = %+v, want %+v", got, want)
	}
}

// birdNLRI is how birdc names the discard rule for src towards the victim
// of its family, and the table holding it.
func birdNLRI(src netip.Addr) (table, nlri string) {
	if src.Is6() {
		return "flow6tab", fmt.Sprintf("flow6 { dst %s/128; src %s/128; }", victim6, src)
	}
	return "flow4tab", fmt.Sprintf("flow4 { dst %s/32; src %s/32; }", victim4, src)
}

// TestE2EUpstreamBIRD: floodguard peers with BIRD 2; a flood from one
// source is in BIRD's flow4 table as a discard rule for that source and
// the protected address within two ticks of its start, and is withdrawn
// when the ban (3 s) ends; then the same for an IPv6 flood in flow6.
func TestE2EUpstreamBIRD(t *testing.T) {
	e := newE2E(t, cfg{})
	b := e.startBird()
	e.writeConfig(e.upstreamConfig(cfg{TTL: "3s"}, false))
	d := e.start()
	e.waitWarm(d)
	e.waitEstablished()
	if out, err := b.show("protocols", "floodguard"); err != nil || !strings.Contains(out, "Established") {
		t.Fatalf("BIRD's session with floodguard is not established: %v\n%s", err, out)
	}
	var lat []time.Duration
	for _, src := range []netip.Addr{attacker4, other4, attacker6} {
		table, nlri := birdNLRI(src)
		read := func() ([]flowRoute, error) { return b.routes(table) }
		lat = append(lat, e.upstreamRound(d, flowTable{read: read, nlri: nlri}, src))
	}
	slices.Sort(lat)
	t.Logf("flood start → discard rule in BIRD's table: %v (median %v)", lat, lat[len(lat)/2])
}
