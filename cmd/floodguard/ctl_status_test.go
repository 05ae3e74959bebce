package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/upstream"
)

// TestPrintStatusUpstream: the human status shows each peer's session and
// the announced routes; without an upstream section it shows neither.
func TestPrintStatusUpstream(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := daemon.Status{Interface: "eth0", Mode: "native", Started: now.Add(-time.Hour), Ticks: 3600}
	var b bytes.Buffer
	if err := printStatus(&b, &s, now); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "upstream") || strings.Contains(b.String(), "bgp peer") {
		t.Fatalf("status without upstream mentions it:\n%s", b.String())
	}

	s.Upstream = &upstream.Status{
		Peers: []upstream.PeerState{
			{Address: "198.18.0.254", AS: 64500, State: "established", Since: now.Add(-90 * time.Second)},
			{Address: "198.18.0.253", AS: 64501, State: "active"},
		},
		Announced: []upstream.StatusRule{
			{Route: "flowspec dst 198.18.0.1/32 src 198.18.0.2/32 discard", Reason: "ban of 198.18.0.2/32 at 20k pps"},
			{Route: "flowspec dst 198.18.0.1/32 src 198.18.0.4/32 discard", DryRun: true, Reason: "ban of 198.18.0.4/32"},
		},
		Counts: upstream.Counts{Announcements: 3, Withdrawals: 1, Refusals: 2},
	}
	b.Reset()
	if err := printStatus(&b, &s, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"upstream   3 announced, 1 withdrawn, 2 refused, 0 errors\n",
		"bgp peer   198.18.0.254 AS64500: established for 1m30s\n",
		"bgp peer   198.18.0.253 AS64501: active\n",
		"announced  flowspec dst 198.18.0.1/32 src 198.18.0.2/32 discard: ban of 198.18.0.2/32 at 20k pps\n",
		"announced  flowspec dst 198.18.0.1/32 src 198.18.0.4/32 discard (dry run: not sent): ban of 198.18.0.4/32\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	s.Upstream = &upstream.Status{}
	b.Reset()
	if err := printStatus(&b, &s, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bgp peer   none yet\n", "announced  none\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}
