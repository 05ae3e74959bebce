package bpf

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Defaults for Options.
const (
	// DefaultPinDir is where maps and the link are pinned so that a restarted
	// daemon adopts the running program and its rules.
	DefaultPinDir = "/sys/fs/bpf/floodguard"
	// DefaultMaxSources is the default capacity of the per-source map. Its
	// memory is preallocated: about MaxSources * (128 * possible CPUs + 64)
	// bytes.
	DefaultMaxSources = 1 << 20
	// DefaultMaxRules is the default capacity of the exact-rule map and of
	// each prefix-rule trie.
	DefaultMaxRules = 1 << 16

	maxMaxSources = 1 << 28
	maxMaxRules   = 1 << 24
)

// bpfFMmapable is BPF_F_MMAPABLE, which golang.org/x/sys/unix does not
// export.
const bpfFMmapable = 0x400

// Errors callers branch on; test with errors.Is.
var (
	// ErrInvalidOptions is returned for Options that fail validation, before
	// any system call.
	ErrInvalidOptions = errors.New("invalid options")
	// ErrNoInterface is returned when Options.Interface does not exist.
	ErrNoInterface = errors.New("no such interface")
	// ErrPermission is returned when the kernel refuses to create maps or
	// load the program: the process is not root and lacks CAP_BPF and
	// CAP_NET_ADMIN (or CAP_SYS_ADMIN on old kernels).
	ErrPermission = errors.New("not permitted to use BPF (need root, or CAP_BPF and CAP_NET_ADMIN)")
	// ErrBPFFSNotMounted is returned when the pin directory is not on a bpf
	// filesystem (mount -t bpf bpf /sys/fs/bpf).
	ErrBPFFSNotMounted = errors.New("bpffs is not mounted at the pin directory")
	// ErrXDPBusy is returned when another XDP program is attached to the
	// interface and Options.Replace is not set.
	ErrXDPBusy = errors.New("another XDP program is attached to the interface")
	// ErrKernelTooOld is returned when the kernel lacks a feature floodguard
	// needs; the most recent is bpf_ktime_get_coarse_ns (Linux 5.11).
	ErrKernelTooOld = errors.New("kernel too old for floodguard")
	// ErrPinConflict is returned when the pin directory holds a floodguard
	// link attached to another interface.
	ErrPinConflict = errors.New("pin directory belongs to a program attached to another interface")
)

// AttachMode selects how the program is attached.
type AttachMode int

const (
	// ModeAuto tries native (driver) mode and falls back to generic mode;
	// XDP.Fallback says why native mode failed.
	ModeAuto AttachMode = iota
	// ModeNative attaches in driver mode only.
	ModeNative
	// ModeGeneric attaches in generic (SKB) mode only: slower, works on any
	// interface.
	ModeGeneric
)

func (m AttachMode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("AttachMode(%d)", int(m))
}

// Options configure Load. The zero value of each field selects its default.
type Options struct {
	// Interface is the network interface to attach to. Empty means load
	// the program and fresh maps without attaching or pinning anything:
	// for tests, benchmarks (Program.Run) and offline use.
	Interface string
	// Mode selects native or generic XDP; ModeAuto by default.
	Mode AttachMode
	// Replace detaches any other XDP program from Interface instead of
	// failing with ErrXDPBusy.
	Replace bool
	// PinDir is the bpffs directory holding the pins; DefaultPinDir when
	// empty. Must be absolute. Used only with Interface.
	PinDir string
	// MaxSources is the capacity of the per-source map; DefaultMaxSources
	// when 0. When adopting pinned maps their capacity wins.
	MaxSources uint32
	// MaxRules is the capacity of the exact-rule map and of each prefix-rule
	// trie; DefaultMaxRules when 0. When adopting pinned maps their capacity
	// wins.
	MaxRules uint32
}

func (o Options) withDefaults() Options {
	if o.PinDir == "" {
		o.PinDir = DefaultPinDir
	}
	if o.MaxSources == 0 {
		o.MaxSources = DefaultMaxSources
	}
	if o.MaxRules == 0 {
		o.MaxRules = DefaultMaxRules
	}
	return o
}

