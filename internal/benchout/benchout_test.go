package benchout

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "fg1.log")
	if err := os.WriteFile(log, []byte("log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "bench.md")
	if err := Write(out, "report\n", "bench.", []string{log, filepath.Join(dir, "missing.log")}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{out: "report\n", filepath.Join(dir, "out", "bench.fg1.log"): "log\n"} {
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "bench.missing.log")); err == nil {
		t.Error("a missing log was copied")
	}
	if err := Write("", "report", "x.", nil); err != nil {
		t.Errorf("Write to no path: %v", err)
	}
}
