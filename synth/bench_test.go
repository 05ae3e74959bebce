package synth

import (
	"io"
	"testing"
)

// BenchmarkWrite measures generation speed on the Bench scenario.
func BenchmarkWrite(b *testing.B) {
	const packets = 200_000
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Write(io.Discard, Bench, Options{Seed: 1, Packets: packets}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(packets*b.N)/b.Elapsed().Seconds(), "pkts/s")
}
