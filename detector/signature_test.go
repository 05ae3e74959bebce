package detector

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// sigEnforcer is a data plane with signature rules, as the tests need it:
// it records rules and the exempt set, and drops what they match.
type sigEnforcer struct {
	recEnforcer
	sigs   map[Match]SignatureRule
	exempt []Addr
}

func (s *sigEnforcer) InstallSignature(r SignatureRule) error { s.sigs[r.Match] = r; return nil }
func (s *sigEnforcer) RemoveSignature(m Match) error          { delete(s.sigs, m); return nil }
func (s *sigEnforcer) SetExempt(a []Addr) error               { s.exempt = slices.Clone(a); return nil }

// flow is a group of sources sending one protocol to one port of the
// server with one packet length.
type flow struct {
	addrs        []string
	class        Class
	pps          uint64
	ipLen        uint16
	sport, dport uint16
}

type sigWorld struct {
	t     *testing.T
	eng   *Engine
	enf   *sigEnforcer
	start time.Time
	ticks int
	dst   Addr
}

func newSigWorld(t *testing.T) *sigWorld {
	t.Helper()
	enf := &sigEnforcer{recEnforcer: recEnforcer{rules: map[netip.Prefix]Rule{}}, sigs: map[Match]SignatureRule{}}
	eng, err := New(DefaultConfig(), enf)
	if err != nil {
		t.Fatal(err)
	}
	return &sigWorld{t: t, eng: eng, enf: enf, start: time.Date(2024, 11, 5, 18, 0, 0, 0, time.UTC),
		dst: AddrFrom(netip.MustParseAddr("198.18.0.10"))}
}

// step builds a tick with its features and drops what the enforcer's
// signature rules match (exempt sources pass), as a data plane would.
func (w *sigWorld) step(flows ...flow) []Event {
	w.t.Helper()
	tk := &Tick{Start: w.start.Add(time.Duration(w.ticks) * time.Second), Length: time.Second}
	ports := map[[2]uint16]*PortCount{}
	at := tk.End()
	for _, f := range flows {
		proto := uint8(17)
		if f.class == ClassSYN || f.class == ClassTCP {
			proto = 6
		}
		for _, a := range f.addrs {
			s := Source{Addr: AddrFrom(netip.MustParseAddr(a))}
			if proto == 17 {
				s.UDPSrcPort = f.sport
			}
			s.Packets[f.class], s.Bytes[f.class] = f.pps, f.pps*uint64(f.ipLen+14)
			meta := PacketMeta{Src: s.Addr, Dst: w.dst, Proto: proto, L4: true, SrcPort: f.sport, DstPort: f.dport, Length: f.ipLen, Fragment: FragNone}
			if f.class == ClassSYN {
				meta.TCPFlags = 0x02
			}
			for m, r := range w.enf.sigs {
				if r.Expires.After(at) && m.Matches(&meta) && !slices.Contains(w.enf.exempt, s.Addr) {
					s.DroppedPackets, s.DroppedBytes = f.pps, s.Bytes[f.class]
				}
			}
			tk.Sources = append(tk.Sources, s)
			tk.Total.Add(&s.Counters)
			for i, k := range []PortKind{UDPSrcPort, UDPDstPort} {
				if proto == 6 {
					k += TCPSrcPort
				}
				port := []uint16{f.sport, f.dport}[i]
				pc := ports[[2]uint16{uint16(k), port}]
				if pc == nil {
					pc = &PortCount{Kind: k, Port: port}
					ports[[2]uint16{uint16(k), port}] = pc
				}
				pc.Packets += f.pps
				pc.Bytes += s.Bytes[f.class]
			}
			tk.Features.Lengths[f.class][LengthBucket(f.ipLen)] += f.pps
		}
	}
	for _, pc := range ports {
		tk.Features.Ports = append(tk.Features.Ports, *pc)
	}
	slices.SortFunc(tk.Features.Ports, func(a, b PortCount) int { return int(a.Kind)*65536 + int(a.Port) - int(b.Kind)*65536 - int(b.Port) })
	tk.Features.Dsts = []DstCount{{Addr: w.dst, Packets: tk.Total.TotalPackets()}}
	w.ticks++
	return append([]Event(nil), w.eng.Step(tk)...)
}

