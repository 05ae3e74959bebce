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
	"syscall"
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
	p, err := e.victim.Start(fgBin, "run", "--interface", "vb", "--config", e.config, "--log-format", "json")
	if err != nil {
		e.t.Fatal(err)
	}
	e.daemon = p
	e.t.Cleanup(func() {
		if e.t.Failed() && !e.daemonLogShown {
			e.daemonLogShown = true
			p.Kill()
			e.t.Logf("daemon log:\n%s", p.Log)
		}
	})
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

// TestE2EFloodIPv4: a single-source UDP flood is banned within two ticks
// of its start and dropped in the kernel, while a benign client keeps
// being served. The flood starts just after a tick begins.
func TestE2EFloodIPv4(t *testing.T) { testSingleSourceFlood(t, attacker4, client4, 0) }

// TestE2EFloodIPv6: the same over IPv6, the flood starting late in a tick
// (its first tick sees little of it).
func TestE2EFloodIPv6(t *testing.T) {
	testSingleSourceFlood(t, attacker6, client6, 900*time.Millisecond)
}

// testSingleSourceFlood floods from attacker starting phase after a tick.
func testSingleSourceFlood(t *testing.T, attacker, client netip.Addr, phase time.Duration) {
	e := newE2E(t, cfg{})
	d := e.start()
	c := e.client(client)
	// warmed_up is logged as a tick ends: the phase counts from there.
	warm := e.waitWarm(d)
	time.Sleep(time.Until(warm.Read.Add(phase)))
	mark := d.Log.Len()

	st := e.flood(e.udp(attacker), floodRate, 4*time.Second)
	target := netip.PrefixFrom(attacker, attacker.BitLen()).String()
	ban := waitBan(t, d, mark, attacker, st.Start)
	attack, _, err := d.Log.WaitEvent(mark, 0, "attack_start", isEvent(attacker.String()))
	if err != nil {
		t.Fatalf("no attack_start for %v: %v", attacker, err)
	}
	if decided(t, attack).After(decided(t, ban)) {
		t.Errorf("attack_start decided after the ban: %s", attack.Line)
	}
	if ban.Num("pps") < 1000 {
		t.Errorf("ban at %v pps", ban.Num("pps"))
	}
	during := c.Stats(st.Start, st.End)
	all := c.Stop()
	t.Logf("benign client during the flood: %v; overall: %v", during, all)
	// Some 80 requests at 20/s; fewer only on a starved machine.
	if during.Requests < 40 {
		t.Errorf("benign client made only %d requests during the flood", during.Requests)
	}
	if during.SuccessRate() < 0.98 || all.SuccessRate() < 0.98 {
		t.Errorf("benign client not served: %v during the flood, %v overall", during, all)
	}

	// The rule drops in the kernel: a further burst from the attacker
	// reaches nothing and is counted on the rule.
	before, ok := findBan(e.bans(), target)
	if !ok || before.Origin != "detector" || before.TimeLeft <= 0 {
		t.Fatalf("floodguard bans: %+v, want a live detector rule on %s", e.bans(), target)
	}
	if got := e.probe(attacker); got != 0 {
		t.Errorf("%d of %d frames from the banned %v got through", got, probeFrames, attacker)
	}
	now, _ := findBan(e.bans(), target)
	if now.Packets-before.Packets != probeFrames {
		t.Errorf("rule counted %d dropped frames of the probe, want %d", now.Packets-before.Packets, probeFrames)
	}
	if now.Packets < st.Sent/2 {
		t.Errorf("rule dropped %d packets of a flood of %d", now.Packets, st.Sent)
	}
	// Only the attacker was banned; the client and the host were not.
	for _, b := range d.Log.Events("ban") {
		if b.Str("target") != target {
			t.Errorf("unexpected ban: %s", b.Line)
		}
	}
}

