package synth

import (
	"net/netip"
	"testing"
)

func TestLabelHelpers(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return sortAddrs(out)
	}
	l := Labels{
		Victims:       addrs("198.18.0.1", "2001:db8::1"),
		BenignSources: addrs("198.18.16.7", "198.18.17.1", "198.18.250.1", "2001:db8:1234:5678::9"),
		Attacks: []Attack{
			{Kind: KindReflection, Sources: addrs("198.19.40.1", "198.19.41.2"), Prefixes: []netip.Prefix{
				netip.MustParsePrefix("198.19.40.0/24"), netip.MustParsePrefix("198.19.41.0/24"),
			}},
			{Kind: KindSpoofed, Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}},
			{Kind: KindIPv6Rotation, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:bad:1::/64")}},
		},
	}
	tests := []struct {
		addr             string
		benign, attacker bool
	}{
		{"198.18.16.7", true, false},                  // benign inside the spoofed range
		{"::ffff:198.18.16.7", true, false},           // IPv4-mapped, as the detector stores it
		{"198.18.16.8", false, true},                  // a forged source next to it
		{"198.19.41.2", false, true},                  // a listed reflector
		{"2001:db8:bad:1:dead:beef:0:1", false, true}, // a rotated address
		{"2001:db8:1234:5678::9", true, false},
		{"2001:db8:1234:5678::a", false, false},
		{"203.0.113.1", false, false},
		{"198.18.0.1", false, false}, // the victim, inside the spoofed range
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := l.IsBenign(a); got != tt.benign {
			t.Errorf("IsBenign(%v) = %v, want %v", a, got, tt.benign)
		}
		if got := l.IsAttacker(a); got != tt.attacker {
			t.Errorf("IsAttacker(%v) = %v, want %v", a, got, tt.attacker)
		}
	}

	overlaps := []struct {
		prefix string
		want   bool
	}{
		{"198.18.0.0/15", true},
		{"198.18.16.0/24", true},
		{"198.18.16.7/32", true},
		{"198.18.16.8/32", false},
		{"198.18.18.0/23", false},
		{"198.19.0.0/16", false},
		{"::ffff:198.18.250.0/120", true}, // IPv4-mapped /24
		{"::ffff:198.18.251.0/120", false},
		{"2001:db8:1234::/48", true},
		{"2001:db8:bad:1::/64", false},
		{"0.0.0.0/0", true},
		{"::/0", true},
	}
	for _, tt := range overlaps {
		p := netip.MustParsePrefix(tt.prefix)
		if got := l.BenignOverlaps(p); got != tt.want {
			t.Errorf("BenignOverlaps(%v) = %v, want %v", p, got, tt.want)
		}
	}
}
