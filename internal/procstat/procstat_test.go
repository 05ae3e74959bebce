// Tests of the /proc parsers on literal /proc text, and of the readers on
// this test's own process: unprivileged, nothing to install.

package procstat

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	for _, c := range []struct {
		name, line string
		want       float64
		ok         bool
	}{
		{"floodguard", "4242 (floodguard) S 1 4242 4242 0 -1 4194560 2520 0 0 0 350 125 0 0 20 0 9 0 123456 1262768128 10321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n", 4.75, true},
		// The command name may hold spaces and parentheses: fields count
		// from the last ')'.
		{"name with ) and spaces", "77 (fast (net) mon) R 1 77 77 0 -1 4194304 101 0 0 0 1000 1 0 0 20 0 1 0 28222 3133440 402\n", 10.01, true},
		{"exactly utime and stime", "1 (x) S 0 0 0 0 0 0 0 0 0 0 7 3", 0.10, true},
		{"no parenthesis", "4242 floodguard S 1 4242 4242 0 -1 4194560 2520 0 0 0 350 125", 0, false},
		{"too few fields", "4242 (floodguard) S 1 4242 4242 0 -1 4194560 2520 0 0 0 350", 0, false},
		{"utime not a number", "4242 (floodguard) S 1 4242 4242 0 -1 4194560 2520 0 0 0 x 125 0", 0, false},
		{"stime negative", "4242 (floodguard) S 1 4242 4242 0 -1 4194560 2520 0 0 0 350 -1 0", 0, false},
		{"empty", "", 0, false},
	} {
		got, ok := ParseStatCPU(c.line)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: ParseStatCPU = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestParseStatusMem(t *testing.T) {
	const head = "Name:\tfloodguard\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\n"
	for _, c := range []struct {
		name, text string
		want       Mem
	}{
		{"status excerpt", head + "VmPeak:\t 1300740 kB\nVmSize:\t 1233172 kB\nVmLck:\t       0 kB\nVmHWM:\t   53248 kB\nVmRSS:\t   51200 kB\nRssAnon:\t   20480 kB\nThreads:\t9\n", Mem{RSS: 50, Peak: 52}},
		{"fraction of a MiB", "VmRSS:\t     512 kB\n", Mem{RSS: 0.5}},
		{"last line, no newline", head + "VmHWM:\t    4096 kB\nVmRSS:\t    2048 kB", Mem{RSS: 2, Peak: 4}},
		// Kernel threads and zombies have no Vm lines.
		{"kernel thread", "Name:\tkworker/0:1\nState:\tI (idle)\nThreads:\t1\n", Mem{}},
		{"not a number", "VmRSS:\t  lots kB\n", Mem{}},
		{"RssAnon is not VmRSS", "RssAnon:\t   20480 kB\n", Mem{}},
		{"VmPeak is not VmHWM", "VmPeak:\t   20480 kB\n", Mem{}},
		{"empty", "", Mem{}},
	} {
		if got := ParseStatusMem(c.text); got != c.want {
			t.Errorf("%s: ParseStatusMem = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestParseMachineStat(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       float64
		ok         bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// idle, iowait and the guest columns are not counted.
		{"ten columns", "cpu  100 20 30 1000 50 5 7 3 40 2\ncpu0 50 10 15 500 25 2 3 1 20 1\nintr 12345 0 0\n", 1.65, true},
		{"seven columns (no steal)", "cpu  100 20 30 1000 50 5 7\n", 1.62, true},
		{"busy machine", "cpu  20504 0 11050 24469 145 0 124 0 0 0\n", 316.78, true},
		{"six columns", "cpu  100 20 30 1000 50 5\n", 0, false},
		{"first line is a single CPU", "cpu0 100 20 30 1000 50 5 7 3 40 2\n", 0, false},
		{"not a number", "cpu  100 20 30 1000 50 5 7 x 40 2\n", 0, false},
		{"empty", "", 0, false},
	} {
		got, ok := ParseMachineStat(c.text)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: ParseMachineStat = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// TestReaders reads this process's own /proc files, which any user may.
func TestReaders(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc:", err)
	}
	if cpu, err := CPU(os.Getpid()); err != nil || cpu < 0 {
		t.Errorf("CPU(self) = %v, %v", cpu, err)
	}
	if m := Memory(os.Getpid()); m.RSS <= 0 || m.Peak < m.RSS {
		t.Errorf("Memory(self) = %+v, want 0 < RSS <= Peak", m)
	}
	if cpu, err := MachineCPU(); err != nil || cpu <= 0 {
		t.Errorf("MachineCPU() = %v, %v", cpu, err)
	}
	if _, err := CPU(-1); err == nil {
		t.Error("CPU(-1): no error")
	}
}
