// Package golden compares test output with committed golden files, the
// habit of gopacket's and node_exporter's fixtures: a change in detection
// shows up as a reviewed diff of a file under testdata/golden.
//
// `go test ./... -update` rewrites the files instead of comparing. go test
// hands -update to every package's test binary, so every package with tests
// imports this one (most of them blank, in update_flag_test.go) to accept
// the flag.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden instead of comparing with them")

// Updating says whether this run rewrites golden files.
func Updating() bool { return *update }

// Check compares got with the golden file at path; with -update it writes
// got there instead. A mismatch names the first differing line.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (run go test -update to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs from this run at line %d (go test -update rewrites it; review the diff):\n got: %.400s\nwant: %.400s", path, i+1, g, w)
		}
	}
}
