package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// clkTck is sysconf(_SC_CLK_TCK), the unit of /proc's CPU times: 100 on
// every Linux architecture Go supports, so it is not asked of libc.
const clkTck = 100

// ThreadCPU is the CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID):
// time it ran, user and kernel, not time other tasks ran while it waited.
// Lock the goroutine to its thread around what it measures.
func ThreadCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("thread CPU time: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

// CPU is a process's user plus system CPU seconds, all its threads.
func CPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("process cpu: %w", err)
	}
	sec, ok := ParseStatCPU(string(data))
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return sec, nil
}

// ParseStatCPU is utime plus stime in seconds from a /proc/PID/stat line;
// false if the line is not one.
func ParseStatCPU(s string) (float64, bool) {
	// The command name, field 2, is in parentheses and may hold spaces
	// and parentheses itself: count fields from the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	// Fields 14 and 15 of the line (utime, stime); f starts at field 3.
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return float64(u+st) / clkTck, true
}

// Mem is a process's resident memory in MiB.
type Mem struct {
	// RSS is resident now (VmRSS), Peak the most it ever was (VmHWM).
	RSS, Peak float64
}

// Memory is a process's resident memory, zero if unknown (the process is
// gone, or has no memory of its own).
func Memory(pid int) Mem {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Mem{}
	}
	return ParseStatusMem(string(data))
}

// RSS is a process's resident memory in MiB (VmRSS), 0 if unknown.
func RSS(pid int) float64 { return Memory(pid).RSS }

// ParseStatusMem reads VmRSS and VmHWM in MiB from /proc/PID/status text;
// a value missing or unreadable is 0 (a kernel thread or a zombie has
// neither).
func ParseStatusMem(s string) Mem {
	var m Mem
	for _, line := range strings.Split(s, "\n") {
		key, v, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if key == "VmRSS" {
			m.RSS = kb / 1024
		} else {
			m.Peak = kb / 1024
		}
	}
	return m
}

// MachineCPU is the CPU seconds all CPUs spent busy (not idle or iowait).
func MachineCPU() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("machine cpu: %w", err)
	}
	sec, ok := ParseMachineStat(string(data))
	if !ok {
		return 0, errors.New("/proc/stat: unexpected format")
	}
	return sec, nil
}

// ParseMachineStat is the busy CPU seconds of all CPUs from /proc/stat
// text, whose first line is the "cpu" total; false if it is not.
func ParseMachineStat(s string) (float64, bool) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, false
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice]:
		// guest time is already in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return float64(busy) / clkTck, true
}
