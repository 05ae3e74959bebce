// The namespace lab every round runs on: the demo's hosts and addresses
// plus an IPv6 address on the server, its servers and senders, and its
// teardown.

package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

// The demo's hosts, and the sources of the single-source floods: one per
// flood of a round, so an earlier flood's ban (which outlives the round's
// floods) cannot answer for a later one. All in 198.18.0.0/24, outside the
// IPv4 spoofed range, so a prefix ban over spoofed sources cannot hit them.
var (
	serverAddr  = lab.DemoServer
	clientAddr  = lab.DemoClient
	server6     = netip.MustParseAddr("2001:db8:0:1::1")
	quietSource = netip.MustParseAddr("198.18.0.65")
	duringSrc   = lab.DemoAttacker // 198.18.0.66
	afterSource = netip.MustParseAddr("198.18.0.67")
	// spoof4 and spoof6 are where the spoofed flood's sources come from.
	spoof4 = netip.MustParsePrefix("198.19.0.0/16")
	spoof6 = netip.MustParsePrefix("2001:db8::/32")
)

const (
	sinkPort   = 9
	synPort    = 80
	clientRate = 20
	// metricsAddr is where each daemon serves its metrics, inside the
	// server's namespace (one daemon runs at a time).
	metricsAddr = "127.0.0.1:9797"
	// singleFrame is the single-source floods' frame size in bytes.
	singleFrame = 64
)

// bench is the lab shared by every round.
type bench struct {
	opt                      options
	lab                      *lab.Lab
	server, client, attacker *lab.Netns
	serverMAC                net.HardwareAddr
	pins                     string
	// single sends the single-source floods, spoof the spoofed one when
	// it is internal/lab's sender (-sender lab).
	single, spoof *lab.Sender
	sink          *lab.UDPSink
	http          *lab.HTTPServer
	logs          []string // files kept with -keep
}

// setup builds the demo's topology (server, client and attacker on a
// bridge), the server's IPv6 address, HTTP server and UDP sink, and the
// attacker's senders.
func (b *bench) setup() error {
	l, err := lab.New()
	if err != nil {
		return err
	}
	b.lab = l
	_, hosts, err := l.Bridged(lab.DemoHosts()...)
	if err != nil {
		return err
	}
	b.server, b.client, b.attacker = hosts[0], hosts[1], hosts[2]
	if err := b.server.AddAddr("eth0", netip.PrefixFrom(server6, 64).String()); err != nil {
		return err
	}
	if b.pins, err = l.BPFFS(); err != nil {
		return err
	}
	srvIf, err := b.server.Interface("eth0")
	if err != nil {
		return err
	}
	b.serverMAC = srvIf.HardwareAddr
	if b.single, err = b.attacker.NewSender("eth0"); err != nil {
		return err
	}
	if b.opt.sender == "lab" {
		if b.spoof, err = b.attacker.NewSender("eth0"); err != nil {
			return err
		}
	}
	if b.sink, err = b.server.ListenUDP(netip.AddrPortFrom(serverAddr, sinkPort)); err != nil {
		return err
	}
	if b.http, err = b.server.ServeHTTP(netip.AddrPortFrom(serverAddr, 80)); err != nil {
		return err
	}
	logf("lab %s: server %v and %v, benign client %v (%d HTTP requests/s), attacker on the same bridge",
		l.ID(), serverAddr, server6, clientAddr, clientRate)
	return nil
}

func (b *bench) close() {
	if b.lab == nil {
		return
	}
	if err := b.lab.Close(); err != nil {
		logf("cleanup: %v", err)
	}
}

// spoofTarget is the spoofed flood's destination and source range.
func (b *bench) spoofTarget() (dst netip.Addr, from netip.Prefix) {
	if b.opt.family == 4 {
		return serverAddr, spoof4
	}
	return server6, spoof6
}

// saveLog keeps a daemon's log in the lab's directory for -keep.
func (b *bench) saveLog(p *lab.Process, name string) {
	f := filepath.Join(b.lab.Dir(), name)
	if os.WriteFile(f, []byte(p.Log.String()), 0o644) == nil {
		b.logs = append(b.logs, f)
	}
}

// daemonConfig is a round's config: the shipped defaults (max_sources,
// source_idle_timeout, tick) but for a short warm-up, native XDP, bans that
// outlast the round, metrics for the tick figures, and the lab's private
// directories.
func daemonConfig(warmUp time.Duration, pinDir, dir string) string {
	return fmt.Sprintf(`# benchspoofed
warm_up: %s
bans:
  ttl: 10m
daemon:
  attach_mode: native
  pin_dir: %s
  state_dir: %s
  runtime_dir: %s
  metrics_listen: %s
`, warmUp, pinDir, filepath.Join(dir, "state"), filepath.Join(dir, "run"), metricsAddr)
}