// validate checks options without system calls.
func (o Options) validate() error {
	if o.Interface != "" {
		if len(o.Interface) >= unix.IFNAMSIZ || strings.ContainsAny(o.Interface, "/ \t\n:") || o.Interface == "." || o.Interface == ".." {
			return fmt.Errorf("%w: interface name %q", ErrInvalidOptions, o.Interface)
		}
	}
	if o.Mode < ModeAuto || o.Mode > ModeGeneric {
		return fmt.Errorf("%w: attach mode %d", ErrInvalidOptions, int(o.Mode))
	}
	if !filepath.IsAbs(o.PinDir) || filepath.Clean(o.PinDir) != strings.TrimSuffix(o.PinDir, "/") || o.PinDir == "/" {
		return fmt.Errorf("%w: pin directory %q must be a clean absolute path below /", ErrInvalidOptions, o.PinDir)
	}
	// bpffs refuses to create names with dots. Only the last component is
	// necessarily created by floodguard; the directories above it may lie
	// outside bpffs (a private mount under /tmp/x.y, say).
	if strings.Contains(filepath.Base(o.PinDir), ".") {
		return fmt.Errorf("%w: pin directory %q: bpffs does not allow dots in names", ErrInvalidOptions, o.PinDir)
	}
	if o.MaxSources > maxMaxSources {
		return fmt.Errorf("%w: max sources %d above %d", ErrInvalidOptions, o.MaxSources, maxMaxSources)
	}
	if o.MaxRules > maxMaxRules {
		return fmt.Errorf("%w: max rules %d above %d", ErrInvalidOptions, o.MaxRules, maxMaxRules)
	}
	return nil
}

// XDP is the loaded floodguard program and its maps. Its methods may be
// called concurrently, except Close and Detach.
type XDP struct {
	opts     Options
	prog     *ebpf.Program
	sources  *ebpf.Map
	stats    *ebpf.Map
	exact    *ebpf.Map
	prefix4  *ebpf.Map
	prefix6  *ebpf.Map
	bss      *ebpf.Map
	ctlMem   []byte  // mmap of bss
	ctl      *uint64 // fg_control inside ctlMem
	lnk      link.Link
	ifindex  int
	mode     AttachMode
	adopted  bool
	fallback error
	statsNew error // why a pinned fg_stats was replaced; nil if it was not
	pinned   bool
	ncpu     int
}

// Load loads floodguard_xdp and its maps. With Options.Interface set it
// attaches the program (native mode, falling back to generic) and pins the
// maps and the link under Options.PinDir; if that directory already holds a
// floodguard link on the same interface, Load adopts the running program,
// its maps and its rules instead of loading fresh ones (and upgrades the
// program in place, keeping the maps, if this build's program differs).
//
// Errors wrap ErrInvalidOptions, ErrNoInterface, ErrPermission,
// ErrBPFFSNotMounted, ErrXDPBusy, ErrKernelTooOld, ErrPinConflict or
// ErrABIMismatch where they apply.
func Load(opts Options) (_ *XDP, err error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}

	var iface *net.Interface
	if opts.Interface != "" {
		iface, err = net.InterfaceByName(opts.Interface)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrNoInterface, opts.Interface, err)
		}
		if err := checkBPFFS(opts.PinDir); err != nil {
			return nil, err
		}
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify("remove memlock rlimit", err)
	}
	if err := checkKernel(); err != nil {
		return nil, err
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("possible cpus: %w", err)
	}

	spec, err := loadFloodguard()
	if err != nil {
		return nil, err
	}
	if err := prepareSpec(spec, opts); err != nil {
		return nil, err
	}

	x := &XDP{opts: opts, ncpu: ncpu}
	defer func() {
		if err != nil {
			x.close()
		}
	}()
	if iface == nil {
		if err := x.loadCollection(spec, nil); err != nil {
			return nil, err
		}
	} else {
		x.ifindex = iface.Index
		if err := x.loadPinned(spec); err != nil {
			return nil, err
		}
	}
	if err := x.mapControl(); err != nil {
		return nil, err
	}
	// Publish the rule flags for whatever the (possibly adopted) rule maps
	// hold, and move the generation past 0.
	if err := x.bumpGeneration(); err != nil {
		return nil, err
	}
	return x, nil
}