// TestE2ESpoofedSYNFlood: a SYN flood from a new random source per packet
// is reported as an aggregate attack, and nothing is banned: no single
// source or prefix explains it.
func TestE2ESpoofedSYNFlood(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.start()
	c := e.client(client4)
	e.waitWarm(d)
	mark := d.Log.Len()

	fr, err := lab.SpoofedSYNFrames(lab.Packet{SrcMAC: e.snd.MAC, DstMAC: e.victimMAC, Dst: victim4, DstPort: 80}, spoofed, 1)
	if err != nil {
		t.Fatal(err)
	}
	st := e.flood(fr, 25000, 5*time.Second)
	attack, _, err := d.Log.WaitEvent(mark, 2*time.Second, "attack_start", func(en lab.Entry) bool { return en.Str("scope") == "aggregate" })
	if err != nil {
		t.Fatalf("spoofed SYN flood not reported as an aggregate attack: %v", err)
	}
	t.Logf("aggregate attack (class %s) reported %v after the flood started: %s", attack.Str("class"), attack.Time().Sub(st.Start), attack.Str("message"))
	// Give the detector two more ticks to (wrongly) ban something.
	time.Sleep(2 * tick)
	for _, b := range d.Log.Events("ban") {
		t.Errorf("pointless ban during a spoofed flood: %s", b.Line)
	}
	if bans := e.bans(); len(bans) != 0 {
		t.Errorf("floodguard bans lists %+v, want none", bans)
	}
	t.Logf("benign client during the flood: %v", c.Stats(st.Start, st.End))
}

// TestE2EAllowlistedFlood: an allowlisted source that floods is seen but
// never banned, and its traffic keeps flowing.
func TestE2EAllowlistedFlood(t *testing.T) {
	e := newE2E(t, cfg{Allow: []string{attacker4.String()}})
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	e.flood(e.udp(attacker4), floodRate, 3*time.Second)
	attack, _, err := d.Log.WaitEvent(mark, time.Second, "attack_start", isEvent(attacker4.String()))
	if err != nil {
		t.Errorf("the allowlisted flood is not even reported: %v", err)
	} else if !strings.Contains(attack.Str("message"), "allowlisted") {
		t.Errorf("attack_start does not say why it was not banned: %s", attack.Line)
	}
	if bans := d.Log.Events("ban"); len(bans) != 0 {
		t.Errorf("allowlisted source banned: %s", bans[0].Line)
	}
	if bans := e.bans(); len(bans) != 0 {
		t.Errorf("floodguard bans lists %+v, want none", bans)
	}
	if got := e.probe(attacker4); got != probeFrames {
		t.Errorf("%d of %d frames from the allowlisted %v got through", got, probeFrames, attacker4)
	}
}

// TestE2ERestartKeepsBans: killed with SIGKILL, the daemon leaves its rule
// dropping in the kernel; restarted, it restores its baselines and bans
// from the snapshot and adopts the program.
func TestE2ERestartKeepsBans(t *testing.T) {
	e := newE2E(t, cfg{TTL: "1m"})
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	st := e.flood(e.udp(attacker4), floodRate, 2*time.Second)
	target := attacker4.String() + "/32"
	waitBan(t, d, mark, attacker4, st.Start)
	// Snapshots are written every second (snapshot_interval): let one
	// include the ban.
	time.Sleep(2500 * time.Millisecond)
	before := e.status()
	if err := d.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.Wait(5 * time.Second)

	// Daemon gone: the rule is still in the pinned maps and drops.
	b, ok := findBan(e.bans(), target)
	if !ok || b.TimeLeft <= 0 {
		t.Fatalf("after SIGKILL floodguard bans lists %+v, want %s live", e.bans(), target)
	}
	if got := e.probe(attacker4); got != 0 {
		t.Errorf("with the daemon killed, %d of %d frames from %v got through", got, probeFrames, attacker4)
	}

	d = e.start()
	restored, _, err := d.Log.WaitEvent(0, 5*time.Second, "snapshot_restored", nil)
	if err != nil {
		t.Fatalf("restart did not restore the snapshot: %v", err)
	}
	if restored.Num("bans") < 1 || restored.Num("keys") < 1 {
		t.Errorf("restored %v keys and %v bans, want the ban and the baselines", restored.Num("keys"), restored.Num("bans"))
	}
	if att, _, _ := d.Log.WaitEvent(0, 0, "attached", nil); !att.Bool("adopted") {
		t.Errorf("restarted daemon did not adopt the pinned program: %s", att.Line)
	}
	// The restored detector is past its warm-up at its first tick, and
	// counts on from the snapshot (at most a second and a tick older
	// than the status read before the kill).
	warm := e.waitWarm(d)
	if warm.Num("ticks")+2 < float64(before.Ticks) {
		t.Errorf("warm-up over at tick %v, before the restart it was at tick %d: the baselines started over", warm.Num("ticks"), before.Ticks)
	}
	if d := warm.Read.Sub(restored.Read); d > 2*tick {
		t.Errorf("warm-up over only %v after the restart", d)
	}
	after := e.status()
	if after.BaselinePPS <= 0 {
		t.Errorf("no baseline after the restart: %+v", after)
	}
	b, ok = findBan(e.bans(), target)
	if !ok || b.Origin != "detector" || b.TimeLeft <= 0 {
		t.Errorf("after the restart floodguard bans lists %+v, want %s from the detector", e.bans(), target)
	}
	if got := e.probe(attacker4); got != 0 {
		t.Errorf("after the restart, %d of %d frames from %v got through", got, probeFrames, attacker4)
	}
	if ev := d.Log.Events("no_snapshot", "snapshot_bad", "snapshot_unreadable"); len(ev) != 0 {
		t.Errorf("restart: %s", ev[0].Line)
	}
	// No second warm-up: a new flood is banned at once.
	mark = d.Log.Len()
	st = e.flood(e.udp(other4), floodRate, 2*time.Second)
	waitBan(t, d, mark, other4, st.Start)
}

