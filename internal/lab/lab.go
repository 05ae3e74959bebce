package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotPermitted means the lab cannot be built here: not root, or root
// without the capabilities namespaces and mounts need (some containers).
var ErrNotPermitted = errors.New("lab: needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN")

const (
	// namePrefix starts the name of every namespace and run directory a
	// lab creates, followed by the creating process id.
	namePrefix = "fglab"
	// runRoot holds each lab's scratch directory and bpffs mount.
	runRoot = "/run/fglab"
	// netnsDir is where `ip netns` keeps its named namespaces.
	netnsDir = "/run/netns"
)

// Lab is one run's set of namespaces, links, mounts, sockets and processes.
// Its methods are safe for concurrent use.
type Lab struct {
	id  string
	dir string

	mu      sync.Mutex
	netns   []*Netns
	closers []io.Closer
	procs   []*Process
	bpffs   string
	closed  bool
}

// New starts an empty lab, first removing what labs of processes that no
// longer exist left behind.
func New() (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w (running as uid %d)", ErrNotPermitted, os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab: iproute2's ip command: %w", err)
	}
	sweep()
	var tag [3]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return nil, fmt.Errorf("lab: random tag: %w", err)
	}
	id := fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(tag[:]))
	dir := filepath.Join(runRoot, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return &Lab{id: id, dir: dir}, nil
}

// ID is the lab's unique name, the prefix of its namespaces' names.
func (l *Lab) ID() string { return l.id }

// Dir is a scratch directory removed by Close (on tmpfs, mode 0755).
func (l *Lab) Dir() string { return l.dir }

// AddNetns creates a namespace, with its loopback up. Its full name (for
// `ip netns`) is the lab's ID, a dash and name.
func (l *Lab) AddNetns(name string) (*Netns, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("lab: namespace name %q: want letters, digits and dashes", name)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("lab: closed")
	}
	n := &Netns{lab: l, Name: name, full: l.id + "-" + name}
	l.mu.Unlock()
	if out, err := exec.Command("ip", "netns", "add", n.full).CombinedOutput(); err != nil {
		if os.IsPermission(err) || strings.Contains(string(out), "Operation not permitted") {
			return nil, fmt.Errorf("%w: ip netns add: %s", ErrNotPermitted, strings.TrimSpace(string(out)))
		}
		return nil, fmt.Errorf("lab: ip netns add %s: %w: %s", n.full, err, strings.TrimSpace(string(out)))
	}
	l.mu.Lock()
	l.netns = append(l.netns, n)
	l.mu.Unlock()
	if err := n.IP("link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return n, nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,15}$`)

// Veth joins two namespaces with a veth pair, aDev in a and bDev in b (each
// at most 15 characters), both up. The names are local to each namespace,
// so they need not be unique across labs.
func (l *Lab) Veth(a *Netns, aDev string, b *Netns, bDev string) error {
	if err := run("ip", "link", "add", aDev, "netns", a.full, "type", "veth", "peer", "name", bDev, "netns", b.full); err != nil {
		return err
	}
	if err := a.IP("link", "set", aDev, "up"); err != nil {
		return err
	}
	return b.IP("link", "set", bDev, "up")
}

// The demo topology's hosts on Bridged, shared by the live demo and the
// FastNetMon benchmark so that both run on the same lab.
var (
	DemoServer   = netip.MustParseAddr("198.18.0.1")
	DemoClient   = netip.MustParseAddr("198.18.0.10")
	DemoAttacker = netip.MustParseAddr("198.18.0.66")
)

// DemoHosts are the server, client and attacker of the demo topology, in
// that order, for Bridged.
func DemoHosts() []BridgedHost {
	return []BridgedHost{{"server", DemoServer}, {"client", DemoClient}, {"attacker", DemoAttacker}}
}

// BridgedHost is one host of Bridged: a namespace whose eth0 is addressed
// Addr/24.
type BridgedHost struct {
	Name string
	Addr netip.Addr
}

// Bridged builds the demo topology: a "switch" namespace holding bridge br0
// and, for each host, a namespace whose eth0 is joined to the bridge by a
// veth (port "to-NAME" on the switch side). It returns the switch and the
// hosts' namespaces in order.
func (l *Lab) Bridged(hosts ...BridgedHost) (*Netns, []*Netns, error) {
	sw, err := l.AddNetns("switch")
	if err != nil {
		return nil, nil, err
	}
	if err := sw.AddBridge("br0"); err != nil {
		return nil, nil, err
	}
	out := make([]*Netns, 0, len(hosts))
	for _, h := range hosts {
		ns, err := l.AddNetns(h.Name)
		if err != nil {
			return nil, nil, err
		}
		port := "to-" + h.Name
		if err := l.Veth(ns, "eth0", sw, port); err != nil {
			return nil, nil, err
		}
		if err := sw.SetMaster(port, "br0"); err != nil {
			return nil, nil, err
		}
		if err := ns.AddAddr("eth0", netip.PrefixFrom(h.Addr, 24).String()); err != nil {
			return nil, nil, err
		}
		out = append(out, ns)
	}
	return sw, out, nil
}

// BPFFS mounts a bpffs private to the lab (once) and returns its path. It
// is unmounted by Close, which frees every pin in it.
func (l *Lab) BPFFS() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bpffs != "" {
		return l.bpffs, nil
	}
	dir := filepath.Join(l.dir, "bpf")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("lab: %w", err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		if errors.Is(err, unix.EPERM) {
			return "", fmt.Errorf("%w: mount bpffs: %w", ErrNotPermitted, err)
		}
		return "", fmt.Errorf("lab: mount bpffs on %s: %w", dir, err)
	}
	l.bpffs = dir
	return dir, nil
}

