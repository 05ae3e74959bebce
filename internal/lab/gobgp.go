package lab

import (
	"fmt"
	"net/netip"
	"strings"
)

// GoBGPConfig returns a gobgpd configuration (TOML) for a lab router: AS
// as, router ID and listening address router, one passive neighbor peer of
// AS peerAS, short timers (3 s hold, 1 s keepalive: a lab notices a lost
// session at once), and the address families families ("ipv4-flowspec",
// "ipv6-flowspec"). The live demo's router and the daemon's e2e tests
// both run it.
func GoBGPConfig(as uint32, router netip.Addr, peer netip.Addr, peerAS uint32, families ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `[global.config]
  as = %d
  router-id = %q
  port = 179
  local-address-list = [%q]

[[neighbors]]
  [neighbors.config]
    neighbor-address = %q
    peer-as = %d
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.timers.config]
    hold-time = 3
    keepalive-interval = 1
`, as, router, router, peer, peerAS)
	for _, f := range families {
		fmt.Fprintf(&b, `  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = %q
`, f)
	}
	return b.String()
}
