package daemon_test

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floodguard/floodguard/daemon"
)

// unitFile is the shipped systemd unit.
const unitFile = "../deploy/floodguard.service"

// unitSyscalls returns the system calls the unit's SystemCallFilter allows,
// its groups expanded as this machine's systemd defines them.
func unitSyscalls(t *testing.T) map[string]bool {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipOrFail(t, "systemd-analyze not installed (apt-get install systemd): %v", err)
	}
	out, err := exec.Command(analyze, "syscall-filter").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	var cur string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "@"):
			cur = strings.TrimSpace(l)
		case strings.HasPrefix(strings.TrimSpace(l), "#"), strings.TrimSpace(l) == "", cur == "":
		default:
			groups[cur] = append(groups[cur], strings.TrimSpace(l))
		}
	}
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	var add func(string)
	add = func(name string) {
		if !strings.HasPrefix(name, "@") {
			allowed[name] = true
			return
		}
		members, ok := groups[name]
		if !ok {
			t.Fatalf("%s: SystemCallFilter group %s unknown to systemd-analyze", unitFile, name)
		}
		for _, m := range members {
			add(m)
		}
	}
	found := false
	for _, l := range strings.Split(string(unit), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "SystemCallFilter=")
		if !ok {
			continue
		}
		found = true
		if strings.HasPrefix(v, "~") {
			t.Fatalf("%s: a deny-list SystemCallFilter (%s): this test checks allow-lists", unitFile, l)
		}
		for _, name := range strings.Fields(v) {
			add(name)
		}
	}
	if !found {
		t.Fatalf("%s has no SystemCallFilter", unitFile)
	}
	return allowed
}

// TestE2EUnitSyscallFilter: every system call the daemon makes, traced
// with strace through a run that attaches, warms up, bans a flood, pages
// through an exec hook, takes an operator's block and unblock, reloads
// and stops, is one the unit's SystemCallFilter allows (the unit cannot
// be run under systemd here, so its filter is checked against what the
// daemon really does).
func TestE2EUnitSyscallFilter(t *testing.T) {
	allowed := unitSyscalls(t)
	strace, err := exec.LookPath("strace")
	if err != nil {
		skipOrFail(t, "strace not installed (apt-get install strace): %v", err)
	}
	e := newE2E(t, cfg{})
	hook := filepath.Join(e.dir, "page-hook.sh")
	pages := filepath.Join(e.dir, "pages.jsonl")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\ncat >> "+pages+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(e.text(cfg{}) + fmt.Sprintf("paging:\n  sinks:\n    - {name: hook, type: exec, command: [%s]}\n", hook))
	trace := filepath.Join(e.dir, "strace.out")
	d := e.spawn(strace, "-f", "-qq", "-o", trace, fgBin, "run", "--interface", "vb", "--config", e.config, "--log-format", "json")
	if _, _, err := d.Log.WaitEvent(0, 20*time.Second, "warmed_up", nil); err != nil {
		t.Fatalf("traced daemon did not warm up: %v", err)
	}
	mark := d.Log.Len()
	e.flood(e.udp(attacker4), floodRate, 2*time.Second)
	if _, _, err := d.Log.WaitEvent(mark, 10*time.Second, "ban", isEvent(attacker4.String()+"/32")); err != nil {
		t.Fatalf("traced daemon did not ban the flood: %v", err)
	}
	for _, args := range [][]string{{"block", "198.19.7.0/24"}, {"bans"}, {"status"}, {"unblock", "198.19.7.0/24"}} {
		if _, stderr, err := e.fg(args...); err != nil {
			t.Fatalf("floodguard %s: %v: %s", args[0], err, stderr)
		}
	}
	pid := lockHolder(t, e)
	mark = d.Log.Len()
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Log.WaitEvent(mark, 5*time.Second, "reloaded", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(pages); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no page reached the exec hook")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(20 * time.Second); err != nil {
		t.Fatalf("traced daemon: %v", err)
	}

	used, writes := tracedSyscalls(t, trace)
	// ProtectKernelTunables makes /sys (but for the pins on bpffs, here
	// in the lab's own bpffs) and /proc/sys read-only.
	for _, w := range writes {
		t.Errorf("the daemon writes where the unit makes it read-only: %s", w)
	}
	var denied []string
	for name := range used {
		if !allowed[name] {
			denied = append(denied, name)
		}
	}
	slices.Sort(denied)
	if len(denied) > 0 {
		t.Errorf("the daemon makes system calls the unit's SystemCallFilter denies: %v", denied)
	}
	names := slices.Sorted(maps.Keys(used))
	t.Logf("%d distinct system calls traced, all allowed: %s", len(names), strings.Join(names, " "))
}

// lockHolder is the PID the daemon wrote into its lock file.
func lockHolder(t *testing.T, e *e2e) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "run", daemon.LockName))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("lock file holds %q: %v", b, err)
	}
	return pid
}

var (
	straceCall = regexp.MustCompile(`^\d+\s+([a-z0-9_]+)\(`)
	// straceWrite is a call that changes something under /sys or
	// /proc/sys: opened for writing, or made, removed or renamed.
	straceWrite = regexp.MustCompile(`^\d+\s+(?:open(?:at2?)?\((?:\w+, )?"(?:/sys|/proc/sys)/[^"]*", [^)]*O_(?:WRONLY|RDWR|CREAT)|(?:mkdir|unlink|rmdir|rename)(?:at2?)?\([^)]*"(?:/sys|/proc/sys)/)`)
)

// tracedSyscalls lists the system calls in an strace -f output, and the
// calls that write under /sys or /proc/sys.
func tracedSyscalls(t *testing.T, path string) (map[string]bool, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	used := map[string]bool{}
	var writes []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := straceCall.FindStringSubmatch(sc.Text()); m != nil {
			used[m[1]] = true
		}
		if straceWrite.MatchString(sc.Text()) {
			writes = append(writes, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(used) < 20 {
		t.Fatalf("only %d system calls in %s: not an strace output?", len(used), path)
	}
	return used, writes
}
