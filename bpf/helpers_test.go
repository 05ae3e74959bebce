package bpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

// requirePrivilegedEnv makes privileged tests fail instead of skipping.
const requirePrivilegedEnv = "FLOODGUARD_REQUIRE_PRIVILEGED"

// skipOrFail skips t with the reason, or fails it when
// FLOODGUARD_REQUIRE_PRIVILEGED=1 (CI that must run the kernel tests).
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(requirePrivilegedEnv) == "1" {
		t.Fatalf(format+" ("+requirePrivilegedEnv+"=1)", args...)
	}
	t.Skipf(format, args...)
}

var (
	bpfProbeOnce sync.Once
	bpfProbeErr  error
)

// requirePrivileged skips (or fails) t unless it runs as root and can load
// an XDP program (root in a container without CAP_BPF cannot).
func requirePrivileged(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root: loads BPF programs")
	}
	bpfProbeOnce.Do(func() {
		var objs emptyObjects
		if bpfProbeErr = loadEmptyObjects(&objs, nil); bpfProbeErr == nil {
			objs.Close()
		}
	})
	if bpfProbeErr != nil {
		skipOrFail(t, "needs root: cannot load an XDP program: %v", bpfProbeErr)
	}
}

// loadTest loads fresh, unattached objects for BPF_PROG_TEST_RUN, skipping
// (or failing) when BPF cannot be used here. opts.Interface must be empty.
func loadTest(t testing.TB, opts Options) *XDP {
	t.Helper()
	requirePrivileged(t)
	if opts.MaxSources == 0 {
		opts.MaxSources = 1024 // keep the preallocated per-CPU map small
	}
	if opts.MaxRules == 0 {
		opts.MaxRules = 1024
	}
	x, err := Load(opts)
	if errors.Is(err, ErrPermission) || errors.Is(err, ErrKernelTooOld) {
		skipOrFail(t, "needs root: BPF cannot be loaded here: %v", err)
	}
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

var bpffsOnce sync.Once

// testPinDir returns a fresh directory on bpffs, mounting bpffs at
// /sys/fs/bpf first if it is not mounted (as root only).
func testPinDir(t testing.TB) string {
	t.Helper()
	requirePrivileged(t)
	bpffsOnce.Do(func() {
		if checkBPFFS("/sys/fs/bpf") == nil {
			return
		}
		if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
			t.Logf("mount bpffs at /sys/fs/bpf: %v", err)
		}
	})
	if err := checkBPFFS("/sys/fs/bpf"); err != nil {
		skipOrFail(t, "needs root: bpffs at /sys/fs/bpf: %v", err)
	}
	dir, err := os.MkdirTemp("/sys/fs/bpf", "fgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "pins")
}

// testNetns creates a network namespace with a veth pair (fgv0, fgv1, both
// up), deleted when t ends, and moves the calling goroutine's locked thread
// into it until then. It returns the namespace's name (for ip -n). Only the
// test's own goroutine is in the namespace: do not use t.Run or t.Parallel
// after calling it.
func testNetns(t *testing.T) string {
	t.Helper()
	requirePrivileged(t)
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFail(t, "needs root: iproute2 'ip' command: %v", err)
	}
	name := fmt.Sprintf("fgtest-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	if len(name) > 60 {
		name = name[:60]
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	exec.Command("ip", "netns", "del", name).Run() // leftover of a killed run
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		skipOrFail(t, "needs root: create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ip("-n", name, "link", "add", "fgv0", "type", "veth", "peer", "name", "fgv1")
	ip("-n", name, "link", "set", "fgv0", "up")
	ip("-n", name, "link", "set", "fgv1", "up")
	ip("-n", name, "link", "set", "lo", "up")

	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	ns, err := os.Open("/run/netns/" + name)
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("setns: %v", err)
	}
	t.Cleanup(func() {
		defer orig.Close()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime discards it.
			t.Errorf("setns back: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
	return name
}

// ifindex returns the index of the named interface in the current netns.
func ifindex(t testing.TB, name string) int {
	t.Helper()
	iface, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return iface.Index
}

// Frames ---------------------------------------------------------------

var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	dst4   = net.IP{198, 19, 255, 1}
	dst6   = net.ParseIP("2001:db8:ffff::1")
)

// frameOf builds a frame from layers, fixing lengths (checksums are left
// zero: the program does not check them). It panics on layers gopacket
// cannot serialize, which is a bug in the test.
func frameOf(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, ls...); err != nil {
		panic(fmt.Sprintf("serialize: %v", err))
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ethHdr is an Ethernet header that, unlike layers.Ethernet, is not padded
// to the 60-byte minimum, so truncated frames stay truncated.
type ethHdr struct{ typ layers.EthernetType }

func (e ethHdr) LayerType() gopacket.LayerType { return layers.LayerTypeEthernet }

func (e ethHdr) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	h, err := b.PrependBytes(14)
	if err != nil {
		return err
	}
	copy(h[0:6], dstMAC)
	copy(h[6:12], srcMAC)
	h[12], h[13] = byte(e.typ>>8), byte(e.typ)
	return nil
}

func eth(typ layers.EthernetType) ethHdr { return ethHdr{typ} }

// paddedEth is gopacket's Ethernet layer, which pads frames to 60 bytes as
// a NIC delivers them.
func paddedEth(typ layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: typ}
}

func ip4(src string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.ParseIP(src).To4(), DstIP: dst4}
}

func ip6(src string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: net.ParseIP(src), DstIP: dst6}
}

