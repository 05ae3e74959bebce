package bpf

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/detector"
)

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Interface: "eth0/x"},
		{Interface: "averyveryverylongname0"},
		{Interface: ".."},
		{Mode: AttachMode(7)},
		{Mode: AttachMode(-1)},
		{PinDir: "relative/dir"},
		{PinDir: "/sys/fs/bpf/../floodguard"},
		{PinDir: "/"},
		{PinDir: "/sys/fs/bpf/floodguard.v2"},
		{MaxSources: maxMaxSources + 1},
		{MaxRules: maxMaxRules + 1},
	} {
		// Validation runs before any system call, so this needs no
		// privileges and touches nothing.
		if _, err := Load(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v, want ErrInvalidOptions", o, err)
		}
	}
	if err := (Options{Interface: "fgv0", PinDir: "/sys/fs/bpf/fg/"}).withDefaults().validate(); err != nil {
		t.Errorf("trailing slash: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	requirePrivileged(t)
	if _, err := Load(Options{Interface: "fgnosuch0"}); !errors.Is(err, ErrNoInterface) {
		t.Errorf("missing interface: %v, want ErrNoInterface", err)
	}
	if _, err := Load(Options{Interface: "lo", PinDir: t.TempDir()}); !errors.Is(err, ErrBPFFSNotMounted) {
		t.Errorf("pin dir off bpffs: %v, want ErrBPFFSNotMounted", err)
	}
}

// loadAttached loads with opts (Interface set) and detaches at the end of
// the test.
func loadAttached(t *testing.T, opts Options) *XDP {
	t.Helper()
	if opts.MaxSources == 0 {
		opts.MaxSources = 1024
	}
	if opts.MaxRules == 0 {
		opts.MaxRules = 64
	}
	x, err := Load(opts)
	if errors.Is(err, ErrPermission) || errors.Is(err, ErrKernelTooOld) {
		skipOrFail(t, "needs root: %v", err)
	}
	if err != nil {
		t.Fatalf("load %+v: %v", opts, err)
	}
	t.Cleanup(func() { x.Detach() })
	return x
}

func progID(t *testing.T, x *XDP) uint32 {
	t.Helper()
	info, err := x.Program().Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return uint32(id)
}

func xdpOn(t *testing.T, ifname string) xdpState {
	t.Helper()
	st, err := queryXDP(ifindex(t, ifname))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func pinFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestAttachAdoptDetach(t *testing.T) {
	testNetns(t)
	pins := testPinDir(t)
	opts := Options{Interface: "fgv0", PinDir: pins, MaxSources: 1024}
	x := loadAttached(t, opts)
	if x.Adopted() || x.Mode() != ModeNative || x.Fallback() != nil {
		t.Errorf("first load: adopted %v, mode %v, fallback %v; want fresh native", x.Adopted(), x.Mode(), x.Fallback())
	}
	id := progID(t, x)
	if st := xdpOn(t, "fgv0"); st.attached != xdpAttachedDrv || st.progID != id {
		t.Errorf("kernel reports %+v, want prog %d in driver mode", st, id)
	}
	want := []string{"fg_admission", "fg_control", "fg_exact", "fg_exempt", "fg_feat", "fg_feat_dsts", "fg_feat_ports", "fg_feat_touched", "fg_free_slots", "fg_prefix4", "fg_prefix6", "fg_probe",
		"fg_sig_index", "fg_sig_rules", "fg_sig_scratch", "fg_sig_stats", "fg_source_slots", "fg_sources", "fg_stats", "fg_trip_levels", "fg_trips", "link"}
	if got := pinFiles(t, pins); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("pins %v, want %v", got, want)
	}
	for _, p := range []string{"198.18.0.0/24", "2001:db8::5/128"} {
		if err := x.AddRule(netip.MustParsePrefix(p), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	gen := x.RulesGeneration()
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if st := xdpOn(t, "fgv0"); st.progID != id {
		t.Fatalf("after Close the program is gone: %+v", st)
	}

	// A second load adopts the program, its maps and rules; the pinned
	// capacity wins over the options.
	opts.MaxSources = 2048
	y := loadAttached(t, opts)
	if !y.Adopted() || progID(t, y) != id || y.Mode() != ModeNative {
		t.Errorf("second load: adopted %v, prog %d (want %d), mode %v", y.Adopted(), progID(t, y), id, y.Mode())
	}
	if y.MaxSources() != 1024 {
		t.Errorf("max sources %d, want the pinned 1024", y.MaxSources())
	}
	if y.RulesGeneration() == gen {
		t.Errorf("generation not bumped on adopt")
	}
	rules, err := y.Rules()
	if err != nil || len(rules) != 2 {
		t.Errorf("adopted rules: %v, %v", rules, err)
	}
	expectAction(t, y, "adopted rule", udp4Frame("198.18.0.9"), xdpDrop)

	if err := y.Detach(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin dir after Detach: %v (%v)", err, pinFiles(t, pins))
	}
	if st := xdpOn(t, "fgv0"); st.attached != xdpAttachedNone {
		t.Errorf("after Detach the kernel reports %+v", st)
	}
}

func TestAttachModes(t *testing.T) {
	testNetns(t)
	x := loadAttached(t, Options{Interface: "fgv0", PinDir: testPinDir(t), Mode: ModeGeneric})
	if x.Mode() != ModeGeneric {
		t.Errorf("mode %v, want generic", x.Mode())
	}
	if st := xdpOn(t, "fgv0"); st.attached != xdpAttachedSKB {
		t.Errorf("kernel reports %+v, want generic", st)
	}
	if err := x.Detach(); err != nil {
		t.Fatal(err)
	}

	// Loopback has no native XDP: auto falls back and says why, native
	// fails outright.
	pins := testPinDir(t)
	if _, err := Load(Options{Interface: "lo", PinDir: pins, Mode: ModeNative, MaxSources: 1024, MaxRules: 64}); err == nil || errors.Is(err, ErrXDPBusy) {
		t.Errorf("native on lo: %v, want a plain attach error", err)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed load left its pin directory: %v %v", err, pinFiles(t, pins))
	}
	y := loadAttached(t, Options{Interface: "lo", PinDir: pins})
	if y.Mode() != ModeGeneric || y.Fallback() == nil {
		t.Errorf("auto on lo: mode %v, fallback %v; want generic with a reason", y.Mode(), y.Fallback())
	}
	t.Logf("fallback reason: %v", y.Fallback())
}

func TestAttachBusyReplace(t *testing.T) {
	testNetns(t)
	idx := ifindex(t, "fgv0")
	foreign := loadEmptyProgram(t)
	if err := setXDPFD(idx, foreign.FD(), unix.XDP_FLAGS_DRV_MODE); err != nil {
		t.Fatalf("attach foreign program: %v", err)
	}

	pins := testPinDir(t)
	opts := Options{Interface: "fgv0", PinDir: pins, MaxSources: 1024, MaxRules: 64}
	if _, err := Load(opts); !errors.Is(err, ErrXDPBusy) {
		t.Fatalf("over a netlink program: %v, want ErrXDPBusy", err)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused load left its pin directory: %v %v", err, pinFiles(t, pins))
	}
	opts.Replace = true
	x := loadAttached(t, opts)
	if st := xdpOn(t, "fgv0"); st.progID != progID(t, x) {
		t.Errorf("after replace the kernel reports %+v", st)
	}

	// Another floodguard (other pin dir) over our link.
	other := Options{Interface: "fgv0", PinDir: testPinDir(t), MaxSources: 1024, MaxRules: 64}
	if _, err := Load(other); !errors.Is(err, ErrXDPBusy) {
		t.Fatalf("over a floodguard link: %v, want ErrXDPBusy", err)
	}
	other.Replace = true
	y := loadAttached(t, other)
	if st := xdpOn(t, "fgv0"); st.progID != progID(t, y) {
		t.Errorf("after replacing a link the kernel reports %+v", st)
	}
	// The replaced instance still cleans up its pins.
	if err := x.Detach(); err != nil {
		t.Errorf("detach replaced: %v", err)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("replaced instance's pins remain: %v", pinFiles(t, pins))
	}
}

func TestAttachPinConflictAndDefunct(t *testing.T) {
	ns := testNetns(t)
	pins := testPinDir(t)
	opts := Options{Interface: "fgv0", PinDir: pins, MaxSources: 1024, MaxRules: 64}
	x := loadAttached(t, opts)
	if err := x.AddRule(netip.MustParsePrefix("198.18.3.0/24"), time.Hour); err != nil {
		t.Fatal(err)
	}
	x.Close()

	conflict := opts
	conflict.Interface = "fgv1"
	if _, err := Load(conflict); !errors.Is(err, ErrPinConflict) {
		t.Errorf("other interface, same pins: %v, want ErrPinConflict", err)
	}

	// The interface goes away: the pinned link is defunct. A new load
	// attaches a fresh program to the new interface with the pinned maps,
	// so the rules survive.
	for _, args := range [][]string{
		{"-n", ns, "link", "del", "fgv0"},
		{"-n", ns, "link", "add", "fgv0", "type", "veth", "peer", "name", "fgv1"},
		{"-n", ns, "link", "set", "fgv0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	y := loadAttached(t, opts)
	if y.Adopted() {
		t.Errorf("adopted a defunct link")
	}
	rules, err := y.Rules()
	if err != nil || len(rules) != 1 || rules[0].Prefix.String() != "198.18.3.0/24" {
		t.Errorf("rules after reattach: %v, %v", rules, err)
	}
	if st := xdpOn(t, "fgv0"); st.progID != progID(t, y) {
		t.Errorf("kernel reports %+v", st)
	}
	if _, err := os.Stat(filepath.Join(pins, pinLink)); err != nil {
		t.Errorf("link not pinned again: %v", err)
	}
}

// TestAttachUpgrade runs another program behind the pinned link (as an
// older floodguard build would): Load swaps this build's program in through
// the link, keeping the pinned maps and rules.
func TestAttachUpgrade(t *testing.T) {
	testNetns(t)
	pins := testPinDir(t)
	opts := Options{Interface: "fgv0", PinDir: pins, MaxSources: 1024, MaxRules: 64}
	x := loadAttached(t, opts)
	if err := x.AddRule(netip.MustParsePrefix("2001:db8:9::/48"), time.Hour); err != nil {
		t.Fatal(err)
	}
	x.Close()

	runOlderProgram(t, pins)

	y := loadAttached(t, opts)
	if !y.Adopted() {
		t.Errorf("not adopted")
	}
	if st := xdpOn(t, "fgv0"); st.progID != progID(t, y) {
		t.Errorf("kernel runs %+v, want the upgraded program %d", st, progID(t, y))
	}
	expectAction(t, y, "rule kept across upgrade", udp6Frame("2001:db8:9::1"), xdpDrop)
}

// runOlderProgram puts another program behind the link pinned in pins, as
// an older floodguard build would have left it.
func runOlderProgram(t *testing.T, pins string) {
	t.Helper()
	lnk, err := link.LoadPinnedLink(filepath.Join(pins, pinLink), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = lnk.Update(loadEmptyProgram(t))
	lnk.Close()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAttachLayoutUpgrade leaves a pinned counter map of another layout
// behind an older program, as an older build would have: fg_stats before
// drops were counted by class, fg_feat_ports as one mmapable region per CPU
// before the port summer. Load replaces that map alone, says so, keeps the
// rules, and the next start adopts everything as it is.
func TestAttachLayoutUpgrade(t *testing.T) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		old   ebpf.MapSpec
		check func(t *testing.T, y *XDP)
	}{
		{mapStats, ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 96, MaxEntries: 1},
			func(t *testing.T, y *XDP) {
				if st := readStats(t, y); st.DroppedPackets != 1 || st.DroppedClassPackets[detector.ClassUDP] != 1 {
					t.Errorf("stats after one drop: %+v", st)
				}
			}},
		{mapFeatPorts, ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16,
			MaxEntries: uint32(ncpu * portCounters), Flags: bpfFMmapable},
			func(t *testing.T, y *XDP) {
				// The dropped frame's ports, counted in the new map.
				ports := portsOf(t, readFeatures(t, y.NewFeatureReader()))
				if p := ports[[2]int{int(detector.UDPSrcPort), 53}]; p.Packets != 1 {
					t.Errorf("udp sport 53 after one frame: %+v", p)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testAttachLayoutUpgrade(t, c.name, c.old, c.check)
		})
	}
}

func testAttachLayoutUpgrade(t *testing.T, name string, old ebpf.MapSpec, check func(*testing.T, *XDP)) {
	testNetns(t)
	pins := testPinDir(t)
	opts := Options{Interface: "fgv0", PinDir: pins, MaxSources: 1024, MaxRules: 64}
	x := loadAttached(t, opts)
	if err := x.AddRule(netip.MustParsePrefix("198.18.9.0/24"), time.Hour); err != nil {
		t.Fatal(err)
	}
	x.Close()

	// The older build: its program behind the link, its map pinned.
	runOlderProgram(t, pins)
	oldMap, err := ebpf.NewMap(&old)
	if err != nil {
		t.Fatal(err)
	}
	defer oldMap.Close()
	pin := filepath.Join(pins, pinNames[name])
	if err := os.Remove(pin); err != nil {
		t.Fatal(err)
	}
	if err := oldMap.Pin(pin); err != nil {
		t.Fatal(err)
	}

	y := loadAttached(t, opts)
	if err := y.StatsReplaced(); !errors.Is(err, ErrABIMismatch) {
		t.Errorf("replaced: %v, want ErrABIMismatch", err)
	}
	if !y.Adopted() {
		t.Errorf("not adopted")
	}
	if st := xdpOn(t, "fgv0"); st.progID != progID(t, y) {
		t.Errorf("kernel runs %+v, want the upgraded program %d", st, progID(t, y))
	}
	m, err := ebpf.LoadPinnedMap(pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkABI(name, m); err != nil {
		t.Errorf("pinned %s after upgrade: %v", name, err)
	}
	m.Close()
	expectAction(t, y, "rule kept across the upgrade", udp4Frame("198.18.9.1"), xdpDrop)
	check(t, y)
	y.Close()

	// The next start adopts everything as it is.
	z := loadAttached(t, opts)
	defer z.Close()
	if z.StatsReplaced() != nil || !z.Adopted() {
		t.Errorf("third load: replaced %v, adopted %v", z.StatsReplaced(), z.Adopted())
	}
	check(t, z)
}
