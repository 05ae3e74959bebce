package daemon

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestShippedConfigParses(t *testing.T) {
	data, err := os.ReadFile("../deploy/floodguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile(data)
	if err != nil {
		t.Fatalf("deploy/floodguard.yaml: %v", err)
	}
	def := DefaultFile()
	if f.Daemon != def.Daemon || f.Bans.TTL != def.Bans.TTL || f.Tick != def.Tick {
		t.Errorf("the shipped config says other than the defaults it documents:\n%+v\n%+v", f.Daemon, def.Daemon)
	}
}

func TestParseFileErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"daemon:\n  interfce: eth0\n", "config line 2: daemon.interfce: unknown key"},
		{"daemon:\n  attach_mode: turbo\n", "config line 2: daemon.attach_mode"},
		{"tick: 1s\ndaemon:\n  state_dir: relative/dir\n", "config line 3: daemon.state_dir"},
		{"source:\n  k: -1\n", "config line 2: source.k"},
	} {
		_, err := ParseFile([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFile(%q) = %v, want %q", tc.doc, err, tc.want)
		}
	}
}

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
	if err != nil {
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

// TestPagingConfigErrors: the paging section is checked like the rest,
// errors naming the key (list elements by index) and the line.
func TestPagingConfigErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"paging:\n  sinks:\n    - {type: pagerduty}\n", "line 3: paging.sinks.0.routing_key"},
		{"paging:\n  sinks:\n    - {type: exec, command: [x]}\n    - {type: smoke}\n", "line 4: paging.sinks.1.type"},
		{"paging:\n  sinks:\n    - {type: exec, command: [x]}\n    - {type: exec, command: [y]}\n", `paging.sinks.1.name: "exec" names two sinks`},
		{"paging:\n  sinks:\n    - type: slack\n      webhook_url: {file: /x, env: Y}\n", "paging.sinks.0.webhook_url: give file or env, not both"},
		{"paging:\n  sinks:\n    - type: slack\n      webhook_url: https://hooks.example/secret\n", "line 4"},
		{"paging:\n  default_severity: loud\n", "line 2: paging.default_severity"},
		{"paging:\n  severity:\n    - {severity: error, min_dropped_share: 2}\n", "paging.severity.0.min_dropped_share"},
	} {
		_, err := ParseFile([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.doc, err, tc.want)
		}
	}
}

// FuzzParseFile: the whole config file, paging section included, never
// panics, and what it accepts validates.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte("daemon:\n  interface: eth0\n  metrics_listen: 127.0.0.1:9797\n"))
	f.Add([]byte("paging:\n  quiet_period: 2m\n  sinks:\n    - {name: pd, type: pagerduty, routing_key: {env: PD}}\n"))
	f.Add([]byte("paging:\n  severity:\n    - {severity: critical, min_peak_pps: 1e5, bans_not_holding: true}\n"))
	f.Add([]byte("paging:\n  sinks:\n    - {type: exec, command: [/bin/true]}\n    - {type: exec, command: [/bin/true]}\n"))
	f.Add([]byte("paging:\n  sinks:\n    - type: webhook\n      webhook_url: {file: /x}\n      hmac_key: {file: /y}\n      labels: {a: b}\n"))
	f.Add([]byte("paging: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile(data)
		if err == nil {
			if verr := file.Validate(); verr != nil {
				t.Fatalf("ParseFile accepted a file Validate rejects: %v", verr)
			}
		}
	})
}
