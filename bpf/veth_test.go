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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

// The veth lab: two network namespaces made by the test, joined by a veth
// pair. The program runs on the receiving end, fgv0 in the receiver's
// namespace; fgv1 in the sender's namespace carries every sending address.
// Addresses come from 198.18.0.0/15 and 2001:db8::/32 only.
const (
	labRecvIf  = "fgv0"
	labSendIf  = "fgv1"
	labRecvMAC = "02:00:00:00:f0:01"
	labSendMAC = "02:00:00:00:f0:02"
	labPort    = 9999 // the receiver's UDP port
	// labPayload is the UDP payload of every datagram, so frames are 106
	// bytes over IPv4 and 126 over IPv6: above the Ethernet minimum, so
	// nothing pads them.
	labPayload = 64
	// labWait bounds every wait for traffic or for the kernel.
	labWait = 5 * time.Second
)

var (
	labRecv4 = netip.MustParseAddr("198.18.0.1")
	labRecv6 = netip.MustParseAddr("2001:db8::1")
)

// vethLab is the two namespaces, the receiver's sockets and the per-source
// counts of what they received.
type vethLab struct {
	t              *testing.T
	recvNS, sendNS string
	senders        map[netip.Addr]*net.UDPConn

	mu       sync.Mutex
	received map[netip.Addr]int
}

// inNetns runs fn on a thread in the named namespace. The thread never
// comes back: it stays locked to a goroutine that ends, and the runtime
// discards it, so no other goroutine ever runs in the namespace. Sockets,
// links and programs made by fn keep their namespace wherever they are
// used later.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- fmt.Errorf("open namespace: %w", err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// newVethLab makes the namespaces and the pair, with static neighbour
// entries both ways and no link-local addresses or duplicate address
// detection: the only IP traffic on the pair is what the test sends, from
// the addresses it chose. senders are the sending addresses.
func newVethLab(t *testing.T, senders []netip.Addr) *vethLab {
	t.Helper()
	requirePrivileged(t)
	if _, err := exec.LookPath("ip"); err != nil {
		skipOrFail(t, "needs root: iproute2 'ip' command: %v", err)
	}
	l := &vethLab{
		t:        t,
		recvNS:   fmt.Sprintf("fgrecv-%d", os.Getpid()),
		sendNS:   fmt.Sprintf("fgsend-%d", os.Getpid()),
		senders:  map[netip.Addr]*net.UDPConn{},
		received: map[netip.Addr]int{},
	}
	for _, ns := range []string{l.recvNS, l.sendNS} {
		exec.Command("ip", "netns", "del", ns).Run() // leftover of a killed run
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			skipOrFail(t, "needs root: create a network namespace: %v: %s", err, out)
		}
		// Deleting the namespaces removes the pair, and with it whatever
		// program still runs on it.
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	ip := func(ns string, args ...string) {
		t.Helper()
		args = append([]string{"-n", ns}, args...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// One queue each way: frames from every source then reach the program
	// in the order they were sent, which sendPast relies on.
	ip(l.recvNS, "link", "add", labRecvIf, "address", labRecvMAC, "numtxqueues", "1", "numrxqueues", "1", "type", "veth",
		"peer", "name", labSendIf, "address", labSendMAC, "numtxqueues", "1", "numrxqueues", "1", "netns", l.sendNS)
	// No link-local addresses (fe80::/10 is not ours to use), no DAD.
	ip(l.recvNS, "link", "set", labRecvIf, "addrgenmode", "none")
	ip(l.sendNS, "link", "set", labSendIf, "addrgenmode", "none")
	ip(l.recvNS, "addr", "add", labRecv4.String()+"/24", "dev", labRecvIf)
	ip(l.recvNS, "addr", "add", labRecv6.String()+"/64", "dev", labRecvIf, "nodad")
	for _, a := range senders {
		bits := 24
		if a.Is6() {
			bits = 64
		}
		if !netip.MustParsePrefix("198.18.0.0/24").Contains(a) && !netip.MustParsePrefix("2001:db8::/64").Contains(a) {
			t.Fatalf("sender %s outside the lab's subnets", a)
		}
		ip(l.sendNS, "addr", "add", fmt.Sprintf("%s/%d", a, bits), "dev", labSendIf, "nodad")
		ip(l.recvNS, "neigh", "add", a.String(), "lladdr", labSendMAC, "dev", labRecvIf, "nud", "permanent")
	}
	for _, a := range []netip.Addr{labRecv4, labRecv6} {
		ip(l.sendNS, "neigh", "add", a.String(), "lladdr", labRecvMAC, "dev", labSendIf, "nud", "permanent")
	}
	ip(l.recvNS, "link", "set", labRecvIf, "up")
	ip(l.sendNS, "link", "set", labSendIf, "up")

	l.listen()
	for i, a := range senders {
		l.dial(a, uint16(40001+i))
	}
	return l
}

// listen opens the receiver's sockets and counts what they receive, by
// source, until the test ends.
func (l *vethLab) listen() {
	t := l.t
	t.Helper()
	var conns []*net.UDPConn
	err := inNetns(l.recvNS, func() error {
		for _, a := range []netip.Addr{labRecv4, labRecv6} {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, labPort)))
			if err != nil {
				return fmt.Errorf("listen on %s: %w", a, err)
			}
			conns = append(conns, c)
		}
		return nil
	})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				_, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return // closed at the end of the test
				}
				l.mu.Lock()
				l.received[from.Addr().Unmap()]++
				l.mu.Unlock()
			}
		}()
	}
}

