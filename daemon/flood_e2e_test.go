package daemon_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

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
