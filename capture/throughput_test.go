package capture

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/google/gopacket/pcapgo"

	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/synth"
)

// throughputFile is the 1M-packet synthesized capture the throughput
// benchmark reads: FLOODGUARD_BENCH_PCAP, or one made once per run.
func throughputFile(b *testing.B) (string, int) {
	b.Helper()
	if p := os.Getenv("FLOODGUARD_BENCH_PCAP"); p != "" {
		return p, countPackets(b, p)
	}
	dir := b.TempDir()
	p, _, err := synth.WriteFiles(dir, synth.Bench, synth.Options{Seed: 1, Packets: 1_000_000})
	if err != nil {
		b.Fatal(err)
	}
	return p, 1_000_000
}

func countPackets(b *testing.B, path string) int {
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
		if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
			break
		}
		n++
	}
	return n
}

// BenchmarkThroughput compares, over one synthesized capture, the bare
// pcapgo read loop (the floor), the replay source alone, the whole replay
// path as `floodguard replay` runs it (source, simulated data plane and
// detector), and tcpdump reading the same file. Run it with -cpu 1 for the
// one-core figure; scripts/bench-replay.sh interleaves rounds and reports
// medians and ratios.
func BenchmarkThroughput(b *testing.B) {
	path, pkts := throughputFile(b)
	report := func(b *testing.B) {
		b.ReportMetric(float64(pkts)*float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*pkts), "ns/pkt")
	}
	b.Run("pcapgo-read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			r, err := pcapgo.NewReader(f)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, _, err := r.ReadPacketData(); err != nil {
					break
				}
			}
			f.Close()
		}
		report(b)
	})
	b.Run("pcapgo-zerocopy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			r, err := pcapgo.NewReader(f)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, _, err := r.ZeroCopyReadPacketData(); err != nil {
					break
				}
			}
			f.Close()
		}
		report(b)
	})
	b.Run("replay-source", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := NewReplay([]string{path}, ReplayOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := r.Next(); err != nil {
					break
				}
			}
			r.Close()
		}
		report(b)
	})
	b.Run("replay-full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			plane := NewSimulatedPlane()
			eng, err := detector.New(detector.DefaultConfig(), plane)
			if err != nil {
				b.Fatal(err)
			}
			r, err := NewReplay([]string{path}, ReplayOptions{Dropper: plane})
			if err != nil {
				b.Fatal(err)
			}
			if err := detector.Run(context.Background(), r, eng, nil); err != nil && !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			r.Close()
		}
		report(b)
	})
	b.Run("tcpdump", func(b *testing.B) {
		tcpdump, err := exec.LookPath("tcpdump")
		if err != nil {
			b.Skip("tcpdump not installed (make bench installs it)")
		}
		for b.Loop() {
			cmd := exec.Command(tcpdump, "-r", path, "-w", "/dev/null")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("tcpdump: %v: %s", err, out)
			}
		}
		report(b)
	})
}
