package capture

import (
	"testing"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/vectors"
)

// TestDecodeSharedVectors runs the frame table the XDP program is tested
// with (bpf/parse_test.go) through the replay decoder, with the same
// expectations: the two parsers must agree on every frame.
func TestDecodeSharedVectors(t *testing.T) {
	d := NewDecoder()
	for _, v := range vectors.All() {
		p := d.Decode(LinkTypeEthernet, v.Frame)
		if v.Src == "" {
			if p.OK {
				t.Errorf("%s: decoded as %s class %s, want unparsed", v.Name, p.Src, p.Class)
			}
			continue
		}
		if !p.OK {
			t.Errorf("%s: unparsed, want %s class %s", v.Name, v.Src, v.Class)
			continue
		}
		port := uint16(0)
		if p.Class == detector.ClassUDP && p.L4 {
			port = p.UDPSrcPort
		}
		if p.Src.String() != v.Src || p.Class != v.Class || port != v.UDPPort {
			t.Errorf("%s: %s class %s port %d, want %s class %s port %d", v.Name, p.Src, p.Class, port, v.Src, v.Class, v.UDPPort)
		}
	}
}
