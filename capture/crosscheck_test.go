package capture

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/vectors"
)

// requirePrivileged skips t unless it runs as root, or fails it under
// FLOODGUARD_REQUIRE_PRIVILEGED=1 (CI, where kernel tests must run).
func requirePrivileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("FLOODGUARD_REQUIRE_PRIVILEGED") == "1" {
		t.Fatal("needs root to load BPF programs, and FLOODGUARD_REQUIRE_PRIVILEGED=1 forbids skipping")
	}
	t.Skip("needs root to load BPF programs")
}

// TestXDPAndReplayAgree sends every shared vector, several times over,
// through the real XDP program (BPF_PROG_TEST_RUN) read back by the live
// source, and through the replay decoder and aggregator: the per-source
// counters, the totals and the unparsed counts must be identical.
func TestXDPAndReplayAgree(t *testing.T) {
	requirePrivileged(t)
	x, err := bpf.Load(bpf.Options{})
	if err != nil {
		if errors.Is(err, bpf.ErrPermission) && os.Getenv("FLOODGUARD_REQUIRE_PRIVILEGED") != "1" {
			t.Skipf("cannot load BPF here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	live, err := NewLive(context.Background(), LiveMapsOf(x), LiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	if _, err := live.Collect(start); err != nil { // prime
		t.Fatal(err)
	}

	agg := newAggregator(time.Second, time.Minute, time.Minute)
	agg.begin(start)
	dec := NewDecoder()
	vs := vectors.All()
	for round := range 3 {
		for i, v := range vs {
			if round > 0 && i%(round+1) != 0 {
				continue // uneven counts per source
			}
			ret, err := x.Program().Run(&ebpf.RunOptions{Data: v.Frame})
			if err != nil {
				t.Fatalf("%s: run: %v", v.Name, err)
			}
			if ret != 2 { // XDP_PASS: no rules installed
				t.Fatalf("%s: XDP action %d, want pass", v.Name, ret)
			}
			p := dec.Decode(LinkTypeEthernet, v.Frame)
			agg.add(&p, uint64(len(v.Frame)))
		}
	}
	want := agg.close(nil)
	got, err := live.Collect(start.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}

	bySrc := func(tk *detector.Tick) map[detector.Addr]detector.Source {
		m := map[detector.Addr]detector.Source{}
		for _, s := range tk.Sources {
			m[s.Addr] = s
		}
		return m
	}
	g, w := bySrc(got), bySrc(want)
	if len(g) != len(w) {
		t.Errorf("XDP saw %d sources, replay %d", len(g), len(w))
	}
	for a, ws := range w {
		gs, ok := g[a]
		if !ok {
			t.Errorf("%s: counted by replay only", a)
			continue
		}
		if gs.Counters != ws.Counters {
			t.Errorf("%s: XDP %+v, replay %+v", a, gs.Counters, ws.Counters)
		}
	}
	if got.Total != want.Total {
		t.Errorf("totals: XDP %+v, replay %+v", got.Total, want.Total)
	}
	if got.UnparsedPackets != want.UnparsedPackets || got.UnparsedBytes != want.UnparsedBytes {
		t.Errorf("unparsed: XDP %d/%d B, replay %d/%d B", got.UnparsedPackets, got.UnparsedBytes, want.UnparsedPackets, want.UnparsedBytes)
	}
	if got.UnparsedPackets == 0 || len(g) < 2 {
		t.Fatalf("the vectors exercised too little: %d sources, %d unparsed", len(g), got.UnparsedPackets)
	}
}
