package daemon

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// refreshHost rediscovers the host's addresses and allowlists them. Each
// problem is logged once per cause until discovery works again; a first
// discovery that finds nothing at all, which leaves the host's own
// addresses bannable, is an error. Discovery is retried every host_refresh
// either way; a partial result still replaces the last one.
func (d *daemon) refreshHost(now time.Time) {
	d.lastHost = now
	if !d.file.Daemon.AllowHost {
		return
	}
	discover := d.discoverHost
	if discover == nil {
		discover = hostPrefixes
	}
	host, err := discover()
	d.logHostProblems(err, host == nil)
	if host == nil {
		return
	}
	d.hostFound = true
	if !slices.Equal(host, d.host) {
		d.host = host
		d.eng.SetExtraAllowlist(host)
		d.log.Info().Str("event", "host_allowlist").Int("prefixes", len(host)).Msg("host addresses, gateways and loopback allowlisted")
	}
}

// logHostProblems logs each cause of a failed or partial host discovery
// the first time it is seen, and says when discovery works again.
func (d *daemon) logHostProblems(err error, failed bool) {
	if err == nil {
		if len(d.hostErrs) > 0 {
			d.log.Info().Str("event", "host_discovery_recovered").Msg("host addresses discovered again")
			clear(d.hostErrs)
		}
		return
	}
	causes := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		causes = j.Unwrap()
	}
	if d.hostErrs == nil {
		d.hostErrs = map[string]bool{}
	}
	for _, c := range causes {
		if d.hostErrs[c.Error()] {
			continue
		}
		d.hostErrs[c.Error()] = true
		switch {
		case failed && !d.hostFound:
			d.log.Error().Str("event", "host_discovery_failed").Err(c).Str("retry_every", d.file.Daemon.HostRefresh.D().String()).
				Msg("host addresses unknown: this host's own addresses, gateways and loopback are NOT allowlisted and could be banned; retrying")
		case failed:
			d.log.Warn().Str("event", "host_discovery_failed").Err(c).Msg("host addresses not rediscovered: keeping the last ones; retrying")
		default:
			d.log.Warn().Str("event", "host_discovery_partial").Err(c).Msg("host discovery incomplete")
		}
	}
}

// routeFiles are where the default gateways are read from.
var routeFiles = []struct {
	path  string
	parse func(io.Reader) ([]netip.Addr, error)
}{{"/proc/net/route", parseRoute4}, {"/proc/net/ipv6_route", parseRoute6}}

// hostPrefixes returns what must never be banned because it is this host or
// its way out: every local address, the default gateways (IPv4 and IPv6) and
// loopback. The error joins every problem met (a routes file missing or
// unreadable), each naming its cause, while the prefixes found are still
// returned; they are nil only when the local addresses cannot be listed.
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
	var problems []error
	for _, f := range routeFiles {
		gws, err := readRoutes(f.path, f.parse)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		for _, g := range gws {
			out = append(out, netip.PrefixFrom(g, g.BitLen()))
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out), errors.Join(problems...)
}

// readRoutes reads the default gateways from one routes file. A missing
// file (no IPv6 on this host) is an error too: its gateways are not
// allowlisted, and the log says so once.
func readRoutes(path string, parse func(io.Reader) ([]netip.Addr, error)) ([]netip.Addr, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("default gateways not allowlisted: %w", err)
	}
	defer fh.Close()
	gws, err := parse(fh)
	if err != nil {
		return nil, fmt.Errorf("default gateways not allowlisted: read %s: %w", path, err)
	}
	return gws, nil
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
