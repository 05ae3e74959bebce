package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeDeb: make deb builds a Debian package with dpkg-deb holding the
// binary, the unit (ExecStart on /usr/bin), the config as a conffile, the
// completions and the man page, versioned from git describe made
// Debian-safe.
func TestMakeDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	out := t.TempDir()
	// A version with characters dpkg refuses, and a leading v.
	makeIn(t, "deb", "OUT="+out, "BIN="+filepath.Join(t.TempDir(), "floodguard"), "VERSION=v1.2.0-3-gabc_d:e")
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb made %v, want one .deb in %s", debs, out)
	}
	deb := debs[0]
	if !strings.HasPrefix(filepath.Base(deb), "floodguard_1.2.0+3+gabc+d+e_") {
		t.Errorf("package file %s: want floodguard_1.2.0+3+gabc+d+e_ARCH.deb", filepath.Base(deb))
	}
	dpkgDeb := func(args ...string) string {
		t.Helper()
		b, err := exec.Command("dpkg-deb", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb %v: %v\n%s", args, err, b)
		}
		return string(b)
	}

	contents := dpkgDeb("-c", deb)
	for _, f := range []string{
		"./usr/bin/floodguard",
		"./lib/systemd/system/floodguard.service",
		"./etc/floodguard/floodguard.yaml",
		"./usr/share/bash-completion/completions/floodguard",
		"./usr/share/zsh/vendor-completions/_floodguard",
		"./usr/share/man/man1/floodguard.1.gz",
		"./usr/share/doc/floodguard/README.md",
	} {
		if !strings.Contains(contents, " "+f+"\n") {
			t.Errorf("dpkg-deb -c lacks %s:\n%s", f, contents)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(contents), "\n") {
		if !strings.Contains(l, " root/root ") {
			t.Errorf("not owned by root: %s", l)
		}
		if strings.Contains(l, "/etc/systemd/") || strings.Contains(l, "/usr/local/") {
			t.Errorf("unexpected in the package: %s", l)
		}
	}
	if !strings.Contains(contents, "-rwxr-xr-x root/root") {
		t.Errorf("no executable in the package:\n%s", contents)
	}

	info := dpkgDeb("-I", deb)
	for _, want := range []string{"Package: floodguard\n", "Version: 1.2.0+3+gabc+d+e\n", "Depends: libc6\n", "Maintainer: ", "Description: ", " conffiles"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}
	if conff := dpkgDeb("-I", deb, "conffiles"); strings.TrimSpace(conff) != "/etc/floodguard/floodguard.yaml" {
		t.Errorf("conffiles: %q", conff)
	}

	root := t.TempDir()
	dpkgDeb("-x", deb, root)
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/floodguard.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "\nExecStart=/usr/bin/floodguard run ") {
		t.Errorf("packaged unit's ExecStart is not /usr/bin/floodguard:\n%s", unit)
	}
	got, err := exec.Command(filepath.Join(root, "usr/bin/floodguard"), "version").Output()
	if err != nil || strings.TrimSpace(string(got)) != "floodguard v1.2.0-3-gabc_d:e" {
		t.Errorf("packaged binary says %q (%v)", got, err)
	}
}