// track registers something holding a socket in one of the lab's
// namespaces: a namespace lives on while any socket in it is open, so Close
// closes them all first.
func (l *Lab) track(c io.Closer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closers = append(l.closers, c)
}

// Close stops the processes started in the lab, closes its sockets,
// deletes its namespaces (and so every link in them), unmounts its bpffs
// and removes its directory. It reports the first failure but always tries
// everything; calling it again does nothing.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs, closers, netns, bpffs := l.procs, l.closers, l.netns, l.bpffs
	l.mu.Unlock()

	var errs []error
	for _, p := range procs {
		p.Kill()
	}
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i].Close()
	}
	for _, n := range netns {
		if err := run("ip", "netns", "del", n.full); err != nil {
			errs = append(errs, err)
		}
	}
	if bpffs != "" {
		if err := unix.Unmount(bpffs, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("lab: unmount %s: %w", bpffs, err))
		}
	}
	if err := os.RemoveAll(l.dir); err != nil {
		errs = append(errs, fmt.Errorf("lab: %w", err))
	}
	return errors.Join(errs...)
}

// sweep removes the namespaces and run directories of labs whose process
// is gone (killed before it could Close, as by `go test -timeout`).
func sweep() {
	stale := func(name string) bool {
		rest, ok := strings.CutPrefix(name, namePrefix)
		if !ok {
			return false
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			return false
		}
		return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
	}
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			if stale(e.Name()) {
				_ = run("ip", "netns", "del", e.Name())
			}
		}
	}
	if ents, err := os.ReadDir(runRoot); err == nil {
		for _, e := range ents {
			if stale(e.Name()) {
				dir := filepath.Join(runRoot, e.Name())
				_ = unix.Unmount(filepath.Join(dir, "bpf"), unix.MNT_DETACH)
				_ = os.RemoveAll(dir)
			}
		}
	}
}

// Netns is one network namespace of a lab.
type Netns struct {
	lab *Lab
	// Name is the short name given to AddNetns.
	Name string
	full string
}

// FullName is the namespace's name for `ip netns` and `ip -n`.
func (n *Netns) FullName() string { return n.full }

// IP runs `ip -n NETNS args...`.
func (n *Netns) IP(args ...string) error {
	return run("ip", append([]string{"-n", n.full}, args...)...)
}

// AddBridge creates a bridge (no STP, so ports forward at once), up.
func (n *Netns) AddBridge(name string) error {
	if err := n.IP("link", "add", name, "type", "bridge", "stp_state", "0"); err != nil {
		return err
	}
	return n.IP("link", "set", name, "up")
}

// SetMaster enslaves dev to the bridge br.
func (n *Netns) SetMaster(dev, br string) error {
	return n.IP("link", "set", dev, "master", br)
}

// AddAddr adds an address with its prefix length ("198.18.0.1/24",
// "2001:db8:1::1/64") to dev. Only test addresses are accepted; IPv6 ones
// skip duplicate address detection so they are usable at once.
func (n *Netns) AddAddr(dev, cidr string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("lab: address %q: %w", cidr, err)
	}
	if err := CheckAddr(p.Addr()); err != nil {
		return err
	}
	args := []string{"addr", "add", p.String(), "dev", dev}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	return n.IP(args...)
}

// Interface returns dev as the namespace sees it (index, MAC address).
func (n *Netns) Interface(dev string) (*net.Interface, error) {
	var iface *net.Interface
	err := n.Do(func() error {
		var err error
		iface, err = net.InterfaceByName(dev)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: interface %s in %s: %w", dev, n.full, err)
	}
	return iface, nil
}

// Do runs f on an OS thread inside the namespace and returns its error.
// Sockets f creates belong to the namespace for their whole life. f must
// not rely on goroutines it starts being in the namespace: only its own
// thread is. The thread is discarded afterwards, never reused.
func (n *Netns) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends the runtime
		// terminates the thread, still in the namespace, rather than
		// hand it to another goroutine.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join(netnsDir, n.full), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("lab: open namespace %s: %w", n.full, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("lab: enter namespace %s: %w", n.full, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Command returns a command that runs name inside the namespace with
// `ip netns exec`. It runs in a process group of its own, so a Ctrl-C
// meant for the lab's process does not reach it behind the lab's back,
// and it is killed if the lab's process dies (Pdeathsig; start it with
// StartCmd, whose thread lives as long as the process).
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.full, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// run runs a command, returning its output in the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
