// The FastNetMon runner: its config and notify script, its start in the
// server's namespace, and how its ban decision and notify call are read
// (its log and the script's stamps).

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/floodguard/floodguard/internal/ctxtime"
)

const (
	// fnmThreshold is FastNetMon's per-host threshold_pps: floodguard's
	// per-source floor.
	fnmThreshold = 1000
	// fnmAttackDir is where FastNetMon 1.2.4 writes attack details.
	fnmAttackDir = "/var/log/fastnetmon_attacks"
)

// fnmTmpFiles are the traffic summaries FastNetMon 1.2.4 rewrites every
// check_period.
var fnmTmpFiles = []string{"/tmp/fastnetmon.dat", "/tmp/fastnetmon_ipv6.dat"}

func (b *bench) runFastNetMon(ctx context.Context, round int) (result, error) {
	res := result{tool: "fastnetmon", round: round, xdpFlood: -1}
	if err := b.checkNoXDP(); err != nil {
		return res, err
	}
	dir := filepath.Join(b.lab.Dir(), fmt.Sprintf("fnm%d", round))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	notify := filepath.Join(dir, "notify.log")
	script := filepath.Join(dir, "notify.sh")
	// The notify script stamps each call (FastNetMon passes the IP, the
	// direction, the pps and the action) and reads the details it is fed.
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$(date +%s.%N) $*\" >> "+notify+"\ncat > /dev/null\n"), 0o755); err != nil {
		return res, err
	}
	if err := os.WriteFile(notify, nil, 0o644); err != nil {
		return res, err
	}
	// The protected network is the server alone: with the whole lab /24 in
	// it, the flood would be "internal" traffic, which FastNetMon never bans.
	if err := os.WriteFile(filepath.Join(dir, "networks_list"), []byte(netip.PrefixFrom(serverAddr, 32).String()+"\n"), 0o644); err != nil {
		return res, err
	}
	if err := os.WriteFile(filepath.Join(dir, "networks_whitelist"), nil, 0o644); err != nil {
		return res, err
	}
	// /etc/fastnetmon.conf's defaults, but for what the lab needs: AF_PACKET
	// capture on the server's interface, the lab's network, a per-host
	// threshold of 1000 pps (floodguard's per-source floor; the shipped
	// 20000 would not fire on this flood), the notify script, no usage
	// report, and no connection tracking (only flow thresholds use it;
	// off spares FastNetMon CPU).
	conf := fmt.Sprintf(`logging_level = info
disable_usage_report = on
enable_ban = on
enable_ban_ipv6 = on
process_incoming_traffic = on
process_outgoing_traffic = on
ban_details_records_count = 20
ban_time = 60
unban_only_if_attack_finished = on
networks_list_path = %[1]s/networks_list
white_list_path = %[1]s/networks_whitelist
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
ban_for_bandwidth = on
ban_for_flows = off
threshold_pps = %[2]d
threshold_mbps = 1000
mirror_afpacket = on
mirror_af_packet_fanout_mode = cpu
interfaces = eth0
average_calculation_time = %[4]d
speed_calculation_delay = 1
notify_script_path = %[3]s
collect_attack_pcap_dumps = off
pcap = off
netflow = off
sflow = off
exabgp = off
gobgp = off
redis_enabled = off
mongodb_enabled = off
graphite = off
influxdb = off
clickhouse_metrics = off
`, dir, fnmThreshold, script, b.opt.fnmAverage)
	confPath := filepath.Join(dir, "fastnetmon.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return res, err
	}
	logPath := filepath.Join(dir, "fastnetmon.log")
	p, err := b.server.Start(b.opt.fnm, "--configuration_file", confPath, "--log_file", logPath, "--disable_pid_logic")
	if err != nil {
		return res, err
	}
	defer func() {
		p.Stop(10 * time.Second)
		b.saveFile(logPath, fmt.Sprintf("fastnetmon%d.log", round))
		b.saveFile(notify, fmt.Sprintf("fastnetmon%d.notify", round))
	}()
	// FastNetMon has no warm-up; it gets the same settling time.
	if err := ctxtime.Sleep(ctx, b.opt.warmUp); err != nil {
		return res, err
	}
	if p.Exited() {
		return res, fmt.Errorf("fastnetmon exited: %s\n%s", p.Log.String(), tailFile(logPath, 20))
	}
	var lines []notifyLine
	watch := func(ctx context.Context) func() (time.Time, time.Time, time.Time) {
		skip := len(readNotify(notify))
		logSkip := fileSize(logPath)
		done := make(chan struct{})
		var wg sync.WaitGroup
		var det time.Time
		wg.Add(1)
		go func() { // FastNetMon's first ban call
			defer wg.Done()
			pollUntil(ctx, done, b.opt.flood+detectGrace+2*time.Second, func() bool {
				for _, l := range readNotify(notify)[skip:] {
					if l.action == "ban" {
						det = l.at
						return true
					}
				}
				return false
			})
		}()
		return func() (time.Time, time.Time, time.Time) {
			close(done)
			wg.Wait()
			lines = readNotify(notify)[skip:]
			// Detection is the ban decision in FastNetMon's log (ms
			// precision), the action its call of the notify script,
			// stamped by the script. Nothing is dropped locally.
			decided := fnmDecision(logPath, logSkip)
			if decided.IsZero() {
				decided = det
			}
			return decided, det, time.Time{}
		}
	}
	if err := b.measure(ctx, &res, proc{p: p, watch: watch}, nil, nil); err != nil {
		return res, err
	}
	res.actionWhat = "no local drop: notify script called"
	res.benignHit = "benign source never named"
	for _, l := range lines {
		if l.action != "ban" {
			continue
		}
		res.actionWhat = fmt.Sprintf("no local drop: notify script `%s %s %s ban` (to blackhole %s)", l.ip, l.direction, l.pps, l.ip)
		if l.ip == serverAddr.String() {
			res.benignHit = "benign source not named, but the ban is of the server " + l.ip + ": a blackhole cuts the benign client off too"
		}
		if l.ip == clientAddr.String() {
			res.benignHit = "BENIGN SOURCE BANNED"
		}
		break
	}
	return res, nil
}

// fnmDecision is the time of FastNetMon's first ban decision logged past
// byte offset skip of its log ("2006-01-02 15:04:05,000 [INFO] We run
// execute_ip_ban code ..."), zero if none.
func fnmDecision(path string, skip int64) time.Time {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < skip {
		return time.Time{}
	}
	for _, line := range strings.Split(string(data[skip:]), "\n") {
		if !strings.Contains(line, "execute_ip_ban") || len(line) < 23 {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05,000", line[:23], time.Local)
		if err == nil {
			return t
		}
	}
	return time.Time{}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

type notifyLine struct {
	at                         time.Time
	ip, direction, pps, action string
}

// readNotify parses the notify script's lines: "EPOCH.NANOS IP DIRECTION PPS ACTION".
func readNotify(path string) []notifyLine {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []notifyLine
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		sec, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		out = append(out, notifyLine{at: at, ip: f[1], direction: f[2], pps: f[3], action: f[4]})
	}
	return out
}

// checkNoXDP makes sure floodguard's program is gone from the server's
// interface before FastNetMon is measured.
func (b *bench) checkNoXDP() error {
	out, err := exec.Command("ip", "-n", b.server.FullName(), "-j", "link", "show", "dev", "eth0").Output()
	if err != nil {
		return fmt.Errorf("ip link show: %w", err)
	}
	if strings.Contains(string(out), `"xdp"`) {
		return errors.New("an XDP program is still attached to the server's eth0")
	}
	return nil
}
