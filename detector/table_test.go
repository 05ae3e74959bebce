package detector

import (
	"net/netip"
	"testing"
)

func TestSeenOnce(t *testing.T) {
	f := newSeenOnce(16)
	// Neighbouring IPv4 and IPv6 addresses must not share slots, or each
	// would evict the other and never be remembered.
	var addrs []Addr
	a4, a6 := netip.MustParseAddr("198.18.16.1"), netip.MustParseAddr("2001:db8:1::1")
	for range 500 {
		addrs = append(addrs, AddrFrom(a4), AddrFrom(a6))
		a4, a6 = a4.Next(), a6.Next()
	}
	for _, a := range addrs {
		if f.testAndSet(a) {
			t.Fatalf("%s seen before it was", a)
		}
	}
	missed := 0
	for _, a := range addrs {
		if !f.testAndSet(a) {
			missed++
		}
	}
	if missed > len(addrs)/100 {
		t.Fatalf("%d of %d addresses forgotten: the hash spreads them badly", missed, len(addrs))
	}
}
