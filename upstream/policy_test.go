package upstream

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/detector"
)

func testConfig() Config {
	c := DefaultConfig()
	c.BGP = BGP{RouterID: "198.18.0.1", LocalAS: 64512, Peers: []Peer{{Address: "198.18.0.254", AS: 64500}}}
	return c
}

func ban(p string, pps float64) detector.ActiveBan {
	return detector.ActiveBan{Rule: detector.Rule{Prefix: netip.MustParsePrefix(p)}, Scope: detector.ScopeSource, LastPPS: pps}
}

var host = []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:db8::1")}

func strs(as []Announcement) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func TestPolicyThresholdsAndWithdrawal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      func(*Config)
		ticks    [][]detector.ActiveBan
		wantAdds [][]string
		wantWdr  [][]string
	}{
		{
			name:     "under threshold: nothing",
			ticks:    [][]detector.ActiveBan{{ban("198.19.0.66/32", 4999)}},
			wantAdds: [][]string{nil},
			wantWdr:  [][]string{nil},
		},
		{
			name: "at threshold: announced with the protected address of its family, kept while the rule is, withdrawn when it ends",
			ticks: [][]detector.ActiveBan{
				{ban("198.19.0.66/32", 5000)},
				{ban("198.19.0.66/32", 0)}, // the upstream drop starves it: still announced
				nil,
			},
			wantAdds: [][]string{{"flowspec ip from 198.19.0.66/32 → 198.18.0.1 discard"}, nil, nil},
			wantWdr:  [][]string{nil, nil, {"flowspec ip from 198.19.0.66/32 → 198.18.0.1 discard"}},
		},
		{
			name:     "IPv6 source gets the IPv6 destination",
			ticks:    [][]detector.ActiveBan{{ban("2001:db8:66::/64", 9000)}},
			wantAdds: [][]string{{"flowspec ip from 2001:db8:66::/64 → 2001:db8::1 discard"}},
			wantWdr:  [][]string{nil},
		},
		{
			name:     "escalate_pps 0 never",
			cfg:      func(c *Config) { c.EscalatePPS = 0 },
			ticks:    [][]detector.ActiveBan{{ban("198.19.0.66/32", 1e9)}},
			wantAdds: [][]string{nil},
			wantWdr:  [][]string{nil},
		},
		{
			name:     "flowspec off: nothing",
			cfg:      func(c *Config) { c.FlowSpec = false },
			ticks:    [][]detector.ActiveBan{{ban("198.19.0.66/32", 1e9)}},
			wantAdds: [][]string{nil},
			wantWdr:  [][]string{nil},
		},
		{
			name: "cap: the third is refused, the first two kept",
			cfg:  func(c *Config) { c.MaxAnnouncements = 2 },
			ticks: [][]detector.ActiveBan{
				{ban("198.19.0.1/32", 6000), ban("198.19.0.2/32", 6000)},
				{ban("198.19.0.3/32", 6000), ban("198.19.0.1/32", 6000), ban("198.19.0.2/32", 6000)},
			},
			wantAdds: [][]string{{"flowspec ip from 198.19.0.1/32 → 198.18.0.1 discard", "flowspec ip from 198.19.0.2/32 → 198.18.0.1 discard"}, nil},
			wantWdr:  [][]string{nil, nil},
		},
		{
			name:     "allowlisted source refused",
			ticks:    [][]detector.ActiveBan{{ban("198.18.0.254/32", 9000), ban("198.19.0.0/24", 9000)}},
			wantAdds: [][]string{{"flowspec ip from 198.19.0.0/24 → 198.18.0.1 discard"}},
			wantWdr:  [][]string{nil},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			p := NewPolicy(cfg)
			for i, bans := range tc.ticks {
				d := p.Step(Input{Bans: bans, Protected: host, Never: []netip.Prefix{netip.MustParsePrefix("198.18.0.254/32")}})
				if got := strs(d.Add); strings.Join(got, "|") != strings.Join(tc.wantAdds[i], "|") {
					t.Errorf("tick %d adds %q, want %q", i, got, tc.wantAdds[i])
				}
				if got := strs(d.Withdraw); strings.Join(got, "|") != strings.Join(tc.wantWdr[i], "|") {
					t.Errorf("tick %d withdrawals %q, want %q", i, got, tc.wantWdr[i])
				}
			}
		})
	}
}

func TestPolicyRefusalsCountedOnce(t *testing.T) {
	cfg := testConfig()
	cfg.MaxAnnouncements = 1
	p := NewPolicy(cfg)
	never := []netip.Prefix{netip.MustParsePrefix("198.18.0.254/32")}
	in := Input{Bans: []detector.ActiveBan{ban("198.19.0.1/32", 6000), ban("198.19.0.2/32", 6000), ban("198.18.0.254/32", 6000)}, Protected: host, Never: never}
	d := p.Step(in)
	if len(d.Refused) != 2 || !strings.Contains(d.Refused[0].Why, "198.18.0.254/32") || !strings.Contains(d.Refused[1].Why, "max_announcements 1") {
		t.Fatalf("refusals %+v", d.Refused)
	}
	if d = p.Step(in); len(d.Refused) != 0 || p.Refusals != 2 {
		t.Fatalf("second tick refusals %+v, total %d; want none new, 2", d.Refused, p.Refusals)
	}
}

