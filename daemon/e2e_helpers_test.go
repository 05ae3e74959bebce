package daemon_test

// End-to-end tests: the real floodguard binary protects one end of a veth
// pair between two namespaces the test makes, while frames, floods and
// HTTP requests come from the other end. Each test builds its own lab and
// removes it, whatever happens.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/internal/lab"
	"github.com/floodguard/floodguard/internal/privtest"
)

// skipOrFail skips t with the reason, or fails it under
// FLOODGUARD_REQUIRE_PRIVILEGED=1 (CI, which must run the kernel tests).
var skipOrFail = privtest.SkipOrFail

// fgBin is the floodguard binary TestMain builds (as root only: nothing
// else runs it).
var (
	fgBin    string
	buildErr error
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "fge2e-bin-")
			if err != nil {
				buildErr = err
			} else {
				defer os.RemoveAll(dir)
				// Traversable by nobody, who runs it in one test.
				os.Chmod(dir, 0o755)
				fgBin = filepath.Join(dir, "floodguard")
				buildErr = build(fgBin)
			}
		}
		return m.Run()
	}())
}

func build(out string) error {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	cmd := exec.Command(gocmd, "build", "-o", out, "github.com/floodguard/floodguard/cmd/floodguard")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	return nil
}

// The test network: the victim (floodguard, an HTTP server, UDP sinks) on
// vb, the attacker and the benign client on va, all on one link.
var (
	victim4   = netip.MustParseAddr("198.18.0.1")
	attacker4 = netip.MustParseAddr("198.18.0.2")
	client4   = netip.MustParseAddr("198.18.0.3")
	other4    = netip.MustParseAddr("198.18.0.4") // a second attacker
	victim6   = netip.MustParseAddr("2001:db8:1::1")
	attacker6 = netip.MustParseAddr("2001:db8:1::2")
	client6   = netip.MustParseAddr("2001:db8:1::3")
	// spoofed is where spoofed sources come from.
	spoofed = netip.MustParsePrefix("198.19.0.0/16")
)

const (
	tick     = time.Second // the config's (default) tick
	warmUp   = 3 * time.Second
	sinkPort = 5001
	// floodRate is far over the 1000 pps floor of a source.
	floodRate = 20000
	frameSize = 200
)

// e2e is one test's lab with floodguard protecting the victim.
type e2e struct {
	t              *testing.T
	lab            *lab.Lab
	victim, peer   *lab.Netns
	victimMAC      net.HardwareAddr
	snd            *lab.Sender
	sink4, sink6   *lab.UDPSink
	config         string // the config file's path
	pins, dir      string
	http4, http6   *lab.HTTPServer
	daemon         *lab.Process
	daemonLogShown bool
}

// cfg is what the tests vary in the config file.
type cfg struct {
	TTL   string
	Allow []string
}

// text is the config file: warm-up 3s, snapshots every second, small
// kernel maps, everything in the lab's directories.
func (e *e2e) text(c cfg) string {
	if c.TTL == "" {
		c.TTL = "30s"
	}
	return fmt.Sprintf(`# floodguard end-to-end test
warm_up: %s
bans:
  ttl: %s
  allowlist: [%s]
daemon:
  pin_dir: %s/floodguard
  state_dir: %s/state
  runtime_dir: %s/run
  snapshot_interval: 1s
  max_sources: 131072
`, warmUp, c.TTL, strings.Join(c.Allow, ", "), e.pins, e.dir, e.dir)
}

