package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayUpstream: `replay --upstream` prints the announcement of the
// single source's ban once its rate reaches escalate_pps, and the
// reflection's signature rule with its destination.
func TestReplayUpstream(t *testing.T) {
	base, err := os.ReadFile("../../testdata/synth/floodguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "f.yaml")
	doc := string(base) + "upstream:\n  bgp: {router_id: 198.18.0.1, local_as: 64512, peers: [{address: 198.18.0.254, as: 64500}]}\n  escalate_pps: 1000\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	for capture, want := range map[string]string{
		"single-source":  "UPSTREAM announce flowspec ip from 198.19.1.1/32 discard   source ban 198.19.1.1/32 dropped locally, escalated at",
		"udp-reflection": "UPSTREAM announce flowspec udp sport 53 → 198.18.0.1 discard   signature udp sport 53 → 198.18.0.1 in force locally",
	} {
		var stdout, stderr bytes.Buffer
		code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr},
			[]string{"replay", "--upstream", "-config", cfg, "../../testdata/synth/" + capture + ".pcap.gz"})
		if code != 0 || !strings.Contains(stdout.String(), want) {
			t.Errorf("%s: exit %d, output lacks %q:\n%s%s", capture, code, want, stdout.String(), stderr.String())
		}
	}
}
