package capture

import (
	"fmt"
	"testing"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/vectors"
)

// TestDecodeSharedVectors runs the frame table the XDP program is tested
// with (bpf/parse_test.go) through the replay decoder, with the same
// expectations: the two parsers must agree on every frame, on the source,
// class and UDP port the counters take and on every field signature rules
// read.
func TestDecodeSharedVectors(t *testing.T) {
	d := NewDecoder()
	for _, v := range vectors.All() {
		t.Run(v.Name, func(t *testing.T) {
			p := d.Decode(LinkTypeEthernet, v.Frame)
			if v.Src == "" {
				if p.OK {
					t.Errorf("decoded as %s class %s, want unparsed", p.Src, p.Class)
				}
				return
			}
			if !p.OK {
				t.Fatalf("unparsed, want %s class %s", v.Src, v.Class)
			}
			port := uint16(0)
			if p.Class == detector.ClassUDP && p.L4 {
				port = p.SrcPort
			}
			if p.Src.String() != v.Src || p.Class != v.Class || port != v.UDPPort {
				t.Errorf("%s class %s port %d, want %s class %s port %d", p.Src, p.Class, port, v.Src, v.Class, v.UDPPort)
			}
			if want := v.PacketMeta(); p.PacketMeta != want {
				t.Errorf("meta\n got %s\nwant %s", metaString(&p.PacketMeta), metaString(&want))
			}
		})
	}
}

// metaString formats a PacketMeta for test failures.
func metaString(m *detector.PacketMeta) string {
	return fmt.Sprintf("%s → %s proto %d l4 %t ports %d→%d flags %#02x len %d frag %s",
		m.Src, m.Dst, m.Proto, m.L4, m.SrcPort, m.DstPort, m.TCPFlags, m.Length, m.Fragment)
}
