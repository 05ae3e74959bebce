package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// write returns the capture bytes and labels of s.
func write(t testing.TB, s Scenario, opt Options) ([]byte, Labels) {
	t.Helper()
	var buf bytes.Buffer
	l, err := Write(&buf, s, opt)
	if err != nil {
		t.Fatalf("Write(%s, %+v): %v", s, opt, err)
	}
	return buf.Bytes(), l
}

func TestDeterministic(t *testing.T) {
	tests := []struct {
		scenario Scenario
		opt      Options
	}{
		{Benign, Options{Seed: 1, Scale: 0.2}},
		{SpoofedSYN, Options{Seed: 7, Scale: 0.2}},
		{IPv6Rotation, Options{Seed: -3, Scale: 0.2, SnapLen: MaxSnapLen}},
		{Bench, Options{Seed: 1, Packets: 50_000}},
	}
	// digest hashes a capture as it is written, so nothing large is kept.
	digest := func(t *testing.T, s Scenario, opt Options) ([sha256.Size]byte, Labels) {
		h := sha256.New()
		l, err := Write(h, s, opt)
		if err != nil {
			t.Fatalf("Write(%s, %+v): %v", s, opt, err)
		}
		return [sha256.Size]byte(h.Sum(nil)), l
	}
	for _, tt := range tests {
		t.Run(string(tt.scenario), func(t *testing.T) {
			a, la := digest(t, tt.scenario, tt.opt)
			b, lb := digest(t, tt.scenario, tt.opt)
			if a != b {
				t.Errorf("same options, different bytes")
			}
			if !reflect.DeepEqual(la, lb) {
				t.Errorf("same options, different labels")
			}
			other := tt.opt
			other.Seed++
			if c, _ := digest(t, tt.scenario, other); a == c {
				t.Errorf("seeds %d and %d give identical captures", tt.opt.Seed, other.Seed)
			}
		})
	}
}

// TestBackgroundUnchangedByEvent checks that every source draws from its own
// random stream: removing the attack packets from an attack scenario leaves
// exactly the benign scenario of the same seed, so detector tests can diff
// the two.
func TestBackgroundUnchangedByEvent(t *testing.T) {
	opt := Options{Seed: 3, Scale: 0.2}
	base, benign := write(t, Benign, opt)
	_, want := readPcap(t, base)
	// The signature scenarios' benign services (NTP servers, QUIC visitors)
	// are not in the benign capture's labels, so they are left out with the
	// attack packets.
	for _, s := range append([]Scenario{SingleSource, SpoofedSYN, UDPReflection, Carpet, IPv6Rotation}, SignatureScenarios()...) {
		t.Run(string(s), func(t *testing.T) {
			i := 0
			eachWritten(t, s, opt, func(r record) {
				if !benign.IsBenign(rawSource(r.data)) {
					return // an attack packet
				}
				if i >= len(want) || !r.same(want[i]) {
					t.Fatalf("background packet %d differs from the benign capture", i)
				}
				i++
			})
			if i != len(want) {
				t.Fatalf("%d background packets, benign capture has %d", i, len(want))
			}
		})
	}
}

// rawSource reads the IP source address of an Ethernet frame.
func rawSource(f []byte) netip.Addr {
	if f[12] == 0x86 && f[13] == 0xdd {
		return netip.AddrFrom16([16]byte(f[22:38]))
	}
	return netip.AddrFrom4([4]byte(f[26:30]))
}

// TestChecksums re-serializes decoded packets with gopacket's checksum code
// and compares: IPv4 header, TCP, UDP, ICMP and ICMPv6 checksums must be
// valid, since replay into a real stack (veth, tcpreplay) would drop bad
// ones.
func TestChecksums(t *testing.T) {
	for _, s := range []Scenario{Benign, IPv6Rotation, SpoofedSYN} {
		t.Run(string(s), func(t *testing.T) {
			checked := map[gopacket.LayerType]int{}
			i := 0
			eachWritten(t, s, Options{Seed: 5, Scale: 0.2, SnapLen: MaxSnapLen}, func(r record) {
				if i%7 == 0 { // a sample keeps the test fast
					verifyChecksums(t, r.data, checked)
				}
				i++
			})
			for _, lt := range []gopacket.LayerType{layers.LayerTypeIPv4, layers.LayerTypeUDP} {
				if checked[lt] == 0 {
					t.Errorf("no %v checksum checked", lt)
				}
			}
			t.Logf("checked %v", checked)
		})
	}
}

