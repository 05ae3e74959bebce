package upstream

import (
	"encoding/hex"
	"net/netip"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/floodguard/floodguard/detector"
)

// decode turns the NLRI back into GoBGP's native form: its string and
// its wire encoding (without the NLRI length byte).
func decode(t *testing.T, m detector.Match) (string, string, *api.Family) {
	t.Helper()
	nlri, fam, err := FlowSpecNLRI(&m)
	if err != nil {
		t.Fatalf("%s: %v", m.String(), err)
	}
	n, err := apiutil.GetNativeNlri(&api.Path{Family: fam, Nlri: nlri})
	if err != nil {
		t.Fatalf("%s: decode: %v", m.String(), err)
	}
	b, err := n.Serialize()
	if err != nil {
		t.Fatalf("%s: serialize: %v", m.String(), err)
	}
	return n.String(), hex.EncodeToString(b[1:]), fam
}

func TestFlowSpecNLRIComponents(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name string
		m    detector.Match
		str  string
		wire string // RFC 8955 §4.2 encoding, by hand
		v6   bool
	}{
		{"source ban to the protected address", detector.Match{Src: pfx("198.19.0.66/32"), Dst: pfx("198.18.0.1/32")},
			"[destination: 198.18.0.1/32][source: 198.19.0.66/32]",
			"01" + "20c6120001" + "02" + "20c6130042", false},
		{"source prefix alone", detector.Match{Src: pfx("198.19.7.0/24")},
			"[source: 198.19.7.0/24]", "02" + "18c61307", false},
		{"protocol and one source port", detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}, Dst: pfx("198.18.0.10/32")},
			"[destination: 198.18.0.10/32][protocol: ==udp][source-port: ==53]",
			"01" + "20c612000a" + "03" + "8111" + "06" + "8135", false},
		{"destination port range and length range", detector.Match{Proto: 17, DstPort: detector.Range{Lo: 1000, Hi: 2000}, Length: detector.Range{Lo: 64, Hi: 127}, Dst: pfx("198.18.0.10/32")},
			"[destination: 198.18.0.10/32][protocol: ==udp][destination-port: >=1000&<=2000][packet-length: >=64&<=127]",
			"01" + "20c612000a" + "03" + "8111" + "05" + "1303e8" + "d507d0" + "0a" + "0340" + "c57f", false},
		{"length up to", detector.Match{Length: detector.Range{Lo: 0, Hi: 100}, Dst: pfx("198.18.0.10/32")},
			"[destination: 198.18.0.10/32][packet-length: <=100]", "01" + "20c612000a" + "0a" + "8564", false},
		{"TCP flags SYN set, ACK clear", detector.Match{Proto: 6, DstPort: detector.Range{Lo: 443, Hi: 443}, TCPFlags: 0x02, TCPFlagsMask: 0x12, Dst: pfx("198.18.0.10/32")},
			"[destination: 198.18.0.10/32][protocol: ==tcp][destination-port: ==443][tcp-flags: =S&!A]",
			"01" + "20c612000a" + "03" + "8106" + "05" + "9101bb" + "09" + "0102" + "c210", false},
		{"TCP flags all clear", detector.Match{Proto: 6, TCPFlags: 0, TCPFlagsMask: 0x10, Dst: pfx("198.18.0.10/32")},
			"[destination: 198.18.0.10/32][protocol: ==tcp][tcp-flags: !A]", "01" + "20c612000a" + "03" + "8106" + "09" + "8210", false},
		{"not a fragment", detector.Match{Fragment: detector.FragNone, Dst: pfx("198.18.0.10/32")},
			"[destination: 198.18.0.10/32][fragment: !is-fragment+first-fragment]", "01" + "20c612000a" + "0c" + "8206", false},
		{"first fragment", detector.Match{Proto: 17, Fragment: detector.FragFirst, Dst: pfx("198.18.0.10/32")},
			"[destination: 198.18.0.10/32][protocol: ==udp][fragment: =first-fragment]", "01" + "20c612000a" + "03" + "8111" + "0c" + "8104", false},
		{"later fragments", detector.Match{Proto: 17, Fragment: detector.FragLater, Dst: pfx("198.18.0.10/32")},
			"[destination: 198.18.0.10/32][protocol: ==udp][fragment: =is-fragment]", "01" + "20c612000a" + "03" + "8111" + "0c" + "8102", false},
		// RFC 8956 §3.1: <type, length, offset, pattern>.
		{"IPv6 source ban", detector.Match{Src: pfx("2001:db8:66::/64"), Dst: pfx("2001:db8::1/128")},
			"[destination: 2001:db8::1/128/0][source: 2001:db8:66::/64/0]",
			"01" + "8000" + "20010db8000000000000000000000001" + "02" + "4000" + "20010db800660000", true},
		{"IPv6 next header, port, length", detector.Match{Proto: 17, SrcPort: detector.Range{Lo: 123, Hi: 123}, Length: detector.Range{Lo: 468, Hi: 468}, Dst: pfx("2001:db8::1/128")},
			"[destination: 2001:db8::1/128/0][protocol: ==udp][source-port: ==123][packet-length: ==468]",
			"01" + "8000" + "20010db8000000000000000000000001" + "03" + "8111" + "06" + "817b" + "0a" + "9101d4", true},
		{"ICMPv6", detector.Match{Proto: 58, Dst: pfx("2001:db8::1/128")},
			"[destination: 2001:db8::1/128/0][protocol: ==58]", "01" + "8000" + "20010db8000000000000000000000001" + "03" + "813a", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			str, wire, fam := decode(t, tc.m)
			if str != tc.str {
				t.Errorf("NLRI %s, want %s", str, tc.str)
			}
			if wire != tc.wire {
				t.Errorf("wire %s, want %s", wire, tc.wire)
			}
			if (fam.Afi == api.Family_AFI_IP6) != tc.v6 || fam.Safi != api.Family_SAFI_FLOW_SPEC_UNICAST {
				t.Errorf("family %v", fam)
			}
		})
	}
}

func TestFlowSpecNLRIRefuses(t *testing.T) {
	for _, m := range []detector.Match{
		{Proto: 17, SrcPort: detector.Range{Lo: 53, Hi: 53}},                                   // no family: would hit every network
		{SrcPort: detector.Range{Lo: 53, Hi: 53}, Dst: netip.MustParsePrefix("198.18.0.1/32")}, // ports without a protocol
	} {
		if _, _, err := FlowSpecNLRI(&m); err == nil {
			t.Errorf("%s: accepted", m.String())
		}
	}
}

func TestPathActions(t *testing.T) {
	dst := netip.MustParsePrefix("198.18.0.1/32")
	for _, tc := range []struct {
		a    Announcement
		want string
	}{
		{Announcement{Match: detector.Match{Src: netip.MustParsePrefix("198.19.0.66/32"), Dst: dst}}, "{Extcomms: [discard]}"},
		{Announcement{Match: detector.Match{Proto: 17, Dst: dst}, RateBytes: 51200}, "{Extcomms: [rate: 51200.000000]}"},
		{Announcement{Match: detector.Match{Dst: dst}, Blackhole: true}, "{Communities: blackhole, no-export}"},
	} {
		p, err := Path(&tc.a, 65535<<16|666)
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := apiutil.GetNativePathAttributes(p)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, at := range attrs {
			switch at.(type) {
			case *bgp.PathAttributeExtendedCommunities, *bgp.PathAttributeCommunities:
				got = at.String()
			}
		}
		if got != tc.want {
			t.Errorf("%s: attribute %q, want %q", tc.a.String(), got, tc.want)
		}
	}
}
