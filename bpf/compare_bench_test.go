package bpf

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// xdpFilterDir holds xdp-filter's programs as Debian's libxdp1 ships them
// (xdp-tools depends on it); they are loaded at benchmark time, never
// copied. xdpfilt_alw_all passes by default and drops what its maps list;
// xdpfilt_dny_all drops by default and passes what they list. Both look up
// the frame's Ethernet addresses, IP addresses and ports in turn.
const xdpFilterDir = "/usr/lib/x86_64-linux-gnu/bpf/"

// xdp-filter's map value flags (xdp-tools, xdp-filter/common_kern_user.h).
const xdpFilterFlagSrc = 1 << 0

// loadXDPFilter loads one of xdp-filter's programs and, if listed is valid,
// lists that IPv4 source address in it, as `xdp-filter ip -m src` would.
func loadXDPFilter(b *testing.B, name string, listed netip.Addr) *ebpf.Program {
	b.Helper()
	xdpFilterObject := xdpFilterDir + name + ".o"
	if _, err := os.Stat(xdpFilterObject); err != nil {
		b.Skipf("xdp-filter's object not installed (apt-get install xdp-tools): %v", err)
	}
	spec, err := ebpf.LoadCollectionSpec(xdpFilterObject)
	if err != nil {
		b.Fatalf("read %s: %v", xdpFilterObject, err)
	}
	// xdp-filter pins its maps by name for its command-line tool; a private
	// copy is what a benchmark wants.
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	requirePrivileged(b)
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		b.Fatalf("load %s: %v", xdpFilterObject, err)
	}
	b.Cleanup(coll.Close)
	if listed.IsValid() {
		ncpu, err := ebpf.PossibleCPU()
		if err != nil {
			b.Fatal(err)
		}
		vals := make([]uint64, ncpu)
		for i := range vals {
			vals[i] = xdpFilterFlagSrc
		}
		key := listed.As4()
		if err := coll.Maps["filter_ipv4"].Put(key, vals); err != nil {
			b.Fatalf("list %s in xdp-filter: %v", listed, err)
		}
	}
	prog := coll.Programs[name]
	if prog == nil {
		b.Fatalf("%s not in %s", name, xdpFilterObject)
	}
	return prog
}

// BenchmarkXDPCompare runs, side by side and interleaved over rounds, the
// empty program (the floor), floodguard's pass and drop paths, and
// xdp-filter's deny program passing and dropping, on the same 64- and
// 1500-byte IPv4 UDP frames. Each variant's median ns per frame is
// reported as its own metric, and also as a multiple of the floor. Run it
// once: go test -run '^$' -bench XDPCompare -benchtime 1x ./bpf/
func BenchmarkXDPCompare(b *testing.B) {
	const (
		rounds = 9
		repeat = 2_000_000
		src    = "198.18.0.1"
	)
	type variant struct {
		name string
		prog *ebpf.Program
		want uint32
	}
	empty := loadEmptyProgram(b)
	pass := loadTest(b, Options{})
	passRules := loadTest(b, Options{})
	addRules(b, passRules, "198.18.0.2/32", "2001:db8::2/128", "198.19.0.0/16", "2001:db8:1::/48")
	dropExact := loadTest(b, Options{})
	addRules(b, dropExact, src+"/32")
	dropPrefix := loadTest(b, Options{})
	addRules(b, dropPrefix, "198.18.0.0/24")
	variants := []variant{
		{"empty", empty, xdpPass},
		{"floodguard-pass", pass.Program(), xdpPass},
		{"floodguard-pass-with-rules", passRules.Program(), xdpPass},
		{"floodguard-drop-exact", dropExact.Program(), xdpDrop},
		{"floodguard-drop-prefix", dropPrefix.Program(), xdpDrop},
		// The yardstick: xdpfilt_dny_all passing a listed source
		// after its chain of lookups.
		{"xdpfilt_dny_all-pass", loadXDPFilter(b, "xdpfilt_dny_all", netip.MustParseAddr(src)), xdpPass},
		{"xdpfilt_dny_all-drop", loadXDPFilter(b, "xdpfilt_dny_all", netip.Addr{}), xdpDrop},
		// The same job as floodguard: pass by default, drop a listed source.
		{"xdpfilt_alw_all-pass", loadXDPFilter(b, "xdpfilt_alw_all", netip.Addr{}), xdpPass},
		{"xdpfilt_alw_all-drop", loadXDPFilter(b, "xdpfilt_alw_all", netip.MustParseAddr(src)), xdpDrop},
	}
	for b.Loop() {
		for _, size := range []int{64, 1500} {
			frame := udpFrame(b, src, size)
			ns := make(map[string][]float64)
			for range rounds {
				for _, v := range variants {
					ret, per, err := v.prog.Benchmark(frame, repeat, nil)
					if err != nil {
						b.Fatalf("%s: %v", v.name, err)
					}
					if ret != v.want {
						b.Fatalf("%s on %d bytes: action %d, want %d", v.name, size, ret, v.want)
					}
					ns[v.name] = append(ns[v.name], float64(per.Nanoseconds()))
				}
			}
			floor := median(ns["empty"])
			for _, v := range variants {
				m := median(ns[v.name])
				b.ReportMetric(m, fmt.Sprintf("%dB-%s-ns", size, v.name))
				b.ReportMetric(m/floor, fmt.Sprintf("%dB-%s-x-floor", size, v.name))
			}
			if size == 64 {
				b.ReportMetric(median(ns["floodguard-pass"])/median(ns["xdpfilt_dny_all-pass"]), "64B-pass-vs-dny_all")
			}
		}
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkMapMemory reports what the kernel charges for each map at the
// default sizes (the memlock line of the map's fdinfo), on this machine's
// number of possible CPUs: per-CPU maps grow with it.
func BenchmarkMapMemory(b *testing.B) {
	x := loadTest(b, Options{MaxSources: DefaultMaxSources, MaxRules: DefaultMaxRules})
	for b.Loop() {
		var total float64
		for name, m := range x.mapsByName() {
			data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", (*m).FD()))
			if err != nil {
				b.Fatal(err)
			}
			var memlock float64
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "memlock:"); ok {
					fmt.Sscan(strings.TrimSpace(v), &memlock)
				}
			}
			total += memlock
			b.ReportMetric(memlock/(1<<20), name+"-MiB")
		}
		ncpu, _ := ebpf.PossibleCPU()
		b.ReportMetric(total/(1<<20), "total-MiB")
		b.ReportMetric(float64(ncpu), "possible-cpus")
	}
}