func verifyChecksums(t *testing.T, frame []byte, checked map[gopacket.LayerType]int) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	// Random ports can make gopacket guess an application protocol (sFlow,
	// DNS) and fail on the zero payload; only the layers below matter.
	if el := p.ErrorLayer(); el != nil && p.TransportLayer() == nil &&
		p.Layer(layers.LayerTypeICMPv4) == nil && p.Layer(layers.LayerTypeICMPv6) == nil {
		t.Fatalf("decode: %v", el.Error())
	}
	var nl gopacket.NetworkLayer
	if l := p.Layer(layers.LayerTypeIPv4); l != nil {
		ip := *l.(*layers.IPv4)
		nl = &ip
		if got := reserialized(t, &ip, gopacket.Payload(ip.Payload))[10:12]; !bytes.Equal(got, frame[ethHeaderLen+10:ethHeaderLen+12]) {
			t.Fatalf("IPv4 checksum % x, gopacket computes % x", frame[ethHeaderLen+10:ethHeaderLen+12], got)
		}
		checked[layers.LayerTypeIPv4]++
	} else if l := p.Layer(layers.LayerTypeIPv6); l != nil {
		nl = l.(*layers.IPv6)
	}
	var (
		l4   gopacket.SerializableLayer
		sum  []byte
		at   int
		kind gopacket.LayerType
	)
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		c := *l
		if err := c.SetNetworkLayerForChecksum(nl); err != nil {
			t.Fatal(err)
		}
		l4, sum, at, kind = &c, l.Contents[16:18], 16, layers.LayerTypeTCP
	case *layers.UDP:
		c := *l
		if err := c.SetNetworkLayerForChecksum(nl); err != nil {
			t.Fatal(err)
		}
		l4, sum, at, kind = &c, l.Contents[6:8], 6, layers.LayerTypeUDP
	default:
		if l := p.Layer(layers.LayerTypeICMPv4); l != nil {
			c := *l.(*layers.ICMPv4)
			l4, sum, at, kind = &c, c.Contents[2:4], 2, layers.LayerTypeICMPv4
		} else if l := p.Layer(layers.LayerTypeICMPv6); l != nil {
			c := *l.(*layers.ICMPv6)
			if err := c.SetNetworkLayerForChecksum(nl); err != nil {
				t.Fatal(err)
			}
			l4, sum, at, kind = &c, c.Contents[2:4], 2, layers.LayerTypeICMPv6
		} else {
			t.Fatalf("no transport layer in % x", frame[:min(64, len(frame))])
		}
	}
	l4bytes := l4.(gopacket.Layer).LayerContents()
	payload := nl.LayerPayload()[len(l4bytes):]
	if got := reserialized(t, l4, gopacket.Payload(payload))[at : at+2]; !bytes.Equal(got, sum) {
		t.Fatalf("%v checksum % x, gopacket computes % x", kind, sum, got)
	}
	checked[kind]++
}

func reserialized(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return buf.Bytes()
}

func TestBenchPacketCount(t *testing.T) {
	for _, n := range []int{1, 999, 30_000} {
		b, l := write(t, Bench, Options{Seed: 2, Packets: n})
		_, recs := readPcap(t, b)
		if len(recs) != n || l.Packets != uint64(n) {
			t.Errorf("Packets %d: %d records, labels say %d", n, len(recs), l.Packets)
		}
		if last := recs[len(recs)-1].ts; !last.Before(l.End) {
			t.Errorf("Packets %d: last packet %v not before end %v", n, last, l.End)
		}
	}
}

