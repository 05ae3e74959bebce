package config

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestEveryKeyDocumented: each key of File has a comment in KeyDocs, and
// KeyDocs names no key that does not exist.
func TestEveryKeyDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keys() {
		seen[k.Path] = true
		if strings.TrimSpace(KeyDocs[k.Path]) == "" {
			t.Errorf("config key %s has no comment in KeyDocs (internal/config/keydocs.go)", k.Path)
		}
	}
	for k := range KeyDocs {
		if !seen[strings.TrimSuffix(k, "[]")] {
			t.Errorf("KeyDocs documents %s, which is not a config key", k)
		}
	}
}

// TestDefaultsParse: the defaults document parses back to Default().
func TestDefaultsParse(t *testing.T) {
	f, err := Parse(DefaultsYAML())
	if err != nil {
		t.Fatalf("%v\n%s", err, DefaultsYAML())
	}
	got, _ := yaml.Marshal(f)
	want, _ := yaml.Marshal(Default())
	if !bytes.Equal(got, want) {
		t.Errorf("defaults document parses to\n%s\nwant\n%s", got, want)
	}
	for _, want := range []string{"\ntick: 1s\n", "\n  pin_dir: /sys/fs/bpf/floodguard\n", "\n  sinks: []\n", "#   type: pagerduty"} {
		if !bytes.Contains(DefaultsYAML(), []byte(want)) {
			t.Errorf("defaults document lacks %q", want)
		}
	}
}

// TestDeployConfigFresh: deploy/floodguard.yaml is what the generator
// prints (regenerate with make config-defaults).
func TestDeployConfigFresh(t *testing.T) {
	got, err := os.ReadFile("../../deploy/floodguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, DefaultsYAML()) {
		t.Error("deploy/floodguard.yaml is stale: run make config-defaults and commit it")
	}
}
