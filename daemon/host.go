package daemon

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// hostPrefixes returns what must never be banned because it is this host or
// its way out: every local address, the default gateways (IPv4 and IPv6) and
// loopback.
func hostPrefixes() ([]netip.Prefix, error) {
	out := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list host addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				ip = ip.Unmap()
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
	}
	for _, f := range []struct {
		path  string
		parse func(io.Reader) ([]netip.Addr, error)
	}{{"/proc/net/route", parseRoute4}, {"/proc/net/ipv6_route", parseRoute6}} {
		fh, err := os.Open(f.path)
		if err != nil {
			continue // no such family here
		}
		gws, err := f.parse(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.path, err)
		}
		for _, g := range gws {
			out = append(out, netip.PrefixFrom(g, g.BitLen()))
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out), nil
}

// parseRoute4 reads default-route gateways from /proc/net/route, whose
// addresses are little-endian hex.
func parseRoute4(r io.Reader) ([]netip.Addr, error) {
	var gws []netip.Addr
	sc := bufio.NewScanner(r)
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 3 || f[1] != "00000000" {
			continue
		}
		b, err := hex.DecodeString(f[2])
		if err != nil || len(b) != 4 {
			return nil, fmt.Errorf("gateway %q: not 8 hex digits", f[2])
		}
		g := netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]})
		if !g.IsUnspecified() {
			gws = append(gws, g)
		}
	}
	return gws, sc.Err()
}

// parseRoute6 reads default-route next hops from /proc/net/ipv6_route
// (destination ::/0), whose addresses are big-endian hex.
func parseRoute6(r io.Reader) ([]netip.Addr, error) {
	var gws []netip.Addr
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != strings.Repeat("0", 32) || f[1] != "00" {
			continue
		}
		b, err := hex.DecodeString(f[4])
		if err != nil || len(b) != 16 {
			return nil, fmt.Errorf("next hop %q: not 32 hex digits", f[4])
		}
		g := netip.AddrFrom16([16]byte(b))
		if !g.IsUnspecified() {
			gws = append(gws, g)
		}
	}
	return gws, sc.Err()
}
