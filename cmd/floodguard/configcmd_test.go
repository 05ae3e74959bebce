package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCommand(t *testing.T) {
	code, out, _ := runCLI("config", "defaults")
	if code != 0 || !strings.Contains(out, "\ntick: 1s\n") || !strings.Contains(out, "# ") {
		t.Fatalf("config defaults: exit %d\n%s", code, out)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(out), 0o600)
	if code, out, errOut := runCLI("config", "check", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("config check of the defaults: exit %d %q %q", code, out, errOut)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("tick: 1s\ndaemon:\n  attach_mode: sideways\n"), 0o600)
	code, _, errOut := runCLI("config", "check", bad)
	if code != 1 || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, "daemon.attach_mode") {
		t.Errorf("config check of a bad file: exit %d %q; want exit 1 naming line 3 and daemon.attach_mode", code, errOut)
	}
	if code, _, _ := runCLI("config", "frobnicate"); code != 2 {
		t.Errorf("config frobnicate: exit %d, want 2", code)
	}
}
