package demo

// The upstream part of the demo (`floodguard demo --upstream`, `make
// demo-upstream`): a fourth host on the bridge runs GoBGP's daemon as the
// provider's router, floodguard peers with it, and the demo reads the
// router's FlowSpec table with its own CLI to show the rule arriving
// during the flood and leaving after it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/internal/ctxtime"
	"github.com/floodguard/floodguard/internal/lab"
)

const (
	routerAS = 64500
	localAS  = 64512
	// routerAPI is gobgpd's gRPC API, on the router namespace's loopback.
	routerAPI = "127.0.0.1:50051"
	// escalatePPS is the demo's escalation threshold: well under what
	// hping3 sends (10-30k pps), well over the benign client.
	escalatePPS = 2000
	// ribPoll is how often the router's table is read.
	ribPoll = 250 * time.Millisecond
)

// demoRouter is the router's address on the demo's bridge.
var demoRouter = netip.MustParseAddr("198.18.0.254")

// upstreamHosts adds the router to the demo's hosts.
func upstreamHosts() []lab.BridgedHost {
	return append(lab.DemoHosts(), lab.BridgedHost{Name: "router", Addr: demoRouter})
}

// upstreamConfig is the config's upstream section: peer with the router,
// announce rules whose traffic reaches escalatePPS.
func upstreamConfig() string {
	return fmt.Sprintf(`upstream:
  bgp:
    router_id: %s
    local_as: %d
    peers:
      - {address: %s, as: %d, hold_time: 3s}
  escalate_pps: %d
`, lab.DemoServer, localAS, demoRouter, routerAS, escalatePPS)
}

// checkUpstreamTools fails early when gobgpd or its CLI is missing.
func checkUpstreamTools() error {
	for _, prog := range []string{"gobgpd", "gobgp"} {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("%s is needed for the router (`make demo-upstream` installs Debian's gobgpd): %w", prog, err)
		}
	}
	return nil
}

// startRouter runs gobgpd in the router namespace with a passive session
// for the server and waits (at most 10 s) for its API.
func (d *demo) startRouter(ctx context.Context) error {
	conf := lab.GoBGPConfig(routerAS, demoRouter, lab.DemoServer, localAS, "ipv4-flowspec")
	path := filepath.Join(d.lab.Dir(), "gobgpd.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("write the router config: %w", err)
	}
	p, err := d.router.Start("gobgpd", "-f", path, "--api-hosts", routerAPI, "--pprof-disable", "-l", "warn")
	if err != nil {
		return err
	}
	d.gobgpd = p
	for end := time.Now().Add(10 * time.Second); ; {
		_, err := d.routerRIB(ctx)
		if err == nil {
			break
		}
		if time.Now().After(end) || p.Exited() {
			return fmt.Errorf("the router (gobgpd) does not answer: %w", err)
		}
		if err := ctxtime.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	d.say("router %s: gobgpd (AS %d), accepting floodguard's BGP session (FlowSpec)", demoRouter, routerAS)
	return nil
}

// routerRIB reads the router's FlowSpec table with `gobgp global rib -a
// ipv4-flowspec -j`, as its operator would, and returns its rules' names.
func (d *demo) routerRIB(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	host, port, _ := strings.Cut(routerAPI, ":")
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", d.router.FullName(),
		"gobgp", "-u", host, "-p", port, "global", "rib", "-a", "ipv4-flowspec", "-j")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("gobgp global rib: %w", err)
	}
	if s := strings.TrimSpace(string(out)); s == "" || s == "null" {
		return nil, nil
	}
	var table map[string]json.RawMessage
	if err := json.Unmarshal(out, &table); err != nil {
		return nil, fmt.Errorf("gobgp global rib -j: %w", err)
	}
	var rules []string
	for nlri := range table {
		rules = append(rules, nlri)
	}
	slices.Sort(rules)
	return rules, nil
}

// waitSession waits (at most 20 s) until floodguard's session with the
// router is established, as `floodguard status` shows it.
func (d *demo) waitSession(ctx context.Context) error {
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		out, err := exec.CommandContext(ctx, d.self, "status", "-o", "json", "--config", d.config).Output()
		var s daemon.Status
		if err == nil && json.Unmarshal(out, &s) == nil && s.Upstream != nil {
			for _, p := range s.Upstream.Peers {
				if p.State == "established" {
					d.say("BGP session with the router established; rules of floods over %d pps will be announced to it", escalatePPS)
					return nil
				}
			}
		}
		if err := ctxtime.Sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return errors.New("floodguard's BGP session with the router did not come up within 20 s")
}

// routerChange is a rule appearing in the router's table or leaving it.
type routerChange struct {
	rule  string
	added bool
	at    time.Time
}

// watchRouter reads the router's table every ribPoll until ctx ends and
// sends each change.
func (d *demo) watchRouter(ctx context.Context) <-chan routerChange {
	c := make(chan routerChange)
	go func() {
		var last []string
		for {
			rules, err := d.routerRIB(ctx)
			if err == nil {
				now := time.Now()
				for _, r := range rules {
					if !slices.Contains(last, r) && !send(ctx, c, routerChange{r, true, now}) {
						return
					}
				}
				for _, r := range last {
					if !slices.Contains(rules, r) && !send(ctx, c, routerChange{r, false, now}) {
						return
					}
				}
				last = rules
			}
			if ctxtime.Sleep(ctx, ribPoll) != nil {
				return
			}
		}
	}()
	return c
}

func send(ctx context.Context, c chan<- routerChange, ch routerChange) bool {
	select {
	case c <- ch:
		return true
	case <-ctx.Done():
		return false
	}
}