func TestPolicyDryRunAndManual(t *testing.T) {
	p := NewPolicy(testConfig())
	b := ban("198.19.0.66/32", 9000)
	b.DryRun = true
	m := ban("198.19.0.77/32", 9000)
	m.Manual = true
	d := p.Step(Input{Bans: []detector.ActiveBan{b, m}, Protected: host})
	if len(d.Add) != 1 || !d.Add[0].DryRun || d.Add[0].Match.Src != b.Prefix {
		t.Fatalf("adds %+v: want the dry-run ban alone, marked dry run", d.Add)
	}
}

func TestPolicySignatures(t *testing.T) {
	udp53 := detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}}
	withDst := udp53
	withDst.Dst = netip.MustParsePrefix("198.18.0.10/32")
	rl := detector.Match{Proto: 17, DstPort: detector.Range{Lo: 443, Hi: 443}, Length: detector.Range{Lo: 64, Hi: 127}, Dst: netip.MustParsePrefix("198.18.0.10/32")}
	tick := &detector.Tick{Length: time.Second}
	tick.Total.Packets[detector.ClassUDP], tick.Total.Bytes[detector.ClassUDP] = 1000, 512000
	for _, tc := range []struct {
		name      string
		sig       detector.ActiveSignature
		protected []netip.Addr
		want      []string
		refused   string
	}{
		{"no destination: one per protected address", detector.ActiveSignature{SignatureRule: detector.SignatureRule{Match: udp53}, LastPPS: 8000}, host,
			[]string{"flowspec udp sport 53 → 198.18.0.1 discard", "flowspec udp sport 53 → 2001:db8::1 discard"}, ""},
		{"no destination, none known: refused", detector.ActiveSignature{SignatureRule: detector.SignatureRule{Match: udp53}, LastPPS: 8000}, nil, nil, "no protected address"},
		{"its own destination", detector.ActiveSignature{SignatureRule: detector.SignatureRule{Match: withDst}, LastPPS: 8000}, host,
			[]string{"flowspec udp sport 53 → 198.18.0.10 discard"}, ""},
		{"rate limit: pps × the middle of its length range", detector.ActiveSignature{SignatureRule: detector.SignatureRule{Match: rl, RatePPS: 100}, LastPPS: 8000}, host,
			[]string{"flowspec udp dport 443 len 64-127 → 198.18.0.10 traffic-rate 9550 bytes/s (100 pps)"}, ""},
		{"under threshold", detector.ActiveSignature{SignatureRule: detector.SignatureRule{Match: withDst}, LastPPS: 10}, host, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewPolicy(testConfig()).Step(Input{Tick: tick, Signatures: []detector.ActiveSignature{tc.sig}, Protected: tc.protected})
			if got := strs(d.Add); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("adds %q, want %q", got, tc.want)
			}
			if tc.refused != "" && (len(d.Refused) != 1 || !strings.Contains(d.Refused[0].Why, tc.refused)) {
				t.Errorf("refusals %+v, want one saying %q", d.Refused, tc.refused)
			}
		})
	}
	// Rate limit from the tick's mean UDP size (512 bytes) without a length range.
	m := udp53
	m.Dst = withDst.Dst
	d := NewPolicy(testConfig()).Step(Input{Tick: tick, Signatures: []detector.ActiveSignature{{SignatureRule: detector.SignatureRule{Match: m, RatePPS: 10}, LastPPS: 6000}}})
	if len(d.Add) != 1 || d.Add[0].RateBytes != 5120 {
		t.Fatalf("adds %+v: want traffic-rate 5120 bytes/s", d.Add)
	}
}

func TestPolicyEscalateBPS(t *testing.T) {
	cfg := testConfig()
	cfg.EscalatePPS, cfg.EscalateBPS = 0, 1e6
	tick := &detector.Tick{Length: time.Second, Sources: []detector.Source{{Addr: detector.AddrFrom(netip.MustParseAddr("198.19.0.66"))}}}
	tick.Sources[0].Packets[detector.ClassUDP], tick.Sources[0].Bytes[detector.ClassUDP] = 100, 125000 // 1 Mbit/s
	d := NewPolicy(cfg).Step(Input{Tick: tick, Bans: []detector.ActiveBan{ban("198.19.0.66/32", 100)}, Protected: host})
	if len(d.Add) != 1 || !strings.Contains(d.Add[0].Reason, "bps") {
		t.Fatalf("adds %+v: want one escalated on bps", d.Add)
	}
}

func TestPolicyBlackhole(t *testing.T) {
	cfg := testConfig()
	cfg.Blackhole = Blackhole{Enabled: true, Community: "65535:666", PPS: 100000}
	p := NewPolicy(cfg)
	tick := &detector.Tick{Length: time.Second}
	tick.Total.Packets[detector.ClassUDP] = 200000
	d := p.Step(Input{Tick: tick, Attacking: true, Protected: host[:1]})
	if got := strs(d.Add); len(got) != 1 || got[0] != "rtbh 198.18.0.1/32" {
		t.Fatalf("adds %q", got)
	}
	tick.Total.Packets[detector.ClassUDP] = 0 // dropped upstream: held while the attack lasts
	if d = p.Step(Input{Tick: tick, Attacking: true, Protected: host[:1]}); !d.Empty() {
		t.Fatalf("diff %+v while the attack lasts", d)
	}
	if d = p.Step(Input{Tick: tick, Protected: host[:1]}); len(d.Withdraw) != 1 {
		t.Fatalf("diff %+v after the attack: want the blackhole withdrawn", d)
	}
}
