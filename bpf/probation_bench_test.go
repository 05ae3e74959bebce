package bpf

import (
	"testing"

	"github.com/floodguard/floodguard/detector"
)

// BenchmarkAppendProbation measures the read of the probation records each
// tick (XDP.AppendProbation), here with each CPU's region filled as a
// spoofed flood fills it (16384 frames from distinct addresses on each CPU,
// no admission), into a reused slice: "busy", every region scanned, as
// under the flood; "idle", no CPU recorded anything since the read before
// the last, as without one.
//
//	go test -run '^$' -bench AppendProbation ./bpf/
func BenchmarkAppendProbation(b *testing.B) {
	x := loadTest(b, Options{AdmitAfter: MaxAdmit})
	if err := x.SetAdmission(MaxAdmit, 0); err != nil {
		b.Fatal(err)
	}
	i := 0
	for cpu := range x.ncpu {
		onCPU(b, cpu, func() {
			for range ProbeSlots {
				a := detector.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
				i = (i + 1) % (1 << 17)
				run(b, x, udp4Frame(a.Netip().String()))
			}
		})
	}
	epoch := x.Epoch()
	all, err := x.AppendProbation(nil, epoch)
	if err != nil {
		b.Fatal(err)
	}
	records := len(all)
	for _, c := range []struct {
		name string
		busy bool
	}{{"busy", true}, {"idle", false}} {
		busy := c.busy
		b.Run(c.name, func(b *testing.B) {
			dst := make([]detector.Source, 0, records)
			var err error
			b.ReportAllocs()
			for b.Loop() {
				if busy {
					for c := range x.probeRegions.moved {
						x.probeRegions.moved[c] = true
					}
				}
				if dst, err = x.AppendProbation(dst[:0], epoch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(dst)), "records")
		})
	}
}