// served is the server's normal traffic: web clients, its two resolvers
// answering from UDP 53 and its NTP server from 123, QUIC visitors.
func served() []flow {
	return []flow{
		{addrs: hosts("198.18.16.1", 300), class: ClassTCP, pps: 3, ipLen: 200, sport: 40000, dport: 443},
		{addrs: hosts("198.18.16.1", 300), class: ClassSYN, pps: 1, ipLen: 60, sport: 40000, dport: 443},
		{addrs: []string{"198.18.9.53", "198.18.9.54"}, class: ClassUDP, pps: 5, ipLen: 300, sport: 53, dport: 33000},
		{addrs: []string{"198.18.9.123"}, class: ClassUDP, pps: 2, ipLen: 76, sport: 123, dport: 123},
		{addrs: hosts("198.18.20.1", 50), class: ClassUDP, pps: 4, ipLen: 1250, sport: 50000, dport: 443},
	}
}

func (w *sigWorld) warmUp() {
	for range 70 {
		if evs := w.step(served()...); len(evs) != 0 {
			w.t.Fatalf("benign warm-up raised events: %v", evs)
		}
	}
}

func TestSignatureRules(t *testing.T) {
	for _, tc := range []struct {
		name       string
		attack     flow
		wantTarget string // "" for no signature rule
		wantRate   bool
		wantExempt []string
		wantReason string
	}{
		{"DNS reflection from 2000 reflectors at 12 pps", flow{addrs: hosts("198.19.0.1", 2000), class: ClassUDP, pps: 12, ipLen: 1400, sport: 53, dport: 31000},
			"udp sport 53 → 198.18.0.10", false, []string{"198.18.9.53", "198.18.9.54"}, "covers 100% of the udp excess"},
		{"NTP reflection from 300 reflectors at 80 pps", flow{addrs: spread("198.19.0.7", 300), class: ClassUDP, pps: 80, ipLen: 468, sport: 123, dport: 31000},
			"udp sport 123 → 198.18.0.10", false, []string{"198.18.9.123"}, "udp sport 123"},
		{"botnet of 30000 on UDP 443 beside QUIC visitors", flow{addrs: hosts("198.19.64.1", 30000), class: ClassUDP, pps: 1, ipLen: 100, sport: 41000, dport: 443},
			"udp dport 443 len 64-127 → 198.18.0.10", false, nil, "len 64-127"},
		{"spoofed SYN flood to the served port", flow{addrs: hosts("198.19.128.1", 20000), class: ClassSYN, pps: 2, ipLen: 60, sport: 1024, dport: 443},
			"", false, nil, "no signature narrow enough, nothing dropped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSigWorld(t)
			w.warmUp()
			evs := w.step(append(served(), tc.attack)...)
			sigBans := find(evs, Ban, ScopeSignature)
			starts := find(evs, AttackStart, ScopeAggregate)
			if len(starts) == 0 {
				t.Fatalf("no aggregate attack: %v", evs)
			}
			if !strings.Contains(starts[0].Reason, tc.wantReason) && (len(sigBans) == 0 || !strings.Contains(sigBans[0].Reason, tc.wantReason)) {
				t.Errorf("reasons %q / %v do not say %q", starts[0].Reason, sigBans, tc.wantReason)
			}
			if tc.wantTarget == "" {
				if len(sigBans) != 0 || len(w.enf.sigs) != 0 {
					t.Fatalf("signature rule for a flood no signature separates: %v", sigBans)
				}
				return
			}
			if len(sigBans) != 1 || sigBans[0].Target != tc.wantTarget {
				t.Fatalf("signature bans %v, want one for %q", sigBans, tc.wantTarget)
			}
			if src := find(evs, Ban, ScopeSource); len(src) != 0 {
				t.Errorf("source bans beside the signature: %d", len(src))
			}
			if got := sigBans[0].RatePPS > 0; got != tc.wantRate {
				t.Errorf("rate limit %d, want a rate limit: %v", sigBans[0].RatePPS, tc.wantRate)
			}
			for _, a := range tc.wantExempt {
				if !slices.Contains(w.enf.exempt, AddrFrom(netip.MustParseAddr(a))) {
					t.Errorf("%s not exempt (exempt: %d sources)", a, len(w.enf.exempt))
				}
			}
			for _, e := range w.enf.exempt {
				if strings.HasPrefix(e.String(), "198.19.") {
					t.Fatalf("attacker %s exempt", e)
				}
			}
			// The rule holds while the flood goes on, and lifts after it.
			var unbans []Event
			for range 300 {
				evs := w.step(append(served(), tc.attack)...)
				if len(find(evs, Unban, ScopeSignature)) != 0 {
					t.Fatal("rule lifted while the flood goes on")
				}
				if len(find(evs, Ban, ScopeSource)) != 0 {
					t.Fatal("source bans while the signature holds")
				}
				if len(find(evs, Ban, ScopeSignature)) != 0 {
					break // renewed
				}
			}
			for range 600 {
				unbans = append(unbans, find(w.step(served()...), Unban, ScopeSignature)...)
				if len(unbans) > 0 {
					break
				}
			}
			if len(unbans) != 1 || len(w.enf.sigs) != 0 || len(w.eng.Signatures()) != 0 {
				t.Fatalf("after the flood: unbans %v, rules in the data plane %d", unbans, len(w.enf.sigs))
			}
		})
	}
}

