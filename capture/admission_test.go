package capture

import (
	"fmt"
	"io"
	"testing"
	"time"
)

// TestReplayAdmission: the replay counts sources as the XDP program admits
// them (TestXDPAndReplayAgree checks the two agree; this runs without
// privileges). With a budget of 2, the third new source of a tick goes on
// probation: in the totals only until its third packet, which brings all
// three under it; a source sending fewer stays out of the tick's sources,
// counted in ProbationPackets; the next tick renews the budget.
func TestReplayAdmission(t *testing.T) {
	srcs := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}
	var recs []rec
	ms := time.Millisecond
	add := func(d time.Duration, src string) { recs = append(recs, rec{ts: at(d), data: udpFrom(t, src, 53)}) }
	add(100*ms, srcs[0])  // budget
	add(110*ms, srcs[1])  // budget
	add(120*ms, srcs[2])  // probation 1
	add(130*ms, srcs[3])  // probation 1
	add(140*ms, srcs[2])  // probation 2
	add(150*ms, srcs[2])  // admitted with its two
	add(160*ms, srcs[3])  // probation 2: stays out
	add(1100*ms, srcs[3]) // next tick: budget again
	r := replayOf(t, ReplayOptions{AdmitAfter: 3, AdmitBudget: 2}, pcapFile(1, recs...))
	ticks, err := collect(t, r)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if len(ticks) != 2 {
		t.Fatalf("%d ticks, want 2", len(ticks))
	}
	got := func(tk tickView) string {
		s := ""
		for _, src := range tk.sources {
			s += fmt.Sprintf("%s:%d ", src.Addr, src.TotalPackets())
		}
		return s + fmt.Sprintf("probation:%d total:%d", tk.prob, tk.total.TotalPackets())
	}
	if g, w := got(ticks[0]), "192.0.2.1:1 192.0.2.2:1 192.0.2.3:3 probation:2 total:7"; g != w {
		t.Errorf("tick 0: %s, want %s", g, w)
	}
	if g, w := got(ticks[1]), "192.0.2.4:1 probation:0 total:1"; g != w {
		t.Errorf("tick 1: %s, want %s", g, w)
	}
}
