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
	"github.com/floodguard/floodguard/internal/privtest"
	"github.com/floodguard/floodguard/internal/vectors"
)

// skipOrFail skips t with the reason, or fails it under
// FLOODGUARD_REQUIRE_PRIVILEGED=1 (CI, which must run the kernel tests).
var skipOrFail = privtest.SkipOrFail

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
		opts.MaxSources = 1024 // keep the preallocated map small
	}
	if opts.MaxRules == 0 {
		opts.MaxRules = 1024
	}
	if opts.AdmitAfter == 0 {
		// Tests of parsing, counting and rules look at a source's entry
		// after its first frame; admission has tests of its own.
		opts.AdmitAfter = 1
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

// Frames: built by internal/vectors, shared with the replay decoder's tests.
var (
	frameOf   = vectors.Frame
	eth       = vectors.Eth
	ip4       = vectors.IPv4
	ip6       = vectors.IPv6
	udp       = vectors.UDP
	tcp       = vectors.TCP
	paddedEth = vectors.PaddedEth
)

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

// readSources reads every per-source entry.
func readSources(t testing.TB, x *XDP) []Source {
	t.Helper()
	got, err := x.NewSourceReader().AppendSources(nil)
	if err != nil {
		t.Fatal(err)
	}
	return got
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
