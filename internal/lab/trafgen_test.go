package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTrafgenSent(t *testing.T) {
	out := `Cannot set system socket memory in /proc/sys/net/core/rmem_max: Permission denied
     1 packets to schedule
    74 bytes in total
Running! Hang up with ^C!


     1597952 packets outgoing
   118248448 bytes outgoing
           2 sec, 989604 usec on CPU0 (1597952 packets)
`
	if n, ok := ParseTrafgenSent(out); !ok || n != 1597952 {
		t.Errorf("ParseTrafgenSent = %d, %v; want 1597952, true", n, ok)
	}
	// Killed before it could print its totals.
	if n, ok := ParseTrafgenSent("     1 packets to schedule\nRunning! Hang up with ^C!\n"); ok {
		t.Errorf("ParseTrafgenSent without totals = %d, true", n)
	}
}

func TestTrafgenUDP(t *testing.T) {
	p := Packet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, Src: DemoAttacker, Dst: DemoServer, SrcPort: 40000, DstPort: 9, Size: 64}
	path := filepath.Join(t.TempDir(), "udp.trafgen")
	if err := TrafgenUDP(path, p); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	frames, _ := UDPFrames(p)
	want := "{\n  " + TrafgenBytes(frames.Frame(0)) + "\n}\n"
	if !strings.HasSuffix(string(data), want) {
		t.Errorf("config:\n%s\nwant it to end in\n%s", data, want)
	}
	if got := TrafgenBytes([]byte{0, 0xab}); got != "0x00, 0xab" {
		t.Errorf("TrafgenBytes = %q", got)
	}
	// Not a test address: refused, nothing written.
	p.Src = netip.MustParseAddr("192.0.2.1")
	if err := TrafgenUDP(filepath.Join(t.TempDir(), "x"), p); err == nil {
		t.Error("TrafgenUDP from 192.0.2.1: no error")
	}
}
