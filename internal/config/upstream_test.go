package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/yamlconf"
)

const upstreamDoc = `tick: 1s
upstream:
  bgp:
    router_id: 198.18.0.1
    local_as: 64512
    peers:
      - {address: 198.18.0.254, as: 64500}
      - {address: "2001:db8::fe", as: 64501, port: 1179, password: {file: /etc/floodguard/bgp.key}, hold_time: 30s}
  escalate_pps: 5000
  escalate_bps: 0
  flowspec: true
  max_announcements: 100
  blackhole: {enabled: false, community: "65535:666", pps: 0, bps: 0}
`

func TestUpstreamAbsentIsNil(t *testing.T) {
	for _, doc := range []string{"", "tick: 1s\n", "upstream:\n"} {
		f, err := Parse([]byte(doc))
		if err != nil || f.Upstream != nil {
			t.Fatalf("Parse(%q): upstream %+v, err %v; want nil, nil", doc, f.Upstream, err)
		}
	}
}

func TestUpstreamParses(t *testing.T) {
	f, err := Parse([]byte(upstreamDoc))
	if err != nil {
		t.Fatal(err)
	}
	u := f.Upstream
	if u == nil || u.BGP.LocalAS != 64512 || len(u.BGP.Peers) != 2 || u.BGP.Peers[1].Port != 1179 ||
		u.BGP.Peers[1].HoldTime.D() != 30*time.Second || u.BGP.Peers[1].Password.File != "/etc/floodguard/bgp.key" ||
		u.EscalatePPS != 5000 || !u.FlowSpec || u.MaxAnnouncements != 100 || u.Blackhole.Community != "65535:666" {
		t.Fatalf("parsed %+v", u)
	}
	// Defaults fill what a present section leaves out.
	f, err = Parse([]byte("upstream:\n  bgp: {router_id: 198.18.0.1, local_as: 1, peers: [{address: 198.18.0.254, as: 2}]}\n"))
	if err != nil || f.Upstream.EscalatePPS != 5000 || f.Upstream.MaxAnnouncements != 100 || !f.Upstream.FlowSpec {
		t.Fatalf("defaults: %+v, %v", f.Upstream, err)
	}
}

func TestUpstreamErrorsNameKeyAndLine(t *testing.T) {
	for _, tc := range []struct{ old, new, key string }{
		{"router_id: 198.18.0.1", "router_id: bogus", "upstream.bgp.router_id"},
		{"local_as: 64512", "local_as: 0", "upstream.bgp.local_as"},
		{"local_as: 64512", "local_as: -1", "upstream.bgp.local_as"},
		{"{address: 198.18.0.254, as: 64500}", "{address: 198.18.0.999, as: 64500}", "upstream.bgp.peers.0.address"},
		{"{address: 198.18.0.254, as: 64500}", "{address: 198.18.0.254, as: 0}", "upstream.bgp.peers.0.as"},
		{"hold_time: 30s", "hold_time: 1s", "upstream.bgp.peers.1.hold_time"},
		// A flow mapping on one line is named by its line and first key.
		{"port: 1179", "port: 70000", "upstream.bgp.peers[1]"},
		{"escalate_pps: 5000", "escalate_pps: -1", "upstream.escalate_pps"},
		{"max_announcements: 100", "max_announcements: -5", "upstream.max_announcements"},
		{`community: "65535:666"`, `community: "blackhole"`, "upstream.blackhole.community"},
		{"flowspec: true", "flowspec: true\n  bogus: 1", "upstream.bogus"},
	} {
		doc := strings.Replace(upstreamDoc, tc.old, tc.new, 1)
		_, err := Parse([]byte(doc))
		var fe *yamlconf.FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Key, tc.key) || fe.Line == 0 {
			t.Errorf("%s: got %v (%#v), want a FieldError for %s with its line", tc.new, err, fe, tc.key)
		}
	}
}
