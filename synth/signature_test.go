package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestSignatureScenarios writes every signature scenario, reads it back and
// checks what detector tests of signature rules rely on, measured from the
// capture: the common properties of every scenario, the benign services,
// whether a port-and-length signature separates each attack from all benign
// traffic, and each scenario's own shape.
func TestSignatureScenarios(t *testing.T) {
	tests := []struct {
		scenario Scenario
		check    func(t *testing.T, c *capture)
	}{
		{ReflectionMix, checkReflectionMix},
		{UDPBotnet, checkBotnet},
		{SpoofedSYNServed, checkServedSYN},
	}
	if len(tests) != len(SignatureScenarios()) {
		t.Fatalf("%d signature scenarios tested, %d exist", len(tests), len(SignatureScenarios()))
	}
	for _, tt := range tests {
		t.Run(string(tt.scenario), func(t *testing.T) {
			t.Parallel()
			c := load(t, tt.scenario, Options{Seed: 1, Scale: testScale})
			checkCommon(t, c)
			checkServices(t, c)
			checkAttackSources(t, c)
			tt.check(t, c)
		})
	}
}

// matches reports whether p matches the signature an attack's labels give:
// its protocol, its source or destination port and its IP length range.
func matches(a *Attack, p *pkt) bool {
	return p.class == a.Protocol &&
		(a.UDPSrcPort == 0 || p.sport == a.UDPSrcPort) &&
		(a.DstPort == 0 || p.dport == a.DstPort) &&
		(a.IPLen == nil || a.IPLen.Contains(uint16(p.ipLen)))
}

// checkServices checks the benign services (resolvers included): every
// source sends from the capture start, always on the service's port, with
// lengths in the labelled ranges.
func checkServices(t *testing.T, c *capture) {
	l := c.labels
	firstAttack := l.End
	for _, a := range l.Attacks {
		if a.Start.Before(firstAttack) {
			firstAttack = a.Start
		}
	}
	for _, s := range l.BenignServices() {
		if len(s.Sources) == 0 || !slices.IsSortedFunc(s.Sources, netip.Addr.Compare) {
			t.Errorf("service %s: sources %v", s.Name, s.Sources)
		}
		first := map[netip.Addr]time.Duration{}
		for i := range c.pkts {
			p := &c.pkts[i]
			if _, ok := slices.BinarySearchFunc(s.Sources, p.src, netip.Addr.Compare); !ok {
				continue
			}
			if !l.IsBenign(p.src) || l.IsAttacker(p.src) {
				t.Fatalf("service %s: source %v is not benign", s.Name, p.src)
			}
			if _, seen := first[p.src]; !seen {
				first[p.src] = p.t
			}
			if p.class != s.Protocol || s.SrcPort != 0 && p.sport != s.SrcPort || s.DstPort != 0 && p.dport != s.DstPort {
				t.Fatalf("service %s: %v sends %s %d -> %d", s.Name, p.src, p.class, p.sport, p.dport)
			}
			if !slices.ContainsFunc(s.IPLens, func(r LenRange) bool { return r.Contains(uint16(p.ipLen)) }) {
				t.Fatalf("service %s: %v sends %d bytes of IP, outside %v", s.Name, p.src, p.ipLen, s.IPLens)
			}
		}
		for _, a := range s.Sources {
			at, ok := first[a]
			if !ok || !l.Start.Add(at).Before(firstAttack) {
				t.Errorf("service %s: %v first sends at %v (sent %v), attack starts at %v", s.Name, a, at, ok, firstAttack.Sub(l.Start))
			}
		}
	}
}

// checkAttackSources checks that every listed attack source sends, and
// only packets matching its attack's signature.
func checkAttackSources(t *testing.T, c *capture) {
	l := c.labels
	for k := range l.Attacks {
		a := &l.Attacks[k]
		sent := map[netip.Addr]int{}
		for i := range c.pkts {
			p := &c.pkts[i]
			if attackOf(l, p) != k {
				continue
			}
			if !matches(a, p) {
				t.Fatalf("attack %d (%s %s): packet from %v %s %d -> %d, %d bytes of IP", k, a.Kind, a.Service, p.src, p.class, p.sport, p.dport, p.ipLen)
			}
			sent[p.src]++
		}
		for _, s := range a.Sources {
			if sent[s] == 0 {
				t.Errorf("attack %d (%s %s): listed source %v never sends", k, a.Kind, a.Service, s)
			}
		}
		if len(a.Sources) > 0 && len(sent) != len(a.Sources) {
			t.Errorf("attack %d: %d sources send, %d listed", k, len(sent), len(a.Sources))
		}
	}
}