// TestE2ERuleExpiresDaemonStopped: stopped with SIGTERM (rules left in
// place), the daemon's rule keeps dropping and then expires in the kernel
// by itself.
func TestE2ERuleExpiresDaemonStopped(t *testing.T) {
	e := newE2E(t, cfg{TTL: "5s"})
	d := e.start()
	e.waitWarm(d)
	mark := d.Log.Len()
	st := e.flood(e.udp(attacker4), floodRate, 1500*time.Millisecond)
	target := attacker4.String() + "/32"
	waitBan(t, d, mark, attacker4, st.Start)
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(5 * time.Second); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
	if _, _, err := d.Log.WaitEvent(0, 0, "stopped", nil); err != nil {
		t.Errorf("no stopped event: %v", err)
	}

	b, ok := findBan(e.bans(), target)
	if !ok || b.TimeLeft < time.Second {
		t.Fatalf("after SIGTERM floodguard bans lists %+v, want %s with time left", e.bans(), target)
	}
	expiry := time.Now().Add(b.TimeLeft)
	if got := e.probe(attacker4); got != 0 {
		t.Errorf("daemon stopped, rule live: %d of %d frames from %v got through", got, probeFrames, attacker4)
	}
	time.Sleep(time.Until(expiry) + 200*time.Millisecond)
	if got := e.probe(attacker4); got != probeFrames {
		t.Errorf("rule expired: %d of %d frames from %v got through", got, probeFrames, attacker4)
	}
	b, ok = findBan(e.bans(), target)
	if ok && b.TimeLeft > 0 {
		t.Errorf("floodguard bans shows %s with %v left after its expiry", target, b.TimeLeft)
	}
	out, stderr, err := e.fg("bans")
	if err != nil {
		t.Fatalf("floodguard bans: %v: %s", err, stderr)
	}
	if ok && !strings.Contains(out, "expired") || !strings.Contains(out, "daemon not running") {
		t.Errorf("floodguard bans with the daemon stopped:\n%s", out)
	}
	t.Logf("floodguard bans:\n%s", out)
}