// prepareSpec checks the object's maps against the Go mirrors and sizes
// them from opts.
func prepareSpec(spec *ebpf.CollectionSpec, opts Options) error {
	for name := range abi {
		ms, ok := spec.Maps[name]
		if !ok {
			return fmt.Errorf("object: %w: no map %s", ErrABIMismatch, name)
		}
		if err := checkABI(name, specInfo{ms}); err != nil {
			return fmt.Errorf("object: %w", err)
		}
	}
	v, ok := spec.Variables[varControl]
	if !ok || v.SectionName != mapBSS || v.Offset != 0 || v.Size() != 8 {
		return fmt.Errorf("object: %w: %s must be the only variable in %s", ErrABIMismatch, varControl, mapBSS)
	}
	if _, ok := spec.Programs[progXDP]; !ok {
		return fmt.Errorf("object: no program %s", progXDP)
	}
	spec.Maps[mapSources].MaxEntries = opts.MaxSources
	spec.Maps[mapExact].MaxEntries = opts.MaxRules
	spec.Maps[mapPrefix4].MaxEntries = opts.MaxRules
	spec.Maps[mapPrefix6].MaxEntries = opts.MaxRules
	return nil
}

// pinNames maps object map names to pin file names (bpffs refuses dots).
var pinNames = map[string]string{
	mapSources: mapSources,
	mapStats:   mapStats,
	mapExact:   mapExact,
	mapPrefix4: mapPrefix4,
	mapPrefix6: mapPrefix6,
	mapBSS:     pinControl,
}

func (x *XDP) mapsByName() map[string]**ebpf.Map {
	return map[string]**ebpf.Map{
		mapSources: &x.sources,
		mapStats:   &x.stats,
		mapExact:   &x.exact,
		mapPrefix4: &x.prefix4,
		mapPrefix6: &x.prefix6,
		mapBSS:     &x.bss,
	}
}

// loadCollection loads the program and the maps, reusing the maps in
// replace (which stay owned by the caller).
func (x *XDP) loadCollection(spec *ebpf.CollectionSpec, replace map[string]*ebpf.Map) error {
	for name, m := range replace {
		// Pinned maps keep their own capacity.
		spec.Maps[name].MaxEntries = m.MaxEntries()
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: replace})
	if err != nil {
		return classify("load objects", err)
	}
	defer coll.Close()
	x.prog = coll.DetachProgram(progXDP)
	for name, dst := range x.mapsByName() {
		*dst = coll.DetachMap(name)
		if *dst == nil {
			return fmt.Errorf("load objects: missing map %s", name)
		}
	}
	return nil
}

// loadPinned adopts or creates the pinned maps and link under the pin
// directory and makes sure the program is attached to x.ifindex.
func (x *XDP) loadPinned(spec *ebpf.CollectionSpec) (err error) {
	dir := x.opts.PinDir
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return classify("create pin directory", err)
		}
		defer func() {
			if err != nil {
				os.Remove(dir) // only if still empty
			}
		}()
	}

	// Maps pinned by an earlier run; they carry the rules and counters.
	pinned := map[string]*ebpf.Map{}
	defer func() {
		for _, m := range pinned {
			m.Close()
		}
	}()
	for name, pin := range pinNames {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, pin), nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return classify("load pinned map "+pin, err)
		}
		if err := checkABI(name, m); err != nil {
			if name == mapStats {
				// Only counters (another build's layout, e.g. before
				// drops were counted by class): start a new map, pinned
				// in place of this one below. The counters restart.
				m.Close()
				x.statsNew = fmt.Errorf("pinned %w; replaced by a new map, global counters restart from zero", err)
				continue
			}
			m.Close()
			return fmt.Errorf("pinned %w (left by another floodguard build? remove %s to start afresh)", err, dir)
		}
		pinned[name] = m
	}

	lnk, err := x.loadPinnedLink()
	if err != nil {
		return err
	}
	if lnk != nil {
		x.lnk = lnk
		if adopted, err := x.adoptProgram(spec, pinned); err != nil || adopted {
			return err
		}
	}

	// Load a program, reusing whatever maps were pinned.
	if err := x.loadCollection(spec, pinned); err != nil {
		return err
	}
	var fresh []string // pins this call created, removed on failure
	defer func() {
		if err != nil {
			for _, p := range fresh {
				os.Remove(p)
			}
		}
	}()
	for name, dst := range x.mapsByName() {
		if _, ok := pinned[name]; ok {
			continue
		}
		p := filepath.Join(dir, pinNames[name])
		if name == mapStats && x.statsNew != nil {
			// The incompatible map's pin; a program still using it keeps
			// it until the link is updated below.
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("unpin incompatible %s: %w", mapStats, err)
			}
		}
		if err := (*dst).Pin(p); err != nil {
			return classify("pin map "+name, err)
		}
		fresh = append(fresh, p)
	}
	x.pinned = true

	if x.lnk != nil {
		// A floodguard link is attached but runs another build of the
		// program, or other maps: swap the program in place.
		if err := x.lnk.Update(x.prog); err != nil {
			return classify("update pinned link", err)
		}
		x.adopted = true
		return x.queryMode()
	}
	if err := x.attach(); err != nil {
		return err
	}
	p := filepath.Join(dir, pinLink)
	if err := x.lnk.Pin(p); err != nil {
		return classify("pin link", err)
	}
	return nil
}