// benignMatching counts the benign packets matching attack a's signature,
// before and during its window.
func benignMatching(c *capture, a *Attack) (before, during int) {
	for i := range c.pkts {
		p := &c.pkts[i]
		if !c.labels.IsBenign(p.src) || !matches(a, p) {
			continue
		}
		switch at := c.labels.Start.Add(p.t); {
		case at.Before(a.Start):
			before++
		case a.Contains(at):
			during++
		}
	}
	return before, during
}

func checkReflectionMix(t *testing.T, c *capture) {
	l := c.labels
	svcs := mixServices()
	if len(l.Attacks) != len(svcs) {
		t.Fatalf("%d attacks labelled, want one per service (%d)", len(l.Attacks), len(svcs))
	}
	ev := l.Attacks[0].Window
	mid := ev.Start.Add(ev.End.Sub(ev.Start) / 2).Truncate(time.Second)
	opt := Options{Scale: testScale, FloodScale: 1}
	overlap := false
	for k, s := range svcs {
		a := &l.Attacks[k]
		if a.Kind != KindReflection || a.Service != s.name || a.UDPSrcPort != s.port || a.Protocol != "udp" {
			t.Errorf("attack %d: %s %s port %d %s, want reflection %s port %d udp", k, a.Kind, a.Service, a.UDPSrcPort, a.Protocol, s.name, s.port)
		}
		if want := opt.floodCount(s.base, s.floor); len(a.Sources) != want {
			t.Errorf("%s: %d reflectors, want %d", s.name, len(a.Sources), want)
		}
		want := ev
		if s.late {
			want.Start = mid
		}
		if a.Window != want {
			t.Errorf("%s: window %v, want %v", s.name, a.Window, want)
		}
		checkRate(t, c, k, a.Window, a.PPS, 0.1)
		if before, during := benignMatching(c, a); before+during > 0 {
			t.Errorf("%s: %d benign packets match udp sport %d len %d-%d", s.name, before+during, a.UDPSrcPort, a.IPLen.Min, a.IPLen.Max)
		}
		for _, p := range a.Prefixes {
			overlap = overlap || l.BenignOverlaps(p)
		}
		// Per-reflector rates stay in the service's range.
		secs := a.End.Sub(a.Start).Seconds()
		n := map[netip.Addr]int{}
		for i := range c.pkts {
			if attackOf(l, &c.pkts[i]) == k {
				n[c.pkts[i].src]++
			}
		}
		for src, m := range n {
			if pps := float64(m) / secs; pps < 0.7*s.ppsLo || pps > 1.2*s.ppsHi {
				t.Errorf("%s reflector %v averages %.1f pps, want %v-%v", s.name, src, pps, s.ppsLo, s.ppsHi)
			}
		}
	}
	if !overlap {
		t.Errorf("no reflector /24 holds a benign client: prefix bans would be harmless")
	}
	// The benign servers on the reflected ports are there to be spared.
	if s := l.BenignServices(); len(s) != 2 || s[0].Name != "dns" || s[1].Name != "ntp" || len(s[1].Sources) != ntpServers {
		t.Errorf("services %+v, want the resolvers and %d NTP servers", s, ntpServers)
	}
}

func checkBotnet(t *testing.T, c *capture) {
	l := c.labels
	a := onlyAttack(t, l, KindBotnet, "udp")
	want := Options{Scale: testScale, FloodScale: 1}.floodCount(botnetBots, botnetFloor)
	if len(a.Sources) != want || a.DstPort != 443 || a.UDPSrcPort != 0 {
		t.Errorf("%d bots to port %d (sport %d), want %d to 443", len(a.Sources), a.DstPort, a.UDPSrcPort, want)
	}
	v6 := 0
	for _, s := range a.Sources {
		if s.Is6() {
			v6++
		}
	}
	if v6 != want/10 {
		t.Errorf("%d IPv6 bots of %d, want %d", v6, want, want/10)
	}
	if *a.IPLen != (LenRange{88, 168}) {
		t.Errorf("IP lengths %v, want 88-168", *a.IPLen)
	}
	checkRate(t, c, 0, a.Window, a.PPS, 0.05)
	// Bots are as quiet as ordinary clients.
	type srcTick struct {
		a    netip.Addr
		tick int
	}
	n := map[srcTick]int{}
	for i := range c.pkts {
		if p := &c.pkts[i]; l.IsAttacker(p.src) {
			n[srcTick{p.src, p.tick()}]++
		}
	}
	for k, m := range n {
		if m > 4 {
			t.Errorf("bot %v sent %d packets in tick %d", k.a, m, k.tick)
		}
	}
	overlap := false
	for _, p := range a.Prefixes {
		overlap = overlap || l.BenignOverlaps(p)
	}
	if !overlap {
		t.Errorf("no bot /24 holds a benign client: prefix bans would be harmless")
	}
	// A length range separates the bots from the QUIC visitors on the
	// same port, though port 443 alone does not.
	if before, during := benignMatching(c, &a); before+during > 0 {
		t.Errorf("%d benign packets match udp dport 443 len %d-%d", before+during, a.IPLen.Min, a.IPLen.Max)
	}
	port := Attack{Window: a.Window, Protocol: "udp", DstPort: 443}
	if before, during := benignMatching(c, &port); before == 0 || during == 0 {
		t.Errorf("benign UDP to 443: %d packets before the attack, %d during it", before, during)
	}
	quic := l.BenignServices()[1]
	if want := (Options{Scale: testScale}).count(quicVisitors, quicVisitorsFloor); quic.Name != "quic" || len(quic.Sources) != want {
		t.Errorf("services %+v, want the QUIC visitors", l.Services)
	}
}