// TestE2EReloadBrokenConfig: SIGHUP with a config that does not parse
// leaves the daemon running on the old one, saying which key on which line
// is wrong; a valid edit then reloads.
func TestE2EReloadBrokenConfig(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.start()
	e.waitWarm(d)

	good := e.text(cfg{})
	broken := strings.Replace(good, "ttl: 30s", "ttl: soon", 1)
	line := 1 + strings.Count(broken[:strings.Index(broken, "ttl: soon")], "\n")
	e.writeConfig(broken)
	mark := d.Log.Len()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fail, _, err := d.Log.WaitEvent(mark, 3*time.Second, "reload_failed", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("line %d: bans.ttl", line)
	if msg := fail.Str("error"); !strings.Contains(msg, want) {
		t.Errorf("reload_failed says %q, want it to name %q", msg, want)
	}
	s1 := e.status()
	time.Sleep(1500 * time.Millisecond)
	if s2 := e.status(); s2.Ticks <= s1.Ticks || d.Exited() {
		t.Errorf("daemon not ticking after a rejected reload: ticks %d then %d", s1.Ticks, s2.Ticks)
	}

	e.writeConfig(strings.Replace(good, "ttl: 30s", "ttl: 45s", 1))
	mark = d.Log.Len()
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Log.WaitEvent(mark, 3*time.Second, "reloaded", nil); err != nil {
		t.Fatal(err)
	}
	// The new TTL is the one bans get.
	st := e.flood(e.udp(attacker4), floodRate, 1500*time.Millisecond)
	if ban := waitBan(t, d, mark, attacker4, st.Start); ban.Str("ttl") != "45s" {
		t.Errorf("ban after the reload has ttl %q, want 45s", ban.Str("ttl"))
	}
}

// TestE2EOperatorCommands: block, bans (origin and hit counters) and
// unblock against a running daemon; clear failures for a caller who is
// not root and when the daemon is not running.
func TestE2EOperatorCommands(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.start()
	const cidr = "198.19.7.0/24"
	src := netip.MustParseAddr("198.19.7.5")

	out, stderr, err := e.fg("block", cidr, "--ttl", "5m")
	if err != nil || !strings.Contains(out, "blocked "+cidr) {
		t.Fatalf("floodguard block: %v: %q %q", err, out, stderr)
	}
	b, ok := findBan(e.bans(), cidr)
	if !ok || b.Origin != "manual" || b.Scope != "prefix" || b.TimeLeft <= 4*time.Minute || b.TimeLeft > 5*time.Minute {
		t.Fatalf("after block, floodguard bans lists %+v", e.bans())
	}
	if got := e.probe(src); got != 0 {
		t.Errorf("%d of %d frames from blocked %v got through", got, probeFrames, src)
	}
	b, _ = findBan(e.bans(), cidr)
	if b.Packets != probeFrames || b.Bytes != probeFrames*frameSize {
		t.Errorf("rule counted %d packets, %d bytes; want %d, %d", b.Packets, b.Bytes, probeFrames, probeFrames*frameSize)
	}
	table, _, err := e.fg("bans")
	if err != nil || !strings.Contains(table, cidr) || !strings.Contains(table, "manual") || !strings.Contains(table, fmt.Sprint(probeFrames)) {
		t.Errorf("floodguard bans: %v\n%s", err, table)
	}
	if ev, _, err := d.Log.WaitEvent(0, time.Second, "manual_block", isEvent(cidr)); err != nil || !strings.Contains(ev.Str("by"), "uid=0") {
		t.Errorf("block not logged with who asked: %v %s", err, ev.Line)
	}

	// The host itself is never blocked.
	if _, stderr, err := e.fg("block", victim4.String()); err == nil || !strings.Contains(stderr, "allowlist") {
		t.Errorf("blocking the host's own address: %v: %q", err, stderr)
	}

	out, stderr, err = e.fg("unblock", cidr)
	if err != nil || !strings.Contains(out, "unblocked "+cidr) {
		t.Fatalf("floodguard unblock: %v: %q %q", err, out, stderr)
	}
	if b, ok := findBan(e.bans(), cidr); ok {
		t.Errorf("after unblock, floodguard bans still lists %+v", b)
	}
	if got := e.probe(src); got != probeFrames {
		t.Errorf("after unblock %d of %d frames from %v got through", got, probeFrames, src)
	}

	// Not root: refused, saying why.
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed to run as nobody: %v", err)
	}
	nobody := []string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"}
	for _, args := range [][]string{{"status"}, {"block", cidr}} {
		_, stderr, err := e.fgAs(nobody, args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "need root") {
			t.Errorf("floodguard %s as nobody: %v: %q, want exit 1 saying root is needed", args[0], err, stderr)
		}
	}

	// Daemon not running: block says so.
	if err := d.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = e.fg("block", cidr)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr, "not running") {
		t.Errorf("floodguard block with no daemon: %v: %q, want exit 1 saying it is not running", err, stderr)
	}
}
