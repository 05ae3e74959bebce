package bpf

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// loadEmptyProgram loads xdp_empty, the benchmark floor.
func loadEmptyProgram(tb testing.TB) *ebpf.Program {
	tb.Helper()
	requirePrivileged(tb)
	var objs emptyObjects
	if err := loadEmptyObjects(&objs, nil); err != nil {
		skipOrFail(tb, "needs root: load xdp_empty: %v", err)
	}
	tb.Cleanup(func() { objs.Close() })
	return objs.XdpEmpty
}

// benchProgram runs prog on frame b.N times inside the kernel
// (BPF_PROG_TEST_RUN with repeat) and reports the kernel's time per run as
// ns/op, replacing the wall-clock figure that includes the syscall.
func benchProgram(b *testing.B, prog *ebpf.Program, frame []byte, want uint32) {
	b.Helper()
	ret, perRun, err := prog.Benchmark(frame, b.N, b.ResetTimer)
	if err != nil {
		b.Fatal(err)
	}
	if ret != want {
		b.Fatalf("action %d, want %d", ret, want)
	}
	b.ReportMetric(float64(perRun.Nanoseconds()), "ns/op")
}

// BenchmarkXDP measures the program on 64- and 1500-byte IPv4 UDP frames
// from one source: the empty program (floor), the pass path for a known,
// unbanned source without and with rules installed for other addresses, and
// the drop paths by exact and by prefix rule. Compare against the floor.
func BenchmarkXDP(b *testing.B) {
	const src = "198.18.0.1"
	for _, size := range []int{64, 1500} {
		frame := udpFrame(b, src, size)
		b.Run(fmt.Sprintf("size=%d/empty", size), func(b *testing.B) {
			benchProgram(b, loadEmptyProgram(b), frame, xdpPass)
		})
		b.Run(fmt.Sprintf("size=%d/pass", size), func(b *testing.B) {
			x := loadTest(b, Options{})
			benchProgram(b, x.Program(), frame, xdpPass)
		})
		b.Run(fmt.Sprintf("size=%d/pass-with-rules", size), func(b *testing.B) {
			x := loadTest(b, Options{})
			addRules(b, x, "198.18.0.2/32", "2001:db8::2/128", "198.19.0.0/16", "2001:db8:1::/48")
			benchProgram(b, x.Program(), frame, xdpPass)
		})
		b.Run(fmt.Sprintf("size=%d/drop-exact", size), func(b *testing.B) {
			x := loadTest(b, Options{})
			addRules(b, x, src+"/32")
			benchProgram(b, x.Program(), frame, xdpDrop)
		})
		b.Run(fmt.Sprintf("size=%d/drop-prefix", size), func(b *testing.B) {
			x := loadTest(b, Options{})
			addRules(b, x, "198.18.0.0/24")
			benchProgram(b, x.Program(), frame, xdpDrop)
		})
	}
}

func addRules(tb testing.TB, x *XDP, prefixes ...string) {
	tb.Helper()
	for _, p := range prefixes {
		if err := x.AddRule(netip.MustParsePrefix(p), time.Hour); err != nil {
			tb.Fatal(err)
		}
	}
}
