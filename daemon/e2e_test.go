package daemon_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests run the real floodguard binary in a lab of two network
// namespaces joined by a veth pair: "att" (198.18.0.2 attacker, 198.18.0.3
// benign client) and "vic" (198.18.0.1, floodguard on its end of the pair).
// Pins live on a private bpffs mount, because `ip netns exec` remounts /sys.
// Traffic comes from hping3 and stays inside the namespaces.

var (
	binPath string
	labSeq  atomic.Int32
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fg-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "floodguard")
	out, err := exec.Command("go", "build", "-o", binPath, "../cmd/floodguard").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build floodguard: %v: %s\n", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipOrFail skips, or fails under FLOODGUARD_REQUIRE_PRIVILEGED=1.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("FLOODGUARD_REQUIRE_PRIVILEGED") == "1" {
		t.Fatalf(format+" (FLOODGUARD_REQUIRE_PRIVILEGED=1 forbids skipping)", args...)
	}
	t.Skipf(format, args...)
}

type lab struct {
	t        *testing.T
	att, vic string // namespace names
	dir      string
	cfg      string
	log      string
	daemon   *exec.Cmd
}

func newLab(t *testing.T, extraConfig string) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root: network namespaces, XDP and bpffs")
	}
	for _, tool := range []string{"ip", "hping3"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "needs %s (make deps installs it): %v", tool, err)
		}
	}
	n := labSeq.Add(1)
	l := &lab{t: t, att: fmt.Sprintf("fge2e-a%d-%d", os.Getpid()%100000, n), vic: fmt.Sprintf("fge2e-v%d-%d", os.Getpid()%100000, n), dir: t.TempDir()}
	l.cleanupNetns()
	t.Cleanup(l.cleanupNetns)
	for _, args := range [][]string{
		{"netns", "add", l.att}, {"netns", "add", l.vic},
		{"link", "add", "va", "netns", l.att, "type", "veth", "peer", "name", "vb", "netns", l.vic},
		{"-n", l.att, "addr", "add", "198.18.0.2/24", "dev", "va"},
		{"-n", l.att, "addr", "add", "198.18.0.3/24", "dev", "va"},
		{"-n", l.att, "addr", "add", "198.18.0.4/24", "dev", "va"},
		{"-n", l.vic, "addr", "add", "198.18.0.1/24", "dev", "vb"},
		{"-n", l.att, "link", "set", "va", "up"}, {"-n", l.vic, "link", "set", "vb", "up"},
		{"-n", l.att, "link", "set", "lo", "up"}, {"-n", l.vic, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	bpffs := filepath.Join(l.dir, "bpf")
	os.Mkdir(bpffs, 0o700)
	if err := syscall.Mount("bpf", bpffs, "bpf", 0, "mode=0700"); err != nil {
		skipOrFail(t, "needs root: mount bpffs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(bpffs, syscall.MNT_DETACH) })
	l.cfg = filepath.Join(l.dir, "floodguard.yaml")
	l.log = filepath.Join(l.dir, "daemon.log")
	l.writeConfig(extraConfig)
	return l
}

func (l *lab) cleanupNetns() {
	exec.Command("ip", "netns", "del", l.att).Run()
	exec.Command("ip", "netns", "del", l.vic).Run()
}

// writeConfig writes the lab's config: short warm-up and TTLs, private
// directories, and extra YAML appended (top-level keys only).
func (l *lab) writeConfig(extra string) {
	l.t.Helper()
	doc := fmt.Sprintf(`warm_up: 3s
%s
daemon:
  pin_dir: %s
  state_dir: %s
  runtime_dir: %s
  snapshot_interval: 1s
`, extra, filepath.Join(l.dir, "bpf", "floodguard"), filepath.Join(l.dir, "state"), filepath.Join(l.dir, "run"))
	if err := os.WriteFile(l.cfg, []byte(doc), 0o600); err != nil {
		l.t.Fatal(err)
	}
}

// start runs the daemon in the victim namespace, its JSON log appended to
// l.log, and waits until its control socket answers.
func (l *lab) start() {
	l.t.Helper()
	logf, err := os.OpenFile(l.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", l.vic, binPath, "run", "--interface", "vb", "--config", l.cfg, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	logf.Close()
	l.daemon = cmd
	l.t.Cleanup(func() {
		if l.daemon == cmd && cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, code := l.ctl("status"); code == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(l.log)
	l.t.Fatalf("daemon did not come up in 10 s; log:\n%s", out)
}

// stop sends sig to the daemon and waits for it (bounded).
func (l *lab) stop(sig syscall.Signal) {
	l.t.Helper()
	l.daemon.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- l.daemon.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		l.daemon.Process.Kill()
		l.t.Fatalf("daemon ignored %v for 10 s", sig)
	}
}

func (l *lab) ctl(args ...string) (string, string, int) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binPath, append(args, "--config", l.cfg)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
	}
	return stdout.String(), stderr.String(), code
}

// events returns the daemon's log records with the given event name.
func (l *lab) events(name string) []map[string]any {
	f, err := os.Open(l.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["event"] == name {
			out = append(out, rec)
		}
	}
	return out
}

// waitEvent polls the log for a record until timeout.
func (l *lab) waitEvent(name string, match func(map[string]any) bool, timeout time.Duration) (map[string]any, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, ev := range l.events(name) {
			if match == nil || match(ev) {
				return ev, true
			}
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// flood starts a bounded hping3 UDP flood from src (one of the attacker
// namespace's addresses) and returns when it started.
func (l *lab) flood(src string, d time.Duration) time.Time {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.att, "timeout", strconv.Itoa(int(d.Seconds())),
		"hping3", "-q", "-n", "--udp", "-p", "9", "-i", "u40", "-a", src, "198.18.0.1")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go cmd.Wait()
	return start
}

var lossRe = regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`)

// probe sends n ICMP echo requests from src at 10/s and returns the share
// answered.
func (l *lab) probe(src string, n int) float64 {
	l.t.Helper()
	out, _ := exec.Command("ip", "netns", "exec", l.att, "hping3", "-n", "--icmp", "-c", strconv.Itoa(n),
		"-i", "u100000", "-a", src, "198.18.0.1").CombinedOutput()
	m := lossRe.FindSubmatch(out)
	if m == nil {
		l.t.Fatalf("hping3 gave no statistics: %s", out)
	}
	sent, _ := strconv.Atoi(string(m[1]))
	recv, _ := strconv.Atoi(string(m[2]))
	return float64(recv) / float64(sent)
}

func tickEnd(t *testing.T, ev map[string]any) time.Time {
	t.Helper()
	s, _ := ev["tick_end"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("event without tick_end: %v", ev)
	}
	return at
}

func TestE2EFloodBannedBenignServed(t *testing.T) {
	l := newLab(t, "bans: {ttl: 30s}")
	l.start()
	time.Sleep(4 * time.Second) // past the warm-up
	start := l.flood("198.18.0.2", 8*time.Second)
	served := make(chan float64, 1)
	go func() { served <- l.probe("198.18.0.3", 50) }()
	ban, ok := l.waitEvent("ban", func(ev map[string]any) bool { return ev["target"] == "198.18.0.2/32" }, 10*time.Second)
	if !ok {
		t.Fatal("flood not banned within 10 s")
	}
	if lag := tickEnd(t, ban).Sub(start); lag > 2*time.Second {
		t.Errorf("banned %v after the flood started, want within two 1 s ticks", lag)
	}
	if share := <-served; share < 0.98 {
		t.Errorf("benign client served %.1f%% during the flood, want >= 98%%", 100*share)
	}
	out, _, code := l.ctl("bans", "-o", "json")
	var bans []struct {
		Target  string `json:"target"`
		Origin  string `json:"origin"`
		Packets uint64 `json:"dropped_packets"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &bans) != nil || len(bans) != 1 || bans[0].Target != "198.18.0.2/32" || bans[0].Packets == 0 {
		t.Fatalf("bans: exit %d, %s", code, out)
	}
}

func TestE2EAllowlistedNeverBanned(t *testing.T) {
	l := newLab(t, "bans: {allowlist: [198.18.0.4]}")
	l.start()
	time.Sleep(4 * time.Second)
	l.flood("198.18.0.4", 4*time.Second)
	ev, ok := l.waitEvent("attack_start", func(ev map[string]any) bool { return ev["target"] == "198.18.0.4" }, 8*time.Second)
	if !ok {
		t.Fatal("allowlisted flood not even reported")
	}
	if msg, _ := ev["message"].(string); !strings.Contains(msg, "allowlisted") {
		t.Errorf("attack_start does not say why it was not banned: %q", msg)
	}
	time.Sleep(3 * time.Second)
	if bans := l.events("ban"); len(bans) != 0 {
		t.Fatalf("allowlisted source banned: %v", bans)
	}
}

func TestE2ERestartKeepsBansAndBaselines(t *testing.T) {
	l := newLab(t, "bans: {ttl: 60s}")
	l.start()
	time.Sleep(4 * time.Second)
	l.flood("198.18.0.2", 4*time.Second)
	if _, ok := l.waitEvent("ban", nil, 8*time.Second); !ok {
		t.Fatal("flood not banned")
	}
	time.Sleep(1500 * time.Millisecond) // a snapshot after the ban
	l.stop(syscall.SIGKILL)
	l.start()
	if _, ok := l.waitEvent("snapshot_restored", nil, 5*time.Second); !ok {
		t.Fatal("restarted daemon did not restore its snapshot")
	}
	out, _, code := l.ctl("bans", "-o", "json")
	if code != 0 || !strings.Contains(out, `"198.18.0.2/32"`) || !strings.Contains(out, `"detector"`) {
		t.Fatalf("after SIGKILL and restart, bans: exit %d: %s", code, out)
	}
	// No warm-up again: the restored engine acts at once.
	l.flood("198.18.0.3", 3*time.Second)
	if _, ok := l.waitEvent("ban", func(ev map[string]any) bool { return ev["target"] == "198.18.0.3/32" }, 4*time.Second); !ok {
		t.Fatal("restarted daemon did not act on a new flood at once")
	}
}

func TestE2ERuleExpiresWithDaemonStopped(t *testing.T) {
	l := newLab(t, "bans: {ttl: 3s, max_ttl: 3s}")
	l.start()
	time.Sleep(4 * time.Second)
	l.flood("198.18.0.2", 3*time.Second)
	if _, ok := l.waitEvent("ban", nil, 6*time.Second); !ok {
		t.Fatal("flood not banned")
	}
	l.stop(syscall.SIGTERM) // leaves program and rules in place
	if share := l.probe("198.18.0.2", 5); share != 0 {
		t.Fatalf("banned source answered %.0f%% right after the daemon stopped", 100*share)
	}
	time.Sleep(3 * time.Second)
	if share := l.probe("198.18.0.2", 10); share < 0.9 {
		t.Fatalf("rule did not expire in the kernel: %.0f%% answered", 100*share)
	}
	out, _, code := l.ctl("bans")
	if code != 0 || !strings.Contains(out, "expired") || !strings.Contains(out, "pinned maps") {
		t.Fatalf("bans from the pinned maps: exit %d: %s", code, out)
	}
}

func TestE2EReloadBadConfigKeepsRunning(t *testing.T) {
	l := newLab(t, "")
	l.start()
	l.writeConfig("source:\n  kk: 4") // an unknown key on line 3
	l.daemon.Process.Signal(syscall.SIGHUP)
	ev, ok := l.waitEvent("reload_failed", nil, 5*time.Second)
	if !ok {
		t.Fatal("broken config not reported")
	}
	if msg := fmt.Sprint(ev["error"]); !strings.Contains(msg, "line 3") || !strings.Contains(msg, "source.kk") {
		t.Errorf("reload error does not name key and line: %q", msg)
	}
	if _, _, code := l.ctl("status"); code != 0 {
		t.Fatal("daemon stopped answering after a bad reload")
	}
	l.writeConfig("bans: {ttl: 90s}")
	l.daemon.Process.Signal(syscall.SIGHUP)
	if _, ok := l.waitEvent("reloaded", nil, 5*time.Second); !ok {
		t.Fatal("valid config not reloaded")
	}
}

func TestE2EOperatorCommands(t *testing.T) {
	l := newLab(t, "")
	if _, stderr, code := l.ctl("block", "198.19.7.0/24"); code == 0 || !strings.Contains(stderr, "not running") {
		t.Fatalf("block with no daemon: exit %d, %q", code, stderr)
	}
	l.start()
	if out, stderr, code := l.ctl("block", "198.19.7.0/24", "--ttl", "10m"); code != 0 {
		t.Fatalf("block: %d %s %s", code, out, stderr)
	}
	out, _, _ := l.ctl("bans")
	if !strings.Contains(out, "198.19.7.0/24") || !strings.Contains(out, "manual") {
		t.Fatalf("bans after block: %s", out)
	}
	if _, stderr, code := l.ctl("block", "198.18.0.1"); code == 0 || !strings.Contains(stderr, "allowlist") {
		t.Fatalf("blocking the host itself: exit %d, %q", code, stderr)
	}
	if _, _, code := l.ctl("unblock", "198.19.7.0/24"); code != 0 {
		t.Fatal("unblock failed")
	}
	if out, _, _ := l.ctl("bans", "-o", "json"); strings.Contains(out, "198.19.7.0/24") {
		t.Fatalf("still listed after unblock: %s", out)
	}
	if ev, ok := l.waitEvent("manual_block", nil, time.Second); !ok || !strings.Contains(fmt.Sprint(ev["by"]), "uid=0") {
		t.Fatalf("manual block not logged with who asked: %v", ev)
	}
	// Not root: refused clearly.
	if _, err := exec.LookPath("setpriv"); err == nil {
		cmd := exec.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", binPath, "status", "--config", l.cfg)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "need root") {
			t.Fatalf("status as nobody: %v: %s", err, out)
		}
	}
}