func TestOptionsRejected(t *testing.T) {
	tests := []struct {
		name     string
		scenario Scenario
		opt      Options
		want     string
	}{
		{"unknown scenario", "tsunami", Options{}, "unknown scenario"},
		{"negative scale", Benign, Options{Scale: -1}, "scale"},
		{"huge scale", Benign, Options{Scale: 5}, "scale"},
		{"tiny snap length", Benign, Options{SnapLen: 20}, "snap length"},
		{"negative packets", Bench, Options{Packets: -1}, "packet count"},
		{"start before 1970", Benign, Options{Start: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}, "start"},
		{"short warm-up", Benign, Options{WarmUp: 5 * time.Second}, "warm-up"},
		{"flood scale above 1", SingleSource, Options{FloodScale: 2}, "flood scale"},
		{"negative flood scale", SingleSource, Options{FloodScale: -0.5}, "flood scale"},
		{"negative heavy clients", Benign, Options{HeavyClients: -1}, "heavy clients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Write(io.Discard, tt.scenario, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir() + "/out"
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	pcapPath, labelsPath, err := WriteFiles(dir, Pulsing, Options{Seed: 9, Scale: 0.2, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	if pcapPath != dir+"/pulsing.pcap" || labelsPath != dir+"/pulsing.labels.json" {
		t.Errorf("paths %s, %s", pcapPath, labelsPath)
	}
	b, err := os.ReadFile(pcapPath)
	if err != nil {
		t.Fatal(err)
	}
	_, recs := readPcap(t, b)
	j, err := os.ReadFile(labelsPath)
	if err != nil {
		t.Fatal(err)
	}
	var l Labels
	if err := json.Unmarshal(j, &l); err != nil {
		t.Fatalf("labels: %v", err)
	}
	if l.Packets != uint64(len(recs)) || !l.Start.Equal(start) || l.Scenario != Pulsing {
		t.Errorf("labels %s %d packets from %v; capture has %d, start %v", l.Scenario, l.Packets, l.Start, len(recs), start)
	}
	if first := recs[0].ts; first.Before(start) || first.Sub(start) > time.Second {
		t.Errorf("first packet at %v, capture starts %v", first, start)
	}
}

// TestLabelsJSONRoundTrip checks that labels survive JSON unchanged, that the
// field names are the documented ones, and that the helpers work on decoded
// labels.
func TestLabelsJSONRoundTrip(t *testing.T) {
	for _, s := range []Scenario{FlashCrowd, UDPReflection, Pulsing} {
		t.Run(string(s), func(t *testing.T) {
			_, l := write(t, s, Options{Seed: 4, Scale: 0.2})
			b, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			var back Labels
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(l, back) {
				t.Errorf("labels changed in a JSON round trip:\n%+v\n%+v", l, back)
			}
			var raw map[string]any
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"scenario", "seed", "start", "end", "tick_hint", "attacks", "flash_crowd", "benign_sources_count", "benign_prefixes", "heavy_clients"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("no %q in %s", k, b[:200])
				}
			}
			if len(back.BenignSources) == 0 || !back.IsBenign(back.BenignSources[0]) || back.IsAttacker(back.BenignSources[0]) {
				t.Errorf("decoded labels do not recognise benign sources")
			}
			for _, a := range back.Attacks {
				if !back.IsAttacker(a.Sources[0]) || back.IsBenign(a.Sources[0]) {
					t.Errorf("decoded labels do not recognise attacker %v", a.Sources[0])
				}
			}
		})
	}
}

// TestSmallCaptureOptions: WarmUp, FloodScale and HeavyClients shape the
// committed testdata captures; the labels say what they did.
func TestSmallCaptureOptions(t *testing.T) {
	opt := Options{Seed: 1, Scale: 0.01, WarmUp: 15 * time.Second, FloodScale: 0.08, HeavyClients: 1}
	l, err := Write(io.Discard, SingleSource, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Attacks) != 1 || l.Attacks[0].PPS != 1600 || l.Attacks[0].Window.Start.Sub(l.Start) != 15*time.Second {
		t.Errorf("attack %+v: want 1600 pps from 15 s", l.Attacks)
	}
	if len(l.HeavyClients) != 1 || l.WarmUp != "15s" || l.FloodScale != 0.08 {
		t.Errorf("labels: heavy %v, warm_up %q, flood_scale %v", l.HeavyClients, l.WarmUp, l.FloodScale)
	}
	def, err := Write(io.Discard, SingleSource, Options{Seed: 1, Scale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	if def.WarmUp != "" || def.FloodScale != 0 || def.Attacks[0].PPS != singleSourcePPS {
		t.Errorf("default labels changed: warm_up %q, flood_scale %v, pps %v", def.WarmUp, def.FloodScale, def.Attacks[0].PPS)
	}
}