func TestManualSignature(t *testing.T) {
	w := newSigWorld(t)
	m := Match{Proto: 17, SrcPort: Range{Lo: 19, Hi: 19}}
	if err := w.eng.ManualSignature(m, 0, 5*time.Second, w.start); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.ManualSignature(Match{}, 0, time.Minute, w.start); err == nil {
		t.Fatal("a rule with no component accepted")
	}
	if len(w.enf.sigs) != 1 || w.eng.Signatures()[0].Origin != OriginOperator {
		t.Fatalf("rules %v", w.eng.Signatures())
	}
	for range 4 {
		if len(find(w.step(served()...), Unban, ScopeSignature)) != 0 {
			t.Fatal("operator's rule lifted before its TTL")
		}
	}
	var unbans []Event
	for range 3 {
		unbans = append(unbans, find(w.step(served()...), Unban, ScopeSignature)...)
	}
	if len(unbans) != 1 || len(w.eng.Signatures()) != 0 {
		t.Fatalf("after its TTL: %v", unbans)
	}
	if err := w.eng.ManualSignature(m, 100, time.Minute, w.start); err != nil {
		t.Fatal(err)
	}
	if err := w.eng.ManualUnsignature(m); err != nil || len(w.enf.sigs) != 0 || len(w.eng.Signatures()) != 0 {
		t.Fatalf("unblock: %v, %d rules left", err, len(w.enf.sigs))
	}
}

