package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCtlFlagsAnyOrder(t *testing.T) {
	var stderr bytes.Buffer
	e := env{stderr: &stderr}
	for _, args := range [][]string{
		{"198.19.7.0/24", "--ttl", "30m"},
		{"--ttl", "30m", "198.19.7.0/24"},
		{"-o", "json", "198.19.7.0/24", "-ttl=30m"},
	} {
		f, err := parseCtlFlags(e, "block", "CIDR", true, args)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if len(f.args) != 1 || f.args[0] != "198.19.7.0/24" || f.ttl != 30*time.Minute {
			t.Fatalf("%v: args %v ttl %v", args, f.args, f.ttl)
		}
	}
	if _, err := parseCtlFlags(e, "bans", "", false, []string{"-o", "yaml"}); err == nil {
		t.Fatal("-o yaml accepted")
	}
}

func TestCtlDaemonDown(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	var stdout, stderr bytes.Buffer
	code := run(env{stdout: &stdout, stderr: &stderr}, []string{"block", "--socket", sock, "198.19.7.0/24"})
	if code != 1 || !strings.Contains(stderr.String(), "not running") {
		t.Fatalf("block with no daemon: exit %d, %q", code, stderr.String())
	}
	code = run(env{stdout: &stdout, stderr: &stderr}, []string{"status", "--socket", sock})
	if code != 3 || !strings.Contains(stderr.String(), "not running") {
		t.Fatalf("status with no daemon: exit %d, %q", code, stderr.String())
	}
}
