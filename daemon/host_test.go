package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/config"
)

func TestParseRoutes(t *testing.T) {
	route4 := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n" +
		"eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\n" +
		"eth0\t000012C6\t00000000\t0001\t0\t0\t0\t0000FFFF\n"
	gws, err := parseRoute4(strings.NewReader(route4))
	if err != nil || len(gws) != 1 || gws[0] != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("parseRoute4 = %v, %v", gws, err)
	}
	route6 := "00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n" +
		"20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n"
	gws, err = parseRoute6(strings.NewReader(route6))
	if err != nil || len(gws) != 1 || gws[0] != netip.MustParseAddr("2001:db8::1") {
		t.Fatalf("parseRoute6 = %v, %v", gws, err)
	}
	if _, err := parseRoute4(strings.NewReader("h\neth0\t00000000\tZZ\n")); err == nil {
		t.Fatal("bad gateway hex accepted")
	}
}

func TestHostPrefixesIncludeLoopback(t *testing.T) {
	ps, err := hostPrefixes()
	if ps == nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range ps {
		found = found || p == netip.MustParsePrefix("127.0.0.0/8")
	}
	if !found {
		t.Fatalf("loopback missing from %v", ps)
	}
}

// TestHostPrefixesReportRouteProblems: a routes file that is missing or
// unreadable is reported, not skipped in silence, and does not cost the
// addresses found.
func TestHostPrefixesReportRouteProblems(t *testing.T) {
	saved := routeFiles
	t.Cleanup(func() { routeFiles = saved })
	missing := filepath.Join(t.TempDir(), "route")
	dir := t.TempDir() // reading a directory fails
	routeFiles = append(routeFiles[:0:0],
		struct {
			path  string
			parse func(io.Reader) ([]netip.Addr, error)
		}{missing, parseRoute4},
		struct {
			path  string
			parse func(io.Reader) ([]netip.Addr, error)
		}{dir, parseRoute6})
	ps, err := hostPrefixes()
	if !slices.Contains(ps, netip.MustParsePrefix("127.0.0.0/8")) {
		t.Fatalf("prefixes %v, want the addresses found despite the routes files", ps)
	}
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v, want both %s and %s named", err, missing, dir)
	}
}

type nopRules struct{}

func (nopRules) Ban(detector.Rule) error  { return nil }
func (nopRules) Unban(netip.Prefix) error { return nil }

// TestRefreshHostLogsFailures: a failed host discovery is logged once per
// cause; the first one, which leaves the host unprotected, at error level;
// discovery goes on every host_refresh and says when it works again.
func TestRefreshHostLogsFailures(t *testing.T) {
	var buf bytes.Buffer
	eng, err := detector.New(detector.DefaultConfig(), nopRules{})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{file: config.Default(), log: zerolog.New(&buf), eng: eng}
	type line struct{ Level, Event, Error, Message string }
	lines := func() []line {
		var out []line
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if l == "" {
				continue
			}
			var x line
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			out = append(out, x)
		}
		buf.Reset()
		return out
	}
	now := time.Now()
	denied := errors.New("list host addresses: netlink: permission denied")
	d.discoverHost = func() ([]netip.Prefix, error) { return nil, denied }
	for i := range 3 {
		d.refreshHost(now.Add(time.Duration(i) * time.Minute))
	}
	got := lines()
	if len(got) != 1 || got[0].Level != "error" || got[0].Event != "host_discovery_failed" || !strings.Contains(got[0].Error, "permission denied") {
		t.Fatalf("three failed discoveries logged %+v, want one error naming the cause", got)
	}

	// Partly working: the addresses, but a routes file is unreadable.
	lo := netip.MustParsePrefix("127.0.0.0/8")
	routes := errors.New("read /proc/net/route: input/output error")
	d.discoverHost = func() ([]netip.Prefix, error) { return []netip.Prefix{lo}, errors.Join(routes) }
	for i := range 3 {
		d.refreshHost(now.Add(time.Duration(3+i) * time.Minute))
	}
	got = lines()
	var warned, allowed int
	for _, l := range got {
		switch {
		case l.Level == "warn" && strings.Contains(l.Error, "input/output error"):
			warned++
		case l.Event == "host_allowlist":
			allowed++
		default:
			t.Errorf("unexpected log line %+v", l)
		}
	}
	if warned != 1 || allowed != 1 {
		t.Fatalf("partial discoveries logged %+v, want one warning and the allowlist once", got)
	}
	if !slices.Equal(d.host, []netip.Prefix{lo}) {
		t.Fatalf("host prefixes %v, want %v", d.host, lo)
	}

	// Working again: said once; a failure after that is news again.
	d.discoverHost = func() ([]netip.Prefix, error) { return []netip.Prefix{lo}, nil }
	d.refreshHost(now.Add(10 * time.Minute))
	if got := lines(); len(got) != 1 || got[0].Event != "host_discovery_recovered" {
		t.Fatalf("recovered discovery logged %+v", got)
	}
	d.discoverHost = func() ([]netip.Prefix, error) { return nil, denied }
	d.refreshHost(now.Add(11 * time.Minute))
	if got := lines(); len(got) != 1 || got[0].Level != "warn" || !strings.Contains(got[0].Error, "permission denied") {
		t.Fatalf("failure after a recovery logged %+v, want one warning (the last addresses stay)", got)
	}
}
