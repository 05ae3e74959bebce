package bpf

import (
	"runtime"
	"testing"

	"github.com/floodguard/floodguard/detector"
)

// closeEpoch advances x's admission epoch, as the live source does every
// tick, and returns the epoch it closed and that epoch's probation
// records, failing tb on an error.
func closeEpoch(tb testing.TB, x *XDP) (uint32, []detector.Source) {
	tb.Helper()
	closed := x.Epoch()
	if err := x.AdvanceEpoch(); err != nil {
		tb.Fatal(err)
	}
	recs, err := x.AppendProbation(nil, closed)
	if err != nil {
		tb.Fatal(err)
	}
	return closed, recs
}

// TestProbationRegions: a read scans only the regions of CPUs that recorded
// frames on probation since the read before the last, so a region written
// just before an epoch closed is read, and an idle table costs no scan.
func TestProbationRegions(t *testing.T) {
	x := loadAdmitting(t, 3, 0, Options{})
	if x.ncpu < 2 || runtime.NumCPU() < 2 {
		skipOrFail(t, "needs 2 CPUs: %d possible, %d usable", x.ncpu, runtime.NumCPU())
	}
	read := func() (records int, scanned uint64) {
		before := x.probeRegions.scanned
		_, recs := closeEpoch(t, x)
		return len(recs), x.probeRegions.scanned - before
	}
	if _, m := read(); m != 0 {
		t.Errorf("fresh table: %d regions scanned, want 0", m)
	}
	onCPU(t, 1, func() { run(t, x, udp4Frame("198.18.0.7")) })
	for i, want := range []struct {
		records int
		scanned uint64
	}{
		{1, 1}, // CPU 1's region, with the frame's record
		{0, 1}, // again: it moved in the interval before
		{0, 0}, // idle
	} {
		if n, m := read(); n != want.records || m != want.scanned {
			t.Errorf("read %d: %d records, %d regions scanned; want %d, %d", i, n, m, want.records, want.scanned)
		}
	}
}