// loadPinnedLink returns the pinned link if it is attached to x.ifindex, nil
// if there is none or it is defunct (its interface went away), and
// ErrPinConflict if it is attached elsewhere.
func (x *XDP) loadPinnedLink() (link.Link, error) {
	p := filepath.Join(x.opts.PinDir, pinLink)
	lnk, err := link.LoadPinnedLink(p, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, classify("load pinned link", err)
	}
	info, err := lnk.Info()
	if err != nil {
		lnk.Close()
		return nil, classify("pinned link info", err)
	}
	xi := info.XDP()
	switch {
	case info.Type != link.XDPType || xi == nil:
		lnk.Close()
		return nil, fmt.Errorf("%w: %s is a link of type %d, not xdp", ErrPinConflict, p, info.Type)
	case xi.Ifindex == 0:
		// Detached (interface removed, or detached by force): drop the pin
		// and attach afresh with the pinned maps.
		lnk.Close()
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("remove defunct link pin: %w", err)
		}
		return nil, nil
	case int(xi.Ifindex) != x.ifindex:
		lnk.Close()
		return nil, fmt.Errorf("%w: %s is attached to ifindex %d, not %s (ifindex %d)",
			ErrPinConflict, p, xi.Ifindex, x.opts.Interface, x.ifindex)
	}
	return lnk, nil
}

// adoptProgram takes over the program behind x.lnk when it is this build's
// program and uses exactly the pinned maps. It reports false (and changes
// nothing) when the program must be reloaded instead.
func (x *XDP) adoptProgram(spec *ebpf.CollectionSpec, pinned map[string]*ebpf.Map) (bool, error) {
	if len(pinned) != len(pinNames) {
		return false, nil
	}
	info, err := x.lnk.Info()
	if err != nil {
		return false, classify("pinned link info", err)
	}
	prog, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		return false, classify("open adopted program", err)
	}
	pinfo, err := prog.Info()
	if err != nil {
		prog.Close()
		return false, classify("adopted program info", err)
	}
	// Compatible compares kernel tags (the algorithm changed in 6.18;
	// ProgramSpec.Tag is deprecated for that reason).
	err = spec.Programs[progXDP].Compatible(pinfo)
	if err != nil && !errors.Is(err, ebpf.ErrProgIncompatible) {
		prog.Close()
		return false, fmt.Errorf("compare adopted program: %w", err)
	}
	ids, ok := pinfo.MapIDs()
	same := err == nil && ok && len(ids) == len(pinned)
	for _, m := range pinned {
		if !same {
			break
		}
		mi, err := m.Info()
		if err != nil {
			prog.Close()
			return false, classify("pinned map info", err)
		}
		id, _ := mi.ID()
		same = slices.Contains(ids, id)
	}
	if !same {
		prog.Close()
		return false, nil
	}
	x.prog = prog
	for name, dst := range x.mapsByName() {
		*dst = pinned[name]
		delete(pinned, name) // now owned by x
	}
	x.adopted = true
	x.pinned = true
	return true, x.queryMode()
}

