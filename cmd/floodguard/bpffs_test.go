package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// TestEnsureBPFFS: as root, a pin directory off bpffs gets bpffs mounted
// on it (logged); one already on bpffs is left alone.
func TestEnsureBPFFS(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("FLOODGUARD_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "pins", "floodguard")
	var logs bytes.Buffer
	if err := ensureBPFFS(dir, zerolog.New(&logs)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		t.Fatalf("%s is not on bpffs after ensureBPFFS (%v)", dir, err)
	}
	if !strings.Contains(logs.String(), "mounted bpffs") {
		t.Errorf("mount not logged: %q", logs.String())
	}
	logs.Reset()
	if err := ensureBPFFS(filepath.Join(dir, "sub"), zerolog.New(&logs)); err != nil || logs.Len() != 0 {
		t.Errorf("already on bpffs: %v, logged %q", err, logs.String())
	}
}
