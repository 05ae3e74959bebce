package daemon

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseRoutes(t *testing.T) {
	route4 := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n" +
		"eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\n" +
		"eth0\t000012C6\t00000000\t0001\t0\t0\t0\t0000FFFF\n"
	gws, err := parseRoute4(strings.NewReader(route4))
	if err != nil || len(gws) != 1 || gws[0] != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("parseRoute4 = %v, %v", gws, err)
	}
	route6 := "00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n" +
		"20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n"
	gws, err = parseRoute6(strings.NewReader(route6))
	if err != nil || len(gws) != 1 || gws[0] != netip.MustParseAddr("2001:db8::1") {
		t.Fatalf("parseRoute6 = %v, %v", gws, err)
	}
	if _, err := parseRoute4(strings.NewReader("h\neth0\t00000000\tZZ\n")); err == nil {
		t.Fatal("bad gateway hex accepted")
	}
}

func TestHostPrefixesIncludeLoopback(t *testing.T) {
	ps, err := hostPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range ps {
		found = found || p == netip.MustParsePrefix("127.0.0.0/8")
	}
	if !found {
		t.Fatalf("loopback missing from %v", ps)
	}
}
