// The spoofed flood: TCP SYNs, each from a new random source, sent by
// trafgen (netsniff-ng) from a config written here, or by internal/lab's
// paced sender; and what it sent.

package main

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

// spoofStats is what a spoofed flood sent.
type spoofStats struct {
	sent       uint64
	start, end time.Time
}

func (s spoofStats) rate() float64 {
	if d := s.end.Sub(s.start).Seconds(); d > 0 {
		return float64(s.sent) / d
	}
	return 0
}

// startSpoof starts the spoofed flood and returns the function that ends
// it (trafgen runs until stopped; the lab sender stops by itself after
// -flood, and stop waits for that).
func (b *bench) startSpoof(ctx context.Context, round int) (stop func() (spoofStats, error), err error) {
	dst, from := b.spoofTarget()
	if b.opt.sender == "lab" {
		frames, err := lab.SpoofedSYNFrames(lab.Packet{SrcMAC: b.spoof.MAC, DstMAC: b.serverMAC, Dst: dst, DstPort: synPort}, from, uint64(round))
		if err != nil {
			return nil, fmt.Errorf("spoofed frames: %w", err)
		}
		type done struct {
			st  lab.FloodStats
			err error
		}
		c := make(chan done, 1)
		go func() {
			st, err := b.spoof.Flood(ctx, lab.Flood{Frames: frames, Rate: b.opt.spoofRate, Duration: b.opt.flood})
			c <- done{st, err}
		}()
		return func() (spoofStats, error) {
			d := <-c // bounded: Flood stops by itself a second past -flood
			return spoofStats{sent: d.st.Sent, start: d.st.Start, end: d.st.End}, d.err
		}, nil
	}
	cfg := filepath.Join(b.lab.Dir(), "spoof.trafgen")
	// The attacker's own MAC address (both senders are on its eth0).
	if err := os.WriteFile(cfg, []byte(trafgenConfig(b.single.MAC, b.serverMAC, dst)), 0o644); err != nil {
		return nil, fmt.Errorf("trafgen config: %w", err)
	}
	// One process, pinned by trafgen to one CPU: the rest of the machine
	// is left to the daemon, the kernel's packet path and this program.
	tg, err := b.attacker.StartTrafgen(lab.TrafgenOptions{Bin: b.opt.trafgen, Dev: "eth0", Config: cfg, Rate: b.opt.spoofRate})
	if err != nil {
		return nil, err
	}
	return func() (spoofStats, error) {
		st := spoofStats{start: tg.Started, end: time.Now()}
		sent, err := tg.Stop()
		st.sent = sent
		return st, err
	}, nil
}

// trafgenConfig is trafgen's packet config for a TCP SYN to dst:synPort
// whose source address is random in every frame: the 96 host bits of
// 2001:db8::/32, or the 16 of 198.19.0.0/16 (drnd draws fresh bytes per
// frame); source port and sequence number are random too, and the
// checksums are computed per frame (csumip, csumtcp, csumtcp6).
func trafgenConfig(src, dst net.HardwareAddr, to netip.Addr) string {
	var w strings.Builder
	hexBytes := lab.TrafgenBytes
	fmt.Fprintf(&w, "# benchspoofed: TCP SYNs from random sources to %v port %d\n{\n", to, synPort)
	fmt.Fprintf(&w, "  %s,\n  %s,\n", hexBytes(dst), hexBytes(src))
	// TCP: random source port, port 80, random sequence number, no ack,
	// header length 5 words, SYN, window 64240, checksum, no urgent data.
	tcp := func(csum string) {
		fmt.Fprintf(&w, "  drnd(2), 0x00, 0x%02x, drnd(4), 0x00, 0x00, 0x00, 0x00,\n", synPort)
		fmt.Fprintf(&w, "  0x50, 0x02, 0xfa, 0xf0, %s, 0x00, 0x00,\n", csum)
	}
	if to.Is4() {
		d := to.As4()
		// IPv4: 20 bytes, total length 40, random id, DF, TTL 64, TCP.
		fmt.Fprintf(&w, "  0x08, 0x00,\n  0x45, 0x00, 0x00, 0x28, drnd(2), 0x40, 0x00, 0x40, 0x06, csumip(14, 33),\n")
		fmt.Fprintf(&w, "  0x%02x, 0x%02x, drnd(2),\n  %s,\n", spoof4.Addr().As4()[0], spoof4.Addr().As4()[1], hexBytes(d[:]))
		tcp("csumtcp(14, 34)")
		// Ethernet's minimum frame is 60 bytes before the FCS.
		fmt.Fprintf(&w, "  0x00, 0x00, 0x00, 0x00, 0x00, 0x00,\n}\n")
		return w.String()
	}
	d := to.As16()
	p := spoof6.Addr().As16()
	// IPv6: payload length 20, next header TCP, hop limit 64.
	fmt.Fprintf(&w, "  0x86, 0xdd,\n  0x60, 0x00, 0x00, 0x00, 0x00, 0x14, 0x06, 0x40,\n")
	fmt.Fprintf(&w, "  %s, drnd(12),\n  %s,\n", hexBytes(p[:4]), hexBytes(d[:]))
	tcp("csumtcp6(14, 54)")
	fmt.Fprintf(&w, "}\n")
	return w.String()
}

// distinctSources estimates how many distinct addresses n uniformly random
// draws from a space of 2^bits addresses hit: 2^bits × (1 − e^(−n/2^bits)),
// computed with expm1 so that it stays exact where n is tiny against the
// space (IPv6: every frame a new source).
func distinctSources(n uint64, bits int) float64 {
	space := math.Exp2(float64(bits))
	return -space * math.Expm1(-float64(n)/space)
}

// spoofBits is the number of random address bits of the spoofed range.
func (o options) spoofBits() int {
	if o.family == 4 {
		return 32 - spoof4.Bits()
	}
	return 128 - spoof6.Bits()
}
