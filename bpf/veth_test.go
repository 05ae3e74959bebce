package bpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

// rawSocket opens an AF_PACKET socket bound to ifname in the current
// network namespace (the test thread's, see testNetns).
func rawSocket(t *testing.T, ifname string) (int, *unix.SockaddrLinklayer) {
	t.Helper()
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(proto))
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	sa := &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifindex(t, ifname)}
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatalf("bind packet socket to %s: %v", ifname, err)
	}
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
		t.Fatal(err)
	}
	return fd, sa
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// frameSource returns the IP source of an Ethernet frame, if it has one.
func frameSource(f []byte) (netip.Addr, bool) {
	if len(f) < 14 {
		return netip.Addr{}, false
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case uint16(layers.EthernetTypeIPv4):
		if len(f) >= 14+20 {
			return netip.AddrFrom4([4]byte(f[26:30])), true
		}
	case uint16(layers.EthernetTypeIPv6):
		if len(f) >= 14+40 {
			return netip.AddrFrom16([16]byte(f[22:38])), true
		}
	}
	return netip.Addr{}, false
}

// veth sends frames on one end of the test's veth pair and counts, per
// source, what gets through the XDP program on the other end.
type veth struct {
	t        *testing.T
	tx, rx   int
	txAddr   *unix.SockaddrLinklayer
	payloads map[netip.Addr][]byte
}

func newVeth(t *testing.T) *veth {
	v := &veth{t: t, payloads: map[netip.Addr][]byte{}}
	v.tx, v.txAddr = rawSocket(t, "fgv1")
	v.rx, _ = rawSocket(t, "fgv0")
	return v
}

// send writes n identical frames from src (bounded: n is small).
func (v *veth) send(src string, n int) {
	v.t.Helper()
	a := netip.MustParseAddr(src)
	f, ok := v.payloads[a]
	if !ok {
		if a.Is4() {
			f = udpFrame(v.t, src, 100)
		} else {
			f = frameOf(eth(layers.EthernetTypeIPv6), ip6(src, layers.IPProtocolUDP), udp(53), gopacket.Payload(bytes.Repeat([]byte{0xfd}, 46)))
		}
		v.payloads[a] = f
	}
	for i := range n {
		if err := unix.Sendto(v.tx, f, 0, v.txAddr); err != nil {
			v.t.Fatalf("send from %s: %v", src, err)
		}
		if i%32 == 31 {
			// veth queues at most a few hundred frames towards its
			// peer; pace the burst so none is lost before XDP.
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// received drains the receiving end for a bounded time and counts frames
// by source, ours only.
func (v *veth) received() map[string]int {
	v.t.Helper()
	got := map[string]int{}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(v.rx, buf, 0)
		if err != nil {
			break // timeout: nothing more is coming
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if a, ok := frameSource(buf[:n]); ok {
			if _, ours := v.payloads[a.Unmap()]; ours {
				got[a.Unmap().String()]++
			}
		}
	}
	return got
}

// TestVethTraffic sends real frames across a veth pair in a namespace the
// test made: every frame from several sources is counted exactly, a banned
// source is dropped while another gets through, and a rule expires in the
// kernel with no floodguard process holding the program.
func TestVethTraffic(t *testing.T) {
	testNetns(t)
	pins := testPinDir(t)
	opts := Options{Interface: "fgv0", PinDir: pins, MaxSources: 1024}
	x := loadAttached(t, opts)
	v := newVeth(t)

	const n = 50
	srcs := []string{"198.18.0.11", "198.18.0.12", "2001:db8::13"}
	for i, s := range srcs {
		v.send(s, n*(i+1))
	}
	got := v.received()
	for i, s := range srcs {
		want := n * (i + 1)
		if got[s] != want {
			t.Errorf("%s: %d frames delivered, want %d", s, got[s], want)
		}
		e, ok, err := x.LookupSource(detector.AddrFrom(netip.MustParseAddr(s)))
		if err != nil || !ok {
			t.Fatalf("%s: not counted: %v", s, err)
		}
		size := uint64(len(v.payloads[netip.MustParseAddr(s)]))
		if e.Packets[detector.ClassUDP] != uint64(want) || e.Bytes[detector.ClassUDP] != uint64(want)*size || e.DroppedPackets != 0 {
			t.Errorf("%s: counted %+v, want %d UDP frames of %d bytes", s, e.Counters, want, size)
		}
	}

	// Ban one source: it is dropped (and still counted), the others pass.
	banned := netip.MustParsePrefix("198.18.0.11/32")
	if err := x.AddRule(banned, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := x.AddRule(netip.MustParsePrefix("2001:db8::/64"), time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		v.send(s, n)
	}
	got = v.received()
	if got["198.18.0.11"] != 0 || got["2001:db8::13"] != 0 || got["198.18.0.12"] != n {
		t.Errorf("after bans delivered %v, want only %d from 198.18.0.12", got, n)
	}
	e, _, _ := x.LookupSource(detector.AddrFrom(banned.Addr()))
	if e.DroppedPackets != n || e.Packets[detector.ClassUDP] != 2*n {
		t.Errorf("banned source counted %+v, want %d dropped of %d", e.Counters, n, 2*n)
	}

	// A short rule, then no floodguard process at all: the kernel lets
	// the source through again once the rule has expired.
	short := netip.MustParsePrefix("198.18.0.12/32")
	if err := x.AddRule(short, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	v.send("198.18.0.12", n)
	if got := v.received(); got["198.18.0.12"] != 0 {
		t.Errorf("short rule not dropping: %v", got)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1600 * time.Millisecond)
	v.send("198.18.0.12", n)
	if got := v.received(); got["198.18.0.12"] != n {
		t.Errorf("after expiry with no daemon delivered %v, want %d from 198.18.0.12", got, n)
	}

	// A new loader adopts the program, its counts and its rules.
	y := loadAttached(t, opts)
	if !y.Adopted() {
		t.Error("not adopted")
	}
	e, _, _ = y.LookupSource(detector.AddrFrom(short.Addr()))
	if e.Packets[detector.ClassUDP] != 5*n || e.DroppedPackets != n {
		t.Errorf("adopted counts for %s: %+v, want %d frames, %d dropped", short.Addr(), e.Counters, 5*n, n)
	}
	if err := y.Detach(); err != nil {
		t.Fatal(err)
	}
	if st := xdpOn(t, "fgv0"); st.attached != xdpAttachedNone {
		t.Errorf("after Detach the kernel reports %+v", st)
	}
}
