package capture

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"

	"github.com/google/gopacket/pcapgo"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/synth"
)

// The capture BenchmarkThroughput reads: FLOODGUARD_BENCH_PCAP, or, when
// that is unset, the 1,000,000-packet Bench scenario (seed 1, the file
// `floodguard synth -packets 1000000 bench` writes) made once per test
// binary in a temporary directory that TestMain removes.
var throughput struct {
	once sync.Once
	dir  string // the temporary directory, if one was made
	path string
	pkts int
	err  error
}

const throughputPackets = 1_000_000

func throughputFile(b *testing.B) (string, int) {
	b.Helper()
	t := &throughput
	t.once.Do(func() {
		if t.path = os.Getenv("FLOODGUARD_BENCH_PCAP"); t.path == "" {
			if t.dir, t.err = os.MkdirTemp("", "floodguard-bench-"); t.err != nil {
				return
			}
			t.path, _, t.err = synth.WriteFiles(t.dir, synth.Bench, synth.Options{Seed: 1, Packets: throughputPackets})
			if t.err != nil {
				return
			}
		}
		t.pkts, t.err = countPackets(t.path)
	})
	if t.err != nil {
		b.Fatal(t.err)
	}
	return t.path, t.pkts
}

func TestMain(m *testing.M) {
	code := m.Run()
	if throughput.dir != "" {
		os.RemoveAll(throughput.dir)
	}
	os.Exit(code)
}

func countPackets(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		_, _, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// BenchmarkThroughput compares, over one synthesized capture, the bare
// pcapgo read loop (the floor the issue names), the same loop with
// ZeroCopyReadPacketData, the replay source alone, the whole replay path
// as `floodguard replay` runs it (source, simulated data plane and
// detector), and tcpdump reading the same file. One op is one pass over
// the whole file. Each reports pkts/s, ns/pkt and, but tcpdump, allocs/pkt
// (every allocation of the pass, divided by its packets). Run it with
// -cpu 1 for the one-core figure; scripts/bench-replay.sh runs the
// variants in interleaved rounds and reports medians and ratios.
func BenchmarkThroughput(b *testing.B) {
	path, pkts := throughputFile(b)
	// measure runs pass once untimed, then b.N times, and reports per
	// packet. The untimed pass leaves the file in the page cache and the
	// heap grown: on this VM a first pass of the whole path spends a third
	// of its time in page faults (about 10,000 of them, at ~15 µs each),
	// which measures the hypervisor rather than the code.
	measure := func(b *testing.B, pass func(b *testing.B)) {
		pass(b)
		b.ReportAllocs()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for b.Loop() {
			pass(b)
		}
		runtime.ReadMemStats(&after)
		n := float64(b.N) * float64(pkts)
		b.ReportMetric(n/b.Elapsed().Seconds(), "pkts/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/pkt")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/pkt")
	}
	pcapgoLoop := func(zeroCopy bool) func(b *testing.B) {
		return func(b *testing.B) {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			r, err := pcapgo.NewReader(f)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				if zeroCopy {
					_, _, err = r.ZeroCopyReadPacketData()
				} else {
					_, _, err = r.ReadPacketData()
				}
				if err != nil {
					break
				}
				n++
			}
			if err != io.EOF || n != pkts {
				b.Fatalf("read %d packets of %d: %v", n, pkts, err)
			}
		}
	}
	b.Run("pcapgo-read", func(b *testing.B) { measure(b, pcapgoLoop(false)) })
	b.Run("pcapgo-zerocopy", func(b *testing.B) { measure(b, pcapgoLoop(true)) })
	b.Run("replay-source", func(b *testing.B) {
		measure(b, func(b *testing.B) {
			r, err := NewReplay([]string{path}, ReplayOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err = r.Next(); err != nil {
					break
				}
			}
			r.Close()
			if st := r.Stats(); err != io.EOF || st.Packets != uint64(pkts) {
				b.Fatalf("replayed %d packets of %d: %v", st.Packets, pkts, err)
			}
		})
	})
	b.Run("replay-full", func(b *testing.B) {
		measure(b, func(b *testing.B) {
			plane := NewSimulatedPlane()
			eng, err := detector.New(detector.DefaultConfig(), plane)
			if err != nil {
				b.Fatal(err)
			}
			r, err := NewReplay([]string{path}, ReplayOptions{Dropper: plane})
			if err != nil {
				b.Fatal(err)
			}
			if err := detector.Run(context.Background(), r, eng); err != nil && !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			r.Close()
			if st := r.Stats(); st.Packets != uint64(pkts) {
				b.Fatalf("replayed %d packets of %d", st.Packets, pkts)
			}
		})
	})
	b.Run("tcpdump", func(b *testing.B) {
		tcpdump, err := exec.LookPath("tcpdump")
		if err != nil {
			b.Skip("tcpdump not installed, no tcpdump baseline (make bench installs it; or apt-get install tcpdump)")
		}
		run := func() {
			cmd := exec.Command(tcpdump, "-r", path, "-w", "/dev/null")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("tcpdump: %v: %s", err, out)
			}
		}
		run() // untimed, as the others
		for b.Loop() {
			run()
		}
		n := float64(b.N) * float64(pkts)
		b.ReportMetric(n/b.Elapsed().Seconds(), "pkts/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/pkt")
	})
}
