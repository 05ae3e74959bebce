package capture

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/internal/procstat"
)

// BenchmarkLiveCollect1M measures what the live source does once per tick
// with 1<<20 active sources (issue #14: reading or otherwise handling 1M
// active sources in one tick within 250 ms of CPU on one core): the
// program counts one frame from each of them (BPF_PROG_TEST_RUN, not
// timed), then Collect reads the maps and turns the entries into the
// tick's per-source counts. The detector's share of the same tick is
// detector's BenchmarkStep at 1M sources. Rounds (LIVE_ROUNDS, default 5)
// after a priming read; CPU time of the collecting thread, median.
//
// Run it once: go test -run '^$' -bench LiveCollect1M -benchtime 1x ./capture/
func BenchmarkLiveCollect1M(b *testing.B) {
	const n = 1 << 20
	requirePrivileged(b)
	rounds := 5
	if v, err := strconv.Atoi(os.Getenv("LIVE_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	x, err := bpf.Load(bpf.Options{MaxSources: n, AdmitAfter: 1})
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	b.Cleanup(func() { x.Close() })
	live, err := NewLive(context.Background(), LiveMapsOf(x), LiveOptions{Tick: time.Second, ReadBudget: -1})
	if err != nil {
		b.Fatal(err)
	}
	// One IPv6 UDP frame per source, 2001:db8::/32 with the source's
	// number in the last four bytes.
	frame := liveUDP("2001:db8::", 53).frame
	const srcEnd = 14 + 8 + 16 // Ethernet, then the IPv6 source ends here
	send := func() {
		for i := range n {
			frame[srcEnd-4], frame[srcEnd-3], frame[srcEnd-2], frame[srcEnd-1] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			if ret, err := x.Program().Run(&ebpf.RunOptions{Data: frame}); err != nil || ret != xdpPass {
				b.Fatalf("run: %d, %v", ret, err)
			}
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ms []float64
	for b.Loop() {
		send()
		if _, err := live.Collect(time.Now()); err != nil { // priming
			b.Fatal(err)
		}
		for range rounds {
			send()
			start, err := procstat.ThreadCPU()
			if err != nil {
				b.Fatal(err)
			}
			tk, err := live.Collect(time.Now())
			if err != nil {
				b.Fatal(err)
			}
			end, err := procstat.ThreadCPU()
			if err != nil {
				b.Fatal(err)
			}
			ms = append(ms, float64(end-start)/1e6)
			if len(tk.Sources) != n {
				b.Fatalf("tick of %d sources, want %d", len(tk.Sources), n)
			}
		}
	}
	rounds_ := fmt.Sprint(ms) // in order: the first carries the tick's buffers growing
	slices.Sort(ms)
	med := ms[len(ms)/2]
	b.ReportMetric(med, "collect-ms")
	fmt.Printf("BenchmarkLiveCollect1M: %d active sources, %d rounds: Collect %.0f ms of CPU (median; %.0f-%.0f), %.0f ns per source; target 250 ms with the detector's step; rounds in order, ms: %s\n",
		n, len(ms), med, ms[0], ms[len(ms)-1], med*1e6/n, rounds_)
}
