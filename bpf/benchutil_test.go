package bpf

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/internal/procstat"
)

// Knobs of the side-by-side benchmarks (scripts/bench-xdp.sh sets them).
const (
	// benchOutEnv names a directory to write the benchmarks' Markdown
	// tables to (as well as logging them).
	benchOutEnv = "FLOODGUARD_BENCH_OUT"
	// benchCPUEnv pins the measuring thread to that CPU (default: the
	// highest-numbered CPU the process may use; -1: no pinning).
	benchCPUEnv = "FLOODGUARD_BENCH_CPU"
)

// benchEnvInt returns the positive integer in the environment variable
// name, or def.
func benchEnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// pinBenchCPU locks the calling goroutine to its thread (threadCPUTime
// needs that) and the thread to one CPU (benchCPUEnv), so that every
// measurement of a run sees the same per-CPU map copies and caches. It
// returns the CPU, or -1 if not pinned; all is undone when tb ends.
func pinBenchCPU(tb testing.TB) int {
	tb.Helper()
	runtime.LockOSThread()
	tb.Cleanup(runtime.UnlockOSThread)
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		tb.Logf("not pinned: %v", err)
		return -1
	}
	cpu := -1
	for c := range 1024 {
		if old.IsSet(c) {
			cpu = c
		}
	}
	if s := os.Getenv(benchCPUEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("%s=%q: want a CPU number or -1", benchCPUEnv, s)
		}
		cpu = v
	}
	if cpu < 0 {
		return -1
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		tb.Logf("not pinned to CPU %d: %v", cpu, err)
		return -1
	}
	tb.Cleanup(func() { unix.SchedSetaffinity(0, &old) })
	return cpu
}

// threadCPUTime returns the CPU time of the calling thread, in ns: time the
// thread ran, user and kernel, not time other tasks ran while it waited.
func threadCPUTime(tb testing.TB) int64 {
	d, err := procstat.ThreadCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return d.Nanoseconds()
}

// writeBenchTable logs a benchmark's Markdown report and, if benchOutEnv
// names a directory, writes it there as name.
func writeBenchTable(tb testing.TB, name, text string) {
	tb.Helper()
	// Printed, not logged: the testing package keeps only 10 lines of a
	// benchmark's log.
	fmt.Print("\n" + text + "\n")
	dir := os.Getenv(benchOutEnv)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread formats the smallest and largest of v.
func spread(v []float64, format string) string {
	if len(v) == 0 {
		return ""
	}
	return fmt.Sprintf(format+"–"+format, slices.Min(v), slices.Max(v))
}