func udp(sport uint16) *layers.UDP {
	return &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 9}
}

func tcp(syn, ack bool) *layers.TCP {
	return &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, SYN: syn, ACK: ack, Window: 1024}
}

// ip6Ext returns a raw IPv6 extension header of the given kind and total
// length (a multiple of 8, or of 4 for AH) followed by next.
func ip6Ext(kind, next layers.IPProtocol, length int) []byte {
	b := make([]byte, length)
	b[0] = byte(next)
	if kind == layers.IPProtocolAH {
		b[1] = byte(length/4 - 2)
	} else {
		b[1] = byte(length/8 - 1)
	}
	return b
}

// ip6Frag returns a raw IPv6 fragment header with the offset in 8-byte units
// and the more-fragments flag.
func ip6Frag(next layers.IPProtocol, offset uint16, more bool) []byte {
	fo := offset << 3
	if more {
		fo |= 1
	}
	return []byte{byte(next), 0, byte(fo >> 8), byte(fo), 0, 0, 0x12, 0x34}
}

// udpFrame returns an IPv4 UDP frame of exactly size bytes from src.
func udpFrame(t testing.TB, src string, size int) []byte {
	t.Helper()
	const hdrs = 14 + 20 + 8
	if size < hdrs {
		t.Fatalf("frame size %d below %d", size, hdrs)
	}
	return frameOf(eth(layers.EthernetTypeIPv4), ip4(src, layers.IPProtocolUDP), udp(53),
		gopacket.Payload(make([]byte, size-hdrs)))
}

func addr(s string) detector.Addr {
	return detector.AddrFrom(netip.MustParseAddr(s))
}

// run runs the program once on frame and returns the XDP action.
func run(t testing.TB, x *XDP, frame []byte) uint32 {
	t.Helper()
	ret, err := x.Program().Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return ret
}

// XDP actions.
const (
	xdpDrop = 1
	xdpPass = 2
)

func readStats(t testing.TB, x *XDP) Stats {
	t.Helper()
	s, err := x.ReadStats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lookupSource(t testing.TB, x *XDP, a detector.Addr) (Source, bool) {
	t.Helper()
	s, ok, err := x.LookupSource(a)
	if err != nil {
		t.Fatal(err)
	}
	return s, ok
}