// queryMode sets x.mode from what the kernel reports for the interface.
func (x *XDP) queryMode() error {
	st, err := queryXDP(x.ifindex)
	if err != nil {
		return err
	}
	x.mode = st.mode()
	return nil
}

// attach attaches x.prog to x.ifindex in the requested mode, replacing other
// programs if asked to.
func (x *XDP) attach() error {
	err := x.attachMode()
	if isBusy(err) && x.opts.Replace {
		if err := detachOthers(x.ifindex); err != nil {
			return err
		}
		err = x.attachMode()
	}
	if isBusy(err) {
		return fmt.Errorf("attach to %s: %w: %w", x.opts.Interface, ErrXDPBusy, err)
	}
	return err
}

func (x *XDP) attachMode() error {
	try := func(flags link.XDPAttachFlags) error {
		l, err := link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: x.ifindex, Flags: flags})
		if err != nil {
			return err
		}
		x.lnk = l
		return nil
	}
	switch x.opts.Mode {
	case ModeNative:
		if err := try(link.XDPDriverMode); err != nil {
			return classify("attach native to "+x.opts.Interface, err)
		}
		x.mode = ModeNative
	case ModeGeneric:
		if err := try(link.XDPGenericMode); err != nil {
			return classify("attach generic to "+x.opts.Interface, err)
		}
		x.mode = ModeGeneric
	default:
		nerr := try(link.XDPDriverMode)
		if nerr == nil {
			x.mode = ModeNative
			return nil
		}
		if isBusy(nerr) {
			return nerr
		}
		if gerr := try(link.XDPGenericMode); gerr != nil {
			return classify("attach to "+x.opts.Interface, fmt.Errorf("native: %w; generic: %w", nerr, gerr))
		}
		x.mode = ModeGeneric
		x.fallback = fmt.Errorf("native xdp on %s: %w", x.opts.Interface, nerr)
	}
	return nil
}

// isBusy reports whether an attach failed because another program holds the
// hook: EBUSY (a program or link in the same mode) or EEXIST (one in the
// other mode).
func isBusy(err error) bool {
	return errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST)
}

// detachOthers removes every XDP program from ifindex: bpf_links by
// BPF_LINK_DETACH, netlink-attached programs by netlink.
func detachOthers(ifindex int) error {
	var it link.Iterator
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != link.XDPType {
			continue
		}
		if xi := info.XDP(); xi == nil || int(xi.Ifindex) != ifindex {
			continue
		}
		if err := it.Link.Detach(); err != nil {
			return classify(fmt.Sprintf("replace: detach xdp link %d", it.ID), err)
		}
	}
	if err := it.Err(); err != nil {
		return classify("replace: list links", err)
	}
	st, err := queryXDP(ifindex)
	if err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	if st.attached == xdpAttachedSKB || st.skbProgID != 0 {
		if err := setXDPFD(ifindex, -1, unix.XDP_FLAGS_SKB_MODE); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
	}
	if st.attached == xdpAttachedDrv || st.drvProgID != 0 {
		if err := setXDPFD(ifindex, -1, unix.XDP_FLAGS_DRV_MODE); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
	}
	return nil
}

// mapControl memory-maps the .bss map so that fg_control can be updated
// with atomic instructions, visible to the program at once.
func (x *XDP) mapControl() error {
	if x.bss.Flags()&bpfFMmapable == 0 {
		return fmt.Errorf("map %s: %w: not mmapable (needs Linux 5.5)", mapBSS, ErrKernelTooOld)
	}
	mem, err := unix.Mmap(x.bss.FD(), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return classify("mmap "+mapBSS, err)
	}
	x.ctlMem = mem
	x.ctl = (*uint64)(unsafe.Pointer(&mem[0]))
	return nil
}

// checkBPFFS returns ErrBPFFSNotMounted unless dir, or its closest existing
// ancestor, is on a bpf filesystem.
func checkBPFFS(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if errors.Is(err, unix.ENOENT) && p != "/" {
			continue
		}
		if err != nil {
			return fmt.Errorf("statfs %s: %w", p, err)
		}
		if st.Type != unix.BPF_FS_MAGIC {
			return fmt.Errorf("%w: %s is not on bpffs (mount -t bpf bpf %s)", ErrBPFFSNotMounted, p, p)
		}
		return nil
	}
}

