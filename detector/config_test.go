package detector

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseConfigDefaults(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "tick: 1s\n"} {
		cfg, err := ParseConfig([]byte(doc))
		if err != nil {
			t.Fatalf("ParseConfig(%q): %v", doc, err)
		}
		def := DefaultConfig()
		if cfg.Tick != def.Tick || cfg.Source != def.Source || cfg.Bans.TTL != def.Bans.TTL {
			t.Fatalf("ParseConfig(%q) changed defaults", doc)
		}
	}
}

func TestParseConfigValues(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
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
	if cfg.Tick.D() != 500*time.Millisecond || cfg.HalfLife.D() != 5*time.Minute {
		t.Errorf("durations: tick %v half_life %v", cfg.Tick, cfg.HalfLife)
	}
	if cfg.Source.FloorPPS != 2000 || cfg.Source.K != DefaultConfig().Source.K {
		t.Errorf("source: %+v", cfg.Source)
	}
	if !cfg.Bans.DryRun || cfg.Bans.TTL.D() != 30*time.Second {
		t.Errorf("bans: %+v", cfg.Bans)
	}
	want := []string{"198.18.0.1/32", "2001:db8::/48", "198.18.7.0/24"}
	for i, w := range want {
		if got := cfg.Bans.Allowlist[i].String(); got != w {
			t.Errorf("allowlist[%d] = %s, want %s", i, got, w)
		}
	}
}

func TestParseConfigErrorsNameKeyAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown top key", "tick: 1s\nbogus: 3\n", []string{"line 2", "bogus"}},
		{"unknown nested key", "source:\n  k: 3\n  kk: 4\n", []string{"line 3", "kk"}},
		{"bad duration", "tick: soon\n", []string{"line 1", "soon"}},
		{"tick too short", "\ntick: 10ms\n", []string{"line 2", "tick"}},
		{"ratio below 1", "aggregate:\n  ratio: 0.5\n", []string{"line 2", "aggregate.ratio"}},
		{"negative floor", "prefix:\n\n  floor_pps: -1\n", []string{"line 3", "prefix.floor_pps"}},
		{"bad cidr", "bans:\n  allowlist:\n    - 198.18.0.0/15\n    - 300.1.1.1/8\n", []string{"line 4", "bans.allowlist[1]", "300.1.1.1/8"}},
		{"wrong type", "source:\n  k: [1]\n", []string{"line 2"}},
		{"max_ttl under ttl", "bans:\n  ttl: 10m\n  max_ttl: 1m\n", []string{"line 3", "bans.max_ttl"}},
		{"bad prefix length", "prefixes:\n  ipv6: [200]\n", []string{"line 2", "prefixes.ipv6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.doc))
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

func TestFieldErrorIsTyped(t *testing.T) {
	_, err := ParseConfig([]byte("source:\n  exit_fraction: 2\n"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Key != "source.exit_fraction" || fe.Line != 2 {
		t.Fatalf("err = %v (%#v)", err, fe)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("tick: 1s\nsource:\n  k: 4\n"))
	f.Add([]byte("bans:\n  allowlist: [198.18.0.0/15]\n"))
	f.Add([]byte("prefixes: {ipv4: [24], ipv6: [64, 48]}\n"))
	f.Add([]byte("tick: [\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("ParseConfig accepted a config Validate rejects: %v", verr)
			}
		}
	})
}
