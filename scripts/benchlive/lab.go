// The namespace lab both tools run on: the demo's hosts and addresses, its
// setup and teardown, the bridge's counter of frames towards the server,
// and the files kept from each run.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

// The demo's lab: the same hosts as `floodguard demo`.
var (
	serverAddr   = lab.DemoServer
	clientAddr   = lab.DemoClient
	attackerAddr = lab.DemoAttacker
)

const (
	sinkPort   = 9
	clientRate = 20
)

// bench is the lab shared by every run.
type bench struct {
	opt                          options
	lab                          *lab.Lab
	sw, server, client, attacker *lab.Netns
	pins                         string
	sender                       *lab.Sender
	frames                       lab.Frames
	sink                         *lab.UDPSink
	http                         *lab.HTTPServer
	logs                         []string // files to keep with -keep
	// trafgenCfg is trafgen's packet config for the flood (-compare-trips
	// above labMaxRate); trafgenLead how long trafgen last took from its
	// start to its first frame at the server.
	trafgenCfg  string
	trafgenLead time.Duration
	created     []string // FastNetMon's files outside the lab, removed at the end
}

// setup builds the demo's topology: server, client and attacker namespaces
// on a bridge, the server's HTTP server and UDP sink, the benign client and
// the attacker's sender.
func (b *bench) setup() error {
	l, err := lab.New()
	if err != nil {
		return err
	}
	b.lab = l
	var hosts []*lab.Netns
	b.sw, hosts, err = l.Bridged(lab.DemoHosts()...)
	if err != nil {
		return err
	}
	b.server, b.client, b.attacker = hosts[0], hosts[1], hosts[2]
	if b.pins, err = l.BPFFS(); err != nil {
		return err
	}
	srvIf, err := b.server.Interface("eth0")
	if err != nil {
		return err
	}
	if b.sender, err = b.attacker.NewSender("eth0"); err != nil {
		return err
	}
	flood := lab.Packet{SrcMAC: b.sender.MAC, DstMAC: srvIf.HardwareAddr,
		Src: attackerAddr, Dst: serverAddr, SrcPort: 40000, DstPort: sinkPort, Size: b.opt.frameSize}
	b.frames, err = lab.UDPFrames(flood)
	if err != nil {
		return err
	}
	if b.sink, err = b.server.ListenUDP(netip.AddrPortFrom(serverAddr, sinkPort)); err != nil {
		return err
	}
	if b.http, err = b.server.ServeHTTP(netip.AddrPortFrom(serverAddr, 80)); err != nil {
		return err
	}
	if b.opt.compareTrips {
		b.trafgenCfg = filepath.Join(l.Dir(), "flood.trafgen")
		if err := lab.TrafgenUDP(b.trafgenCfg, flood); err != nil {
			return err
		}
	} else {
		b.fastNetMonFiles()
	}
	logf("lab %s: server %v, benign client %v (%d HTTP requests/s), attacker %v", l.ID(), serverAddr, clientAddr, clientRate, attackerAddr)
	return nil
}

// fastNetMonFiles makes FastNetMon's attack directory and notes the files
// it writes outside the lab, to be removed at the end.
func (b *bench) fastNetMonFiles() {
	// FastNetMon 1.2.4 logs an error for every attack without it.
	if _, err := os.Stat(fnmAttackDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(fnmAttackDir, 0o755); err == nil {
			b.created = append(b.created, fnmAttackDir)
		}
	}
	// It also writes its traffic summary to fixed files in /tmp.
	for _, f := range fnmTmpFiles {
		if _, err := os.Lstat(f); errors.Is(err, os.ErrNotExist) {
			b.created = append(b.created, f)
		}
	}
}

func (b *bench) close() {
	if b.lab != nil {
		if err := b.lab.Close(); err != nil {
			logf("cleanup: %v", err)
		}
	}
	for _, f := range b.created {
		_ = os.RemoveAll(f)
	}
}

// txPackets counts the frames the bridge sent towards the server.
func (b *bench) txPackets() (uint64, error) {
	out, err := exec.Command("ip", "-n", b.sw.FullName(), "-j", "-s", "link", "show", "dev", "to-server").Output()
	if err != nil {
		return 0, fmt.Errorf("ip -s link show: %w", err)
	}
	var links []struct {
		Stats64 struct {
			TX struct {
				Packets uint64 `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("ip -s link show: unexpected output %q", out)
	}
	return links[0].Stats64.TX.Packets, nil
}

func (b *bench) saveLog(p *lab.Process, name string) {
	f := filepath.Join(b.lab.Dir(), name)
	if os.WriteFile(f, []byte(p.Log.String()), 0o644) == nil {
		b.logs = append(b.logs, f)
	}
}

func (b *bench) saveFile(src, name string) {
	data, err := os.ReadFile(src)
	if err != nil {
		return
	}
	f := filepath.Join(b.lab.Dir(), name)
	if os.WriteFile(f, data, 0o644) == nil {
		b.logs = append(b.logs, f)
	}
}