// checkKernel returns ErrKernelTooOld if a feature probe says the kernel
// lacks something the program needs. Inconclusive probes (e.g. without
// privileges) are ignored: loading then fails with the real reason. XDP
// bpf_link (5.9) is checked by the attach itself.
func checkKernel() error {
	for _, c := range []struct {
		what  string
		probe func() error
	}{
		{"XDP programs (Linux 4.8)", func() error { return features.HaveProgramType(ebpf.XDP) }},
		{"per-CPU hash maps (Linux 4.6)", func() error { return features.HaveMapType(ebpf.PerCPUHash) }},
		{"LPM tries (Linux 4.11)", func() error { return features.HaveMapType(ebpf.LPMTrie) }},
		{"bpf_ktime_get_coarse_ns (Linux 5.11)", func() error {
			return features.HaveProgramHelper(ebpf.XDP, asm.FnKtimeGetCoarseNs)
		}},
	} {
		if err := c.probe(); errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("%w: no %s: %w", ErrKernelTooOld, c.what, err)
		}
	}
	return nil
}

// classify wraps err for op, adding ErrPermission or ErrKernelTooOld when
// the kernel said so.
func classify(op string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%s: %w: %w", op, ErrPermission, err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%s: %w: %w", op, ErrKernelTooOld, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Program returns the XDP program, for BPF_PROG_TEST_RUN (Program.Run,
// Program.Benchmark). It stays owned by x.
func (x *XDP) Program() *ebpf.Program { return x.prog }

// Mode returns the mode the program is attached in (ModeAuto when not
// attached, or when the kernel does not say).
func (x *XDP) Mode() AttachMode { return x.mode }

// Fallback returns why native mode failed when ModeAuto fell back to generic
// mode, for the caller to log as a warning; nil otherwise.
func (x *XDP) Fallback() error { return x.fallback }

// StatsReplaced returns why Load replaced a pinned fg_stats map it could not
// use (left by a build with another layout of the global counters), for
// the caller to log as a warning; nil otherwise. The rules and per-source
// map are kept; only the global counters restart from zero.
func (x *XDP) StatsReplaced() error { return x.statsNew }

// Adopted reports whether Load took over a program that was already running
// from the pin directory, with its maps and rules.
func (x *XDP) Adopted() bool { return x.adopted }

// MaxSources returns the capacity of the per-source map.
func (x *XDP) MaxSources() uint32 { return x.sources.MaxEntries() }

// Close releases this process's handles. A pinned program keeps running
// with its rules, and the next Load adopts it; an unpinned one (Options
// without Interface) is unloaded.
func (x *XDP) Close() error {
	x.close()
	return nil
}

func (x *XDP) close() {
	if x.ctlMem != nil {
		unix.Munmap(x.ctlMem)
		x.ctlMem, x.ctl = nil, nil
	}
	if x.lnk != nil {
		x.lnk.Close()
		x.lnk = nil
	}
	if x.prog != nil {
		x.prog.Close()
		x.prog = nil
	}
	for _, m := range x.mapsByName() {
		if *m != nil {
			(*m).Close()
			*m = nil
		}
	}
}

// Detach detaches the program from its interface, removes every pin and the
// pin directory if it is left empty, and closes x. Rules are discarded.
func (x *XDP) Detach() error {
	var errs []error
	if x.lnk != nil {
		if err := x.lnk.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
			errs = append(errs, fmt.Errorf("detach link: %w", err))
		}
	}
	if x.pinned {
		for _, pin := range append([]string{pinLink}, sortedPins()...) {
			err := os.Remove(filepath.Join(x.opts.PinDir, pin))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("unpin: %w", err))
			}
		}
		if err := os.Remove(x.opts.PinDir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("remove pin directory: %w", err))
		}
	}
	x.close()
	return errors.Join(errs...)
}

func sortedPins() []string {
	var pins []string
	for _, p := range pinNames {
		pins = append(pins, p)
	}
	slices.Sort(pins)
	return pins
}

// control returns the current fg_control word.
func (x *XDP) control() uint64 { return atomic.LoadUint64(x.ctl) }