func (e *e2e) writeConfig(text string) {
	e.t.Helper()
	if err := os.WriteFile(e.config, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// newE2E builds the lab and writes the config (c); the daemon is not
// started yet.
func newE2E(t *testing.T, c cfg) *e2e {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root: runs floodguard in network namespaces")
	}
	if buildErr != nil {
		t.Fatalf("build floodguard: %v", buildErr)
	}
	l, err := lab.New()
	if errors.Is(err, lab.ErrNotPermitted) {
		skipOrFail(t, "needs root: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("clean up the lab: %v", err)
		}
	})
	e := &e2e{t: t, lab: l, dir: l.Dir(), config: filepath.Join(l.Dir(), "floodguard.yaml")}
	check := func(err error) {
		t.Helper()
		if errors.Is(err, lab.ErrNotPermitted) {
			skipOrFail(t, "needs root: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	e.victim, err = l.AddNetns("victim")
	check(err)
	e.peer, err = l.AddNetns("peer")
	check(err)
	check(l.Veth(e.peer, "va", e.victim, "vb"))
	for _, a := range []string{victim4.String() + "/24", victim6.String() + "/64"} {
		check(e.victim.AddAddr("vb", a))
	}
	for _, a := range []string{attacker4.String() + "/24", client4.String() + "/24", other4.String() + "/24", attacker6.String() + "/64", client6.String() + "/64"} {
		check(e.peer.AddAddr("va", a))
	}
	vb, err := e.victim.Interface("vb")
	check(err)
	e.victimMAC = vb.HardwareAddr
	e.snd, err = e.peer.NewSender("va")
	check(err)
	e.sink4, err = e.victim.ListenUDP(netip.AddrPortFrom(victim4, sinkPort))
	check(err)
	e.sink6, err = e.victim.ListenUDP(netip.AddrPortFrom(victim6, sinkPort))
	check(err)
	e.http4, err = e.victim.ServeHTTP(netip.AddrPortFrom(victim4, 80))
	check(err)
	e.http6, err = e.victim.ServeHTTP(netip.AddrPortFrom(victim6, 80))
	check(err)
	e.pins, err = l.BPFFS()
	check(err)
	e.writeConfig(e.text(c))
	return e
}

// start runs `floodguard run` in the victim namespace and waits until it
// has attached and answers on its control socket.
func (e *e2e) start() *lab.Process {
	e.t.Helper()
	p := e.spawn(fgBin, "run", "--interface", "vb", "--config", e.config, "--log-format", "json")
	e.daemon = p
	if _, _, err := p.Log.WaitEvent(0, 10*time.Second, "attached", nil); err != nil {
		e.t.Fatalf("daemon did not attach: %v\n%s", err, p.Log)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, stderr, err := e.fg("status")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("daemon does not answer: %v: %s", err, stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// spawn starts prog in the victim namespace; if the test fails, the
// process is killed and its log shown (once per test).
func (e *e2e) spawn(prog string, args ...string) *lab.Process {
	e.t.Helper()
	p, err := e.victim.Start(prog, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if e.t.Failed() && !e.daemonLogShown {
			e.daemonLogShown = true
			p.Kill()
			e.t.Logf("daemon log:\n%s", p.Log)
		}
	})
	return p
}

// waitWarm waits for the end of the warm-up.
func (e *e2e) waitWarm(p *lab.Process) lab.Entry {
	e.t.Helper()
	ev, _, err := p.Log.WaitEvent(0, warmUp+5*time.Second, "warmed_up", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// fg runs an operator command against the test's config.
func (e *e2e) fg(args ...string) (stdout, stderr string, err error) {
	return e.fgAs(nil, args...)
}

// fgAs runs an operator command, under prefix (e.g. setpriv ...) if any.
func (e *e2e) fgAs(prefix []string, args ...string) (stdout, stderr string, err error) {
	argv := append(append(prefix, fgBin), append(args, "--config", e.config)...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var o, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &se
	err = cmd.Run()
	return o.String(), se.String(), err
}

// bans lists the rules with `floodguard bans -o json`.
func (e *e2e) bans() []daemon.Ban {
	e.t.Helper()
	out, stderr, err := e.fg("bans", "-o", "json")
	if err != nil {
		e.t.Fatalf("floodguard bans: %v: %s", err, stderr)
	}
	var bans []daemon.Ban
	if err := json.Unmarshal([]byte(out), &bans); err != nil {
		e.t.Fatalf("floodguard bans -o json: %v: %q", err, out)
	}
	return bans
}

func findBan(bans []daemon.Ban, target string) (daemon.Ban, bool) {
	for _, b := range bans {
		if b.Target == target {
			return b, true
		}
	}
	return daemon.Ban{}, false
}

func (e *e2e) status() daemon.Status {
	e.t.Helper()
	out, stderr, err := e.fg("status", "-o", "json")
	if err != nil {
		e.t.Fatalf("floodguard status: %v: %s", err, stderr)
	}
	var s daemon.Status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		e.t.Fatalf("floodguard status -o json: %v: %q", err, out)
	}
	return s
}

// udp returns UDP frames from src to the victim's sink of src's family.
func (e *e2e) udp(src netip.Addr) lab.Frames {
	e.t.Helper()
	dst := victim4
	if src.Is6() {
		dst = victim6
	}
	fr, err := lab.UDPFrames(lab.Packet{SrcMAC: e.snd.MAC, DstMAC: e.victimMAC, Src: src, Dst: dst, SrcPort: 40000, DstPort: sinkPort, Size: frameSize})
	if err != nil {
		e.t.Fatal(err)
	}
	return fr
}

func (e *e2e) sink(src netip.Addr) *lab.UDPSink {
	if src.Is6() {
		return e.sink6
	}
	return e.sink4
}

// flood sends frames at rate for d and returns what was sent.
func (e *e2e) flood(fr lab.Frames, rate float64, d time.Duration) lab.FloodStats {
	e.t.Helper()
	st, err := e.snd.Flood(context.Background(), lab.Flood{Frames: fr, Rate: rate, Duration: d})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("flood: %d frames in %v (%.0f/s), %d refused by the interface", st.Sent, st.End.Sub(st.Start).Round(time.Millisecond), st.Rate(), st.Dropped)
	return st
}

// probeFrames is how many frames a probe sends.
const probeFrames = 500

// probe sends probeFrames UDP frames from src at a gentle pace and returns
// how many reached the victim's sink.
func (e *e2e) probe(src netip.Addr) uint64 {
	e.t.Helper()
	sink := e.sink(src)
	before := sink.Received(src)
	st, err := e.snd.Flood(context.Background(), lab.Flood{Frames: e.udp(src), Rate: 5000, Duration: probeFrames * time.Second / 5000})
	if err != nil {
		e.t.Fatal(err)
	}
	if st.Sent != probeFrames {
		e.t.Fatalf("probe: sent %d of %d frames", st.Sent, probeFrames)
	}
	return sink.Settle(src, 300*time.Millisecond, 3*time.Second) - before
}

func (e *e2e) client(local netip.Addr) *lab.Client {
	e.t.Helper()
	srv := e.http4
	if local.Is6() {
		srv = e.http6
	}
	c, err := e.peer.StartClient(lab.ClientOptions{URL: srv.URL, Local: local, Rate: 20, Timeout: time.Second, MaxDuration: time.Minute})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func isEvent(target string) func(lab.Entry) bool {
	return func(en lab.Entry) bool { return en.Str("target") == target }
}

// decided is when the detector decided an event: the end of its tick.
func decided(t *testing.T, en lab.Entry) time.Time {
	t.Helper()
	at, ok := en.TimeField("tick_end")
	if !ok {
		t.Fatalf("event without tick_end: %s", en.Line)
	}
	return at
}

// installed is when a ban's rule was in the kernel: its tick's end plus
// the rule write.
func installed(t *testing.T, ban lab.Entry) time.Time {
	return decided(t, ban).Add(time.Duration(ban.Num("rule_write_ms") * float64(time.Millisecond)))
}

// waitBan waits for the ban of src's address, at most two ticks after
// start (and a little for the log line to arrive), and returns it.
func waitBan(t *testing.T, d *lab.Process, mark int, src netip.Addr, start time.Time) lab.Entry {
	t.Helper()
	target := netip.PrefixFrom(src, src.BitLen()).String()
	ban, _, err := d.Log.WaitEvent(mark, time.Until(start.Add(2*tick+time.Second)), "ban", isEvent(target))
	if err != nil {
		t.Fatalf("flood from %v not banned: %v", src, err)
	}
	if after := installed(t, ban).Sub(start); after > 2*tick {
		t.Errorf("%v banned %v after its flood started, later than two ticks (%v)", src, after, 2*tick)
	} else {
		t.Logf("%v banned, rule in the kernel %v after its flood started", src, after.Round(time.Millisecond))
	}
	return ban
}