func TestMatchMatches(t *testing.T) {
	src := AddrFrom(netip.MustParseAddr("198.18.5.5"))
	dst := AddrFrom(netip.MustParseAddr("198.18.0.10"))
	udp := PacketMeta{Src: src, Dst: dst, Proto: 17, L4: true, SrcPort: 123, DstPort: 40000, Length: 468, Fragment: FragNone}
	syn := PacketMeta{Src: src, Dst: dst, Proto: 6, L4: true, SrcPort: 5000, DstPort: 443, TCPFlags: 0x02, Length: 60, Fragment: FragNone}
	later := PacketMeta{Src: src, Dst: dst, Proto: 17, Length: 1000, Fragment: FragLater}
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		name string
		m    Match
		pkt  PacketMeta
		want bool
	}{
		{"proto", Match{Proto: 17}, udp, true},
		{"other proto", Match{Proto: 6}, udp, false},
		{"sport", Match{Proto: 17, SrcPort: Range{123, 123}}, udp, true},
		{"sport range", Match{Proto: 17, SrcPort: Range{100, 200}}, udp, true},
		{"sport outside", Match{Proto: 17, SrcPort: Range{53, 53}}, udp, false},
		{"dport", Match{Proto: 6, DstPort: Range{443, 443}}, syn, true},
		{"flags SYN not ACK", Match{Proto: 6, TCPFlags: 0x02, TCPFlagsMask: 0x12}, syn, true},
		{"flags ACK wanted", Match{Proto: 6, TCPFlags: 0x10, TCPFlagsMask: 0x10}, syn, false},
		{"length", Match{Length: Range{400, 500}}, udp, true},
		{"length outside", Match{Length: Range{0, 100}}, udp, false},
		{"src prefix", Match{Src: p("198.18.5.0/24")}, udp, true},
		{"src prefix outside", Match{Src: p("198.19.0.0/16")}, udp, false},
		{"dst", Match{Dst: p("198.18.0.10/32")}, udp, true},
		{"dst v6 rule, v4 packet", Match{Dst: p("2001:db8::/32")}, udp, false},
		{"frag none", Match{Fragment: FragNone}, udp, true},
		{"frag later", Match{Fragment: FragLater}, later, true},
		{"frag first", Match{Fragment: FragFirst}, udp, false},
		{"port rule, later fragment", Match{Proto: 17, SrcPort: Range{123, 123}}, later, false},
		{"proto only, later fragment", Match{Proto: 17}, later, true},
	} {
		if got := tc.m.Matches(&tc.pkt); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMatchTextForms(t *testing.T) {
	m := Match{Proto: 17, SrcPort: Range{123, 123}, Dst: netip.MustParsePrefix("198.18.0.10/32"), Length: Range{400, 1500}}
	if got, want := m.String(), "udp sport 123 len 400-1500 → 198.18.0.10"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	b, err := json.Marshal(m)
	if err != nil || string(b) != `{"dst":"198.18.0.10/32","proto":"udp","sport":"123","len":"400-1500"}` {
		t.Errorf("JSON = %s, %v", b, err)
	}
	for _, tc := range []struct {
		in   string
		want Range
		ok   bool
	}{{"123", Range{123, 123}, true}, {"400-1500", Range{400, 1500}, true}, {"0", Range{}, false}, {"9-3", Range{}, false}, {"x", Range{}, false}, {"70000", Range{}, false}} {
		got, err := ParseRange(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRange(%q) = %v, %v", tc.in, got, err)
		}
	}
	for in, want := range map[string]uint8{"udp": 17, "TCP": 6, "icmp": 1, "47": 47} {
		if got, err := ParseProto(in); err != nil || got != want {
			t.Errorf("ParseProto(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []Match{{}, {SrcPort: Range{53, 53}}, {Proto: 17, TCPFlagsMask: 2}, {Proto: 6, TCPFlags: 3, TCPFlagsMask: 1},
		{Proto: 17, SrcPort: Range{53, 53}, Fragment: FragLater}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%v) accepted", bad)
		}
	}
}

// spread returns n addresses one per /24 from base, as reflectors spread
// over the Internet are: no prefix explains them.
func spread(base string, n int) []string {
	b := netip.MustParseAddr(base).As4()
	out := make([]string, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{b[0], b[1] + byte(i>>8), byte(i), b[3]}).String()
	}
	return out
}

func TestMatchJSONRoundTrip(t *testing.T) {
	for _, m := range []Match{
		{Proto: 17, SrcPort: Range{123, 123}, Dst: netip.MustParsePrefix("198.18.0.10/32")},
		{Proto: 6, DstPort: Range{80, 443}, TCPFlags: 0x02, TCPFlagsMask: 0x12, Length: Range{40, 60}, Src: netip.MustParsePrefix("2001:db8::/32")},
		{Proto: 17, Fragment: FragLater},
	} {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Match
		if err := json.Unmarshal(b, &back); err != nil || back != m {
			t.Errorf("%s: round trip gave %v, %v", b, back, err)
		}
	}
	for _, bad := range []string{`{"proto":"xyz"}`, `{"sport":"9-3"}`, `{"colour":"red"}`, `{"tcp_flags":"3/1"}`, `{"fragment":"some"}`, `[1]`} {
		var m Match
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestAdoptSignature: a rule left in the kernel by an earlier run is taken
// over and lifted at its expiry when its traffic has stopped.
func TestAdoptSignature(t *testing.T) {
	w := newSigWorld(t)
	m := Match{Proto: 17, SrcPort: Range{Lo: 123, Hi: 123}}
	w.enf.sigs[m] = SignatureRule{Match: m, Expires: w.start.Add(3 * time.Second)}
	w.eng.AdoptSignature(SignatureRule{Match: m, TTL: 3 * time.Second, Expires: w.start.Add(3 * time.Second)})
	w.eng.AdoptSignature(SignatureRule{Match: m, TTL: 3 * time.Second, Expires: w.start.Add(3 * time.Second)})
	if got := w.eng.Signatures(); len(got) != 1 || got[0].Manual {
		t.Fatalf("adopted: %+v", got)
	}
	var unbans []Event
	for range 4 {
		unbans = append(unbans, find(w.step(served()...), Unban, ScopeSignature)...)
	}
	if len(unbans) != 1 || len(w.enf.sigs) != 0 {
		t.Fatalf("adopted rule not lifted at expiry: %v, %d left", unbans, len(w.enf.sigs))
	}
}