func checkServedSYN(t *testing.T, c *capture) {
	checkSpoofed(t, c) // the same forged sources, at the same rate
	l := c.labels
	a := &l.Attacks[0]
	if a.DstPort != 443 || *a.IPLen != (LenRange{60, 60}) {
		t.Errorf("attack to port %d, lengths %v; want 443, 60", a.DstPort, *a.IPLen)
	}
	for i := range c.pkts {
		if p := &c.pkts[i]; l.IsAttacker(p.src) && p.tcpFlags != flagSYN {
			t.Fatalf("attack packet from %v with flags %#x", p.src, p.tcpFlags)
		}
	}
	// The narrowest signature of the flood (tcp dport 443, SYN alone,
	// length 60) matches the benign clients' handshakes too.
	before, during := benignMatching(c, a)
	if before == 0 || during == 0 {
		t.Errorf("benign SYNs matching the flood's signature: %d before the attack, %d during it", before, during)
	}
}

// TestSignatureDeterministic: equal options give identical bytes and
// labels; another seed gives another capture.
func TestSignatureDeterministic(t *testing.T) {
	digest := func(t *testing.T, s Scenario, opt Options) ([sha256.Size]byte, Labels) {
		h := sha256.New()
		l, err := Write(h, s, opt)
		if err != nil {
			t.Fatalf("Write(%s, %+v): %v", s, opt, err)
		}
		return [sha256.Size]byte(h.Sum(nil)), l
	}
	for _, s := range SignatureScenarios() {
		t.Run(string(s), func(t *testing.T) {
			opt := Options{Seed: 11, Scale: 0.1, WarmUp: 10 * time.Second, FloodScale: 0.5}
			a, la := digest(t, s, opt)
			b, lb := digest(t, s, opt)
			if a != b || !reflect.DeepEqual(la, lb) {
				t.Errorf("same options, different bytes or labels")
			}
			opt.Seed++
			if c, _ := digest(t, s, opt); a == c {
				t.Errorf("seeds 11 and 12 give identical captures")
			}
		})
	}
}

// TestSignatureChecksums samples the new frame shapes (reflected and bot
// datagrams, QUIC, NTP, SYNs with options) for valid checksums.
func TestSignatureChecksums(t *testing.T) {
	for _, s := range SignatureScenarios() {
		t.Run(string(s), func(t *testing.T) {
			checked := map[gopacket.LayerType]int{}
			i := 0
			eachWritten(t, s, Options{Seed: 5, Scale: 0.05, WarmUp: 10 * time.Second, SnapLen: MaxSnapLen}, func(r record) {
				if i%5 == 0 {
					verifyChecksums(t, rfc768Zero(r.data), checked)
				}
				i++
			})
			if checked[layers.LayerTypeIPv4] == 0 || checked[layers.LayerTypeUDP] == 0 || checked[layers.LayerTypeTCP] == 0 {
				t.Errorf("checked %v", checked)
			}
			t.Logf("checked %v", checked)
		})
	}
}

// rfc768Zero rewrites a UDP checksum of ffff, the form RFC 768 sends a
// computed zero in, as 0000, what gopacket computes (it does not apply the
// rule), so that verifyChecksums compares like with like; one datagram in
// 65536 has it.
func rfc768Zero(frame []byte) []byte {
	off, proto := ethHeaderLen+ipv4HeaderLen, frame[ethHeaderLen+9]
	if frame[12] == 0x86 && frame[13] == 0xdd {
		off, proto = ethHeaderLen+ipv6HeaderLen, frame[ethHeaderLen+6]
	}
	if proto != protoUDP || len(frame) < off+udpHeaderLen || frame[off+6] != 0xff || frame[off+7] != 0xff {
		return frame
	}
	f := bytes.Clone(frame)
	f[off+6], f[off+7] = 0, 0
	return f
}

