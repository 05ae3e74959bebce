// Tests of the spoofed flood's pure parts: trafgen's config and the
// distinct-source estimate. No root, no trafgen.

package main

import (
	"math"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// token is one element of a trafgen byte list: a literal byte, drnd(N)
// random bytes, or a two-byte checksum function.
var token = regexp.MustCompile(`0x[0-9a-f]{2}|drnd\((\d+)\)|(csum\w+)\(\d+, \d+\)`)

// layout lists where each non-literal element of cfg starts in the frame,
// and the frame's length.
func layout(t *testing.T, cfg string) (map[string]int, int) {
	t.Helper()
	body := cfg[strings.Index(cfg, "{")+1 : strings.LastIndex(cfg, "}")]
	at, off := map[string]int{}, 0
	for _, m := range token.FindAllStringSubmatch(body, -1) {
		switch {
		case m[1] != "":
			n, _ := strconv.Atoi(m[1])
			at["drnd"+m[1]+"@"+strconv.Itoa(off)] = off
			off += n
		case m[2] != "":
			at[m[2]] = off
			off += 2
		default:
			off++
		}
	}
	return at, off
}

func TestTrafgenConfig(t *testing.T) {
	src := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dst := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	for _, c := range []struct {
		name   string
		to     netip.Addr
		length int
		// where the random source bytes and the checksums must sit
		want map[string]int
		// literal bytes the frame must hold
		has []string
	}{
		{"ipv6", server6, 14 + 40 + 20, map[string]int{
			"drnd12@26": 26, // source address bytes 4..15 (after 2001:0db8)
			"csumtcp6":  14 + 40 + 16,
		}, []string{"0x86, 0xdd", "0x20, 0x01, 0x0d, 0xb8, drnd(12)", "csumtcp6(14, 54)"}},
		// Padded to Ethernet's 60-byte minimum.
		{"ipv4", serverAddr, 60, map[string]int{
			"drnd2@28": 28, // source address bytes 2..3 (after 198.19)
			"csumip":   14 + 10,
			"csumtcp":  14 + 20 + 16,
		}, []string{"0x08, 0x00", "0xc6, 0x13, drnd(2)", "0xc6, 0x12, 0x00, 0x01", "csumip(14, 33)", "csumtcp(14, 34)"}},
	} {
		cfg := trafgenConfig(src, dst, c.to)
		at, n := layout(t, cfg)
		if n != c.length {
			t.Errorf("%s: frame of %d bytes, want %d:\n%s", c.name, n, c.length, cfg)
		}
		for k, off := range c.want {
			if got, ok := at[k]; !ok || got != off {
				t.Errorf("%s: %s at %d (present %v), want %d:\n%s", c.name, k, got, ok, off, cfg)
			}
		}
		for _, s := range append(c.has, "0x02, 0x00, 0x00, 0x00, 0x00, 0x02,\n  0x02, 0x00, 0x00, 0x00, 0x00, 0x01") {
			if !strings.Contains(cfg, s) {
				t.Errorf("%s: config lacks %q:\n%s", c.name, s, cfg)
			}
		}
	}
}

func TestDistinctSources(t *testing.T) {
	for _, c := range []struct {
		n         uint64
		bits      int
		want, tol float64
	}{
		// IPv6: collisions are negligible, every frame a new source.
		{1_500_000, 96, 1_500_000, 1e-6},
		{0, 96, 0, 0},
		// IPv4 /16: 65536 × (1 − e^(−1)) for as many frames as addresses,
		// and saturation long before a million frames.
		{65536, 16, 65536 * (1 - math.Exp(-1)), 1e-6},
		{1_000_000, 16, 65536, 0.01},
	} {
		if got := distinctSources(c.n, c.bits); math.Abs(got-c.want) > c.tol*math.Max(1, c.want) {
			t.Errorf("distinctSources(%d, %d) = %v, want %v", c.n, c.bits, got, c.want)
		}
	}
}
