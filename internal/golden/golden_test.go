package golden

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryTestPackageAcceptsUpdate: `go test ./... -update` hands -update
// to every package's test binary, and one without the flag fails; so every
// folder with tests must import this package (update_flag_test.go).
func TestEveryTestPackageAcceptsUpdate(t *testing.T) {
	root := filepath.Join("..", "..")
	tests := map[string]bool{}
	imports := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), "_")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		tests[dir] = true
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), `"github.com/floodguard/floodguard/internal/golden"`) {
			imports[dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range tests {
		if dir == "." || filepath.Base(dir) == "golden" {
			continue
		}
		if !imports[dir] {
			t.Errorf("%s has tests but does not import internal/golden: go test ./... -update fails there (add update_flag_test.go)", dir)
		}
	}
}
