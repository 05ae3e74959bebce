package main

// TestTopInTmux drives `floodguard top` in a real terminal: tmux, 80×24,
// against a real daemon in a lab of network namespaces with a little
// traffic, reading the screen as an operator would see it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/internal/lab"
	"github.com/floodguard/floodguard/internal/privtest"
)

// tmuxServer is a private tmux server (its own socket), so the test never
// touches the user's sessions.
type tmuxServer struct {
	t    *testing.T
	bin  string
	name string
	conf string
}

func newTmux(t *testing.T) *tmuxServer {
	t.Helper()
	bin, err := exec.LookPath("tmux")
	if err != nil {
		privtest.SkipOrFail(t, "needs tmux (Debian package tmux): %v", err)
	}
	var tag [4]byte
	if _, err := rand.Read(tag[:]); err != nil {
		t.Fatal(err)
	}
	s := &tmuxServer{t: t, bin: bin, name: fmt.Sprintf("fgtop-%d-%s", os.Getpid(), hex.EncodeToString(tag[:]))}
	// Dead panes stay, so the test can read how the command ended.
	s.conf = filepath.Join(t.TempDir(), "tmux.conf")
	if err := os.WriteFile(s.conf, []byte("set -g remain-on-exit on\nset -g status off\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = s.run("kill-server") })
	return s
}

func (s *tmuxServer) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, append([]string{"-L", s.name, "-f", s.conf}, args...)...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", "LANG=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tmux %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (s *tmuxServer) must(args ...string) string {
	s.t.Helper()
	out, err := s.run(args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// screen is what the pane shows.
func (s *tmuxServer) screen(target string) string {
	s.t.Helper()
	return s.must("capture-pane", "-p", "-t", target)
}

// waitScreen waits (bounded) until the pane shows every string of want and
// returns the screen.
func (s *tmuxServer) waitScreen(target string, timeout time.Duration, want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sc := s.screen(target)
		missing := ""
		for _, w := range want {
			if !strings.Contains(sc, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %v the screen still lacks %q:\n%s", timeout, missing, sc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestTopInTmux(t *testing.T) {
	if os.Geteuid() != 0 {
		privtest.SkipOrFail(t, "needs root: runs floodguard in network namespaces")
	}
	tm := newTmux(t)
	bin := filepath.Join(t.TempDir(), "floodguard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	l, victim, peer, check := vethLab(t)
	check(victim.AddAddr("vb", "198.18.0.1/24"))
	check(victim.AddAddr("vb", "2001:db8:1::1/64"))
	check(peer.AddAddr("va", "198.18.0.2/24"))
	check(peer.AddAddr("va", "2001:db8:1::2/64"))
	vb, err := victim.Interface("vb")
	check(err)
	pins, err := l.BPFFS()
	check(err)
	config := filepath.Join(l.Dir(), "floodguard.yaml")
	check(os.WriteFile(config, []byte(fmt.Sprintf(`warm_up: 2s
daemon:
  pin_dir: %s/floodguard
  state_dir: %s/state
  runtime_dir: %s/run
  max_sources: 65536
`, pins, l.Dir(), l.Dir())), 0o644))

	// top first: it must say the daemon is not running, and wait for it.
	const session = "top"
	// The shell records top's exit status in a file: tmux's
	// #{pane_dead_status} is sometimes left empty when the pane's process
	// has exited (tmux 3.3 marks the pane dead before reaping it).
	status1 := filepath.Join(t.TempDir(), "status")
	tm.must("new-session", "-d", "-x", "80", "-y", "24", "-s", session, bin+" top --config "+config+"; echo $? > "+status1)
	tm.waitScreen(session, 10*time.Second, "the daemon is not running", "retrying")

	d, err := victim.Start(bin, "run", "--interface", "vb", "--config", config, "--log-format", "json")
	check(err)
	t.Cleanup(func() {
		d.Kill()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log)
		}
	})
	if _, _, err := d.Log.WaitEvent(0, 10*time.Second, "attached", nil); err != nil {
		t.Fatalf("daemon did not attach: %v\n%s", err, d.Log)
	}

	// A little traffic from two sources, one of each family, until the
	// test ends (a sender each: a Sender is not for concurrent use).
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	for _, p := range [][2]string{{"198.18.0.2", "198.18.0.1"}, {"2001:db8:1::2", "2001:db8:1::1"}} {
		snd, err := peer.NewSender("va")
		check(err)
		fr, err := lab.UDPFrames(lab.Packet{SrcMAC: snd.MAC, DstMAC: vb.HardwareAddr,
			Src: netip.MustParseAddr(p[0]), Dst: netip.MustParseAddr(p[1]), SrcPort: 40000, DstPort: 5001, Size: 200})
		check(err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = snd.Flood(ctx, lab.Flood{Frames: fr, Rate: 200, Duration: time.Minute})
		}()
	}
	// And a rule, to see with its time left.
	if out, err := exec.Command(bin, "block", "198.19.7.0/24", "--ttl", "5m", "--config", config).CombinedOutput(); err != nil {
		t.Fatalf("floodguard block: %v\n%s", err, out)
	}

	sc := tm.waitScreen(session, 20*time.Second,
		"floodguard top - vb", "traffic", "classes", "SOURCE (", "198.18.0.2 ", "2001:db8:1::2 ",
		"PREFIX (", "198.18.0.0/24", "2001:db8:1::/64", "RULE (1 in force)", "198.19.7.0/24", "manual", "q: quit")
	lines := strings.Split(strings.TrimRight(sc, "\n"), "\n")
	if len(lines) > 24 {
		t.Errorf("%d lines on a 24-row screen", len(lines))
	}
	for _, l := range lines {
		if len([]rune(l)) > 80 {
			t.Errorf("line wider than 80 columns: %q", l)
		}
	}
	t.Logf("screen:\n%s", sc)
	if strings.Contains(sc, "not running") {
		t.Errorf("the daemon-down message outlived the daemon's start:\n%s", sc)
	}

	// The screen follows the ticks.
	tick := func(sc string) string {
		_, after, _ := strings.Cut(sc, " tick ")
		n, _, _ := strings.Cut(after, " ")
		return n
	}
	first := tick(sc)
	tm.waitScreen(session, 5*time.Second, "q: quit")
	deadline := time.Now().Add(5 * time.Second)
	for tick(tm.screen(session)) == first {
		if time.Now().After(deadline) {
			t.Fatalf("the view stayed at tick %s for 5s", first)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// q quits, cleanly, and leaves the alternate screen.
	tm.must("send-keys", "-t", session, "q")
	if st := waitExit(t, status1, 5*time.Second); st != "0" {
		t.Fatalf("top ended with status %s after q:\n%s", st, tm.screen(session))
	}
	if sc := tm.screen(session); strings.Contains(sc, "SOURCE (") {
		t.Errorf("the view is still on the screen after top ended (alternate screen not left):\n%s", sc)
	}

	// Ctrl-C quits as cleanly.
	const session2 = "top2"
	status2 := filepath.Join(t.TempDir(), "status")
	tm.must("new-session", "-d", "-x", "80", "-y", "24", "-s", session2, bin+" top --config "+config+"; echo $? > "+status2)
	tm.waitScreen(session2, 10*time.Second, "SOURCE (", "198.18.0.2 ")
	tm.must("send-keys", "-t", session2, "C-c")
	if st := waitExit(t, status2, 5*time.Second); st != "0" {
		t.Fatalf("top ended with status %s after Ctrl-C:\n%s", st, tm.screen(session2))
	}

	// Not on a terminal: plain views, or JSON, with the daemon's figures.
	out, err := exec.Command(bin, "top", "-n", "2", "--config", config).Output()
	if err != nil {
		t.Fatalf("floodguard top -n 2: %v", err)
	}
	if s := string(out); strings.Count(s, "floodguard top - vb") != 2 || strings.Contains(s, "\x1b") || !strings.Contains(s, "198.18.0.2 ") {
		t.Errorf("floodguard top -n 2 (not a terminal):\n%q", s)
	}
	out, err = exec.Command(bin, "top", "-n", "1", "-o", "json", "--config", config).Output()
	if err != nil {
		t.Fatalf("floodguard top -o json: %v", err)
	}
	var top daemon.Top
	if err := json.Unmarshal(out, &top); err != nil {
		t.Fatalf("floodguard top -o json: %v: %q", err, out)
	}
	found := false
	for _, k := range top.Sources {
		if k.Target == "198.18.0.2" {
			found = true
			if k.PPS < 100 || k.PPS > 400 || !k.Tracked || k.BaselinePPS <= 0 {
				t.Errorf("source 198.18.0.2 sending 200 pps: %+v", k)
			}
		}
	}
	if !found || len(top.Classes) != 6 || top.Classes[0].Class != "all" || top.RulesTotal != 1 || top.Rules[0].Origin != "manual" || top.Rules[0].TimeLeft <= 0 {
		t.Errorf("/v1/top: %s", out)
	}
}

// waitExit waits (bounded) for the exit status the shell wrote to path.
func waitExit(t *testing.T, path string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("top still running %s after it was told to quit", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
