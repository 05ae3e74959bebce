package capture

import "github.com/floodguard/floodguard/detector"

// DefaultMaxProbationRecords is how many probation records (frames of
// sources on probation, by address: detector.Tick.Probation) a live tick
// hands the detector at most. The program keeps up to 16384 per CPU per
// tick, so a host of up to four CPUs never reaches it; a larger one under
// a spoofed flood would otherwise give the detector a million records a
// tick (about 600 ns each: BenchmarkStepProbation).
const DefaultMaxProbationRecords = 1 << 16

// sampleProbation keeps max of recs (max > 0), evenly spread over them,
// each standing for the records after it up to the next one kept: its
// counters are multiplied by their number, so that the records' total
// stays exact and every prefix's is right on average. Records come in
// the program's slot order, a keyed hash of the address, so an even
// spread is a random sample of addresses. It works in place.
func sampleProbation(recs []detector.Source, max int) []detector.Source {
	n := len(recs)
	if n <= max {
		return recs
	}
	for j := range max {
		from, to := j*n/max, (j+1)*n/max
		r := recs[from]
		k := uint64(to - from)
		for c := range r.Packets {
			r.Packets[c] *= k
			r.Bytes[c] *= k
		}
		r.DroppedPackets *= k
		r.DroppedBytes *= k
		recs[j] = r
	}
	return recs[:max]
}
