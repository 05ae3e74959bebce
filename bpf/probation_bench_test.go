package bpf

import (
	"testing"

	"github.com/floodguard/floodguard/detector"
)

// BenchmarkAppendProbation measures the read of the probation records each
// tick (XDP.AppendProbation): a scan of every CPU's region of the mapped
// table, here with each CPU's region filled as a spoofed flood fills it
// (16384 frames from distinct addresses on each CPU, no admission), into a
// reused slice.
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
	dst := x.AppendProbation(nil, epoch)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = x.AppendProbation(dst[:0], epoch)
	}
	b.ReportMetric(float64(len(dst)), "records")
	b.ReportMetric(float64(x.probe.MaxEntries()), "slots")
}
