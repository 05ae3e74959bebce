package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Loading: the XDP handle, Load, the collection and its maps, pinning them
// under the pin directory and adopting a program and maps pinned by an
// earlier run, and the memory-mapped control word.

// XDP is the loaded floodguard program and its maps. Its methods may be
// called concurrently, except Close and Detach.
type XDP struct {
	opts    Options
	prog    *ebpf.Program
	sources *ebpf.Map // address -> slot
	slots   *ebpf.Map // the entries (slots.go)
	free    *ebpf.Map // free slots
	stats   *ebpf.Map
	exact   *ebpf.Map
	prefix4 *ebpf.Map
	prefix6 *ebpf.Map
	bss     *ebpf.Map
	ctlMem  []byte  // mmap of bss
	ctl     *uint64 // fg_control inside ctlMem

	// Signature rules and features (sig.go, features.go).
	sigRules     *ebpf.Map
	sigIndex     *ebpf.Map
	sigStats     *ebpf.Map
	sigScratch   *ebpf.Map // program only
	exempt       *ebpf.Map
	featPorts    *ebpf.Map
	feat         *ebpf.Map
	featDsts     *ebpf.Map
	featTouched  *ebpf.Map
	probe        *ebpf.Map
	probeMem     []byte       // mmap of probe (read only)
	probeRegions probeRegions // which regions of probe to read (probation.go)
	admission    *ebpf.Map
	admitMem     []byte          // mmap of admission
	admit        *AdmissionValue // inside admitMem
	tripLevels   *ebpf.Map
	trips        *ebpf.Map     // ring buffer
	sigMem       []byte        // mmap of sigRules
	indexMem     []byte        // mmap of sigIndex
	summer       *portSummer   // sums featPorts over the CPUs (portsums.go)
	sumsMem      []byte        // mmap of the summer's sums (read only)
	wantMem      []byte        // mmap of the summer's request
	touchMem     []byte        // mmap of featTouched
	dstsMem      []byte        // mmap of featDsts
	slotMem      []byte        // address space reserved for slots (slots.go)
	slotVals     []SlotValue   // over slotMem; valid below slotsMapped
	slotsMapped  atomic.Uint32 // slots mapped so far
	mapMu        sync.Mutex    // serializes mapping slots
	slotMu       sync.Mutex    // guards freed
	freed        [2][]uint32   // slots freed this tick and the tick before
	sigMu        sync.Mutex    // serializes signature and exempt writes
	lnk          link.Link
	ifindex      int
	mode         AttachMode
	adopted      bool
	fallback     error
	replaced     []error // why pinned counter maps were replaced (StatsReplaced)
	pinned       bool
	ncpu         int
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
	if err := prepareSpec(spec, opts, ncpu); err != nil {
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
	if err := x.takeStockOfSlots(); err != nil {
		return nil, err
	}
	if err := x.setAdmission(opts.AdmitAfter, opts.AdmitBudget); err != nil {
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
// them from opts and the number of possible CPUs.
func prepareSpec(spec *ebpf.CollectionSpec, opts Options, ncpu int) error {
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
	spec.Maps[mapSlots].MaxEntries = opts.MaxSources
	spec.Maps[mapFree].MaxEntries = opts.MaxSources
	spec.Maps[mapExact].MaxEntries = opts.MaxRules
	spec.Maps[mapPrefix4].MaxEntries = opts.MaxRules
	spec.Maps[mapPrefix6].MaxEntries = opts.MaxRules
	spec.Maps[mapTripLevels].MaxEntries = opts.MaxRules
	spec.Maps[mapProbe].MaxEntries = uint32(ncpu * ProbeSlots)
	return nil
}

// pinNames maps object map names to pin file names (bpffs refuses dots).
var pinNames = map[string]string{
	mapSources: mapSources,
	mapSlots:   mapSlots,
	mapFree:    mapFree,
	mapStats:   mapStats,
	mapExact:   mapExact,
	mapPrefix4: mapPrefix4,
	mapPrefix6: mapPrefix6,
	mapBSS:     pinControl,

	mapSigRules:    mapSigRules,
	mapSigIndex:    mapSigIndex,
	mapSigStats:    mapSigStats,
	mapSigScratch:  mapSigScratch,
	mapExempt:      mapExempt,
	mapFeatPorts:   mapFeatPorts,
	mapFeat:        mapFeat,
	mapFeatDsts:    mapFeatDsts,
	mapFeatTouched: mapFeatTouched,
	mapProbe:       mapProbe,
	mapAdmission:   mapAdmission,
	mapTripLevels:  mapTripLevels,
	mapTrips:       mapTrips,
}

func (x *XDP) mapsByName() map[string]**ebpf.Map {
	return map[string]**ebpf.Map{
		mapSources: &x.sources,
		mapSlots:   &x.slots,
		mapFree:    &x.free,
		mapStats:   &x.stats,
		mapExact:   &x.exact,
		mapPrefix4: &x.prefix4,
		mapPrefix6: &x.prefix6,
		mapBSS:     &x.bss,

		mapSigRules:    &x.sigRules,
		mapSigIndex:    &x.sigIndex,
		mapSigStats:    &x.sigStats,
		mapSigScratch:  &x.sigScratch,
		mapExempt:      &x.exempt,
		mapFeatPorts:   &x.featPorts,
		mapFeat:        &x.feat,
		mapFeatDsts:    &x.featDsts,
		mapFeatTouched: &x.featTouched,
		mapProbe:       &x.probe,
		mapAdmission:   &x.admission,
		mapTripLevels:  &x.tripLevels,
		mapTrips:       &x.trips,
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
	replace := map[string]bool{} // pinned maps of another layout, replaced
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
			if why, ok := replaceable[name]; ok {
				// Only counters (another build's layout): start a new
				// map, pinned in place of this one below.
				m.Close()
				x.replaced = append(x.replaced, fmt.Errorf("pinned %w; replaced by a new map, %s", err, why))
				replace[name] = true
				continue
			}
			m.Close()
			return fmt.Errorf("pinned %w (left by another floodguard build? remove %s to start afresh)", err, dir)
		}
		pinned[name] = m
	}
	x.keepSourceMapsTogether(pinned, replace)

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
		if replace[name] {
			// The incompatible map's pin; a program still using it keeps
			// it until the link is updated below.
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("unpin incompatible %s: %w", name, err)
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
	// ProgramSpec.Tag is deprecated for that reason). The kernel hashes the
	// instructions with its BPF-to-BPF calls resolved, which the spec's
	// are only when marshaled: marshal a copy first.
	ps := spec.Programs[progXDP].Copy()
	// bpf2go builds the object for little-endian machines only (bpfel).
	if err := ps.Instructions.Marshal(io.Discard, binary.LittleEndian); err != nil {
		prog.Close()
		return false, fmt.Errorf("resolve program calls: %w", err)
	}
	err = ps.Compatible(pinfo)
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

// Program returns the XDP program, for BPF_PROG_TEST_RUN (Program.Run,
// Program.Benchmark). It stays owned by x.
func (x *XDP) Program() *ebpf.Program { return x.prog }

// Mode returns the mode the program is attached in (ModeAuto when not
// attached, or when the kernel does not say).
func (x *XDP) Mode() AttachMode { return x.mode }

// Fallback returns why native mode failed when ModeAuto fell back to generic
// mode, for the caller to log as a warning; nil otherwise.
func (x *XDP) Fallback() error { return x.fallback }

// replaceable names the pinned maps that hold only counters: one left by a
// build with another layout is replaced by a new map rather than refused,
// and says what restarts.
var replaceable = map[string]string{
	mapStats:     "global counters restart from zero",
	mapSources:   sourcesRestart,
	mapSlots:     sourcesRestart,
	mapFree:      sourcesRestart,
	mapProbe:     "sources on probation start again",
	mapAdmission: "admission epochs restart",
	mapFeatPorts: "port counters restart from zero",
}

const sourcesRestart = "per-source counters restart (sources are admitted again)"

// sourceMaps are the maps of the per-source entries: they are kept or
// replaced together, since each holds indexes into another.
var sourceMaps = []string{mapSources, mapSlots, mapFree}

// StatsReplaced returns why Load replaced pinned counter maps it could not
// use (left by a build with another layout of the global or per-source
// counters), for the caller to log as a warning; nil otherwise. The rules
// are kept; only the replaced counters restart from zero.
func (x *XDP) StatsReplaced() error { return errors.Join(x.replaced...) }

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
	mems := []*[]byte{&x.slotMem}
	for _, mp := range x.mappings() {
		mems = append(mems, mp.mem)
	}
	for _, mem := range mems {
		if *mem != nil {
			unix.Munmap(*mem)
			*mem = nil
		}
	}
	x.ctl, x.admit, x.slotVals = nil, nil, nil
	x.summer.close()
	x.summer = nil
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

// control returns the current fg_control word.
func (x *XDP) control() uint64 { return atomic.LoadUint64(x.ctl) }
