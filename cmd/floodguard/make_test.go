package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// makeIn runs make in the repository root with args.
func makeIn(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	cmd := exec.Command("make", append([]string{"-C", "../..", "--no-print-directory"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestMakeInstallStampsVersionAndPrefix: make install builds a binary that
// knows its version (git describe, not "dev") and a unit whose ExecStart
// is the installed binary under PREFIX.
func TestMakeInstallStampsVersionAndPrefix(t *testing.T) {
	dest := t.TempDir()
	bin := filepath.Join(t.TempDir(), "floodguard")
	makeIn(t, "install", "DESTDIR="+dest, "PREFIX=/opt/fg", "BIN="+bin)
	installed := filepath.Join(dest, "opt/fg/bin/floodguard")
	out, err := exec.Command(installed, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	// Outside a git checkout (a source archive) make falls back to "dev".
	if want, err := exec.Command("git", "-C", "../..", "describe", "--always", "--dirty").Output(); err == nil {
		if got, want := strings.TrimSpace(string(out)), "floodguard "+strings.TrimSpace(string(want)); got != want {
			t.Errorf("installed binary says %q; want %q (git describe)", got, want)
		}
	} else if !strings.HasPrefix(string(out), "floodguard ") {
		t.Errorf("installed binary says %q", out)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system/floodguard.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/opt/fg/bin/floodguard run ") {
		t.Errorf("installed unit's ExecStart does not follow PREFIX:\n%s", unit)
	}
	for f, want := range map[string]string{
		"usr/share/bash-completion/completions/floodguard": "complete -o filenames -F _floodguard floodguard",
		"usr/share/zsh/vendor-completions/_floodguard":     "#compdef floodguard",
		"usr/share/man/man1/floodguard.1":                  ".TH FLOODGUARD 1",
	} {
		if b, err := os.ReadFile(filepath.Join(dest, f)); err != nil || !strings.Contains(string(b), want) {
			t.Errorf("installed %s lacks %q (%v)", f, want, err)
		}
	}
}

// TestMakeUninstall: make uninstall removes what make install put in
// place, keeping the config unless PURGE=1.
func TestMakeUninstall(t *testing.T) {
	dest := t.TempDir()
	bin := filepath.Join(t.TempDir(), "floodguard")
	makeIn(t, "install", "DESTDIR="+dest, "PREFIX=/usr", "BIN="+bin)
	makeIn(t, "uninstall", "DESTDIR="+dest, "PREFIX=/usr")
	for _, gone := range []string{"usr/bin/floodguard", "etc/systemd/system/floodguard.service", "usr/share/doc/floodguard",
		"usr/share/bash-completion/completions/floodguard", "usr/share/zsh/vendor-completions/_floodguard", "usr/share/man/man1/floodguard.1"} {
		if _, err := os.Stat(filepath.Join(dest, gone)); err == nil {
			t.Errorf("%s left after uninstall", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "etc/floodguard/floodguard.yaml")); err != nil {
		t.Errorf("config removed without PURGE=1: %v", err)
	}
	makeIn(t, "uninstall", "DESTDIR="+dest, "PREFIX=/usr", "PURGE=1")
	if _, err := os.Stat(filepath.Join(dest, "etc/floodguard")); err == nil {
		t.Error("config kept with PURGE=1")
	}
}
