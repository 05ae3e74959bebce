package lab

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/floodguard/floodguard/internal/privtest"
)

// skipOrFail skips t with the reason, or fails it under
// FLOODGUARD_REQUIRE_PRIVILEGED=1 (CI, which must run the kernel tests).
var skipOrFail = privtest.SkipOrFail

// newLab returns a lab closed when t ends, skipping (or failing) t when
// namespaces cannot be made here.
func newLab(t *testing.T) *Lab {
	t.Helper()
	l, err := New()
	if errors.Is(err, ErrNotPermitted) {
		skipOrFail(t, "needs root: creates network namespaces: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// pair makes namespaces a and b joined by a veth pair (va in a, vb in b)
// with 198.18.0.1/24 and 2001:db8:1::1/64 on vb, 198.18.0.2/24 and
// 2001:db8:1::2/64 on va.
func pair(t *testing.T, l *Lab) (a, b *Netns) {
	t.Helper()
	var err error
	if a, err = l.AddNetns("a"); err != nil {
		if errors.Is(err, ErrNotPermitted) {
			skipOrFail(t, "needs root: %v", err)
		}
		t.Fatal(err)
	}
	if b, err = l.AddNetns("b"); err != nil {
		t.Fatal(err)
	}
	must(t, l.Veth(a, "va", b, "vb"))
	must(t, b.AddAddr("vb", "198.18.0.1/24"))
	must(t, b.AddAddr("vb", "2001:db8:1::1/64"))
	must(t, a.AddAddr("va", "198.18.0.2/24"))
	must(t, a.AddAddr("va", "2001:db8:1::2/64"))
	return a, b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckAddr(t *testing.T) {
	for _, s := range []string{"198.18.0.1", "198.19.255.255", "2001:db8::1", "2001:db8:ffff::1", "::ffff:198.18.0.1"} {
		if err := CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	for _, s := range []string{"198.17.255.255", "198.20.0.0", "10.0.0.1", "8.8.8.8", "2001:db9::1", "fe80::1", "::ffff:8.8.8.8"} {
		if err := CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrNotTestAddress) {
			t.Errorf("%s accepted (%v)", s, err)
		}
	}
	for p, ok := range map[string]bool{"198.19.0.0/16": true, "198.18.0.0/15": true, "198.16.0.0/13": false, "2001:db8::/32": true, "2001:db8::/31": false} {
		if err := checkPrefix(netip.MustParsePrefix(p)); (err == nil) != ok {
			t.Errorf("checkPrefix(%s) = %v", p, err)
		}
	}
}

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

func TestFramesRefuseOtherAddresses(t *testing.T) {
	p := Packet{SrcMAC: macA, DstMAC: macB, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("198.18.0.1"), DstPort: 9}
	if _, err := UDPFrames(p); !errors.Is(err, ErrNotTestAddress) {
		t.Errorf("UDP from 10.0.0.1: %v", err)
	}
	p.Src, p.Dst = p.Dst, netip.MustParseAddr("192.0.2.1")
	if _, err := UDPFrames(p); !errors.Is(err, ErrNotTestAddress) {
		t.Errorf("UDP to 192.0.2.1: %v", err)
	}
	p.Dst = netip.MustParseAddr("198.18.0.1")
	if _, err := SpoofedSYNFrames(p, netip.MustParsePrefix("0.0.0.0/0"), 1); !errors.Is(err, ErrNotTestAddress) {
		t.Errorf("SYN spoofed from 0.0.0.0/0: %v", err)
	}
}

// TestSpoofedSYNFrames decodes generated SYNs: every source lies in the
// spoofed prefix, nearly every frame has a new one, and checksums verify.
func TestSpoofedSYNFrames(t *testing.T) {
	spoof := netip.MustParsePrefix("198.19.0.0/16")
	p := Packet{SrcMAC: macA, DstMAC: macB, Dst: netip.MustParseAddr("198.18.0.1"), DstPort: 80, Size: 74}
	fr, err := SpoofedSYNFrames(p, spoof, 7)
	must(t, err)
	seen := map[netip.Addr]bool{}
	const n = 2000
	for i := range uint64(n) {
		f := fr.Frame(i)
		if len(f) != 74 {
			t.Fatalf("frame %d: %d bytes, want 74", i, len(f))
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil || !tcp.SYN || tcp.ACK || tcp.DstPort != 80 {
			t.Fatalf("frame %d is not a SYN to port 80: %v", i, pkt)
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP)
		if !spoof.Contains(src) {
			t.Fatalf("frame %d from %v, outside %v", i, src, spoof)
		}
		seen[src] = true
		// A header with a valid checksum sums to 0xffff.
		if sum := onesSum(f[14:34]); sum != 0xffff {
			t.Fatalf("frame %d: IPv4 header checksum off (%#x)", i, sum)
		}
	}
	if len(seen) < n*9/10 {
		t.Errorf("%d distinct sources in %d frames", len(seen), n)
	}
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// TestLabTraffic builds two namespaces and sends real traffic between
// them: frames at a target rate into a UDP sink, IPv4 and IPv6, and HTTP
// requests from the client's own address, all counted exactly.
func TestLabTraffic(t *testing.T) {
	l := newLab(t)
	a, b := pair(t, l)
	vb, err := b.Interface("vb")
	must(t, err)
	snd, err := a.NewSender("va")
	must(t, err)

	for _, fam := range []struct{ src, dst string }{{"198.18.0.2", "198.18.0.1"}, {"2001:db8:1::2", "2001:db8:1::1"}} {
		src, dst := netip.MustParseAddr(fam.src), netip.MustParseAddr(fam.dst)
		sink, err := b.ListenUDP(netip.AddrPortFrom(dst, 5001))
		must(t, err)
		fr, err := UDPFrames(Packet{SrcMAC: snd.MAC, DstMAC: vb.HardwareAddr, Src: src, Dst: dst, SrcPort: 4000, DstPort: 5001, Size: 200})
		must(t, err)
		st, err := snd.Flood(context.Background(), Flood{Frames: fr, Rate: 5000, Duration: 400 * time.Millisecond})
		must(t, err)
		if st.Sent != 2000 {
			t.Errorf("%s: sent %d of 2000 (%d refused)", src, st.Sent, st.Dropped)
		}
		if got := sink.Settle(src, 200*time.Millisecond, 3*time.Second); got != st.Sent {
			t.Errorf("%s: %d datagrams received, %d sent", src, got, st.Sent)
		}
		if el := st.End.Sub(st.Start); el < 350*time.Millisecond {
			t.Errorf("%s: 2000 frames at 5000/s took only %v", src, el)
		}
		sink.Close()
	}

	srv, err := b.ServeHTTP(netip.MustParseAddrPort("[2001:db8:1::1]:8080"))
	must(t, err)
	c, err := a.StartClient(ClientOptions{URL: srv.URL, Local: netip.MustParseAddr("2001:db8:1::2"), Rate: 50, Timeout: time.Second})
	must(t, err)
	time.Sleep(500 * time.Millisecond)
	s := c.Stop()
	if s.Requests < 15 || s.Served != s.Requests || uint64(s.Served) != srv.Served() {
		t.Errorf("client: %v; server answered %d", s, srv.Served())
	}
}

// TestLabCommand runs a command inside a namespace and follows its output;
// Close removes the namespaces and the bpffs mount.
func TestLabCommand(t *testing.T) {
	l, err := New()
	if errors.Is(err, ErrNotPermitted) {
		skipOrFail(t, "needs root: creates network namespaces: %v", err)
	}
	must(t, err)
	defer l.Close()
	a, b := pair(t, l)
	_ = b
	p, err := a.Start("sh", "-c", `echo '{"event":"hello","n":3}'; ip -o addr show dev va; sleep 30`)
	must(t, err)
	e, _, err := p.Log.WaitEvent(0, 5*time.Second, "hello", nil)
	must(t, err)
	if e.Num("n") != 3 {
		t.Errorf("event %v", e.Fields)
	}
	if _, _, err := p.Log.Wait(0, 5*time.Second, func(e Entry) bool { return strings.Contains(e.Line, "198.18.0.2/24") }); err != nil {
		t.Errorf("command not in namespace a: %v\n%s", err, p.Log)
	}
	pins, err := l.BPFFS()
	must(t, err)
	must(t, os.Mkdir(filepath.Join(pins, "x"), 0o700))

	must(t, l.Close())
	if !p.Exited() {
		t.Error("process still running after Close")
	}
	for _, n := range []*Netns{a, b} {
		if _, err := os.Stat(filepath.Join(netnsDir, n.FullName())); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still there: %v", n.FullName(), err)
		}
	}
	if _, err := os.Stat(l.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab directory still there: %v", err)
	}
}
