// /proc reading: a process's CPU time and resident memory, and the
// machine's busy CPU time. Each reader is a file read plus a parser on the
// file's text, so the parsers are tested on literal /proc text.

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

var clkTck = func() float64 {
	// sysconf(_SC_CLK_TCK) is 100 on every Linux architecture Go supports.
	return 100
}()

// procCPU is a process's user plus system CPU seconds, all its threads.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	sec, ok := parseStatCPU(string(data))
	if !ok {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return sec, nil
}

// parseStatCPU is utime plus stime in seconds from a /proc/PID/stat line;
// false if the line is not one.
func parseStatCPU(s string) (float64, bool) {
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

// procRSS is a process's resident memory in MiB (VmRSS), 0 if unknown.
func procRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return parseStatusRSS(string(data))
}

// parseStatusRSS is VmRSS in MiB from /proc/PID/status text, 0 if it is
// missing or unreadable (a kernel thread or a zombie has none).
func parseStatusRSS(s string) float64 {
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// machineCPU is the CPU seconds all CPUs spent busy (not idle or iowait).
func machineCPU() (float64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	sec, ok := parseMachineStat(string(data))
	if !ok {
		return 0, errors.New("/proc/stat: unexpected format")
	}
	return sec, nil
}

// parseMachineStat is the busy CPU seconds of all CPUs from /proc/stat
// text, whose first line is the "cpu" total; false if it is not.
func parseMachineStat(s string) (float64, bool) {
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