// TestSignatureOptions: BotnetPort moves the botnet, FloodScale scales the
// numbers of reflectors and bots down to their floors, and nothing changes
// the per-source rates.
func TestSignatureOptions(t *testing.T) {
	c := load(t, UDPBotnet, Options{Seed: 2, Scale: 0.05, WarmUp: 10 * time.Second, BotnetPort: 27015})
	a := onlyAttack(t, c.labels, KindBotnet, "udp")
	if a.DstPort != 27015 {
		t.Errorf("botnet port %d, want 27015", a.DstPort)
	}
	for i := range c.pkts {
		p := &c.pkts[i]
		if c.labels.IsAttacker(p.src) && p.dport != 27015 {
			t.Fatalf("bot packet to port %d", p.dport)
		}
		if c.labels.IsBenign(p.src) && p.dport == 27015 {
			t.Fatalf("benign packet to the botnet port")
		}
	}

	for _, tt := range []struct {
		scale, floodScale float64
		bots              int
	}{
		{1, 0.5, 15000}, {0.3, 0.5, 4500}, {0.3, 0.01, botnetFloor}, {4, 1, 120000},
	} {
		o := Options{Scale: tt.scale, FloodScale: tt.floodScale}
		if n := o.floodCount(botnetBots, botnetFloor); n != tt.bots {
			t.Errorf("scale %v, flood scale %v: %d bots, want %d", tt.scale, tt.floodScale, n, tt.bots)
		}
	}

	small := Options{Seed: 1, Scale: 0.01, WarmUp: 15 * time.Second, FloodScale: 0.08, HeavyClients: 1}
	_, l := write(t, ReflectionMix, small)
	for k, s := range mixServices() {
		a := l.Attacks[k]
		if len(a.Sources) != s.floor || a.SourcePPS != (s.ppsLo+s.ppsHi)/2 {
			t.Errorf("%s at the smallest size: %d reflectors at %v pps, want the floor %d at %v", s.name, len(a.Sources), a.SourcePPS, s.floor, (s.ppsLo+s.ppsHi)/2)
		}
	}
	if l.FloodScale != 0.08 || l.WarmUp != "15s" || len(l.HeavyClients) != 1 {
		t.Errorf("labels: flood scale %v, warm-up %q, heavy clients %v", l.FloodScale, l.WarmUp, l.HeavyClients)
	}
	if l.Attacks[0].Start.Sub(l.Start) != 15*time.Second {
		t.Errorf("attack at %v, want 15 s", l.Attacks[0].Start.Sub(l.Start))
	}
}

// TestSignatureLabelsJSON: the new label fields survive JSON, under their
// documented names, and the helpers work on decoded labels.
func TestSignatureLabelsJSON(t *testing.T) {
	for _, s := range SignatureScenarios() {
		t.Run(string(s), func(t *testing.T) {
			_, l := write(t, s, Options{Seed: 4, Scale: 0.05, WarmUp: 10 * time.Second})
			b, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			var back Labels
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l, back) {
				t.Errorf("labels changed in a JSON round trip")
			}
			var raw struct {
				Attacks  []map[string]any `json:"attacks"`
				Services []map[string]any `json:"services"`
			}
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			keys := map[Scenario][]string{ReflectionMix: {"service", "udp_src_port", "ip_len"}, UDPBotnet: {"dst_port", "ip_len"}, SpoofedSYNServed: {"dst_port", "ip_len"}}[s]
			for _, k := range keys {
				if _, ok := raw.Attacks[0][k]; !ok {
					t.Errorf("no %q in attack %v", k, raw.Attacks[0])
				}
			}
			if s != SpoofedSYNServed && (len(raw.Services) != 1 || raw.Services[0]["ip_lens"] == nil) {
				t.Errorf("services %v", raw.Services)
			}
			for _, svc := range back.BenignServices() {
				for _, a := range svc.Sources {
					if !back.IsBenign(a) || back.IsAttacker(a) {
						t.Errorf("decoded labels: %s source %v not benign", svc.Name, a)
					}
				}
			}
			for _, a := range back.Attacks {
				for _, src := range a.Sources {
					if !back.IsAttacker(src) || back.IsBenign(src) {
						t.Errorf("decoded labels: %v not an attacker", src)
					}
				}
			}
		})
	}
}