// dial opens a UDP socket bound to src:port in the sender's namespace.
func (l *vethLab) dial(src netip.Addr, port uint16) {
	t := l.t
	t.Helper()
	dst := labRecv4
	if src.Is6() {
		dst = labRecv6
	}
	var c *net.UDPConn
	err := inNetns(l.sendNS, func() (err error) {
		c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, port)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, labPort)))
		if err != nil {
			return fmt.Errorf("udp socket on %s: %w", src, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l.senders[src] = c
}

// send sends n datagrams from src (n is small: every send is bounded).
func (l *vethLab) send(src netip.Addr, n int) {
	l.t.Helper()
	c := l.senders[src]
	msg := make([]byte, labPayload)
	for i := range n {
		if _, err := c.Write(msg); err != nil {
			l.t.Fatalf("send from %s: %v", src, err)
		}
		if i%32 == 31 {
			// The pair queues a few hundred frames towards the program
			// (veth's ring): pace bursts so none is lost before XDP.
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// got returns how many datagrams from src the receiver has read.
func (l *vethLab) got(src netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.received[src]
}

// waitFor polls cond until it holds, failing after labWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(labWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, labWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendPast sends n datagrams from each of srcs, then n from marker, a
// source that must get through, and waits until the marker's have all
// arrived. The pair has one queue each way, so by then every frame sent
// before them has been through the program: a source of srcs that is
// dropped has had every chance to arrive.
func (l *vethLab) sendPast(marker netip.Addr, n int, srcs ...netip.Addr) {
	l.t.Helper()
	for _, s := range srcs {
		l.send(s, n)
	}
	want := l.got(marker) + n
	l.send(marker, n)
	waitFor(l.t, fmt.Sprintf("%d datagrams from %s delivered", n, marker), func() bool { return l.got(marker) >= want })
}

// loadIn loads the program onto the receiving end, from a thread in the
// receiver's namespace (the loader resolves and queries the interface
// there), and detaches it when the test ends.
func (l *vethLab) loadIn(opts Options) *XDP {
	l.t.Helper()
	var x *XDP
	err := inNetns(l.recvNS, func() (err error) {
		x, err = Load(opts)
		return err
	})
	if errors.Is(err, ErrPermission) || errors.Is(err, ErrKernelTooOld) {
		skipOrFail(l.t, "needs root: %v", err)
	}
	if err != nil {
		l.t.Fatalf("load on %s: %v", opts.Interface, err)
	}
	l.t.Cleanup(func() { x.Detach() })
	return x
}

// xdpState returns what the kernel reports about XDP on the receiving end.
func (l *vethLab) xdpState() xdpState {
	l.t.Helper()
	var st xdpState
	err := inNetns(l.recvNS, func() error {
		iface, err := net.InterfaceByName(labRecvIf)
		if err != nil {
			return fmt.Errorf("find %s: %w", labRecvIf, err)
		}
		st, err = queryXDP(iface.Index)
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return st
}

// frameSize is the Ethernet frame of one of the lab's datagrams from src.
func frameSize(src netip.Addr) uint64 {
	if src.Is4() {
		return 14 + 20 + 8 + labPayload
	}
	return 14 + 40 + 8 + labPayload
}

// TestVethTraffic sends real UDP traffic between two namespaces over a veth
// pair with the program on the receiving end: every frame from several
// sources is counted exactly; an exact and a prefix rule drop their sources
// (counted, not delivered) while others get through; a short rule expires
// in the kernel with no loader holding the program; a second loader adopts
// the program, its counts and its rules; Detach leaves the interface
// without XDP and the pin directory gone.
func TestVethTraffic(t *testing.T) {
	var (
		exact4  = netip.MustParseAddr("198.18.0.2")  // banned by an exact rule
		pass4   = netip.MustParseAddr("198.18.0.3")  // the short rule's
		prefix4 = netip.MustParseAddr("198.18.0.17") // banned by 198.18.0.16/28
		pass6   = netip.MustParseAddr("2001:db8::2")
		prefix6 = netip.MustParseAddr("2001:db8::101") // banned by 2001:db8::100/120
	)
	srcs := []netip.Addr{exact4, pass4, prefix4, pass6, prefix6}
	lab := newVethLab(t, srcs)
	pins := testPinDir(t)
	opts := Options{Interface: labRecvIf, PinDir: pins, Mode: ModeNative, MaxSources: 1024, MaxRules: 64}
	x := lab.loadIn(opts)
	if x.Mode() != ModeNative {
		t.Fatalf("attached in %v mode, want native", x.Mode())
	}

	// What each source has sent, and how much of it a rule dropped.
	sentBy := map[netip.Addr]uint64{}
	droppedBy := map[netip.Addr]uint64{}
	// checkCounts compares the program's counters with what was sent,
	// giving the kernel until labWait to count the last frames.
	checkCounts := func(what string, x *XDP) {
		t.Helper()
		for deadline := time.Now().Add(labWait); ; time.Sleep(10 * time.Millisecond) {
			var wrong []string
			for _, s := range srcs {
				e, _, err := x.LookupSource(detector.AddrFrom(s))
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				var want detector.Counters
				want.Packets[detector.ClassUDP] = sentBy[s]
				want.Bytes[detector.ClassUDP] = sentBy[s] * frameSize(s)
				want.DroppedPackets = droppedBy[s]
				want.DroppedBytes = droppedBy[s] * frameSize(s)
				if e.Counters != want {
					wrong = append(wrong, fmt.Sprintf("%s counted %+v, want %+v", s, e.Counters, want))
				}
			}
			if len(wrong) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s:\n%s", what, strings.Join(wrong, "\n"))
				return
			}
		}
	}

	// Every frame counted, by source, with its frame bytes and port.
	const n = 40
	for i, s := range srcs {
		lab.send(s, n*(i+1))
		sentBy[s] += uint64(n * (i + 1))
	}
	for _, s := range srcs {
		waitFor(t, fmt.Sprintf("%d datagrams from %s delivered", sentBy[s], s), func() bool { return lab.got(s) >= int(sentBy[s]) })
	}
	checkCounts("first traffic", x)
	// Nothing else crossed the pair from an address of its own (the
	// kernel may send MLD reports from ::, having no link-local address).
	all := readSources(t, x)
	for _, e := range all {
		if a := e.Addr.Netip(); !slices.Contains(srcs, a) && !a.IsUnspecified() {
			t.Errorf("traffic from %s crossed the pair: %+v", a, e.Counters)
		}
	}
	for i, s := range srcs {
		if e, _, _ := x.LookupSource(detector.AddrFrom(s)); e.UDPSrcPort != uint16(40001+i) {
			t.Errorf("%s: UDP source port %d, want %d", s, e.UDPSrcPort, 40001+i)
		}
		if got := lab.got(s); got != int(sentBy[s]) {
			t.Errorf("%s: %d delivered, sent %d", s, got, sentBy[s])
		}
	}

	// An exact and two prefix rules: their sources are dropped (and still
	// counted), the others get through.
	for _, p := range []string{"198.18.0.2/32", "198.18.0.16/28", "2001:db8::100/120"} {
		if err := x.AddRule(netip.MustParsePrefix(p), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	before := map[netip.Addr]int{}
	for _, s := range srcs {
		before[s] = lab.got(s)
	}
	lab.sendPast(pass6, n, exact4, prefix4, prefix6, pass4)
	for _, s := range srcs {
		sentBy[s] += n
	}
	for _, s := range []netip.Addr{exact4, prefix4, prefix6} {
		droppedBy[s] += n
	}
	waitFor(t, "pass4 delivered", func() bool { return lab.got(pass4) >= before[pass4]+n })
	for _, s := range srcs {
		want := before[s] + n
		if droppedBy[s] > 0 {
			want = before[s]
		}
		if got := lab.got(s); got != want {
			t.Errorf("with rules: %d datagrams from %s delivered, want %d", got-before[s], s, want-before[s])
		}
	}
	checkCounts("with rules", x)
	rules, err := x.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !r.Exact() && (r.Packets != n || r.Bytes != n*frameSize(r.Prefix.Addr())) {
			t.Errorf("rule %s hits %d/%d B, want %d frames", r.Prefix, r.Packets, r.Bytes, n)
		}
	}

	// A 2 s rule; then no loader holds the program, and the kernel alone
	// lets the source through again once the rule has expired.
	short := netip.PrefixFrom(pass4, 32)
	if err := x.AddRule(short, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	var expires uint64
	rules, err = x.Rules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Prefix == short {
			expires = r.ExpiresNs
		}
	}
	lab.sendPast(pass6, n, pass4)
	sentBy[pass4], droppedBy[pass4], sentBy[pass6] = sentBy[pass4]+n, droppedBy[pass4]+n, sentBy[pass6]+n
	checkCounts("short rule", x)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if st := lab.xdpState(); st.attached != xdpAttachedDrv {
		t.Fatalf("after Close the kernel reports %+v, want the program still attached", st)
	}
	delivered := lab.got(pass4)
	lab.sendPast(pass6, n, pass4) // still dropping, with nobody holding a handle
	sentBy[pass4], droppedBy[pass4], sentBy[pass6] = sentBy[pass4]+n, droppedBy[pass4]+n, sentBy[pass6]+n
	if got := lab.got(pass4); got != delivered {
		t.Errorf("before expiry %d datagrams from %s delivered, want none", got-delivered, pass4)
	}
	now, err := MonotonicNow()
	if err != nil {
		t.Fatal(err)
	}
	if expires == 0 {
		t.Fatalf("rule %s not listed: %+v", short, rules)
	}
	if now < expires {
		// The program's clock is coarse (a tick behind at most): wait a
		// little past the expiry.
		wait := time.Duration(expires-now) + 50*time.Millisecond
		if wait > labWait {
			t.Fatalf("short rule expires in %s", wait)
		}
		time.Sleep(wait)
	}
	lab.send(pass4, n)
	sentBy[pass4] += n
	waitFor(t, "traffic after expiry with no loader", func() bool { return lab.got(pass4) >= delivered+n })

	// A second loader adopts the program, its counts and its rules.
	y := lab.loadIn(opts)
	if !y.Adopted() {
		t.Error("second load did not adopt the pinned program")
	}
	checkCounts("adopted", y)
	rules, err = y.Rules()
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, r := range rules {
		live[r.Prefix.String()] = r.TimeLeft > 0
	}
	for p, want := range map[string]bool{"198.18.0.2/32": true, "198.18.0.16/28": true, "2001:db8::100/120": true, short.String(): false} {
		if got, ok := live[p]; !ok || got != want {
			t.Errorf("adopted rule %s: present %v, live %v; want present, live %v", p, ok, got, want)
		}
	}
	before = map[netip.Addr]int{}
	for _, s := range srcs {
		before[s] = lab.got(s)
	}
	lab.sendPast(pass6, n, exact4, prefix4, prefix6)
	for _, s := range []netip.Addr{exact4, prefix4, prefix6} {
		sentBy[s] += n
		droppedBy[s] += n
		if got := lab.got(s); got != before[s] {
			t.Errorf("adopted rules: %d datagrams from %s delivered, want none", got-before[s], s)
		}
	}
	sentBy[pass6] += n
	checkCounts("adopted rules", y)

	// Detach: no XDP program on the interface, no pins, and traffic from
	// the banned source flows again.
	if err := y.Detach(); err != nil {
		t.Fatal(err)
	}
	if st := lab.xdpState(); st.attached != xdpAttachedNone || st.progID != 0 {
		t.Errorf("after Detach the kernel reports %+v", st)
	}
	out, err := exec.Command("ip", "-n", lab.recvNS, "-d", "link", "show", labRecvIf).CombinedOutput()
	if err != nil || strings.Contains(string(out), "xdp") {
		t.Errorf("after Detach ip -d link show says (%v): %s", err, out)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin directory after Detach: %v, want gone (holds %v)", err, pinFiles(t, pins))
	}
	before[exact4] = lab.got(exact4)
	lab.send(exact4, n)
	waitFor(t, "banned source after Detach", func() bool { return lab.got(exact4) >= before[exact4]+n })
}
