package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/yamlconf"
)

func TestShippedConfigParses(t *testing.T) {
	data, err := os.ReadFile("../../deploy/floodguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatalf("deploy/floodguard.yaml: %v", err)
	}
	def := Default()
	if f.Upstream != nil {
		t.Errorf("the shipped config turns upstream BGP on: %+v", f.Upstream)
	}
	if f.Daemon != def.Daemon || f.Bans.TTL != def.Bans.TTL || f.Tick != def.Tick {
		t.Errorf("the shipped config says other than the defaults it documents:\n%+v\n%+v", f.Daemon, def.Daemon)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "tick: 1s\n"} {
		f, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		def := detector.DefaultConfig()
		if f.Tick != def.Tick || f.Source != def.Source || f.Bans.TTL != def.Bans.TTL {
			t.Fatalf("Parse(%q) changed defaults", doc)
		}
	}
}

func TestParseDetectorValues(t *testing.T) {
	f, err := Parse([]byte(`
tick: 500ms
half_life: 5m
source:
  floor_pps: 2000
prefixes:
  ipv4: [24, 16]
bans:
  ttl: 30s
  dry_run: true
  allowlist: [198.18.0.1, "2001:db8::/48", 198.18.7.9/24]
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Tick.D() != 500*time.Millisecond || f.HalfLife.D() != 5*time.Minute {
		t.Errorf("durations: tick %v half_life %v", f.Tick, f.HalfLife)
	}
	if f.Source.FloorPPS != 2000 || f.Source.K != detector.DefaultConfig().Source.K {
		t.Errorf("source: %+v", f.Source)
	}
	if !f.Bans.DryRun || f.Bans.TTL.D() != 30*time.Second {
		t.Errorf("bans: %+v", f.Bans)
	}
	want := []string{"198.18.0.1/32", "2001:db8::/48", "198.18.7.0/24"}
	for i, w := range want {
		if got := f.Bans.Allowlist[i].String(); got != w {
			t.Errorf("allowlist[%d] = %s, want %s", i, got, w)
		}
	}
}

// TestParseErrorsNameKeyAndLine: every section's errors name the dotted key
// (list elements by index) and the line, whichever package validates it.
func TestParseErrorsNameKeyAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown top key", "tick: 1s\nbogus: 3\n", []string{"line 2", "bogus"}},
		{"unknown nested key", "source:\n  k: 3\n  kk: 4\n", []string{"line 3", "kk"}},
		{"bad duration", "tick: soon\n", []string{"config line 1: tick: \"soon\" is not a duration like 1s or 2m"}},
		{"bad nested duration", "bans:\n  ttl: 1m\n  max_ttl: never\n", []string{"config line 3: bans.max_ttl: \"never\" is not a duration"}},
		{"tick too short", "\ntick: 10ms\n", []string{"line 2", "tick"}},
		{"ratio below 1", "aggregate:\n  ratio: 0.5\n", []string{"line 2", "aggregate.ratio"}},
		{"negative floor", "prefix:\n\n  floor_pps: -1\n", []string{"line 3", "prefix.floor_pps"}},
		{"bad cidr", "bans:\n  allowlist:\n    - 198.18.0.0/15\n    - 300.1.1.1/8\n", []string{"line 4", "bans.allowlist[1]", "300.1.1.1/8"}},
		{"bad flow cidr", "bans:\n  allowlist: [198.18.0.1, bad]\n", []string{`config line 2: bans.allowlist: parse "bad": not an address or CIDR`}},
		{"wrong type", "source:\n  k: [1]\n", []string{"line 2"}},
		{"max_ttl under ttl", "bans:\n  ttl: 10m\n  max_ttl: 1m\n", []string{"line 3", "bans.max_ttl"}},
		{"bad prefix length", "prefixes:\n  ipv6: [200]\n", []string{"line 2", "prefixes.ipv6"}},
		{"daemon unknown key", "daemon:\n  interfce: eth0\n", []string{"config line 2: daemon.interfce: unknown key"}},
		{"attach mode", "daemon:\n  attach_mode: turbo\n", []string{"config line 2: daemon.attach_mode"}},
		{"relative dir", "tick: 1s\ndaemon:\n  state_dir: relative/dir\n", []string{"config line 3: daemon.state_dir"}},
		{"daemon duration", "daemon:\n  snapshot_interval: 1ms\n", []string{"config line 2: daemon.snapshot_interval: 1ms is shorter than 1s"}},
		{"daemon bad duration", "daemon:\n  host_refresh: often\n", []string{"config line 2: daemon.host_refresh: \"often\" is not a duration"}},
		{"listen", "daemon:\n  metrics_listen: nope\n", []string{"config line 2: daemon.metrics_listen"}},
		{"pagerduty key", "paging:\n  sinks:\n    - {type: pagerduty}\n", []string{"line 3: paging.sinks.0.routing_key"}},
		{"sink type", "paging:\n  sinks:\n    - {type: exec, command: [x]}\n    - {type: smoke}\n", []string{"line 4: paging.sinks.1.type"}},
		{"sink names", "paging:\n  sinks:\n    - {type: exec, command: [x]}\n    - {type: exec, command: [y]}\n", []string{`paging.sinks.1.name: "exec" names two sinks`}},
		{"secret twice", "paging:\n  sinks:\n    - type: slack\n      webhook_url: {file: /x, env: Y}\n", []string{"paging.sinks.0.webhook_url: give file or env, not both"}},
		{"inline secret", "paging:\n  sinks:\n    - type: slack\n      webhook_url: https://hooks.example/secret\n", []string{"line 4"}},
		{"severity", "paging:\n  default_severity: loud\n", []string{"line 2: paging.default_severity"}},
		{"severity share", "paging:\n  severity:\n    - {severity: error, min_dropped_share: 2}\n", []string{"paging.severity.0.min_dropped_share"}},
		{"paging duration", "paging:\n  quiet_period: later\n", []string{"config line 2: paging.quiet_period: \"later\" is not a duration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestFieldErrorIsTyped: a detector validation error comes back as the
// loader's *FieldError, with the line the detector cannot know.
func TestFieldErrorIsTyped(t *testing.T) {
	_, err := Parse([]byte("source:\n  exit_fraction: 2\n"))
	var fe *yamlconf.FieldError
	if !errors.As(err, &fe) || fe.Key != "source.exit_fraction" || fe.Line != 2 {
		t.Fatalf("err = %v (%#v)", err, fe)
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := t.TempDir() + "/fg.yaml"
	if err := os.WriteFile(path, []byte("tick: 5x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": config line 1: tick:") {
		t.Fatalf("Load = %v", err)
	}
	if f, err := Load(""); err != nil || f.Daemon != Default().Daemon {
		t.Fatalf(`Load("") = %+v, %v`, f.Daemon, err)
	}
}

func TestLoadPathsIsLenient(t *testing.T) {
	path := t.TempDir() + "/fg.yaml"
	doc := "bogus: 1\ndaemon:\n  runtime_dir: /run/fg-test\n  pin_dir: /sys/fs/bpf/fg-test\n  attach_mode: turbo\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPaths(path)
	if err != nil || p.RuntimeDir != "/run/fg-test" || p.PinDir != "/sys/fs/bpf/fg-test" {
		t.Fatalf("LoadPaths = %+v, %v", p, err)
	}
}

func TestCheckListen(t *testing.T) {
	for addr, ok := range map[string]bool{"": true, "127.0.0.1:9797": true, "[::1]:9797": true, ":9797": true,
		"127.0.0.1": false, "127.0.0.1:0": false, "127.0.0.1:70000": false, "x:y": false} {
		if err := CheckListen(addr); (err == nil) != ok {
			t.Errorf("CheckListen(%q) = %v", addr, err)
		}
	}
}

// FuzzParse: the whole config file never panics, and what it accepts
// validates.
func FuzzParse(f *testing.F) {
	f.Add([]byte("tick: 1s\nsource:\n  k: 4\n"))
	f.Add([]byte("bans:\n  allowlist: [198.18.0.0/15]\n"))
	f.Add([]byte("prefixes: {ipv4: [24], ipv6: [64, 48]}\n"))
	f.Add([]byte("tick: [\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("bans: &b {ttl: 1m, max_ttl: *b}\n"))
	f.Add([]byte("daemon:\n  interface: eth0\n  metrics_listen: 127.0.0.1:9797\n"))
	f.Add([]byte("paging:\n  quiet_period: 2m\n  sinks:\n    - {name: pd, type: pagerduty, routing_key: {env: PD}}\n"))
	f.Add([]byte("paging:\n  severity:\n    - {severity: critical, min_peak_pps: 1e5, bans_not_holding: true}\n"))
	f.Add([]byte("paging:\n  sinks:\n    - {type: exec, command: [/bin/true]}\n    - {type: exec, command: [/bin/true]}\n"))
	f.Add([]byte("paging:\n  sinks:\n    - type: webhook\n      webhook_url: {file: /x}\n      hmac_key: {file: /y}\n      labels: {a: b}\n"))
	f.Add([]byte("paging: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err == nil {
			if verr := file.Validate(); verr != nil {
				t.Fatalf("Parse accepted a file Validate rejects: %v", verr)
			}
		}
	})
}
